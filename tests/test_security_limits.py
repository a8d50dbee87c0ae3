"""Issue 11, item 2: limits come before reading, on every surface, chunked or not.

The server runs in this process (uvicorn in a thread), so its memory is this process's VmRSS. Slow and
huge requests are sent over raw sockets; the sender stops as soon as the server answers or closes.
"""

from __future__ import annotations

import gc
import http.client
import json
import select
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread

MB = 1024 * 1024
BEDROCK = "/model/echo:echo/converse"
OPENAI = "/v1/chat/completions"
SURFACES = [BEDROCK, OPENAI, "/haniwa/v1/conversations"]


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _head(path: str, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", *extra, "", ""]
    return "\r\n".join(lines).encode()


def _answer(sock: socket.socket, timeout: float = 10) -> tuple[int, dict[str, str], Any]:
    sock.settimeout(timeout)
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    body = resp.read()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(body)


def _push(sock: socket.socket, unit: bytes, total: int, stall: float = 10) -> int:
    """Send ``unit`` over and over, up to ``total`` bytes; stop once the server answers or closes."""
    sock.setblocking(False)
    sent = offset = 0
    try:
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], stall)
            if readable or not writable:
                break  # an answer (or EOF) is waiting, or the server stopped reading without answering
            try:
                n = sock.send(unit[offset:])
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += n
            offset = (offset + n) % len(unit)
    finally:
        sock.setblocking(True)
    return sent


def _surface_shaped(path: str, status: int, headers: dict[str, str], body: Any, match: str) -> None:
    if path == BEDROCK:
        assert headers["x-amzn-errortype"] == "ValidationException"
        assert set(body) == {"message"} and match in body["message"]
    else:
        assert body["error"]["type"] == "invalid_request_error" and match in body["error"]["message"]
    assert headers.get("connection") == "close", (status, headers)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@pytest.fixture
def make_server(home: Path) -> Iterator[Any]:
    with ExitStack() as stack:

        def start(**limits: Any) -> str:
            return stack.enter_context(serve_in_thread(create_app(Settings(home=home, **limits))))

        yield start


@pytest.mark.parametrize("path", SURFACES)
def test_huge_content_length_is_answered_at_once(make_server: Any, path: str) -> None:
    url = make_server()  # default max_body_bytes (20 MiB)
    with _connect(url) as sock:
        started = time.monotonic()
        sock.sendall(_head(path, f"Content-Length: {200 * MB}") + b"{" * 1024)
        status, headers, body = _answer(sock)
        assert time.monotonic() - started < 5  # no byte of the 200 MB was waited for
        assert status == 413
        _surface_shaped(path, status, headers, body, "exceeds the limit")
        assert sock.recv(1) == b""  # and the connection is closed


def test_unauthenticated_requests_are_refused_before_the_body(home: Path) -> None:
    settings = Settings(home=home, access_key_id="AK", secret_access_key="SK", api_keys=["k"])
    with serve_in_thread(create_app(settings)) as url:
        for path, code in ((BEDROCK, 403), (OPENAI, 401)):
            with _connect(url) as sock:
                # 10 MB announced, none sent: the answer must come from the headers alone
                sock.sendall(_head(path, f"Content-Length: {10 * MB}", "Authorization: Bearer wrong"))
                status, headers, _ = _answer(sock, timeout=5)
                assert status == code
                assert headers.get("connection") == "close"  # the unread body is not drained
        with _connect(url) as sock:
            sigv4 = (
                "Authorization: AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/bedrock/aws4_request, "
                f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}"
            )
            sock.sendall(_head(BEDROCK, f"Content-Length: {10 * MB}", sigv4, "X-Amz-Date: 20240101T000000Z"))
            status, headers, body = _answer(sock, timeout=5)
            assert status == 403 and "expired" in body["message"]


def test_50mb_bodies_are_refused_without_rss_growth(make_server: Any) -> None:
    url = make_server()
    httpx.get(url + "/health")
    gc.collect()
    before = _rss_mb()
    unit = b"x" * (256 * 1024)
    for _ in range(10):
        with _connect(url) as sock:
            started = time.monotonic()
            sock.sendall(_head(BEDROCK, f"Content-Length: {50 * MB}"))
            sent = _push(sock, unit, 50 * MB)
            status, headers, _ = _answer(sock)
            assert status == 413 and headers["x-amzn-errortype"] == "ValidationException"
            assert time.monotonic() - started < 10 and sent < 50 * MB
    gc.collect()
    assert _rss_mb() - before < 30, f"RSS grew from {before:.0f} MB to {_rss_mb():.0f} MB"
    assert httpx.get(url + "/health").status_code == 200


