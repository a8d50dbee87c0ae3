"""ANN benchmark of the local knowledge-base store: hnswlib alone and through ``LocalVectorStore.query``.

    python bench/ann.py                      # 100k × 384, ~3 minutes on 2 cores
    python bench/ann.py --n 20000 --efs 32,64,128
    python bench/ann.py --m 48 --efc 300     # try other graph settings

Data is "lowrank": unit vectors near a random 48-dimensional subspace plus noise, which resembles text
embeddings (purely random vectors make every ANN index look broken). Queries are drawn the same way, not
taken from the data. It prints:

* the store's ingest time (SQLite rows + FTS5 + incremental hnswlib inserts, batches of 2,000);
* for each ef: recall@10 against exact numpy search and queries/s, one query at a time on one core, with
  hnswlib alone (``set_num_threads(1)``) and through ``LocalVectorStore.query`` (the search on the event
  loop, or in a worker thread when it is not quick; SQLite row fetch, Hit objects);
* filtered queries (10% and 1% of chunks match: hnswlib with a label filter, and exact scoring);
* the cost of saving the index (close) and of loading it (open).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from haniwa.knowledge.base import Chunk, Condition  # noqa: E402
from haniwa.knowledge.stores.local import IndexParams, LocalVectorStore  # noqa: E402

__all__ = ["lowrank", "main"]


def lowrank(n: int, dim: int, seed: int, rank: int = 48, noise: float = 0.3) -> np.ndarray[Any, Any]:
    """``n`` unit vectors: a fixed random projection of ``rank`` latent factors plus Gaussian noise."""
    basis = np.random.default_rng(0).normal(size=(rank, dim)) / np.sqrt(rank)
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, rank)) @ basis + noise * rng.normal(size=(n, dim))).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top(data: np.ndarray[Any, Any], queries: np.ndarray[Any, Any], k: int) -> list[set[int]]:
    out = []
    for start in range(0, len(queries), 100):
        scores = queries[start : start + 100] @ data.T
        out += [set(np.argpartition(-row, k)[:k].tolist()) for row in scores]
    return out


def recall(found: list[list[int]], truth: list[set[int]]) -> float:
    return float(np.mean([len(set(f) & t) / len(t) for f, t in zip(found, truth, strict=True)]))


async def run(args: argparse.Namespace) -> None:
    data, queries = lowrank(args.n, args.dim, 1), lowrank(args.queries, args.dim, 2)
    parts = np.arange(args.n) % 100
    chunks = [
        Chunk(f"c{i}", f"d{i // 4}", f"chunk {i}", data[i], {"part": int(parts[i])}) for i in range(args.n)
    ]
    params = IndexParams(m=args.m, ef_construction=args.efc, save_interval=1e9)
    print(f"{args.n} x {args.dim} lowrank, {args.queries} queries, M={args.m} ef_construction={args.efc}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "kb"
        store = await LocalVectorStore.open(folder, args.dim, params)
        t = time.perf_counter()
        for start in range(0, args.n, 2000):
            await store.upsert(chunks[start : start + 2000])
        print(f"store ingest (SQLite + FTS5 + hnswlib, 2 threads): {time.perf_counter() - t:.1f} s")
        truth = exact_top(data, queries, 10)
        t = time.perf_counter()
        for q in queries[:100]:
            np.argpartition(-(data @ q), 10)[:10]
        print(f"numpy exact: {100 / (time.perf_counter() - t):.0f} QPS")

        index = store._index  # the very graph the store searches
        index.set_num_threads(1)
        print("\n| ef | recall@10 (via store) | hnswlib QPS | store.query QPS |\n|---|---|---|---|")
        for ef in args.efs:
            index.set_ef(ef)
            t = time.perf_counter()
            # labels are SQLite rowids, which count from 1 in insertion order
            found = [(index.knn_query(q, k=10, num_threads=1)[0][0] - 1).tolist() for q in queries]
            raw_qps = len(queries) / (time.perf_counter() - t)
            store.params = replace(params, ef=ef)
            t = time.perf_counter()
            hits = [await store.query(q, 10) for q in queries]
            store_qps = len(queries) / (time.perf_counter() - t)
            via_store = [[int(h.chunk.id[1:]) for h in hs] for hs in hits]
            rec = f"{recall(found, truth):.3f} ({recall(via_store, truth):.3f})"
            print(f"| {ef} | {rec} | {raw_qps:,.0f} | {store_qps:,.0f} |")

        store.params = params
        print(f"\nfiltered, ef={params.ef}:")
        for values in (list(range(10)), [7]):
            where = Condition("in", "part", values)
            ids = np.flatnonzero(np.isin(parts, values))
            exact = len(ids) <= max(params.filter_exact_limit, params.filter_exact_fraction * args.n)
            label = f"{len(ids) / args.n:.0%} match ({'exact' if exact else 'hnswlib + label filter'})"
            truth_f = [{int(ids[j]) for j in top} for top in exact_top(data[ids], queries, 10)]
            t = time.perf_counter()
            hits = [await store.query(q, 10, where) for q in queries[:200]]
            qps = 200 / (time.perf_counter() - t)
            got = [[int(h.chunk.id[1:]) for h in hs] for hs in hits]
            print(f"  {label}: recall@10 {recall(got, truth_f[:200]):.3f}, {qps:,.0f} QPS (filter cached)")
            t = time.perf_counter()
            await store.query(queries[0], 10, Condition("in", "part", [*values, 1000]))
            print(f"    first query with a new filter (SQL over every row): {time.perf_counter() - t:.3f} s")

        store._dirty = True
        t = time.perf_counter()
        await store.close()
        print(f"\nsave index (close): {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        store = await LocalVectorStore.open(folder, args.dim, params)
        print(f"open with saved index: {time.perf_counter() - t:.2f} s")
        await store.close()


def main() -> None:
    """Parse options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="vectors indexed")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--m", type=int, default=IndexParams().m, help="hnswlib M")
    parser.add_argument("--efc", type=int, default=IndexParams().ef_construction, help="ef_construction")
    efs = [64, 96, 112, 128, 192]
    parser.add_argument("--efs", type=lambda s: [int(x) for x in s.split(",")], default=efs, help="ef values")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
