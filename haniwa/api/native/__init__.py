"""Each model provider's native InvokeModel body (Anthropic, Titan, Cohere, Meta, Mistral, Nova).

A format converts a provider's JSON body to a :class:`ChatRequest` (or an embedding request) and our
results back to that provider's response and stream-chunk shapes. ``formats.py`` picks one per call
from those registered through the ``register_formats`` hook (the built-ins in ``builtin.py``); the
providers share the field checks of ``fields.py``.
"""
