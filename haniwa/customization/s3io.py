"""Reading a job's inputs from and writing its outputs to ``s3://bucket/key`` URIs (the S3 folder store)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from haniwa.errors import ValidationError
from haniwa.s3.base import ObjectStore, PutOptions

__all__ = ["split_uri", "read_text", "write_bytes", "MAX_INPUT_BYTES"]

MAX_INPUT_BYTES = 512 * 1024 * 1024


def split_uri(uri: str, what: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key); a ValidationError naming ``what`` otherwise."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValidationError(f"{what} must be an s3://bucket/key URI, not {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    if not bucket:
        raise ValidationError(f"{what} must name a bucket: {uri!r}")
    return bucket, key


async def read_text(store: ObjectStore, uri: str, what: str, limit: int = MAX_INPUT_BYTES) -> str:
    """The whole object as UTF-8 text (refused past ``limit`` bytes)."""
    bucket, key = split_uri(uri, what)
    info, body = await store.open(bucket, key)
    if info.size > limit:
        raise ValidationError(f"{uri} is {info.size} bytes; haniwa reads at most {limit} for {what}")
    data = b"".join([chunk async for chunk in body])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{uri} is not UTF-8 text (byte {exc.start})") from None


async def write_bytes(store: ObjectStore, uri: str, data: bytes, content_type: str) -> None:
    bucket, key = split_uri(uri, "outputDataConfig.s3Uri")

    async def body() -> AsyncIterator[bytes]:
        yield data

    await store.put(bucket, key, body(), PutOptions(content_type=content_type))
