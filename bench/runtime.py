"""Runtime benchmark: what haniwa's HTTP surfaces cost on top of llama.cpp, measured in one run.

    python bench/runtime.py            # the default chat model (Qwen2.5-Coder-1.5B)
    python bench/runtime.py --fast     # the 0.5B
    python bench/runtime.py --model llamacpp:qwen2.5-coder-0.5b --tokens 128

Prints, then sums up in a markdown table:

* time to first token and generation tokens/s of one streamed answer (a) through Bedrock
  InvokeModelWithResponseStream (Anthropic body) with boto3, (b) through the OpenAI
  /v1/chat/completions stream, (c) through llama-cpp-python directly on the same GGUF and settings,
  with the haniwa/raw ratios;
* p50/p95 latency of a Converse request to ``echo:echo`` (the server's own overhead);
* aggregate tokens/s with 1, 4 and 8 concurrent Converse clients.

The server runs in-process on 127.0.0.1; its models dir is the cache the tests use, so the GGUF is
assembled once per machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import boto3  # noqa: E402
import httpx  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from haniwa.api.app import create_app  # noqa: E402
from haniwa.config import Settings  # noqa: E402
from haniwa.runtime import bundled  # noqa: E402
from haniwa.testing.server import serve_in_thread  # noqa: E402

MODELS_DIR = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))
# A prompt that keeps any model busy for far more tokens than we ask for; a number makes each run's
# prompt differ in its last tokens, so every run evaluates part of its prompt.
PROMPT = "Run {n}: count from 1 to 1000, separated by commas, with no other text."


@dataclass
class Run:
    ttft_s: float
    tokens: int
    gen_tps: float  # (tokens - 1) / (last token time - first token time)


def _run(start: float, stamps: list[float], tokens: int) -> Run:
    if not stamps:
        raise RuntimeError("no text came back")
    span = stamps[-1] - stamps[0]
    tps = (tokens - 1) / span if span > 0 and tokens > 1 else float("nan")
    return Run(stamps[0] - start, tokens, tps)


def client(url: str) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret-example",
        config=Config(retries={"max_attempts": 1}, read_timeout=900, max_pool_connections=16),
    )


# -- (a) Bedrock ------------------------------------------------------------------------------------------
def invoke_stream(rt: Any, model: str, n: int, max_tokens: int) -> Run:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": PROMPT.format(n=n)}],
    }
    start = time.perf_counter()
    resp = rt.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
    stamps: list[float] = []
    tokens = 0
    for event in resp["body"]:
        chunk = json.loads(event["chunk"]["bytes"])
        if chunk.get("type") == "content_block_delta" and chunk.get("delta", {}).get("text"):
            stamps.append(time.perf_counter())
        metrics = chunk.get("amazon-bedrock-invocationMetrics")
        if metrics:
            tokens = metrics["outputTokenCount"]
    return _run(start, stamps, tokens or len(stamps))


def converse_stream(rt: Any, model: str, n: int, max_tokens: int) -> Run:
    start = time.perf_counter()
    resp = rt.converse_stream(
        modelId=model,
        messages=[{"role": "user", "content": [{"text": PROMPT.format(n=n)}]}],
        inferenceConfig={"maxTokens": max_tokens, "temperature": 0},
    )
    stamps: list[float] = []
    tokens = 0
    for event in resp["stream"]:
        if "contentBlockDelta" in event and event["contentBlockDelta"]["delta"].get("text"):
            stamps.append(time.perf_counter())
        if "metadata" in event:
            tokens = event["metadata"]["usage"]["outputTokens"]
    return _run(start, stamps, tokens or len(stamps))


# -- (b) OpenAI ------------------------------------------------------------------------------------------
def chat_completions(url: str, model: str, n: int, max_tokens: int) -> Run:
    payload = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT.format(n=n)}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    stamps: list[float] = []
    tokens = 0
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=payload, timeout=900) as resp:
        if resp.status_code != 200:
            raise LookupError(f"HTTP {resp.status_code}")
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    stamps.append(time.perf_counter())
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return _run(start, stamps, tokens or len(stamps))


# -- (c) llama-cpp-python directly -----------------------------------------------------------------------
def raw_runs(path: Path, n_ctx: int, threads: int, reps: int, max_tokens: int) -> list[Run]:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    runs = []
    try:
        for n in range(reps + 1):
            start = time.perf_counter()
            stamps: list[float] = []
            stream = llm.create_chat_completion(
                messages=[{"role": "user", "content": PROMPT.format(n=n)}],
                max_tokens=max_tokens,
                temperature=0,
                stream=True,
            )
            for chunk in stream:
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    stamps.append(time.perf_counter())
            # llama-cpp-python streams one chunk per token (multi-byte characters aside)
            if n:  # run 0 warms up, as the server's first request does
                runs.append(_run(start, stamps, len(stamps)))
    finally:
        llm.close()
    return runs


# -- server overhead and concurrency ---------------------------------------------------------------------
def echo_latency(rt: Any, count: int) -> list[float]:
    def once() -> float:
        start = time.perf_counter()
        rt.converse(modelId="echo:echo", messages=[{"role": "user", "content": [{"text": "はにわ haniwa"}]}])
        return time.perf_counter() - start

    for _ in range(10):
        once()
    return [once() for _ in range(count)]


def aggregate(url: str, model: str, clients: int, max_tokens: int) -> tuple[float, int]:
    """Total output tokens / wall time with ``clients`` concurrent Converse callers."""
    rts = [client(url) for _ in range(clients)]
    counts = [0] * clients
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            out = rts[i].converse(
                modelId=model,
                messages=[{"role": "user", "content": [{"text": PROMPT.format(n=100 + i)}]}],
                inferenceConfig={"maxTokens": max_tokens, "temperature": 0},
            )
            counts[i] = out["usage"]["outputTokens"]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return sum(counts) / wall, sum(counts)


def median(runs: list[Run], key: Callable[[Run], float]) -> float:
    return statistics.median(key(r) for r in runs)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="llamacpp:qwen2.5-coder-1.5b")
    ap.add_argument("--fast", action="store_true", help="use llamacpp:qwen2.5-coder-0.5b")
    ap.add_argument("--tokens", type=int, default=64, help="tokens generated per request")
    ap.add_argument("--reps", type=int, default=3, help="streamed requests per path (after a warm-up)")
    ap.add_argument("--echo-requests", type=int, default=200)
    ap.add_argument("--clients", default="1,4,8")
    args = ap.parse_args()
    model = "llamacpp:qwen2.5-coder-0.5b" if args.fast else args.model
    if model.split(":", 1)[-1] not in bundled.BUNDLES:
        ap.error(f"--model must be one of {', '.join('llamacpp:' + b for b in bundled.BUNDLES)}")
    notes: list[str] = []
    rows: list[tuple[str, str, str]] = []

    with tempfile.TemporaryDirectory(prefix="haniwa-bench-") as tmp:
        home = Path(tmp)
        MODELS_DIR.mkdir(parents=True, exist_ok=True)
        (home / "models").symlink_to(MODELS_DIR)
        settings = Settings(home=home)
        app = create_app(settings)
        with serve_in_thread(app) as url:
            rt = client(url)
            print(f"haniwa at {url}; model {model}; {args.tokens} tokens; threads {settings.llama_threads()}")
            t0 = time.perf_counter()
            converse_stream(rt, model, 0, 4)  # loads the model (assembly + sha256 + llama.cpp load)
            print(f"first request (load + verify + answer): {time.perf_counter() - t0:.1f} s")

            # (a) Bedrock streaming
            label_a = "(a) InvokeModelWithResponseStream (Anthropic body)"
            try:
                invoke_stream(rt, model, 0, 4)
                fn: Callable[[int], Run] = lambda n: invoke_stream(rt, model, n, args.tokens)  # noqa: E731
            except ClientError as exc:
                label_a = "(a) ConverseStream (InvokeModel fallback)"
                notes.append(f"InvokeModel with an Anthropic body failed ({exc}); (a) used ConverseStream.")
                fn = lambda n: converse_stream(rt, model, n, args.tokens)  # noqa: E731
            runs_a = [fn(n) for n in range(1, args.reps + 1)]
            for r in runs_a:
                print(f"  {label_a}: ttft {r.ttft_s * 1000:.0f} ms, {r.tokens} tok, {r.gen_tps:.2f} tok/s")

            # (b) OpenAI streaming
            runs_b: list[Run] = []
            try:
                chat_completions(url, model, 0, 4)
                runs_b = [chat_completions(url, model, n, args.tokens) for n in range(1, args.reps + 1)]
                for r in runs_b:
                    print(f"  (b) /v1/chat/completions: ttft {r.ttft_s * 1000:.0f} ms, {r.gen_tps:.2f} tok/s")
            except (LookupError, httpx.HTTPError) as exc:
                notes.append(f"/v1/chat/completions is not served yet ({exc}); row (b) is n/a.")

            # (c) raw llama-cpp-python on the same file and settings (the server's model stays loaded, idle)
            path = bundled.ensure(model.split(":", 1)[-1], MODELS_DIR)
            runs_c = raw_runs(path, 4096, settings.llama_threads(), args.reps, args.tokens)
            for r in runs_c:
                print(f"  (c) llama-cpp-python: ttft {r.ttft_s * 1000:.0f} ms, {r.gen_tps:.2f} tok/s")

            lat = echo_latency(rt, args.echo_requests)
            print(f"  echo:echo Converse x{len(lat)}: p50 {pct(lat, 50) * 1000:.1f} ms")

            agg = {}
            for c in (int(x) for x in args.clients.split(",")):
                tps, total = aggregate(url, model, c, args.tokens)
                agg[c] = tps
                print(f"  {c} concurrent clients: {total} tokens, {tps:.2f} tok/s aggregate")

    raw_tps, raw_ttft = median(runs_c, lambda r: r.gen_tps), median(runs_c, lambda r: r.ttft_s)

    def path_row(label: str, runs: list[Run]) -> None:
        if not runs:
            rows.append((label, "n/a", "not implemented yet"))
            return
        tps, ttft = median(runs, lambda r: r.gen_tps), median(runs, lambda r: r.ttft_s)
        rows.append(
            (
                label,
                f"{tps:.2f} tok/s, TTFT {ttft * 1000:.0f} ms",
                f"haniwa/raw: tok/s ×{tps / raw_tps:.2f}, TTFT ×{ttft / raw_ttft:.2f}",
            )
        )

    path_row(label_a, runs_a)
    path_row("(b) /v1/chat/completions stream", runs_b)
    rows.append(
        ("(c) llama-cpp-python direct", f"{raw_tps:.2f} tok/s, TTFT {raw_ttft * 1000:.0f} ms", "baseline")
    )
    rows.append(
        (
            f"Converse to echo:echo ({len(lat)} requests)",
            f"p50 {pct(lat, 50) * 1000:.1f} ms, p95 {pct(lat, 95) * 1000:.1f} ms",
            "boto3 round trip on 127.0.0.1",
        )
    )
    for c, tps in agg.items():
        rows.append(
            (f"aggregate, {c} concurrent Converse clients", f"{tps:.2f} tok/s", f"{args.tokens} tokens each")
        )

    print(f"\n### {model}, {args.tokens} tokens, {settings.llama_threads()} threads, median of {args.reps}\n")
    print("| measurement | result | note |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for note in notes:
        print(f"\nNote: {note}")


if __name__ == "__main__":
    main()
