"""Plugin hooks. Built-ins register through these exactly as third-party plugins do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("haniwa")
hookimpl = pluggy.HookimplMarker("haniwa")

__all__ = [
    "hookspec",
    "hookimpl",
    "register_backends",
    "register_models",
    "register_parsers",
    "register_vector_stores",
    "register_agent_functions",
    "register_formats",
]


@hookspec
def register_backends(register: Callable[[Any], None]) -> None:
    """Register model runtimes (objects satisfying ``haniwa.runtime.base.Backend``)."""


@hookspec
def register_models(register: Callable[..., None]) -> None:
    """Register catalog entries (``ModelInfo``) and aliases: ``register(info, aliases=[...])``."""


@hookspec
def register_parsers(register: Callable[[Any], None]) -> None:
    """Register document parsers (``haniwa.knowledge.base.Parser``) by file suffix."""


@hookspec
def register_vector_stores(register: Callable[[Any], None]) -> None:
    """Register knowledge-base stores (``haniwa.knowledge.base.VectorStoreFactory``) by name."""


@hookspec
def register_agent_functions(register: Callable[[Any], None]) -> None:
    """Register functions agents may run (``haniwa.agents.base.AgentFunction``), by name."""


@hookspec
def register_formats(register: Callable[..., None]) -> None:
    """Register native InvokeModel body formats: ``register(prefix, factory, detect=..., shape=...)``."""
