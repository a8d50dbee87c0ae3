"""Serving the app: a listening socket with TCP_NODELAY, uvicorn with a header deadline and a connection cap.

uvicorn closes idle keep-alive connections, but nothing bounds the time a client may take to send a
request's headers (a connection that trickles one byte every few seconds re-arms the keep-alive timer
forever), and nothing bounds the number of open connections. :class:`GuardedH11Protocol` adds both.
uvicorn's own ``limit_concurrency`` is not used for this: it answers 503 to requests on connections that
were already admitted, once the count is reached, instead of refusing the extra connections.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, ClassVar, cast

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from haniwa.config import Settings

__all__ = ["GuardedH11Protocol", "bind_socket", "http_protocol", "run_server", "server_config"]


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket created with ``IPPROTO_TCP``.

    asyncio only sets TCP_NODELAY on sockets whose ``proto`` is IPPROTO_TCP; uvicorn's own sockets have
    proto 0, so every response waited ~40 ms for a delayed ACK. Binding here removes that.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for request headers and a cap on open connections.

    ``http="auto"`` would pick httptools when it is installed; haniwa always passes this class, so the
    limits hold whichever parsers are installed. The two limits are class attributes because uvicorn builds
    one protocol per connection from the class alone; :func:`http_protocol` makes a subclass per Settings.
    """

    header_timeout: ClassVar[float] = 10.0
    max_connections: ClassVar[int] = 512

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        if len(self.connections) > self.max_connections:
            # refused before a byte is read; forgotten at once, so a flood cannot push the count up
            self.connections.discard(self)
            self.transport.close()
            return
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_headers()  # the next request's headers are due now (keep-alive, pipelining)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_deadline()
        super().connection_lost(exc)

    def _watch_headers(self) -> None:
        # h11 stays IDLE until a request's headers are complete; the deadline covers all of them, so a
        # client that trickles bytes does not extend it
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self._header_deadline is None:
                self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)
        else:
            self._stop_header_deadline()

    def _stop_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def http_protocol(settings: Settings) -> type[GuardedH11Protocol]:
    """The protocol class uvicorn should build connections with, carrying ``settings``' limits."""
    attrs = {"header_timeout": settings.header_timeout, "max_connections": settings.max_connections}
    return cast(type[GuardedH11Protocol], type("HaniwaH11Protocol", (GuardedH11Protocol,), attrs))


def _settings_of(app: Any) -> Settings:
    platform = getattr(getattr(app, "state", None), "platform", None)
    settings = getattr(platform, "settings", None)
    # an app not built by create_app (a test's upstream stub) gets the default limits
    return settings if isinstance(settings, Settings) else Settings.model_construct()


def server_config(app: Any, settings: Settings | None = None, **options: Any) -> uvicorn.Config:
    """uvicorn's Config for ``app`` with haniwa's connection limits (from ``app.state.platform``)."""
    settings = settings or _settings_of(app)
    # an idle keep-alive connection must not outlive the header deadline of the request it waits for
    keep_alive = max(1, min(5, int(settings.header_timeout)))
    return uvicorn.Config(
        app, ws="none", http=http_protocol(settings), timeout_keep_alive=keep_alive, **options
    )


def run_server(
    app: Any, host: str, port: int, log_level: str = "info", settings: Settings | None = None
) -> None:
    """Serve ``app`` in the foreground (``haniwa serve``)."""
    sock = bind_socket(host, port)
    uvicorn.Server(server_config(app, settings, log_level=log_level)).run(sockets=[sock])
