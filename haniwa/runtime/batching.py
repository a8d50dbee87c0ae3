"""Micro-batching for local embedders: requests that arrive while the engine is busy share its next call.

An embedding engine computes a batch of texts in about the time it takes per text times the batch, but
each call has a fixed cost (a hop to the worker thread, tokenizer and weight set-up in the engine) and
runs one at a time. Eight clients that each embed one text would otherwise queue eight calls; here the
first starts at once (no waiting window, so a lone request pays nothing) and the seven that arrive while
it runs go into the next call together.

Rules (tested in ``tests/test_embed_batching.py``):

- Only requests with the same key are merged (the key is the embedding purpose: e5 prefixes
  ``query: `` and ``passage: ``, so a query and a passage can never share a call).
- A request larger than ``max_batch`` is split across calls, and after each of its calls it goes to the
  back of the line: a short query that arrives during a large ingestion waits for the call running and at
  most one more per request ahead of it, not for the whole ingestion.
- A cancelled request is dropped before its next call; the engine call it was part of finishes for the
  others (the call runs in the batcher's own task, never in a caller's).
- Memory: the batcher holds the pending requests (each bounded by the server's per-request input cap)
  and one call's texts and vectors; nothing grows with time.

asyncio has no batching queue of its own and the libraries that have one (e.g. Ray Serve's
``@serve.batch``) bring a serving framework with them, hence these hundred lines.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from haniwa.runtime.offload import Worker

__all__ = ["MicroBatcher"]

K = TypeVar("K", bound=Hashable)
Vector = list[float]


@dataclass(eq=False)
class _Request(Generic[K]):
    texts: Sequence[str]
    key: K
    future: asyncio.Future[list[Vector]]
    done: int = 0  # texts sent to the engine so far
    out: list[Vector] = field(default_factory=list)


@dataclass(eq=False)
class _Line(Generic[K]):
    """The pending requests of one event loop and the task that feeds them to the engine."""

    waiting: deque[_Request[K]] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class MicroBatcher(Generic[K]):
    """Feeds ``compute(texts, key)`` on ``worker``, one call at a time, with up to ``max_batch`` texts of
    every waiting request that has the first waiting request's ``key``.

    ``calls`` and ``texts_computed`` count the engine calls made and the texts they held (for tests and
    benchmarks); ``merged`` counts the calls that served more than one request.
    """

    def __init__(
        self, compute: Callable[[list[str], K], list[Vector]], worker: Worker, max_batch: int = 32
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._compute = compute
        self._worker = worker
        self.max_batch = max_batch
        self.calls = 0
        self.merged = 0
        self.texts_computed = 0
        # one line per event loop: futures and tasks belong to a loop, and a server, a CLI run and tests
        # may each use the same loaded model from their own loop
        self._lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Line[K]] = (
            weakref.WeakKeyDictionary()
        )

    async def run(self, texts: Sequence[str], key: K) -> list[Vector]:
        """One vector per text, in order, computed in calls shared with other requests of the same key."""
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        line = self._lines.get(loop)
        if line is None:
            line = self._lines[loop] = _Line()
        req: _Request[K] = _Request(texts, key, loop.create_future())
        line.waiting.append(req)
        if line.task is None or line.task.done():
            line.task = loop.create_task(self._drain(line))
        return await req.future

    async def _drain(self, line: _Line[K]) -> None:
        while True:
            if any(r.future.done() for r in line.waiting):  # cancelled while they waited
                line.waiting = deque(r for r in line.waiting if not r.future.done())
            if not line.waiting:
                return
            key = line.waiting[0].key
            batch: list[str] = []
            parts: list[tuple[_Request[K], int]] = []  # (request, how many of its texts are in batch)
            for req in list(line.waiting):
                room = self.max_batch - len(batch)
                if room == 0:
                    break
                if req.key != key:
                    continue
                take = list(req.texts[req.done : req.done + room])
                batch += take
                parts.append((req, len(take)))
                req.done += len(take)
            for req, _ in parts:  # served or partly served: to the back of the line (see the docstring)
                line.waiting.remove(req)
                if req.done < len(req.texts):
                    line.waiting.append(req)
            try:
                vectors = await self._worker.run(self._compute, batch, key)
            except BaseException as exc:  # the engine failed (or the loop is closing): tell these callers
                for req, _ in parts:
                    if not req.future.done():
                        req.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
                    if req in line.waiting:
                        line.waiting.remove(req)
                if not isinstance(exc, Exception):
                    raise
                continue
            self.calls += 1
            self.texts_computed += len(batch)
            self.merged += len(parts) > 1
            start = 0
            for req, n in parts:
                if not req.future.done():
                    req.out += vectors[start : start + n]
                    if len(req.out) == len(req.texts):
                        req.future.set_result(req.out)
                start += n
