"""The conformance suite every :class:`~haniwa.knowledge.base.VectorStore` plugin inherits.

Override one fixture, ``store_factory``: a callable ``(kb_id, dimensions)`` returning the store of that
knowledge base, or an awaitable of it (so a factory's async ``open`` fits as is)::

    class TestMyStore(VectorStoreConformance):
        @pytest.fixture
        def store_factory(self, tmp_path: Path) -> StoreFactory:
            settings = Settings(home=tmp_path)
            factory = MyStoreFactory()
            return lambda kb_id, dimensions: factory.open(kb_id, dimensions, settings)

The contract:

* The callable is called inside the test's running event loop (each test is one ``asyncio.run``), so
  connections or pools a store creates belong to that loop.
* The suite closes every store it opens, exactly once. Calling the callable again with the same
  ``kb_id`` after ``close()`` must reopen the same data; different ``kb_id`` s must not see each other.
* Each test uses fresh Bedrock-style ids (10 upper-case letters and digits), so a shared server database is
  fine; a fixture that needs cleanup can ``yield`` the callable and drop what it made afterwards.

Filters are checked against :func:`haniwa.knowledge.filters.matches`, the reference semantics, over every
stored chunk, for both ``query`` and ``keyword_query``.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import pytest

from haniwa.knowledge.base import AllOf, AnyOf, Chunk, Condition, Filter, Hit, VectorStore
from haniwa.knowledge.filters import matches

__all__ = ["VectorStoreConformance", "StoreFactory", "FILTER_CASES", "filter_corpus"]

StoreFactory = Callable[[str, int], VectorStore | Awaitable[VectorStore]]
T = TypeVar("T")

DIM = 8
URI = "x-amz-bedrock-kb-source-uri"


def _kb_id() -> str:
    return "KB" + uuid.uuid4().hex[:8].upper()


def _unit(v: Sequence[float]) -> np.ndarray[Any, Any]:
    a = np.asarray(v, dtype=np.float64)
    n = float(np.linalg.norm(a))
    return a / n if n else a


def _vectors(n: int, seed: int, dim: int = DIM) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [[float(x) for x in row] for row in rng.normal(size=(n, dim))]


def filter_corpus(n: int = 48) -> list[Chunk]:
    """Chunks (two per document) whose metadata exercises every filter operator: ints and floats for the
    same number, bools, strings that look like numbers, lists of strings and numbers, missing keys, and keys
    holding a dot, a space, a dash and Japanese. Every text holds the word ``haniwa``."""
    vecs = _vectors(n, seed=7)
    cats = ["news", "blog", "paper", "ニュース"]
    tags = [["red", "green"], ["blue"], ["赤", "red"], [], ["green", 1], ["青い空"]]
    chunks = []
    for i in range(n):
        md: dict[str, Any] = {
            URI: f"s3://bucket/docs/{i % 8}.md" if i % 3 else f"s3://other/{i}.txt",
            "score": i * 0.25,
            "tags": tags[i % len(tags)],
            "nums": [i % 3, (i % 5) + 0.5, 2.0] if i % 4 == 0 else [i % 3],
            "title": ["東京の天気", "大阪の検索 report", "Weather report", "green tea"][i % 4] + f" {i}",
            "a.b": i % 4 if i % 2 else str(i % 4),
            "種類": ["記事", "報告書", "メモ"][i % 3],
            "my key": [1, "1", True, 1.0, False, "one"][i % 6],
        }
        if i % 7:
            md["year"] = float(2000 + i % 10) if i % 5 == 4 else 2000 + i % 10
        if i % 6 != 5:
            md["category"] = cats[i % 4]
        if i % 9:
            md["flag"] = i % 2 == 0
        words = ["東京 天気", "大阪 検索", "quick fox", "clay figure"][i % 4]
        chunks.append(Chunk(f"c{i:03d}", f"doc{i // 2:03d}", f"haniwa {words} {i}", vecs[i], md))
    return chunks


def _c(op: str, key: str, value: Any) -> Condition:
    return Condition(op, key, value)


FILTER_CASES: list[Filter] = [
    _c("equals", "category", "news"),
    _c("equals", "year", 2004),  # matches 2004 and 2004.0
    _c("equals", "year", 2004.0),
    _c("equals", "flag", True),
    _c("equals", "flag", False),
    _c("equals", "my key", 1),  # the number only: not True, not "1"
    _c("equals", "my key", "1"),
    _c("equals", "my key", True),
    _c("equals", "a.b", 3),
    _c("equals", "a.b", "2"),
    _c("equals", "種類", "記事"),
    _c("equals", "missing", "x"),
    _c("notEquals", "category", "news"),  # a missing key passes
    _c("notEquals", "flag", True),
    _c("notEquals", "missing", "x"),
    _c("greaterThan", "year", 2005),
    _c("greaterThanOrEquals", "year", 2005),
    _c("lessThan", "year", 2003.5),
    _c("lessThanOrEquals", "year", 2003),
    _c("greaterThan", "score", 5.5),
    _c("lessThan", "my key", 2),  # strings and bools never compare
    _c("greaterThan", "category", 0),
    _c("greaterThan", "missing", 0),
    _c("in", "category", ["news", "ニュース"]),
    _c("in", "year", [2001, 2004.0, 2009]),
    _c("in", "my key", [1, "one"]),
    _c("in", "flag", [True]),
    _c("notIn", "category", ["news", "blog"]),
    _c("notIn", "missing", ["x"]),
    _c("startsWith", URI, "s3://bucket/docs/1"),
    _c("startsWith", "category", "ニュ"),
    _c("startsWith", "title", "東京"),
    _c("startsWith", "year", "20"),
    _c("listContains", "tags", "red"),
    _c("listContains", "tags", "赤"),
    _c("listContains", "tags", 1),
    _c("listContains", "nums", 2),  # matches 2.0
    _c("listContains", "category", "news"),  # not a list
    _c("stringContains", "title", "天気"),
    _c("stringContains", "tags", "re"),  # red, green
    _c("stringContains", "tags", "空"),
    _c("stringContains", "category", "og"),
    AllOf((_c("equals", "category", "news"), _c("greaterThan", "year", 2003))),
    AnyOf((_c("equals", "flag", True), _c("startsWith", "title", "東京"))),
    AllOf(
        (
            AnyOf((_c("listContains", "tags", "green"), _c("equals", "種類", "メモ"))),
            _c("notIn", "category", ["paper"]),
            _c("lessThanOrEquals", "score", 9),
        )
    ),
]


def _check_hits(hits: list[Hit]) -> None:
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True), "hits are not best first"
    assert len({h.chunk.id for h in hits}) == len(hits), "a chunk came back twice"


class _Opener:
    def __init__(self, factory: StoreFactory) -> None:
        self.factory = factory
        self.stores: list[VectorStore] = []

    async def open(self, kb_id: str, dimensions: int = DIM) -> VectorStore:
        made = self.factory(kb_id, dimensions)
        store = await made if isinstance(made, Awaitable) else made
        self.stores.append(store)
        return store

    async def close(self, store: VectorStore) -> None:
        self.stores.remove(store)
        await store.close()

    async def close_all(self) -> None:
        while self.stores:
            await self.close(self.stores[-1])


def _run(factory: StoreFactory, scenario: Callable[[_Opener], Awaitable[T]]) -> T:
    async def main() -> T:
        opener = _Opener(factory)
        try:
            return await scenario(opener)
        finally:
            await opener.close_all()

    return asyncio.run(main())


class VectorStoreConformance:
    """Behaviour every VectorStore owes its callers. Override :meth:`store_factory`."""

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        raise NotImplementedError("override the `store_factory` fixture")

    # -- writes ------------------------------------------------------------------------------------------
    def test_upsert_and_count(self, store_factory: StoreFactory) -> None:
        async def scenario(o: _Opener) -> None:
            store = await o.open(_kb_id())
            assert await store.count() == 0
            chunks = filter_corpus(10)
            assert await store.upsert(chunks) == 10
            assert await store.count() == 10
            assert await store.upsert([]) == 0

        _run(store_factory, scenario)

    def test_upsert_replaces_document_wholly(self, store_factory: StoreFactory) -> None:
        async def scenario(o: _Opener) -> None:
            store = await o.open(_kb_id())
            v = _vectors(5, seed=1)
            old = [Chunk(f"d1-{i}", "d1", f"oldword{i} text", v[i]) for i in range(3)]
            other = [Chunk("d2-0", "d2", "other document", v[3])]
            await store.upsert(old + other)
            assert await store.count() == 4
            assert await store.upsert([Chunk("d1-0", "d1", "newword text", v[4])]) == 1
            assert await store.count() == 2
            hits = await store.query(v[1], 10)
            assert {h.chunk.id for h in hits} == {"d1-0", "d2-0"}
            assert next(h for h in hits if h.chunk.id == "d1-0").chunk.text == "newword text"
            assert await store.keyword_query("oldword1", 10) == []
            assert [h.chunk.id for h in await store.keyword_query("newword", 10)] == ["d1-0"]

        _run(store_factory, scenario)

    def test_delete_documents(self, store_factory: StoreFactory) -> None:
        async def scenario(o: _Opener) -> None:
            store = await o.open(_kb_id())
            chunks = filter_corpus(12)
            await store.upsert(chunks)
            assert await store.delete_documents(["doc000", "doc001", "nope"]) == 4
            assert await store.delete_documents([]) == 0
            assert await store.count() == 8
            left = {c.id for c in chunks[4:]}
            assert {h.chunk.id for h in await store.query(chunks[0].vector, 20)} == left
            assert {h.chunk.id for h in await store.keyword_query("haniwa", 20)} == left

        _run(store_factory, scenario)

    # -- dense queries -----------------------------------------------------------------------------------
    def test_query_nearest_first_with_cosine_scores(self, store_factory: StoreFactory) -> None:
        async def scenario(o: _Opener) -> None:
            store = await o.open(_kb_id())
            chunks = filter_corpus(40)
            await store.upsert(chunks)
            for probe in (chunks[5], chunks[33]):
                hits = await store.query(probe.vector, 5)
                assert len(hits) == 5
                _check_hits(hits)
                assert hits[0].chunk.id == probe.id and hits[0].score == pytest.approx(1.0, abs=1e-4)
                assert all(-1 - 1e-5 <= h.score <= 1 + 1e-5 for h in hits)
                q = _unit(probe.vector)
                exact = sorted(chunks, key=lambda c: -float(_unit(c.vector) @ q))[:5]
                for hit, want in zip(hits, exact, strict=True):
                    assert hit.score == pytest.approx(float(_unit(want.vector) @ q), abs=1e-4)

        _run(store_factory, scenario)

    def test_scores_are_cosine_not_dot(self, store_factory: StoreFactory) -> None:
        async def scenario(o: _Opener) -> None:
            store = await o.open(_kb_id(), 4)
            await store.upsert([Chunk("a", "d", "a", [3.0, 0, 0, 0]), Chunk("b", "d", "b", [0, 0, 0, 0.5])])
            hits = await store.query([2.0, 2.0, 0, 0], 2)
            assert [h.chunk.id for h in hits] == ["a", "b"]
            assert hits[0].score == pytest.approx(math.sqrt(0.5), abs=1e-4)
            assert hits[1].score == pytest.approx(0.0, abs=1e-4)

        _run(store_factory, scenario)

    def test_k_larger_than_count(self, store_factory: StoreFactory) -> None:
        async def scenario(o: _Opener) -> None:
            store = await o.open(_kb_id())
            assert await store.query(_vectors(1, 3)[0], 5) == []
            assert await store.keyword_query("haniwa", 5) == []
            chunks = filter_corpus(6)
            await store.upsert(chunks)
            hits = await store.query(chunks[0].vector, 100)
            assert len(hits) == 6
            _check_hits(hits)
            assert len(await store.keyword_query("haniwa", 100)) == 6

        _run(store_factory, scenario)

    # -- filters -----------------------------------------------------------------------------------------
    def test_filters_follow_reference_semantics(self, store_factory: StoreFactory) -> None:
        async def scenario(o: _Opener) -> list[str]:
            store = await o.open(_kb_id())
            chunks = filter_corpus()
            await store.upsert(chunks)
            probe = _vectors(1, seed=99)[0]
            wrong = []
            for where in FILTER_CASES:
                want = {c.id for c in chunks if matches(where, c.metadata)}
                dense = await store.query(probe, len(chunks) + 5, where)
                _check_hits(dense)
                if {h.chunk.id for h in dense} != want:
                    wrong.append(f"query {where}: {sorted(h.chunk.id for h in dense)} != {sorted(want)}")
                sparse = await store.keyword_query("haniwa", len(chunks) + 5, where)
                if {h.chunk.id for h in sparse} != want:
                    wrong.append(
                        f"keyword_query {where}: {sorted(h.chunk.id for h in sparse)} != {sorted(want)}"
                    )
            return wrong

        assert _run(store_factory, scenario) == []

    def test_filtered_query_returns_k_best_matching(self, store_factory: StoreFactory) -> None:
        async def scenario(o: _Opener) -> None:
            store = await o.open(_kb_id())
            chunks = filter_corpus()
            await store.upsert(chunks)
            probe = _vectors(1, seed=5)[0]
            q = _unit(probe)
            for where in FILTER_CASES:
                matching = [c for c in chunks if matches(where, c.metadata)]
                matching.sort(key=lambda c: -float(_unit(c.vector) @ q))
                for k in (1, 3, 10):
                    hits = await store.query(probe, k, where)
                    assert len(hits) == min(k, len(matching)), where
                    _check_hits(hits)
                    assert all(matches(where, h.chunk.metadata) for h in hits), where
                    if matching:
                        assert hits[0].chunk.id == matching[0].id, where
                    words = await store.keyword_query("quick fox haniwa", k, where)
                    assert len(words) == min(k, len(matching)), where

        _run(store_factory, scenario)

    # -- keyword queries ---------------------------------------------------------------------------------
    def test_keyword_query_finds_japanese_and_english_words(self, store_factory: StoreFactory) -> None:
        async def scenario(o: _Opener) -> None:
            store = await o.open(_kb_id())
            texts = {
                "tokyo": "東京の天気は晴れです。",
                "search": "検索エンジンの仕組みを学ぶ。",
                "osaka": "大阪の食べ物はおいしい。",
                "fox": "The quick brown fox jumps over the lazy dog.",
                "clay": "Clay figures called Haniwa were made in Japan.",
            }
            vecs = _vectors(len(texts), seed=2)
            await store.upsert(
                [Chunk(k, f"doc-{k}", t, v) for (k, t), v in zip(texts.items(), vecs, strict=True)]
            )
            for query, want in [
                ("東京", "tokyo"),
                ("天気", "tokyo"),
                ("検索", "search"),
                ("大阪の食べ物", "osaka"),
                ("fox", "fox"),
                ("HANIWA", "clay"),
                ("figures", "clay"),
            ]:
                hits = await store.keyword_query(query, 3)
                assert [h.chunk.id for h in hits] == [want], query
            assert await store.keyword_query("", 3) == []
            assert await store.keyword_query("の は を", 3) == []  # particles only: no tokens
            assert await store.keyword_query('"fox" OR (NEAR AND', 3) != []  # FTS syntax is escaped

        _run(store_factory, scenario)

    def test_keyword_query_ranks_more_hits_first(self, store_factory: StoreFactory) -> None:
        async def scenario(o: _Opener) -> None:
            store = await o.open(_kb_id())
            vecs = _vectors(4, seed=4)
            await store.upsert(
                [
                    Chunk("one", "d1", "東京の駅は大きい。", vecs[0]),
                    Chunk("both", "d2", "東京の天気は晴れ。", vecs[1]),
                    Chunk("none", "d3", "大阪の城は古い。", vecs[2]),
                    Chunk("en", "d4", "rain in london today", vecs[3]),
                ]
            )
            hits = await store.keyword_query("東京の天気", 10)
            assert [h.chunk.id for h in hits] == ["both", "one"]
            assert hits[0].score > hits[1].score
            assert [h.chunk.id for h in await store.keyword_query("London rain", 10)] == ["en"]

        _run(store_factory, scenario)

    # -- data --------------------------------------------------------------------------------------------
    def test_parent_text_and_metadata_round_trip(self, store_factory: StoreFactory) -> None:
        async def scenario(o: _Opener) -> None:
            store = await o.open(_kb_id())
            md = {
                URI: "s3://bucket/資料/報告書 v2.pdf",
                "nested": [1, "二", [3, {"k": "値"}], True],
                "obj": {"a": [1.5, -2], "b": None},
                "emoji": "埴輪🏺",
                "empty": [],
                "n": 7,
                "f": 2.5,
                "quote": 'say "hi" \\ back',
            }
            vec = _vectors(1, seed=8)[0]
            chunk = Chunk(
                "child-1", "doc/with spaces.md", "子チャンク text", vec, md, parent="親チャンク全文"
            )
            await store.upsert([chunk, Chunk("plain", "d2", "plain text", _vectors(1, seed=9)[0])])
            for hits in (await store.query(vec, 1), await store.keyword_query("チャンク", 1)):
                got = hits[0].chunk
                assert (got.id, got.document_id, got.text, got.parent) == (
                    chunk.id,
                    chunk.document_id,
                    chunk.text,
                    chunk.parent,
                )
                assert dict(got.metadata) == md
                assert len(got.vector) == DIM
            plain = (await store.keyword_query("plain", 1))[0].chunk
            assert plain.parent is None and dict(plain.metadata) == {}

        _run(store_factory, scenario)

    def test_persistence_across_reopen(self, store_factory: StoreFactory) -> None:
        async def scenario(o: _Opener) -> None:
            kb = _kb_id()
            store = await o.open(kb)
            chunks = filter_corpus()
            await store.upsert(chunks)
            await store.delete_documents(["doc003"])
            probe = _vectors(1, seed=11)[0]
            where = FILTER_CASES[-1]
            before = [
                await store.query(probe, 7),
                await store.query(probe, 7, where),
                await store.keyword_query("東京 fox", 7),
            ]
            await o.close(store)
            store = await o.open(kb)
            assert await store.count() == len(chunks) - 2
            after = [
                await store.query(probe, 7),
                await store.query(probe, 7, where),
                await store.keyword_query("東京 fox", 7),
            ]
            for a, b in zip(before, after, strict=True):
                assert [h.chunk.id for h in a] == [h.chunk.id for h in b]
                assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)

        _run(store_factory, scenario)

    def test_knowledge_bases_are_isolated(self, store_factory: StoreFactory) -> None:
        async def scenario(o: _Opener) -> None:
            a, b = await o.open(_kb_id()), await o.open(_kb_id())
            chunks = filter_corpus(10)
            await a.upsert(chunks)
            assert await b.count() == 0
            assert await b.query(chunks[0].vector, 3) == []
            assert await b.keyword_query("haniwa", 3) == []
            await b.upsert(chunks[:4])
            assert await a.delete_documents(["doc000"]) == 2
            assert (await a.count(), await b.count()) == (8, 4)
            assert (await b.query(chunks[0].vector, 1))[0].chunk.id == chunks[0].id

        _run(store_factory, scenario)
