"""Public modules declare ``__all__`` and every name in it exists."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "haniwa.knowledge.base",
    "haniwa.knowledge.filters",
    "haniwa.knowledge.parse",
    "haniwa.knowledge.chunk",
    "haniwa.knowledge.sources",
    "haniwa.knowledge.retrieve",
    "haniwa.knowledge.service",
    "haniwa.knowledge.rag",
    "haniwa.knowledge.stores.local",
    "haniwa.knowledge.stores.pgvector",
    "haniwa.testing.vectorstore",
    "haniwa.errors",
    "haniwa.config",
    "haniwa.hookspecs",
    "haniwa.plugins",
    "haniwa.runtime.base",
    "haniwa.runtime.registry",
    "haniwa.runtime.dims",
    "haniwa.runtime.echo",
    "haniwa.api.wire",
    "haniwa.api.eventstream",
    "haniwa.api.app",
    "haniwa.api.openai",
    "haniwa.runtime.openai_compat",
    "haniwa.store.db",
    "haniwa.jobs.base",
    "haniwa.jobs.engine",
    "haniwa.agents.service",
    "haniwa.api.bedrock_agent_agents",
    "haniwa.api.pagination",
    "haniwa.evaluation.metrics",
    "haniwa.evaluation.stats",
    "haniwa.evaluation.judge",
    "haniwa.evaluation.service",
    "haniwa.api.bedrock_evaluation",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    mod = importlib.import_module(name)
    assert mod.__all__
    for member in mod.__all__:
        assert hasattr(mod, member), f"{name}.{member}"
