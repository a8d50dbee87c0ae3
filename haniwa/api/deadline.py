"""Deadlines and cancellation for requests answered in one piece.

A non-streaming model call holds its model (a llama.cpp worker, a queue slot) until it ends, so it must
end when nobody waits for it any more. :func:`bounded` runs the call as a task and cancels it

- at the deadline (``HANIWA_REQUEST_TIMEOUT``): the request then fails with
  :class:`~haniwa.errors.ModelTimeoutError` (``ModelTimeoutException``: 408 on bedrock-runtime, as its
  service model says; 504 on the OpenAI surface);
- when the client disconnects: the server learns it from ASGI ``receive()``, which, once the body has been
  read, answers only ``http.disconnect``. The request then ends with :class:`ClientGone`, which a surface
  answers with a bare 499 that nobody reads.

Cancelling the task reaches the backend: the echo model stops between tokens, llama.cpp's worker checks
a stop flag between prompt slices and after every token, embedders stop between batches. Streaming
responses need none of this: Starlette stops a stream whose client has gone, and a stream has no single
deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.responses import Response
from starlette.types import Receive

from haniwa.errors import ModelTimeoutError

__all__ = ["bounded", "ClientGone", "gone_response"]

T = TypeVar("T")


class ClientGone(Exception):
    """The client closed the connection before its answer was ready; the work was cancelled."""


def gone_response() -> Response:
    """What a surface returns for :class:`ClientGone` (nginx's 499 "client closed request"): nobody reads
    it, and the server drops it since the connection is closed."""
    return Response(status_code=499)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # an empty body message: the body has been read; keep waiting


async def bounded(work: Awaitable[T], receive: Receive, timeout: float, what: str = "the model") -> T:
    """The result of ``work``, cancelled at ``timeout`` seconds (ModelTimeoutError) or when the client
    disconnects (ClientGone). Call it only once the request body has been read: ``receive`` is then free
    to watch, and a body message still unread would be taken from the handler."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(receive))
    try:
        done, _ = await asyncio.wait({task, watch}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # whatever happened (even our own cancellation), nothing started here outlives the call
        watch.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task  # let the backend finish its cleanup (a freed queue slot, a stop flag)
    if task in done:
        return task.result()
    if watch in done:
        raise ClientGone()
    raise ModelTimeoutError(
        f"{what} did not answer within {timeout:g} s (HANIWA_REQUEST_TIMEOUT); ask for fewer tokens"
        " or use a streaming operation"
    )
