"""Serving the app: a listening socket with TCP_NODELAY, then uvicorn in the foreground."""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

__all__ = ["bind_socket", "run_server"]


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


def run_server(app: Any, host: str, port: int, log_level: str = "info") -> None:
    """Serve ``app`` in the foreground (``haniwa serve``)."""
    sock = bind_socket(host, port)
    uvicorn.Server(uvicorn.Config(app, log_level=log_level, ws="none")).run(sockets=[sock])
