"""Request-body limits enforced before and while a body is read, on every route (a pure ASGI middleware).

- A ``Content-Length`` above ``max_body_bytes`` is answered 413 at once; no byte of the body is read.
- A chunked body (or any body) is counted as it arrives; past ``max_body_bytes`` the server answers 413,
  closes the connection and keeps nothing.
- A body that pauses longer than ``body_timeout`` between two chunks is answered 408 and closed.

The application then sees ``http.disconnect``, as if the client had gone, and whatever it still sends is
dropped. Errors have the shape of the surface asked: ``{"error": ...}`` under ``/v1`` and ``/haniwa/v1``,
Bedrock's ``{"message": ...}`` with ``x-amzn-errortype`` everywhere else. The header deadline and the
connection cap live in the server (``api/serve.py``), since they apply before there is a request.
"""

from __future__ import annotations

import asyncio
import uuid

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from haniwa.api.errors import bedrock_error, openai_error
from haniwa.config import Settings
from haniwa.errors import ValidationError

__all__ = ["BodyLimits", "read_body"]

_DISCONNECT: Message = {"type": "http.disconnect"}
# an early answer (an auth failure before the body is read) keeps the connection only when the rest of
# the body is small: uvicorn would otherwise read and discard up to max_body_bytes, or forever if chunked
_KEEP_ALIVE_UNREAD = 64 * 1024


def _is_openai(path: str) -> bool:
    return path == "/v1" or path.startswith(("/v1/", "/haniwa/v1/")) or path == "/haniwa/v1"


def _refusal(path: str, status: int, message: str) -> Response:
    """The 408/413 answer for ``path``'s surface; it closes the connection (the body stays unread)."""
    exc = ValidationError(message)
    response = (
        openai_error(exc) if _is_openai(path) else bedrock_error("bedrock-runtime", exc, str(uuid.uuid4()))
    )
    response.status_code = status
    response.headers["connection"] = "close"
    return response


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """(Content-Length, chunked?) of the request; uvicorn has already refused malformed framing."""
    length: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked


class BodyLimits:
    """ASGI middleware: ``max_body_bytes`` before and while reading, ``body_timeout`` between chunks."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, chunked = _framing(scope)
        limit = self.settings.max_body_bytes
        if length is not None and length > limit:
            answer = _refusal(
                scope["path"], 413, f"request body of {length} bytes exceeds the limit of {limit}"
            )
            await answer(scope, receive, send)
            return
        unread_is_large = chunked or (length or 0) > _KEEP_ALIVE_UNREAD
        guard = _Guard(scope, receive, send, limit, self.settings.body_timeout, unread_is_large)
        await self.app(scope, guard.receive, guard.send)


class _Guard:
    """One request's ``receive``/``send`` pair, wrapped."""

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, limit: int, timeout: float, unread_is_large: bool
    ) -> None:
        self._scope, self._receive, self._send = scope, receive, send
        self._limit, self._timeout = limit, timeout
        self._unread_is_large = unread_is_large
        self._received = 0
        self._body_done = False
        self._started = False  # a response has begun (the app's or ours)
        self._refused = False

    async def receive(self) -> Message:
        if self._refused:
            return _DISCONNECT
        if self._body_done:
            return await self._receive()  # only http.disconnect is left to wait for: no deadline
        try:
            async with asyncio.timeout(self._timeout):
                message = await self._receive()
        except TimeoutError:
            await self._refuse(408, f"the request body paused for more than {self._timeout:g} s")
            return _DISCONNECT
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._limit:
                await self._refuse(413, f"request body exceeds the limit of {self._limit} bytes")
                return _DISCONNECT
            self._body_done = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self._refused:
            return  # we answered already; the app's own answer to the disconnect goes nowhere
        if message["type"] == "http.response.start":
            self._started = True
            if not self._body_done and self._unread_is_large:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await self._send(message)

    async def _refuse(self, status: int, text: str) -> None:
        self._refused = True
        if self._started:
            return  # too late for a status; the app sees a disconnect and ends its response
        self._started = True
        await _refusal(self._scope["path"], status, text)(self._scope, self._receive, self._send)


async def read_body(request: Request) -> bytes:
    """The whole body, as :class:`BodyLimits` lets it through; a refused or abandoned body is an error."""
    try:
        return await request.body()
    except ClientDisconnect as exc:
        # when BodyLimits refused the body it has answered already, and this error is never seen
        raise ValidationError("the request body was not received completely") from exc