@pytest.mark.parametrize("path", [BEDROCK, OPENAI])
def test_chunked_body_is_cut_at_the_limit(make_server: Any, path: str) -> None:
    url = make_server(max_body_bytes=1 * MB)
    small = {"messages": [{"role": "user", "content": [{"text": "チャンク"}]}]}
    if path == OPENAI:
        small = {"model": "echo:echo", "messages": [{"role": "user", "content": "チャンク"}]}
    with _connect(url) as sock:  # a chunked body under the limit is served as before
        sock.sendall(
            _head(path, "Transfer-Encoding: chunked") + _chunk(json.dumps(small).encode()) + b"0\r\n\r\n"
        )
        status, _, body = _answer(sock)
        assert status == 200 and "チャンク" in json.dumps(body, ensure_ascii=False)
    gc.collect()
    before = _rss_mb()
    with _connect(url) as sock:
        sock.sendall(_head(path, "Transfer-Encoding: chunked"))
        sent = _push(sock, _chunk(b"y" * (64 * 1024)), 1024 * MB)
        # cut after about max_body_bytes: what is on the way sits in the two sockets' buffers
        assert sent < 64 * MB, f"the server read {sent / MB:.0f} MB of a 1 MB limit"
        status, headers, body = _answer(sock)
        assert status == 413
        _surface_shaped(path, status, headers, body, "exceeds the limit")
    gc.collect()
    assert _rss_mb() - before < 30


@pytest.mark.parametrize("path", SURFACES)
def test_a_stalled_body_times_out(make_server: Any, path: str) -> None:
    url = make_server(body_timeout=1.0)
    with _connect(url) as sock:
        sock.sendall(_head(path, "Content-Length: 100") + b'{"messages": ')
        started = time.monotonic()
        status, headers, body = _answer(sock)
        assert 0.8 < time.monotonic() - started < 8
        assert status == 408
        _surface_shaped(path, status, headers, body, "paused for more than 1 s")


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float:
    """Seconds until the server closes ``sock`` (sending ``trickle`` every 0.2 s meanwhile)."""
    started = time.monotonic()
    sock.setblocking(False)
    while time.monotonic() - started < seconds:
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            try:
                if sock.recv(1024) == b"":
                    return time.monotonic() - started
            except ConnectionResetError:
                return time.monotonic() - started
        if trickle:
            try:
                sock.send(trickle)
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
    raise AssertionError(f"the connection was still open after {seconds} s")


def test_half_sent_headers_are_closed_after_header_timeout(make_server: Any) -> None:
    url = make_server(header_timeout=1.0)
    with _connect(url) as silent, _connect(url) as trickling, _connect(url) as kept:
        trickling.sendall(b"GET /health HTTP/1.1\r\n")
        # a keep-alive connection: one full request, then half of the next one
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = http.client.HTTPResponse(kept)
        resp.begin()
        assert resp.status == 200 and resp.read()
        kept.sendall(b"GET /health HTTP/1.1\r\n")
        assert 0.5 < _closed_within(trickling, 8, trickle=b"X-Slow: 1\r\n") < 8
        assert _closed_within(silent, 8) < 8
        assert _closed_within(kept, 8) < 8
    assert httpx.get(url + "/health").status_code == 200


def _closed_by_server(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    with suppress(ConnectionResetError):
        assert sock.recv(1) == b"", "a half-sent request got an answer"
    sock.close()
    return True


def test_connections_beyond_the_cap_are_closed_at_once(make_server: Any) -> None:
    url = make_server(max_connections=20)
    with httpx.Client(base_url=url, timeout=5) as health:
        assert health.get("/health").status_code == 200  # connection 1 of 20, kept alive
        held: list[socket.socket] = []
        worst = 0.0
        try:
            for batch in range(20):  # 2,000 half-sent requests, 100 at a time
                for _ in range(100):
                    sock = _connect(url)
                    held.append(sock)
                    sock.sendall(b"POST /model/echo:echo/converse HTTP/1.1\r\nHost: x\r\n")
                deadline = time.monotonic() + 5  # the server may still be accepting the last ones
                while True:
                    held = [s for s in held if not _closed_by_server(s)]
                    if len(held) < 20 or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                assert len(held) < 20, f"batch {batch}: {len(held)} half-sent connections open"
                started = time.monotonic()
                assert health.get("/health").status_code == 200  # the server answers meanwhile
                worst = max(worst, time.monotonic() - started)
        finally:
            for sock in held:
                sock.close()
        assert worst < 3.0
    # once the held ones are gone, new clients get in again
    deadline = time.monotonic() + 5
    while True:
        try:
            assert httpx.get(url + "/health").status_code == 200
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
