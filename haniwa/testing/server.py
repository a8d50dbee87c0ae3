"""Run a real haniwa (uvicorn) in a background thread on 127.0.0.1 and an ephemeral port."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from haniwa.api.serve import bind_socket, server_config

__all__ = ["serve_in_thread", "serve_in_process"]


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", **options: Any) -> Iterator[str]:
    """Yield the base URL of ``app`` served by uvicorn until the block exits.

    The server is the one ``haniwa serve`` runs, with the header deadline and connection cap of the app's
    Settings (``app.state.platform.settings``). ``options`` go to ``uvicorn.Config``: with
    ``ssl_certfile``/``ssl_keyfile`` the URL is ``https://``.
    """
    sock = bind_socket(host, 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(app, log_level="warning", lifespan="on", **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("haniwa test server did not start")
        time.sleep(0.01)
    try:
        yield f"{'https' if options.get('ssl_certfile') else 'http'}://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def serve_in_process(home: Path, port: int, *, timeout: float = 60, **env: str) -> subprocess.Popen[bytes]:
    """Start ``haniwa serve`` as a child process (``HANIWA_HOME=home``, the fast profile, ``env`` as extra
    ``HANIWA_*`` settings, none inherited) and return it once ``/health`` answers: for tests that kill it."""
    import httpx

    child_env = {k: v for k, v in os.environ.items() if not k.startswith("HANIWA_")}
    child_env.update(HANIWA_HOME=str(home), HANIWA_PORT=str(port), HANIWA_PROFILE="fast", **env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "haniwa", "serve", "--log-level", "warning"],
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("haniwa serve did not start")
