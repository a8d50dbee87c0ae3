"""The object-store seam: frozen results and three small Protocols (objects, buckets, multipart uploads).

:class:`~haniwa.s3.store.FolderStore` keeps objects as files under ``HANIWA_S3_ROOT``;
:class:`~haniwa.s3.remote.RemoteStore` keeps them on a real S3-compatible store (``HANIWA_S3_ENDPOINT``).
A job takes the one ``haniwa.s3.jobs.open_job_store`` picks and does not care which one it got.
The api layer (``api/s3.py``) speaks the S3 wire protocol over the folder.

::

    store = FolderStore(settings.s3_folder)
    await store.create_bucket("data")
    info = await store.put("data", "a/b.txt", chunks(), PutOptions(content_type="text/plain"))
    head, reader = await store.open("data", "a/b.txt", (0, 3))
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from haniwa.errors import ConflictError, NotFoundError, ValidationError

__all__ = [
    "ObjectInfo",
    "BucketInfo",
    "Listing",
    "PutOptions",
    "PartInfo",
    "ObjectStore",
    "BucketStore",
    "MultipartStore",
    "S3Store",
    "NoSuchBucketError",
    "NoSuchKeyError",
    "NoSuchUploadError",
    "BucketExistsError",
    "BucketNotEmptyError",
    "InvalidKeyError",
    "InvalidBucketNameError",
    "InvalidRangeError",
    "InvalidPartError",
    "EntityTooSmallError",
    "EntityTooLargeError",
    "BadDigestError",
    "check_key",
    "check_bucket",
    "bucket_problem",
    "META_DIR",
    "MIN_PART_BYTES",
]


# -- errors: each carries the S3 error code api/s3.py renders ---------------------------------------------
class NoSuchBucketError(NotFoundError):
    """The bucket does not exist."""

    code = "NoSuchBucket"


class NoSuchKeyError(NotFoundError):
    """The object does not exist."""

    code = "NoSuchKey"


class NoSuchUploadError(NotFoundError):
    """The multipart upload does not exist (completed, aborted or never started)."""

    code = "NoSuchUpload"


class BucketExistsError(ConflictError):
    """CreateBucket of a bucket that exists (there is one owner, so it is always yours)."""

    code = "BucketAlreadyOwnedByYou"


class BucketNotEmptyError(ConflictError):
    """DeleteBucket of a bucket that still holds objects."""

    code = "BucketNotEmpty"


class InvalidKeyError(ValidationError):
    """A key that a folder cannot hold inside its bucket (``..``, absolute, a NUL, too long)."""

    code = "InvalidArgument"


class InvalidBucketNameError(ValidationError):
    """A bucket name against the S3 naming rules."""

    code = "InvalidBucketName"


class InvalidRangeError(ValidationError):
    """A Range that starts past the object's end."""

    code = "InvalidRange"


class InvalidPartError(ValidationError):
    """CompleteMultipartUpload names a part that was not uploaded, or with another ETag."""

    code = "InvalidPart"


class EntityTooSmallError(ValidationError):
    """A part other than the last is under 5 MiB."""

    code = "EntityTooSmall"


class EntityTooLargeError(ValidationError):
    """An object or part over ``HANIWA_S3_MAX_OBJECT_BYTES``."""

    code = "EntityTooLarge"


class BadDigestError(ValidationError):
    """The body does not match the digest or checksum the client sent with it."""

    code = "BadDigest"


# -- names ------------------------------------------------------------------------------------------------
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# names S3 reserves for its own features (access points, directory buckets, table buckets, ...)
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_problem(bucket: str) -> str | None:
    """What is wrong with ``bucket`` as an S3 bucket name, or None (the general-purpose bucket rules)."""
    if not 3 <= len(bucket) <= 63:
        return "must be 3 to 63 characters long"
    if not _BUCKET.match(bucket):
        return "may hold only a-z, 0-9, '.' and '-', and must start and end with a letter or digit"
    if ".." in bucket:
        return "may not hold two adjacent periods"
    with contextlib.suppress(ValueError):
        ipaddress.IPv4Address(bucket)
        return "may not be formatted as an IP address"
    if bucket.startswith(_RESERVED_PREFIXES) or bucket.endswith(_RESERVED_SUFFIXES):
        return "uses a prefix or suffix reserved by S3"
    return None


def check_bucket(bucket: str) -> str:
    """``bucket`` if it follows the S3 naming rules, else :class:`InvalidBucketNameError`."""
    problem = bucket_problem(bucket)
    if problem:
        raise InvalidBucketNameError(f"bucket name {bucket[:80]!r} {problem}")
    return bucket


# -- keys ---------------------------------------------------------------------------------------------------
META_DIR = ".haniwa-s3meta"  # per-bucket folder of object metadata and uploads; hidden from listings
MAX_KEY_BYTES = 1024
MIN_PART_BYTES = 5 * 1024 * 1024  # every part but the last (S3's rule; upload tools size parts by it)


