"""The anchor for ``bench/runtime.py --batching --anchor PATH``: llama.cpp's own ``llama-server``.

Both servers run as child processes on 127.0.0.1 with the same GGUF, slots, context per slot, threads
and weight-repacking setting (haniwa's AMX guard, ``use_extra_bufts``, is llama-server's
``--no-repack``), and both are driven by the same client code: ``streams`` concurrent streaming
``/v1/chat/completions`` requests (httpx, greedy, the same prompts and ``max_tokens``), so the client's
Python work is the same on both sides. Levels are interleaved (haniwa, then llama-server, per round), as
the shared machine's load drifts. ``bench/build_llama_server.sh`` builds llama-server from the llama.cpp
sources inside the llama-cpp-python sdist that haniwa pins.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from haniwa.testing.server import serve_in_process

PROMPT = "Run {n}: count from 1 to 1000, separated by commas, with no other text."


@dataclass
class Level:
    streams: int
    tps: float = 0.0  # the best round's total output tokens / wall time
    ttft: list[float] = field(default_factory=list)  # every round's
    prompt_tokens: int = 0  # of one request, as the server counted it

    def p(self, q: int) -> float:
        if len(self.ttft) == 1:
            return self.ttft[0]
        return statistics.quantiles(self.ttft, n=20, method="inclusive")[q // 5 - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stream_once(url: str, model: str, n: int, max_tokens: int) -> tuple[float, int, int]:
    """One streamed chat completion: (TTFT s, completion tokens, prompt tokens)."""
    payload = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT.format(n=n)}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    first, tokens, prompt = 0.0, 0, 0
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=payload, timeout=900) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {resp.status_code} {resp.read()[:300]!r}")
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or []:
                if not first and (choice.get("delta") or {}).get("content"):
                    first = time.perf_counter() - start
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
                prompt = chunk["usage"]["prompt_tokens"]
    if not first:
        raise RuntimeError(f"{url}: no text came back")
    return first, tokens, prompt


def level(url: str, model: str, streams: int, max_tokens: int, salt: int) -> tuple[float, list[float], int]:
    """``streams`` concurrent streams released at once: (aggregate tok/s, TTFTs, prompt tokens of one)."""
    out: list[tuple[float, int, int] | None] = [None] * streams
    errors: list[BaseException] = []
    barrier = threading.Barrier(streams)

    def work(i: int) -> None:
        try:
            barrier.wait()
            out[i] = stream_once(url, model, salt + i, max_tokens)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    done = [r for r in out if r is not None]
    return sum(r[1] for r in done) / wall, [r[0] for r in done], done[0][2]


def wait_health(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer /health in {timeout:.0f} s")


@contextmanager
def llama_server(
    binary: Path, gguf: Path, *, slots: int, ctx_per_slot: int, threads: int, repack: bool, log: Path
) -> Iterator[str]:
    """``llama-server -np slots -cb`` on ``gguf``, configured as haniwa configures its context: a KV cache
    per slot (``--no-kv-unified``), flash attention off (llama-cpp-python's default), batch 512."""
    port = free_port()
    cmd = [
        str(binary),
        "-m",
        str(gguf),
        "-np",
        str(slots),
        "-cb",
        "-c",
        str(slots * ctx_per_slot),
        "-t",
        str(threads),
        "-tb",
        str(threads),
        "-b",
        "512",
        "-ub",
        "512",
        "--no-kv-unified",
        "-fa",
        "off",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-webui",
    ]
    if not repack:
        cmd.append("--no-repack")
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_health(url, proc, 300)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def haniwa_server(models_dir: Path, *, slots: int, ctx_per_slot: int, threads: int) -> Iterator[str]:
    """``haniwa serve`` as a child process with ``slots`` slots of ``ctx_per_slot`` tokens."""
    with tempfile.TemporaryDirectory(prefix="haniwa-anchor-") as tmp:
        home = Path(tmp)
        (home / "models").symlink_to(models_dir)
        port = free_port()
        proc = serve_in_process(
            home,
            port,
            HANIWA_LLAMA_SLOTS=str(slots),
            HANIWA_LLAMA_CTX_PER_SLOT=str(ctx_per_slot),
            HANIWA_THREADS=str(threads),
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def compare(
    binary: Path,
    gguf: Path,
    models_dir: Path,
    model: str,
    *,
    levels: list[int],
    tokens: int,
    rounds: int,
    threads: int,
    repack: bool,
) -> None:
    """Run the levels against both servers, interleaved, and print a table with the ratios."""
    slots, per_slot = max(levels), 2048
    log = Path(tempfile.gettempdir()) / "haniwa-bench-llama-server.log"
    with (
        haniwa_server(models_dir, slots=slots, ctx_per_slot=per_slot, threads=threads) as ours,
        llama_server(
            binary, gguf, slots=slots, ctx_per_slot=per_slot, threads=threads, repack=repack, log=log
        ) as theirs,
    ):
        names = {ours: "haniwa", theirs: "llama-server"}
        for url in (ours, theirs):  # loads haniwa's model; warms both
            stream_once(url, model, 0, 4)
            level(url, model, min(2, slots), 4, 900)
        print(f"\nanchor: {binary} on {gguf.name}; {slots} slots of {per_slot}; {threads} threads; ", end="")
        print(f"repack {'on' if repack else 'off'}; llama-server log {log}")
        results: dict[tuple[str, int], Level] = {}
        for i, n in enumerate(levels):
            for r in range(rounds):
                for url in (ours, theirs) if r % 2 == 0 else (theirs, ours):
                    tps, ttft, prompt = level(url, model, n, tokens, 5000 + 1000 * r + 100 * (i + 1))
                    lv = results.setdefault((names[url], n), Level(n))
                    lv.tps, lv.prompt_tokens = max(lv.tps, tps), prompt
                    lv.ttft += ttft
                    print(
                        f"  {names[url]:>12} {n} streams: {tps:.2f} tok/s, TTFT p50 "
                        f"{statistics.median(ttft):.2f} s, max {max(ttft):.2f} s ({prompt} prompt tokens)"
                    )
    head = f"{model}: haniwa vs llama-server -np {slots} -cb, {tokens} tokens per stream, {threads} threads"
    print(f"\n### {head}\n")
    print(
        "| streams | haniwa tok/s | llama-server tok/s | haniwa / llama-server | TTFT p50 / p95 haniwa",
        end="",
    )
    print(" | TTFT p50 / p95 llama-server |")
    print("|---|---|---|---|---|---|")
    for n in levels:
        a, b = results[("haniwa", n)], results[("llama-server", n)]
        print(
            f"| {n} | {a.tps:.1f} | {b.tps:.1f} | ×{a.tps / b.tps:.2f} | "
            f"{statistics.median(a.ttft):.2f} / {a.p(95):.2f} s | "
            f"{statistics.median(b.ttft):.2f} / {b.p(95):.2f} s |"
        )
    a1, b1 = results[("haniwa", levels[0])], results[("llama-server", levels[0])]
    print(f"\nprompt tokens per request: haniwa {a1.prompt_tokens}, llama-server {b1.prompt_tokens}")
