"""The conformance suite every :class:`~haniwa.s3.base.S3Store` inherits (objects, buckets, uploads).

Override one fixture, ``object_store``: the store to test, empty::

    class TestMyStore(ObjectStoreConformance):
        @pytest.fixture
        def object_store(self, tmp_path: Path) -> S3Store:
            return MyStore(tmp_path)

Each test is one ``asyncio.run`` and makes its own buckets.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterable
from typing import Any, TypeVar

import pytest

from haniwa.s3.base import (
    MIN_PART_BYTES,
    BucketExistsError,
    BucketNotEmptyError,
    EntityTooLargeError,
    InvalidKeyError,
    NoSuchBucketError,
    NoSuchKeyError,
    NoSuchUploadError,
    PutOptions,
    S3Store,
)

__all__ = ["ObjectStoreConformance"]

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def _body(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _read(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


async def _keys(listing: Awaitable[Any]) -> list[str]:
    return [o.key for o in (await listing).objects]


class ObjectStoreConformance:
    """Inherit and override ``object_store``."""

    @pytest.fixture
    def object_store(self) -> S3Store:
        raise NotImplementedError("override the object_store fixture")

    def test_put_head_open_round_trip(self, object_store: S3Store) -> None:
        async def go() -> None:
            await object_store.create_bucket("conf-a")
            opts = PutOptions(content_type="text/plain", metadata={"team": "kb"})
            info = await object_store.put("conf-a", "d/x.txt", _body(b"hello ", b"world"), opts)
            assert info.etag == hashlib.md5(b"hello world").hexdigest() and info.size == 11
            head = await object_store.head("conf-a", "d/x.txt")
            assert (head.content_type, dict(head.metadata), head.etag) == (
                "text/plain",
                {"team": "kb"},
                info.etag,
            )
            _, chunks = await object_store.open("conf-a", "d/x.txt")
            assert await _read(chunks) == b"hello world"
            _, chunks = await object_store.open("conf-a", "d/x.txt", (6, 10))
            assert await _read(chunks) == b"world"
            await object_store.delete("conf-a", "d/x.txt")
            await object_store.delete("conf-a", "d/x.txt")  # a missing key is no error
            with pytest.raises(NoSuchKeyError):
                await object_store.head("conf-a", "d/x.txt")

        _run(go())

    def test_a_failing_or_oversized_body_stores_nothing(self, object_store: S3Store) -> None:
        async def broken() -> AsyncIterator[bytes]:
            yield b"partial"
            raise ValueError("the client went away")

        async def go() -> None:
            await object_store.create_bucket("conf-b")
            with pytest.raises(ValueError):
                await object_store.put("conf-b", "k", broken(), PutOptions())
            with pytest.raises(EntityTooLargeError):
                await object_store.put("conf-b", "k", _body(b"x" * 11), PutOptions(max_bytes=10))
            assert await _keys(object_store.list("conf-b")) == []

        _run(go())

    def test_listing(self, object_store: S3Store) -> None:
        keys = ["a/1", "a/2", "b/1", "c", "logs/03", "logs/01", "logs/02"]

        async def go() -> None:
            await object_store.create_bucket("conf-c")
            for key in keys:
                await object_store.put("conf-c", key, _body(key.encode()), PutOptions())
            assert await _keys(object_store.list("conf-c")) == sorted(keys)
            assert await _keys(object_store.list("conf-c", prefix="logs/")) == [
                "logs/01",
                "logs/02",
                "logs/03",
            ]
            rolled = await object_store.list("conf-c", delimiter="/")
            assert list(rolled.common_prefixes) == ["a/", "b/", "logs/"] and [
                o.key for o in rolled.objects
            ] == ["c"]
            page = await object_store.list("conf-c", limit=3)
            assert [o.key for o in page.objects] == sorted(keys)[:3] and page.truncated
            rest = await object_store.list("conf-c", after=page.next_after or "")
            assert [o.key for o in rest.objects] == sorted(keys)[3:] and not rest.truncated

        _run(go())

    def test_buckets(self, object_store: S3Store) -> None:
        async def go() -> None:
            await object_store.create_bucket("conf-d")
            with pytest.raises(BucketExistsError):
                await object_store.create_bucket("conf-d")
            assert "conf-d" in [b.name for b in await object_store.buckets()]
            await object_store.put("conf-d", "k", _body(b"v"), PutOptions())
            with pytest.raises(BucketNotEmptyError):
                await object_store.delete_bucket("conf-d")
            await object_store.delete("conf-d", "k")
            await object_store.delete_bucket("conf-d")
            with pytest.raises(NoSuchBucketError):
                await object_store.bucket("conf-d")
            with pytest.raises(NoSuchBucketError):
                await object_store.put("conf-d", "k", _body(b"v"), PutOptions())

        _run(go())

    @pytest.mark.parametrize("key", ["../x", "a/../../x", "/abs", "a\\b", "a//b", "a/", ".haniwa-s3meta/x"])
    def test_keys_that_would_leave_the_bucket_are_refused(self, object_store: S3Store, key: str) -> None:
        async def go() -> None:
            await object_store.create_bucket("conf-e")
            with pytest.raises(InvalidKeyError):
                await object_store.put("conf-e", key, _body(b"x"), PutOptions())

        _run(go())

    def test_multipart_and_copy(self, object_store: S3Store) -> None:
        first, second = b"a" * MIN_PART_BYTES, b"tail"

        async def go() -> None:
            await object_store.create_bucket("conf-f")
            upload = await object_store.start_upload("conf-f", "big", PutOptions(metadata={"m": "1"}))
            p1 = await object_store.put_part("conf-f", upload, 1, _body(first), None)
            p2 = await object_store.put_part("conf-f", upload, 2, _body(second), None)
            key, parts = await object_store.parts("conf-f", upload)
            assert key == "big" and [p.number for p in parts] == [1, 2]
            info = await object_store.complete("conf-f", upload, [(1, p1.etag), (2, p2.etag)])
            digests: Iterable[bytes] = (hashlib.md5(first).digest(), hashlib.md5(second).digest())
            assert info.etag == f"{hashlib.md5(b''.join(digests)).hexdigest()}-2"
            _, chunks = await object_store.open("conf-f", "big")
            assert await _read(chunks) == first + second
            with pytest.raises(NoSuchUploadError):
                await object_store.parts("conf-f", upload)
            copied = await object_store.copy(("conf-f", "big"), ("conf-f", "copy"), None)
            assert copied.size == len(first + second) and dict(copied.metadata) == {"m": "1"}
            gone = await object_store.start_upload("conf-f", "x", PutOptions())
            await object_store.abort("conf-f", gone)
            with pytest.raises(NoSuchUploadError):
                await object_store.parts("conf-f", gone)

        _run(go())
