"""Load, bounded and on loopback only: haniwa runs as its own process (``python -m haniwa serve``) so its
RSS can be read from ``/proc/<pid>/status`` and ``/health`` can be timed from another process.

* 50 concurrent clients for ``HANIWA_LOAD_SECONDS`` (default 60) on the echo and hash models (Bedrock
  Converse, Bedrock InvokeModel embeddings, OpenAI embeddings). ``HANIWA_RATE_LIMIT_RPM`` is set, and ten
  clients share one key that exceeds it, so some 429s are deliberate: every answer is a 2xx or a typed
  429 with ``Retry-After``, ``/health`` keeps its p99 under 200 ms, and RSS comes back to its baseline.
* A 50 MB body and a chunked 1 GB body are refused without RSS growth (``max_body_bytes`` is 20 MiB).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import ECHO_CATALOG

SECONDS = float(os.environ.get("HANIWA_LOAD_SECONDS", "60"))
CLIENTS = 50
GREEDY = 10  # clients sharing one key, to go past the per-key rate limit on purpose
RPM = 600  # per key and per model: a well-behaved client stays under it, the shared key does not
MB = 1024 * 1024
RSS_MARGIN = 50 * MB
CHAT = "anthropic.claude-3-haiku-20240307-v1:0"
EMBED = "amazon.titan-embed-text-v2:0"


@dataclass
class Server:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc status")

    def settled_rss(self, seconds: float = 10.0) -> int:
        """The RSS once it stops falling (freed memory goes back over a few seconds, if at all)."""
        low = self.rss()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.5)
            low = min(low, self.rss())
        return low

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not sys.platform.startswith("linux"):
        pytest.skip("reads RSS from /proc")
    home = tmp_path_factory.mktemp("load-home")
    (home / "models.toml").write_text(ECHO_CATALOG, encoding="utf-8")
    port = _free_port()
    env = {
        **os.environ,
        "HANIWA_HOME": str(home),
        "HANIWA_RATE_LIMIT_RPM": str(RPM),
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    env.pop("HANIWA_ACCESS_KEY_ID", None)
    env.pop("HANIWA_SECRET_ACCESS_KEY", None)
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "haniwa", "serve", "--port", str(port), "--profile", "fast",
             "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    srv = Server(f"http://127.0.0.1:{port}", port, proc, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"haniwa exited with {proc.returncode}:\n{srv.log_tail()}")
            try:
                if httpx.get(srv.url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"haniwa did not answer /health in 120 s:\n{srv.log_tail()}")
            time.sleep(0.2)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


# -- /health timed from its own process, so the clients' threads cannot delay the measurement ----------
_POLLER = """
import json, sys, time, httpx
url, seconds = sys.argv[1], float(sys.argv[2])
out, failures = [], 0
with httpx.Client(timeout=5) as c:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        try:
            ok = c.get(url).status_code == 200
        except httpx.HTTPError:
            ok = False
        out.append(time.perf_counter() - t0)
        failures += not ok
        time.sleep(0.05)
