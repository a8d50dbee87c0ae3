"""The VectorStore conformance suite on the local store, plus what only the local store promises:
recovery after a crash, the hnswlib paths (large stores, filtered graph search), the search run on the
event loop, keyword queries without their commonest tokens, and hybrid retrieval over the store."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from haniwa.config import Settings
from haniwa.errors import ValidationError
from haniwa.knowledge.base import AllOf, AnyOf, Chunk, Condition, Filter, Hit
from haniwa.knowledge.filters import matches, to_sqlite, validate
from haniwa.knowledge.retrieve import RERANK_WEIGHT, RetrievalQuery, retrieve
from haniwa.knowledge.stores.local import IndexParams, LocalStoreFactory, LocalVectorStore
from haniwa.testing.vectorstore import StoreFactory, VectorStoreConformance


class TestLocalStore(VectorStoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        settings = Settings(home=tmp_path)
        factory = LocalStoreFactory()
        return lambda kb_id, dimensions: factory.open(kb_id, dimensions, settings)


class TestLocalStoreGraphPaths(VectorStoreConformance):
    """The same suite with every search forced through hnswlib (no exact shortcuts)."""

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        params = IndexParams(exact_limit=0, filter_exact_limit=0, filter_exact_fraction=0.0)
        return lambda kb_id, dimensions: LocalVectorStore.open(tmp_path / kb_id, dimensions, params)


def lowrank(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors near a 16-dimensional subspace, like text embeddings."""
    basis = np.random.default_rng(0).normal(size=(16, dim))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16)) @ basis + 0.3 * rng.normal(size=(n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def chunks_for(vectors: np.ndarray, per_doc: int = 5) -> list[Chunk]:
    return [
        Chunk(f"c{i}", f"doc{i // per_doc}", f"chunk {i}", row.tolist(), {"part": i % 10, "even": i % 2 == 0})
        for i, row in enumerate(vectors)
    ]


def test_ann_recall_and_filtered_graph_search(tmp_path: Path) -> None:
    dim, n = 32, 3000
    data, queries = lowrank(n, dim, 1), lowrank(50, dim, 2)
    chunks = chunks_for(data)
    params = IndexParams(exact_limit=500, filter_exact_limit=100, filter_exact_fraction=0.0)
    where = AnyOf((Condition("equals", "part", 3), Condition("equals", "part", 7)))  # 20%: graph path
    allowed = np.array([matches(where, c.metadata) for c in chunks])

    async def scenario() -> tuple[float, float]:
        store = await LocalVectorStore.open(tmp_path / "kb", dim, params)
        for start in range(0, n, 500):
            await store.upsert(chunks[start : start + 500])
        plain = filtered = 0.0
        for q in queries:
            exact = set(np.argsort(-(data @ q))[:10])
            plain += len(exact & {int(h.chunk.id[1:]) for h in await store.query(q.tolist(), 10)}) / 10
            hits = await store.query(q.tolist(), 10, where)
            assert len(hits) == 10 and all(matches(where, h.chunk.metadata) for h in hits)
            scores = np.where(allowed, data @ q, -2)
            exact = set(np.argsort(-scores)[:10])
            filtered += len(exact & {int(h.chunk.id[1:]) for h in hits}) / 10
        await store.close()
        return plain / len(queries), filtered / len(queries)

    plain, filtered = asyncio.run(scenario())
    assert plain >= 0.9 and filtered >= 0.9, (plain, filtered)


def test_stale_index_is_rebuilt_on_open(tmp_path: Path) -> None:
    dim = 16
    data = lowrank(600, dim, 3)
    params = IndexParams(exact_limit=0, filter_exact_limit=0, filter_exact_fraction=0.0)

    async def scenario() -> None:
        store = await LocalVectorStore.open(tmp_path, dim, params)
        await store.upsert(chunks_for(data[:300]))
        await store.close()  # index.json now records this generation
        saved = (tmp_path / "index.json").read_text()
        store = await LocalVectorStore.open(tmp_path, dim, params)
        await store.upsert(chunks_for(data)[300:])
        await store.delete_documents(["doc0"])
        want = [h.chunk.id for h in await store.query(data[400].tolist(), 5)]
        # a crash: the later writes reached SQLite, but the index file is the old one
        store._closed = True
        store._conn.close()
        (tmp_path / "index.json").write_text(saved)
        store = await LocalVectorStore.open(tmp_path, dim, params)
        assert await store.count() == 595
        assert [h.chunk.id for h in await store.query(data[400].tolist(), 5)] == want
        everything = {h.chunk.id for h in await store.query(data[0].tolist(), 600)}
        assert len(everything) == 595 and everything.isdisjoint({f"c{i}" for i in range(5)})
        await store.close()
        assert json.loads((tmp_path / "index.json").read_text())["generation"] == 3

    asyncio.run(scenario())


WRITER = """
import asyncio, sys
import numpy as np
from haniwa.knowledge.base import Chunk
from haniwa.knowledge.stores.local import IndexParams, LocalVectorStore

async def main():
    params = IndexParams(exact_limit=0, filter_exact_limit=0, filter_exact_fraction=0.0, save_interval=0.2)
    store = await LocalVectorStore.open(__import__("pathlib").Path(sys.argv[1]), 16, params)
    rng = np.random.default_rng(0)
    for i in range(10**9):
        doc = f"doc{i % 40}"
        size = int(rng.integers(1, 30))
        await store.upsert([Chunk(f"{doc}-{j}", doc, f"text {i} {j}", rng.normal(size=16).tolist(),
                                  {"version": i, "size": size}) for j in range(size)])
        if i % 7 == 3:
            await store.delete_documents([f"doc{(i * 3) % 40}"])
        if i == 30:
            print("ready", flush=True)

asyncio.run(main())
"""


def test_kill_9_leaves_whole_documents(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.7)  # mid-stream: several index saves behind, more writes after them
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    with sqlite3.connect(tmp_path / "chunks.db") as db:
        rows = db.execute("SELECT id, document_id, metadata FROM chunks").fetchall()
    docs: dict[str, list[dict[str, int]]] = {}
    for _, doc, md in rows:
        docs.setdefault(doc, []).append(json.loads(md))
    for doc, mds in docs.items():  # wholly one version, with all of its chunks
        assert len({m["version"] for m in mds}) == 1, doc
        assert len(mds) == mds[0]["size"], doc

    async def scenario() -> None:
        params = IndexParams(exact_limit=0, filter_exact_limit=0, filter_exact_fraction=0.0)
        store = await LocalVectorStore.open(tmp_path, 16, params)
        assert await store.count() == len(rows)
        hits = await store.query(np.ones(16).tolist(), len(rows) + 10)
        assert sorted(h.chunk.id for h in hits) == sorted(r[0] for r in rows)
        await store.close()

    asyncio.run(scenario())


def test_factory_drop_and_reopen(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    factory = LocalStoreFactory()

    async def scenario() -> None:
        store = await factory.open("KB1", 4, settings)
        assert await factory.open("KB1", 4, settings) is store  # one index per knowledge base
        await store.upsert([Chunk("a", "d", "text", [1.0, 0, 0, 0])])
        await factory.drop("KB1", settings)
        assert not (settings.kb_dir / "KB1").exists()
        store = await factory.open("KB1", 4, settings)
        assert await store.count() == 0
        await store.close()

    asyncio.run(scenario())


def test_queries_run_while_ingesting(tmp_path: Path) -> None:
    dim = 16
    data = lowrank(2000, dim, 4)
    chunks = chunks_for(data, per_doc=10)
    params = IndexParams(exact_limit=300, filter_exact_limit=0, filter_exact_fraction=0.0)
    where = Condition("equals", "even", True)

    async def scenario() -> None:
        store = await LocalVectorStore.open(tmp_path, dim, params)
        await store.upsert(chunks[:500])

        async def ingest() -> None:
            for start in range(500, 2000, 100):
                await store.upsert(chunks[start : start + 100])
                await store.delete_documents([f"doc{start // 10 - 30}"])

        async def search() -> int:
            seen = 0
            for i in range(60):
                hits = await store.query(data[i].tolist(), 10, where if i % 2 else None)
                words = await store.keyword_query("chunk", 5, where)
                assert len(hits) == 10 and len(words) == 5
                assert all(h.chunk.metadata["even"] for h in words)
                seen += len(hits)
            return seen

        results = await asyncio.gather(ingest(), search(), search())
        assert results[1:] == [600, 600]
        assert await store.count() == 2000 - 15 * 10
        await store.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "where",
    [
        Condition("like", "a", "x"),
        Condition("in", "a", "x"),
        Condition("in", "a", [["nested"]]),
        Condition("greaterThan", "a", "3"),
        Condition("greaterThan", "a", True),
        Condition("startsWith", "a", 1),
        Condition("equals", "a", None),
        Condition("equals", "", "x"),
        AllOf((Condition("equals", "a", 1), Condition("notIn", "a", 2))),
    ],
)
def test_validate_rejects_bad_filters(where: Filter) -> None:
    with pytest.raises(ValidationError):
        validate(where)
    with pytest.raises(ValidationError):
        to_sqlite(where)


def test_filter_keys_are_parameters_not_sql(tmp_path: Path) -> None:
    where = AnyOf(
        (Condition("equals", "x'); DROP TABLE chunks; --", "v"), Condition("equals", 'a"b\\c', "v"))
    )
    sql, params = to_sqlite(where)
    assert "DROP" not in sql and params[0] == "x'); DROP TABLE chunks; --"

    async def scenario() -> list[str]:
        store = await LocalVectorStore.open(tmp_path, 2)
        await store.upsert(
            [Chunk("q", "d", "t", [1.0, 0.0], {'a"b\\c': "v"}), Chunk("n", "d", "t", [0.0, 1.0])]
        )
        hits = await store.query([1.0, 1.0], 5, where)
        await store.close()
        return [h.chunk.id for h in hits]

    assert asyncio.run(scenario()) == ["q"]


def test_bad_input_is_a_validation_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await LocalVectorStore.open(tmp_path, 2)
        for bad in (
            Chunk("a", "d", "t", [1.0]),
            Chunk("a", "d", "t", [1.0, float("nan")]),
            Chunk("a", "d", "t", [1.0, 0.0], {"x": float("nan")}),
            Chunk("a", "d", "t", [1.0, 0.0], {"x": object()}),
        ):
            with pytest.raises(ValidationError):
                await store.upsert([bad])
        with pytest.raises(ValidationError):
            await store.query([1.0, 0.0, 0.0], 3)
        assert await store.count() == 0
        await store.close()
        with pytest.raises(ValidationError):
            await LocalVectorStore.open(tmp_path, 3)

    asyncio.run(scenario())


def test_keyword_query_leaves_out_common_tokens_without_changing_the_ranking(tmp_path: Path) -> None:
    # "common" is in every chunk, so its BM25 weight is FTS5's floor: leaving it out of the MATCH must not
    # change the hits; a query whose other tokens match fewer than k rows asks again with every token
    texts = [
        f"common filler{i % 7} word{i % 50}" + (" rare snake_case" if i % 40 == 0 else "") for i in range(400)
    ]
    chunks = [Chunk(f"c{i}", f"d{i}", t, [1.0, float(i)], {"even": i % 2 == 0}) for i, t in enumerate(texts)]
    even = Condition("equals", "even", True)
    queries = [("rare common word10", 5, None), ("rare common", 20, None), ("common", 3, None)]
    queries += [("word3 filler3", 8, None), ("rare common word10", 5, even), ("rare common", 8, even)]
    queries += [("snake_case common", 5, None)]  # FTS5 reads "snake_case" as two tokens

    async def scenario(params: IndexParams, folder: str) -> list[list[tuple[str, float]]]:
        store = await LocalVectorStore.open(tmp_path / folder, 2, params)
        await store.upsert(chunks)
        out = []
        for text, k, where in queries:
            hits = await store.keyword_query(text, k, where)
            assert len(hits) == k, text
            out.append([(h.chunk.id, h.score) for h in hits])
        with store._lock:  # what was scored: "common" only where the prune rule allows it
            out.append([(t, 0.0) for t in store._keyword_tokens_locked(["rare", "common", "word10", "nope"])])
        await store.close()
        return out

    pruned = asyncio.run(scenario(IndexParams(keyword_prune_min_rows=10), "pruned"))
    exact = asyncio.run(scenario(IndexParams(keyword_prune_weight=0.0), "exact"))
    assert pruned.pop() == [("rare", 0.0), ("word10", 0.0), ("nope", 0.0)]
    assert exact.pop() == [("rare", 0.0), ("common", 0.0), ("word10", 0.0), ("nope", 0.0)]
    for got, want in zip(pruned, exact, strict=True):
        assert [cid for cid, _ in got] == [cid for cid, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-4)


def test_quick_queries_never_wait_on_the_loop_for_a_writer(tmp_path: Path) -> None:
    dim = 16
    data = lowrank(600, dim, 5)
    params = IndexParams(exact_limit=100)

    async def scenario() -> None:
        store = await LocalVectorStore.open(tmp_path, dim, params)
        await store.upsert(chunks_for(data))
        want = [h.chunk.id for h in await store.query(data[7].tolist(), 5)]  # quick: runs on the loop
        store._lock.acquire()  # a writer holds the store: the query must go to a thread and wait there
        task = asyncio.create_task(store.query(data[7].tolist(), 5))
        started = time.perf_counter()
        await asyncio.sleep(0.05)  # the loop is free meanwhile
        assert time.perf_counter() - started < 1 and not task.done()
        store._lock.release()
        assert [h.chunk.id for h in await task] == want
        hit = (await store.query(data[7].tolist(), 1))[0]
        assert hit.chunk.id == "c7" and list(hit.chunk.vector) == pytest.approx(data[7].tolist(), abs=1e-6)
        await store.close()

    asyncio.run(scenario())


def test_hybrid_retrieve_fuses_normalised_scores_and_blends_the_reranker(tmp_path: Path) -> None:
    texts = ["東京の天気は晴れ", "東京の駅は大きい", "大阪の天気は雨", "clay figures", "quick fox"]
    vectors = [[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.6, 0.0, 0.8], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    chunks = [Chunk(f"c{i}", f"d{i}", t, v) for i, (t, v) in enumerate(zip(texts, vectors, strict=True))]

    class Favours:  # a reranker that likes one passage only
        async def rerank(self, query: str, passages: Sequence[str]) -> list[float]:
            return [1.0 if p == texts[2] else 0.0 for p in passages]

    async def embed(text: str) -> list[float]:
        return [1.0, 0.1, 0.0]

    async def scenario() -> tuple[list[Hit], list[Hit], list[Hit]]:
        store = await LocalVectorStore.open(tmp_path, 3)
        await store.upsert(chunks)
        hybrid = await retrieve(store, embed, RetrievalQuery("東京の天気", k=5))
        dense = await store.query([1.0, 0.1, 0.0], 20)
        reranked = await retrieve(store, embed, RetrievalQuery("東京の天気", k=5, reranker=Favours()))
        await store.close()
        return hybrid, dense, reranked

    hybrid, dense, reranked = asyncio.run(scenario())
    assert hybrid[0].chunk.id == "c0" and hybrid[0].score == pytest.approx(1.0)  # first in both lists
    assert all(0.0 <= h.score <= 1.0 for h in hybrid) and len(hybrid) == 5
    assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)
    assert hybrid[-1].chunk.id == dense[-1].chunk.id and hybrid[-1].score == pytest.approx(0.0)
    fused = {h.chunk.id: h.score for h in hybrid}
    want = {cid: (1 - RERANK_WEIGHT) * s + RERANK_WEIGHT * (cid == "c2") for cid, s in fused.items()}
    assert {h.chunk.id: h.score for h in reranked} == pytest.approx(want)
    assert [h.chunk.id for h in reranked] == sorted(want, key=lambda cid: -want[cid])
