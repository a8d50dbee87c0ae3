"""``RemoteStore``: the :class:`~haniwa.s3.base.S3Store` seam over a real S3-compatible endpoint.

When ``HANIWA_S3_ENDPOINT`` is set, jobs (batch inference, evaluation, customization, invocation logs)
read and write that store instead of the local folder. Every call is one botocore S3 call (path-style
addressing, ``HANIWA_S3_ACCESS_KEY_ID`` / ``HANIWA_S3_SECRET_ACCESS_KEY``) run in a worker thread, so the
event loop never blocks; botocore's errors come back as haniwa's S3 error types.

Nothing is held whole in memory: reads stream the response body in 64 KiB chunks, and a put sends its
body as one ``PutObject`` when it ends within 8 MiB, else as a multipart upload of 8 MiB parts (aborted
when the body fails or passes ``max_bytes``).

::

    store = RemoteStore.from_settings(settings)  # or open_job_store(settings)
    head, chunks = await store.open("data", "in.jsonl")
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import datetime as dt
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar

from haniwa.errors import AccessDeniedError, PlatformError, ValidationError
from haniwa.s3.base import (
    BadDigestError,
    BucketExistsError,
    BucketInfo,
    BucketNotEmptyError,
    EntityTooLargeError,
    EntityTooSmallError,
    InvalidBucketNameError,
    InvalidPartError,
    InvalidRangeError,
    Listing,
    NoSuchBucketError,
    NoSuchKeyError,
    NoSuchUploadError,
    ObjectInfo,
    PartInfo,
    PutOptions,
    check_bucket,
    check_key,
)

if TYPE_CHECKING:
    from haniwa.config import Settings

__all__ = ["RemoteStore", "endpoint_client", "error_code", "raise_transport_error", "PART_BYTES"]

T = TypeVar("T")

PART_BYTES = 8 * 1024 * 1024  # a put past this goes up as a multipart upload of parts this size
READ_CHUNK = 64 * 1024
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

_ERRORS: dict[str, type[PlatformError]] = {
    "NoSuchBucket": NoSuchBucketError,
    "NoSuchKey": NoSuchKeyError,
    "NoSuchUpload": NoSuchUploadError,
    "BucketAlreadyOwnedByYou": BucketExistsError,
    "BucketAlreadyExists": BucketExistsError,
    "BucketNotEmpty": BucketNotEmptyError,
    "InvalidBucketName": InvalidBucketNameError,
    "InvalidRange": InvalidRangeError,
    "InvalidPart": InvalidPartError,
    "InvalidPartOrder": InvalidPartError,
    "EntityTooSmall": EntityTooSmallError,
    "EntityTooLarge": EntityTooLargeError,
    "BadDigest": BadDigestError,
    "InvalidDigest": BadDigestError,
    "AccessDenied": AccessDeniedError,
    "InvalidAccessKeyId": AccessDeniedError,
    "SignatureDoesNotMatch": AccessDeniedError,
    "InvalidArgument": ValidationError,
}


def endpoint_client(settings: Settings) -> Any:
    """A botocore S3 client for ``HANIWA_S3_ENDPOINT`` (path-style, short timeouts, two tries).

    Loading the service model takes a moment: call it in a worker thread. ``ValidationError`` when no
    endpoint is configured."""
    if not settings.s3_endpoint:
        raise ValidationError("no S3 endpoint is configured (HANIWA_S3_ENDPOINT)")
    import botocore.session
    from botocore.config import Config

    secret = settings.s3_secret_access_key
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=None if secret is None else secret.get_secret_value(),
        region_name=settings.region,
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 2, "mode": "standard"},
        ),
    )


def raise_transport_error(exc: BaseException, endpoint: str, where: str) -> NoReturn:
    """Raise what a botocore failure other than an S3 error answer means: an unreachable endpoint,
    missing credentials, another botocore error (``where`` names the store), or ``exc`` itself."""
    from botocore.exceptions import (
        BotoCoreError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        raise PlatformError(f"cannot reach the S3 endpoint {endpoint} (HANIWA_S3_ENDPOINT): {exc}") from exc
    if isinstance(exc, NoCredentialsError):
        raise PlatformError(
            f"no credentials for the S3 endpoint {endpoint}: "
            "set HANIWA_S3_ACCESS_KEY_ID and HANIWA_S3_SECRET_ACCESS_KEY"
        ) from exc
    if isinstance(exc, BotoCoreError):
        raise PlatformError(f"{where}: {exc}") from exc
    raise exc


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ``ClientError`` ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _upload_token(key: str, upload_id: str) -> str:
    # S3 wants the key with every multipart call; the store's callers hold only the upload id
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=") + "." + upload_id


def _upload_parts(token: str) -> tuple[str, str]:
    encoded, sep, upload_id = token.partition(".")
    try:
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        key = ""
    if not sep or not key or not upload_id:
        raise NoSuchUploadError("The specified upload does not exist.")
    return key, upload_id


def _etag(value: Any) -> str:
    return str(value or "").strip('"')


class RemoteStore:
    """Objects, buckets and multipart uploads of one S3-compatible endpoint (an :class:`S3Store`)."""

    def __init__(self, build: Callable[[], Any], endpoint: str) -> None:
        """``build``: makes the botocore S3 client (called once, in a worker thread, on first use)."""
        self._build = build
        self._client_obj: Any = None
        self.endpoint = endpoint

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteStore:
        if not settings.s3_endpoint:
            raise ValidationError("no S3 endpoint is configured (HANIWA_S3_ENDPOINT)")
        return cls(lambda: endpoint_client(settings), settings.s3_endpoint)

    # -- plumbing ---------------------------------------------------------------------------------------
    def _client(self) -> Any:
        if self._client_obj is None:
            self._client_obj = self._build()
        return self._client_obj

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(client, ...)`` in a worker thread; botocore failures become haniwa errors."""

        def run() -> T:
            try:
                return fn(self._client(), *args, **kwargs)
            except PlatformError:
                raise
            except Exception as exc:
                self._translate(exc)

        return await asyncio.to_thread(run)

    def _translate(self, exc: Exception) -> NoReturn:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            code = error_code(exc)
            message = exc.response.get("Error", {}).get("Message") or code
            kind = _ERRORS.get(code)
            if kind is not None:
                raise kind(f"{message} (S3 endpoint {self.endpoint})") from exc
            if code in ("404", "NotFound"):
                raise NoSuchKeyError(
                    f"The specified key does not exist. (S3 endpoint {self.endpoint})"
                ) from exc
            if code in ("403", "Forbidden"):
                raise AccessDeniedError(f"access denied by the S3 endpoint {self.endpoint}") from exc
            raise PlatformError(f"S3 endpoint {self.endpoint}: {code}: {message}") from exc
        raise_transport_error(exc, self.endpoint, f"S3 endpoint {self.endpoint}")

    @staticmethod
    def _info(key: str, r: dict[str, Any]) -> ObjectInfo:
        etag = _etag(r.get("ETag"))
        parts = int(etag.rsplit("-", 1)[1]) if "-" in etag and etag.rsplit("-", 1)[1].isdigit() else None
        return ObjectInfo(
            key=key,
            size=int(r.get("ContentLength", r.get("Size", 0))),
            etag=etag,
            last_modified=r.get("LastModified") or _EPOCH,
            content_type=r.get("ContentType") or "binary/octet-stream",
            metadata=dict(r.get("Metadata") or {}),
            parts=parts,
        )

    # -- buckets ----------------------------------------------------------------------------------------
    async def create_bucket(self, name: str) -> None:
        check_bucket(name)
        await self._call(lambda c: c.create_bucket(Bucket=name))

    async def delete_bucket(self, name: str) -> None:
        await self._call(lambda c: c.delete_bucket(Bucket=name))

    async def buckets(self) -> builtins.list[BucketInfo]:
        r = await self._call(lambda c: c.list_buckets())
        found = [BucketInfo(b["Name"], b.get("CreationDate") or _EPOCH) for b in r.get("Buckets", ())]
        return sorted(found, key=lambda b: b.name)

    async def bucket(self, name: str) -> BucketInfo:
        def run(c: Any) -> BucketInfo:
            try:
                c.head_bucket(Bucket=name)
            except Exception as exc:
                if error_code(exc) in ("404", "NotFound", "NoSuchBucket"):
                    raise NoSuchBucketError(f"The specified bucket does not exist: {name}") from exc
                raise
            for b in c.list_buckets().get("Buckets", ()):
                if b["Name"] == name:
                    return BucketInfo(name, b.get("CreationDate") or _EPOCH)
            return BucketInfo(name, _EPOCH)  # reachable but not ours to list

        return await self._call(run)

    # -- objects ----------------------------------------------------------------------------------------
    async def head(self, bucket: str, key: str) -> ObjectInfo:
        def run(c: Any) -> ObjectInfo:
            try:
                return self._info(key, c.head_object(Bucket=bucket, Key=key))
            except Exception as exc:
                if error_code(exc) not in ("404", "NotFound", "NoSuchKey"):
                    raise
            # HEAD has no body to tell a missing key from a missing bucket: ask about the bucket
            try:
                c.head_bucket(Bucket=bucket)
            except Exception as exc:
                if error_code(exc) in ("404", "NotFound", "NoSuchBucket"):
                    raise NoSuchBucketError(f"The specified bucket does not exist: {bucket}") from exc
                raise
            raise NoSuchKeyError("The specified key does not exist.")

        return await self._call(run)

    async def open(
        self, bucket: str, key: str, byte_range: tuple[int, int] | None = None
    ) -> tuple[ObjectInfo, AsyncIterator[bytes]]:
        extra = {} if byte_range is None else {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"}
        r = await self._call(lambda c: c.get_object(Bucket=bucket, Key=key, **extra))
        body = r["Body"]
        if byte_range is not None:  # ContentLength is the range's; the object's size is in ContentRange
            total = str(r.get("ContentRange", "")).rpartition("/")[2]
            r = {**r, "ContentLength": int(total) if total.isdigit() else r.get("ContentLength", 0)}
        info = self._info(key, r)

        async def reader() -> AsyncIterator[bytes]:
            try:
                while True:
                    chunk = await self._call(lambda _c: body.read(READ_CHUNK))
                    if not chunk:
                        return
                    yield bytes(chunk)
            finally:
                body.close()

        return info, reader()

    async def put(self, bucket: str, key: str, body: AsyncIterator[bytes], options: PutOptions) -> ObjectInfo:
        check_key(key)
        attrs: dict[str, Any] = {"ContentType": options.content_type, "Metadata": dict(options.metadata)}
        buffer = bytearray()
        total = 0
        upload_id: str | None = None
        parts: builtins.list[dict[str, Any]] = []

        async def send_part(data: bytes) -> None:
            number = len(parts) + 1
            r = await self._call(
                lambda c: c.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
                )
            )
            parts.append({"PartNumber": number, "ETag": r["ETag"]})

        try:
            async for chunk in body:
                total += len(chunk)
                if options.max_bytes is not None and total > options.max_bytes:
                    raise EntityTooLargeError(
                        f"Your proposed upload exceeds the maximum allowed size ({options.max_bytes} bytes)"
                    )
                buffer += chunk
                while len(buffer) >= PART_BYTES:
                    if upload_id is None:
                        r = await self._call(
                            lambda c: c.create_multipart_upload(Bucket=bucket, Key=key, **attrs)
                        )
                        upload_id = str(r["UploadId"])
                    await send_part(bytes(buffer[:PART_BYTES]))
                    del buffer[:PART_BYTES]
            if upload_id is None:
                data = bytes(buffer)
                await self._call(lambda c: c.put_object(Bucket=bucket, Key=key, Body=data, **attrs))
            else:
                if buffer:
                    await send_part(bytes(buffer))
                done = {"Parts": parts}
                await self._call(
                    lambda c: c.complete_multipart_upload(
                        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload=done
                    )
                )
        except BaseException:
            if upload_id is not None:
                uid = upload_id
                await asyncio.shield(self._abort_quietly(bucket, key, uid))
            raise
        return await self.head(bucket, key)

    async def _abort_quietly(self, bucket: str, key: str, upload_id: str) -> None:
        with contextlib.suppress(PlatformError):  # the endpoint's lifecycle rules reap what is left
            await self._call(lambda c: c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id))

    async def delete(self, bucket: str, key: str) -> None:
        await self._call(lambda c: c.delete_object(Bucket=bucket, Key=key))

    async def list(
        self, bucket: str, prefix: str = "", delimiter: str = "", after: str = "", limit: int = 1000
    ) -> Listing:
        args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": max(1, min(limit, 1000))}
        if delimiter:
            args["Delimiter"] = delimiter
        if after:
            # a page may end on a common prefix: skip every key under it, not just the prefix itself
            rolled = bool(delimiter) and after.endswith(delimiter)
            args["StartAfter"] = after + "\U0010ffff" if rolled else after
        r = await self._call(lambda c: c.list_objects_v2(**args))
        objects = [self._info(o["Key"], o) for o in r.get("Contents", ())]
        prefixes = [p["Prefix"] for p in r.get("CommonPrefixes", ())]
        truncated = bool(r.get("IsTruncated"))
        last = max([o.key for o in objects] + prefixes, default=None) if truncated else None
        return Listing(objects=objects, common_prefixes=prefixes, truncated=truncated, next_after=last)

    async def copy(
        self, source: tuple[str, str], target: tuple[str, str], options: PutOptions | None
    ) -> ObjectInfo:
        check_key(target[1])
        args: dict[str, Any] = {
            "Bucket": target[0],
            "Key": target[1],
            "CopySource": {"Bucket": source[0], "Key": source[1]},
        }
        if options is None:
            args["MetadataDirective"] = "COPY"
        else:
            args |= {
                "MetadataDirective": "REPLACE",
                "ContentType": options.content_type,
                "Metadata": dict(options.metadata),
            }
        await self._call(lambda c: c.copy_object(**args))
        return await self.head(*target)

    # -- multipart uploads ------------------------------------------------------------------------------
    async def start_upload(self, bucket: str, key: str, options: PutOptions) -> str:
        check_key(key)
        r = await self._call(
            lambda c: c.create_multipart_upload(
                Bucket=bucket, Key=key, ContentType=options.content_type, Metadata=dict(options.metadata)
            )
        )
        return _upload_token(key, str(r["UploadId"]))

    async def put_part(
        self, bucket: str, upload_id: str, number: int, body: AsyncIterator[bytes], max_bytes: int | None
    ) -> PartInfo:
        key, uid = _upload_parts(upload_id)
        if not 1 <= number <= 10000:
            raise InvalidPartError(f"part numbers run from 1 to 10000, not {number}")
        # spooled: a part up to PART_BYTES stays in memory, a bigger one goes to a temporary file
        with tempfile.SpooledTemporaryFile(max_size=PART_BYTES) as spool:
            size = 0
            async for chunk in body:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise EntityTooLargeError(
                        f"Your proposed upload exceeds the maximum allowed size ({max_bytes} bytes)"
                    )
                await asyncio.to_thread(spool.write, chunk)
            spool.seek(0)
            file: IO[bytes] = spool
            r = await self._call(
                lambda c: c.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=number, Body=file)
            )
        return PartInfo(number, size, _etag(r["ETag"]), dt.datetime.now(dt.UTC))

    async def complete(self, bucket: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> ObjectInfo:
        key, uid = _upload_parts(upload_id)
        done = {"Parts": [{"PartNumber": n, "ETag": f'"{_etag(e)}"'} for n, e in parts]}
        await self._call(
            lambda c: c.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload=done)
        )
        return await self.head(bucket, key)

    async def abort(self, bucket: str, upload_id: str) -> None:
        key, uid = _upload_parts(upload_id)
        await self._call(lambda c: c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid))

    async def parts(self, bucket: str, upload_id: str) -> tuple[str, builtins.list[PartInfo]]:
        key, uid = _upload_parts(upload_id)

        def run(c: Any) -> builtins.list[PartInfo]:
            found = []
            for page in c.get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=uid):
                for p in page.get("Parts", ()):
                    found.append(
                        PartInfo(
                            int(p["PartNumber"]),
                            int(p["Size"]),
                            _etag(p["ETag"]),
                            p.get("LastModified") or _EPOCH,
                        )
                    )
            return found

        return key, sorted(await self._call(run), key=lambda p: p.number)