def check_key(key: str) -> str:
    """``key`` if a folder can hold it as a file inside its bucket, else :class:`InvalidKeyError`.

    S3 keys are any UTF-8 up to 1024 bytes; a folder cannot hold ``..``/``.``/empty segments, absolute
    paths, backslashes (a separator on Windows), NUL, a key ending in ``/``, or haniwa's metadata folder."""
    if not key or len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"key {key[:80]!r} must be 1 to {MAX_KEY_BYTES} bytes of UTF-8")
    parts = key.split("/")
    bad = (
        "\x00" in key
        or "\\" in key
        or key.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or parts[0] == META_DIR
        or re.match(r"^[A-Za-z]:", key) is not None
    )
    if bad:
        raise InvalidKeyError(
            f"key {key[:80]!r} is not served here: no '..', '.' or empty segments, no leading or trailing"
            f" '/', no backslash or NUL, and not {META_DIR}/"
        )
    return key


# -- results ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectInfo:
    """One object as HeadObject and listings show it."""

    key: str
    size: int
    etag: str  # hex MD5 of the bytes, or "<md5 of part md5s>-<n>" for a multipart object (no quotes)
    last_modified: dt.datetime
    content_type: str = "binary/octet-stream"
    metadata: Mapping[str, str] = field(default_factory=dict)  # x-amz-meta-* without the prefix
    parts: int | None = None


@dataclass(frozen=True)
class BucketInfo:
    name: str
    created: dt.datetime


@dataclass(frozen=True)
class Listing:
    """One page of ListObjectsV2."""

    objects: Sequence[ObjectInfo]
    common_prefixes: Sequence[str]
    truncated: bool
    next_after: str | None  # the last key or prefix on this page, when truncated


@dataclass(frozen=True)
class PutOptions:
    content_type: str = "binary/octet-stream"
    metadata: Mapping[str, str] = field(default_factory=dict)
    max_bytes: int | None = None  # refused (EntityTooLargeError) past this many bytes


@dataclass(frozen=True)
class PartInfo:
    number: int
    size: int
    etag: str
    last_modified: dt.datetime


# -- the seams ----------------------------------------------------------------------------------------------
class ObjectStore(Protocol):
    """Objects of existing buckets. Writes are atomic: a reader sees the old object or the new one."""

    async def put(self, bucket: str, key: str, body: AsyncIterator[bytes], options: PutOptions) -> ObjectInfo:
        """Store ``body`` as ``key``. An exception raised by ``body`` (a bad checksum, a cut connection)
        stores nothing and propagates."""
        ...

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        """The object's size, ETag and metadata; :class:`NoSuchKeyError` if there is none."""
        ...

    async def open(
        self, bucket: str, key: str, byte_range: tuple[int, int] | None = None
    ) -> tuple[ObjectInfo, AsyncIterator[bytes]]:
        """The object and its bytes (``byte_range`` is inclusive and already clamped to the size)."""
        ...

    async def delete(self, bucket: str, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error (as in S3)."""
        ...

    async def list(
        self, bucket: str, prefix: str = "", delimiter: str = "", after: str = "", limit: int = 1000
    ) -> Listing:
        """Keys under ``prefix`` sorted by their UTF-8 bytes, starting after ``after``; with a delimiter,
        keys that hold it past the prefix roll up into common prefixes."""
        ...

    async def copy(
        self, source: tuple[str, str], target: tuple[str, str], options: PutOptions | None
    ) -> ObjectInfo:
        """Copy an object; ``options`` None keeps the source's content type and metadata."""
        ...


class BucketStore(Protocol):
    async def create_bucket(self, name: str) -> None:
        """:class:`BucketExistsError` if it exists, :class:`InvalidBucketNameError` if badly named."""
        ...

    async def delete_bucket(self, name: str) -> None:
        """:class:`BucketNotEmptyError` while it holds objects."""
        ...

    async def buckets(self) -> list[BucketInfo]:
        """Every bucket, by name."""
        ...

    async def bucket(self, name: str) -> BucketInfo:
        """:class:`NoSuchBucketError` if it does not exist."""
        ...


class MultipartStore(Protocol):
    async def start_upload(self, bucket: str, key: str, options: PutOptions) -> str:
        """A new upload id for ``key``."""
        ...

    async def put_part(
        self, bucket: str, upload_id: str, number: int, body: AsyncIterator[bytes], max_bytes: int | None
    ) -> PartInfo:
        """Store part ``number`` (1..10000), replacing an earlier one of the same number."""
        ...

    async def complete(self, bucket: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> ObjectInfo:
        """Join the named parts (ascending numbers, ETags as uploaded) into the object."""
        ...

    async def abort(self, bucket: str, upload_id: str) -> None:
        """Drop the upload and its parts."""
        ...

    async def parts(self, bucket: str, upload_id: str) -> tuple[str, list[PartInfo]]:
        """The upload's key and the parts uploaded so far, by number."""
        ...


class S3Store(ObjectStore, BucketStore, MultipartStore, Protocol):
    """All three: what haniwa's S3 surface serves (``FolderStore``) and jobs use (``open_job_store``)."""
