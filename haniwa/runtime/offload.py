"""CPU work off the event loop: small bounded thread pools, and JSON encoding that lets the loop breathe.

The event loop answers every request of the process (``/health`` among them), so anything that may take
more than a few milliseconds runs on a :class:`Worker` instead: a named pool of at most ``threads``
threads, created lazily. Each model that computes in Python (the echo model on a large prompt, the hash
and e5 embedders) owns one, so a burst on one model queues behind that model only and never takes the
threads that database calls or other models use (``store/db.py`` has its own). :data:`CPU` is the shared
pool for the rest (token counts of large inputs, large responses).

A thread only helps while the GIL changes hands: CPython switches threads between bytecodes, never inside
one long C call. ``json.dumps`` of a response with millions of floats is one such call, so
:func:`json_chunks` encodes large containers piece by piece.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["Worker", "CPU", "json_chunks", "json_chunks_off_loop"]

P = ParamSpec("P")
T = TypeVar("T")

# a list of scalars longer than this is encoded in slices: each C call stays well under a millisecond
_SLICE = 4096
# containers are walked this deep; below that a value is small enough to encode in one call
_DEPTH = 6


class Worker:
    """A bounded pool of named threads for one kind of CPU work; threads start on first use."""

    def __init__(self, name: str, threads: int = 1) -> None:
        self.name = name
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on this pool. A cancelled caller stops waiting; a call that has
        started runs to its end (Python cannot stop a thread), so long work is split into calls."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# Shared by everything that has no pool of its own. Two threads: one CPU-heavy request cannot hold up
# every other, and the event loop still competes with few threads for the GIL.
CPU = Worker("haniwa-cpu", threads=2)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _encode(value: Any, out: list[str], depth: int) -> None:
    if depth < _DEPTH and isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            out.append(("," if i else "") + _dumps(str(key)) + ":")
            _encode(item, out, depth + 1)
        out.append("}")
    elif depth < _DEPTH and isinstance(value, list | tuple) and value:
        if isinstance(value[0], dict | list | tuple):
            out.append("[")
            for i, item in enumerate(value):
                if i:
                    out.append(",")
                _encode(item, out, depth + 1)
            out.append("]")
        else:
            slices = (_dumps(list(value[i : i + _SLICE]))[1:-1] for i in range(0, len(value), _SLICE))
            out.append("[" + ",".join(slices) + "]")
    else:
        out.append(_dumps(value))


def json_chunks(value: Any, size: int = 1 << 16) -> list[bytes]:
    """``value`` as compact UTF-8 JSON (what Starlette's JSONResponse writes) in chunks of about ``size``
    bytes. It is encoded piece by piece, so a thread running it lets others take the GIL, and never joined
    into one string: a response of millions of numbers is sent chunk by chunk. NaN and infinities are
    refused, as JSONResponse refuses them."""
    pieces: list[str] = []
    _encode(value, pieces, 0)
    chunks: list[bytes] = []
    group: list[str] = []
    held = 0
    for piece in pieces:
        group.append(piece)
        held += len(piece)
        if held >= size:
            chunks.append("".join(group).encode("utf-8"))
            group, held = [], 0
    if group:
        chunks.append("".join(group).encode("utf-8"))
    return chunks


async def json_chunks_off_loop(value: Any) -> list[bytes]:
    """:func:`json_chunks` on :data:`CPU`: for responses that may hold millions of numbers."""
    return await CPU.run(json_chunks, value)
