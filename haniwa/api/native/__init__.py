"""Each model provider's native InvokeModel body (Anthropic, Titan, Cohere, Meta, Mistral).

A format converts a provider's JSON body to a :class:`ChatRequest` (or an embedding request) and our
results back to that provider's response and stream-chunk shapes. ``formats.py`` picks one per call.
"""