print(json.dumps({"latencies": out, "failures": failures}))
"""


def _poll_health(url: str, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _POLLER, url + "/health", str(seconds)], stdout=subprocess.PIPE, text=True
    )


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else 0.0


# -- the burst ----------------------------------------------------------------------------------------
@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, label: str, problem: str | None) -> None:
        with self.lock:
            self.statuses[label] += 1
            if problem and len(self.errors) < 20:
                self.errors.append(problem)
            elif problem:
                self.statuses["more errors"] += 1


def _converse(c: httpx.Client, i: int) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": [{"text": f"client {i} says hello"}]}],
            "inferenceConfig": {"maxTokens": 32}}  # fmt: skip
    return c.post(f"/model/{CHAT}/converse", json=body)


def _invoke_embed(c: httpx.Client, i: int) -> httpx.Response:
    return c.post(f"/model/{EMBED}/invoke", json={"inputText": f"client {i} embeds this", "dimensions": 256})


def _openai_embed(c: httpx.Client, i: int) -> httpx.Response:
    return c.post("/v1/embeddings", json={"model": EMBED, "input": [f"client {i}", "a second text"]})


CALLS: list[tuple[str, Callable[[httpx.Client, int], httpx.Response]]] = [
    ("converse", _converse), ("invoke-embed", _invoke_embed), ("openai-embed", _openai_embed),
]  # fmt: skip


def _judge(name: str, r: httpx.Response) -> str | None:
    """None for a 2xx or a typed 429 with Retry-After; otherwise what is wrong."""
    if r.status_code < 300:
        return None
    text = f"{name}: {r.status_code} {r.headers.get('x-amzn-errortype', '')} {r.text[:200]}"
    if r.status_code != 429:
        return text
    if not r.headers.get("retry-after"):
        return "429 without Retry-After: " + text
    try:
        data = r.json()
    except ValueError:
        return "429 that is not JSON: " + text
    if name == "openai-embed":
        ok = isinstance(data.get("error"), dict) and data["error"].get("type") == "rate_limit_error"
    else:
        ok = r.headers.get("x-amzn-errortype") == "ThrottlingException" and "message" in data
    return None if ok else "429 not typed: " + text


def _client(url: str, i: int, until: float, tally: Tally) -> None:
    key = "greedy" if i < GREEDY else f"client-{i}"
    # well-behaved clients pace themselves under RPM per model; the greedy ones send as fast as they can
    pause = 0.0 if i < GREEDY else 60.0 / RPM * 2.5
    with httpx.Client(base_url=url, timeout=30, headers={"authorization": f"Bearer {key}"}) as c:
        n = 0
        while time.monotonic() < until:
            name, call = CALLS[(i + n) % len(CALLS)]
            n += 1
            try:
                r = call(c, i)
            except httpx.HTTPError as exc:
                tally.add("exception", f"{name}: {type(exc).__name__}: {exc}")
                continue
            tally.add(str(r.status_code), _judge(name, r))
            tally.add(f"{'greedy' if i < GREEDY else 'paced'} {r.status_code}", None)
            # the greedy clients back off a little after a 429, leaving the models some of the CPU
            time.sleep(pause or (0.05 if r.status_code == 429 else 0.0))


def test_fifty_clients_for_a_minute(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:  # first calls load the models
        for name, call in CALLS:
            assert call(c, 0).status_code == 200, name
    before = server.settled_rss(3)
    poller = _poll_health(server.url, SECONDS)
    tally = Tally()
    until = time.monotonic() + SECONDS
    threads = [threading.Thread(target=_client, args=(server.url, i, until, tally)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    peak = before
    while any(t.is_alive() for t in threads):
        peak = max(peak, server.rss())
        time.sleep(0.5)
    health = json.loads(poller.communicate(timeout=60)[0])
    after = server.settled_rss()
    total = sum(v for k, v in tally.statuses.items() if k[0].isdigit() or k == "exception")
    summary = (
        f"{total} requests in {SECONDS:.0f} s ({total / SECONDS:.0f}/s): {dict(tally.statuses)}; "
        f"/health p99 {_p99(health['latencies']) * 1000:.0f} ms, max {max(health['latencies']) * 1000:.0f} ms"
        f" over {len(health['latencies'])} polls, {health['failures']} failed; RSS {before / MB:.0f} MB "
        f"before, {peak / MB:.0f} MB peak, {after / MB:.0f} MB after"
    )
    print(summary)
    assert not tally.errors, summary + "\n" + "\n".join(tally.errors) + "\nserver log:\n" + server.log_tail()
    assert tally.statuses["429"] > 0, "the shared key never went past the rate limit: " + summary
    assert tally.statuses["200"] >= CLIENTS, summary
    assert health["failures"] == 0 and _p99(health["latencies"]) < 0.2, summary
    assert after - before < RSS_MARGIN, summary


# -- oversized bodies -------------------------------------------------------------------------------------
def _upload(server: Server, path: str, size: int, chunked: bool) -> tuple[str, int]:
    """Send ``size`` bytes of JSON-ish body in 1 MiB pieces over a raw socket; stop once the server
    answers or closes. Returns (the status line and body, or how the connection ended; peak RSS)."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
    piece = b'{"a": "' + b"x" * (MB - 10) + b'"}'
    peak = server.rss()
    limit = peak + 500 * MB  # protect the machine if the server keeps everything
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    ended = "sent everything"
    try:
        sock.sendall(head.encode())
        sent = 0
        while sent < size:
            data = piece[: min(len(piece), size - sent)]
            try:
                sock.sendall(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)
            except OSError as exc:  # the server refused and closed: the expected way out
                ended = f"closed by the server after {sent // MB} MiB ({type(exc).__name__})"
                break
            sent += len(data)
            rss = server.rss()
            peak = max(peak, rss)
            if rss > limit:
                ended = f"stopped: server RSS grew past {limit // MB} MB after {sent // MB} MiB"
                break
        if chunked and sent >= size:
            sock.sendall(b"0\r\n\r\n")
        sock.settimeout(10)
        try:
            answer = sock.recv(65536).decode("latin-1")
        except OSError as exc:
            answer = ""
            ended += f"; no answer readable ({type(exc).__name__})"
        return (answer[:800] if answer else ended), peak
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("path", "size", "chunked"),
    [
        (f"/model/{CHAT}/converse", 50 * MB, False),
        ("/v1/embeddings", 50 * MB, False),
        (f"/model/{CHAT}/converse", 1024 * MB, True),
        ("/v1/embeddings", 1024 * MB, True),
    ],
    ids=["bedrock-50MB", "openai-50MB", "bedrock-chunked-1GB", "openai-chunked-1GB"],
)
def test_oversized_bodies_are_refused_without_rss_growth(
    server: Server, path: str, size: int, chunked: bool
) -> None:
    before = server.settled_rss(1)
    outcome, peak = _upload(server, path, size, chunked)
    after = server.settled_rss(2)
    summary = (
        f"{outcome!r}; RSS {before / MB:.0f} MB before, {peak / MB:.0f} MB peak, {after / MB:.0f} MB after"
    )
    print(summary)
    # refused: a typed 413 (or 400) answer, or a connection the server closed before the body ended
    assert outcome.startswith(("HTTP/1.1 413", "HTTP/1.1 400", "closed by the server")), summary
    if outcome.startswith("HTTP/1.1"):
        typed = '"error"' if path.startswith("/v1/") else "x-amzn-errortype"
        assert typed in outcome.lower(), summary
    # the server may buffer up to max_body_bytes (20 MiB) before it refuses, never the whole body
    assert peak - before < RSS_MARGIN and after - before < RSS_MARGIN, summary
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200
