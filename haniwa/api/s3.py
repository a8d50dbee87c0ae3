"""S3 at haniwa's endpoint: ``boto3.client("s3", endpoint_url=<haniwa>)`` reads and writes the buckets of
``HANIWA_S3_ROOT`` (path-style ``/bucket/key``), the folders knowledge-base data sources read.

A request is S3's when its SigV4 credential scope names the service ``s3`` (the ``Authorization`` header, or
``X-Amz-Credential`` of a presigned URL), so S3 never collides with the Bedrock, OpenAI or playground
routes. An unsigned request is S3's when its first path segment is an existing bucket and no Bedrock route
matches it; on a server with credentials it is refused like any other (``AccessDenied``).

:class:`S3Surface` is an ASGI middleware outside :class:`~haniwa.api.limits.BodyLimits`: object bodies
are bounded by ``HANIWA_S3_MAX_OBJECT_BYTES`` instead of ``HANIWA_MAX_BODY_BYTES`` and stream to disk,
never into memory. Errors have S3's XML shape (``<Error><Code>NoSuchKey</Code>...``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from haniwa.api.auth import (
    authenticate_headers,
    verify_presigned,
    verify_presigned_v2,
    verify_signature,
)
from haniwa.api.s3_wire import Body, error_status, error_xml, parse_xml, s3_code, serialize
from haniwa.config import Settings
from haniwa.errors import NotImplementedOperationError, PlatformError, ValidationError
from haniwa.s3.base import (
    EntityTooLargeError,
    InvalidRangeError,
    NoSuchUploadError,
    ObjectInfo,
    PutOptions,
    S3Store,
    bucket_problem,
    check_bucket,
)
from haniwa.s3.store import FolderStore

__all__ = ["S3Surface"]

logger = logging.getLogger("haniwa.api.s3")

_PRESIGNED_V2 = re.compile(r"(?:^|&)AWSAccessKeyId=")
# first path segments of the playground and the other surfaces: an unsigned request there is never S3's,
# even when a bucket has the same name
_OTHER_SURFACES = frozenset({"", "playground", "haniwa", "health", "docs", "openapi.json", "v1"})
_S3_SCOPE = re.compile(r"Credential=[^/\s]+/\d{8}/[^/\s]+/s3/aws4_request")
_SMALL_BODY = (
    4 * 1024 * 1024
)  # XML bodies: DeleteObjects of 1000 keys, CompleteMultipartUpload of 10000 parts
_KEEP_ALIVE_UNREAD = 64 * 1024
_MAX_METADATA = 2048  # bytes of x-amz-meta-* names and values together (S3's limit)
_RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-disposition": "content-disposition",
    "response-content-language": "content-language",
    "response-content-encoding": "content-encoding",
    "response-cache-control": "cache-control",
    "response-expires": "expires",
}


class MetadataTooLargeError(ValidationError):
    code = "MetadataTooLarge"


@dataclass
class _Call:
    request: Request
    method: str
    bucket: str
    key: str
    query: dict[str, str]
    headers: dict[str, str]
    payload_hash: str | None
    settings: Settings
    store: S3Store

    def body(self, max_bytes: int) -> Body:
        return Body(
            _timed(self.request, self.settings.body_timeout, max_bytes), self.headers, self.payload_hash
        )

    async def small_body(self) -> bytes:
        _check_length(self, _SMALL_BODY)
        chunks = []
        async for chunk in self.body(_SMALL_BODY):
            chunks.append(chunk)
        return b"".join(chunks)

    def options(self, max_bytes: int | None = None) -> PutOptions:
        meta = {k[len("x-amz-meta-") :]: v for k, v in self.headers.items() if k.startswith("x-amz-meta-")}
        if sum(len(k) + len(v) for k, v in meta.items()) > _MAX_METADATA:
            raise MetadataTooLargeError(f"user metadata may hold at most {_MAX_METADATA} bytes")
        kind = self.headers.get("content-type") or "binary/octet-stream"
        return PutOptions(content_type=kind, metadata=meta, max_bytes=max_bytes)


async def _timed(request: Request, timeout: float, max_bytes: int) -> AsyncIterator[bytes]:
    """The raw body, each chunk within ``timeout`` seconds of the last, refused past ``max_bytes``."""
    stream = aiter(request.stream())
    received = 0
    while True:
        try:
            async with asyncio.timeout(timeout):
                chunk = await anext(stream, None)
        except TimeoutError as exc:
            raise RequestTimeoutError(f"the request body paused for more than {timeout:g} s") from exc
        if chunk is None:
            return
        received += len(chunk)
        # the framing of aws-chunked adds a little; the decoded size is bounded by the store
        if received > max_bytes + max_bytes // 50 + 8192:
            raise EntityTooLargeError(f"the request body exceeds {max_bytes} bytes")
        if chunk:
            yield chunk


class RequestTimeoutError(ValidationError):
    code = "RequestTimeout"


async def _drain(request: Request) -> None:
    """Read what is left of a small body an error left unread, so the connection can carry the next
    request; a larger one is not read (the answer then closes the connection)."""
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > _KEEP_ALIVE_UNREAD or "transfer-encoding" in request.headers:
        return
    try:
        async with asyncio.timeout(1):
            async for _ in request.stream():
                pass
    except (RuntimeError, TimeoutError, ClientDisconnect):
        return  # consumed already, or the client is not sending it


def _etag(info_etag: str) -> str:
    return f'"{info_etag}"'


def _object_headers(info: ObjectInfo) -> dict[str, str]:
    headers, _ = serialize(
        "HeadObject",
        {
            "ContentLength": info.size,
            "ContentType": info.content_type,
            "ETag": _etag(info.etag),
            "LastModified": info.last_modified,
            "AcceptRanges": "bytes",
            "Metadata": dict(info.metadata),
            "PartsCount": info.parts,
        },
    )
    return headers


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range of a ``Range`` header, or None for the whole object. As S3 does, a header
    that is not one ``bytes=`` range is ignored; one that starts past the end is ``InvalidRange``."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if m is None or (not m[1] and not m[2]):
        return None
    if not m[1]:  # the last n bytes
        n = int(m[2])
        if n == 0 or size == 0:
            raise InvalidRangeError("The requested range is not satisfiable")
        return max(0, size - n), size - 1
    start = int(m[1])
    end = int(m[2]) if m[2] else size - 1
    if start >= size:
        raise InvalidRangeError("The requested range is not satisfiable")
    if end < start:
        return None
    return start, min(end, size - 1)


def _encode(value: str | None, encoding: str | None) -> str | None:
    return quote(value, safe="/") if value is not None and encoding == "url" else value


# -- operations ----------------------------------------------------------------------------------------
async def list_buckets(c: _Call) -> Response:
    buckets = await c.store.buckets()
    _, body = serialize(
        "ListBuckets",
        {
            "Buckets": [{"Name": b.name, "CreationDate": b.created} for b in buckets],
            "Owner": {"ID": "haniwa", "DisplayName": "haniwa"},
        },
    )
    return _xml(body)


async def create_bucket(c: _Call) -> Response:
    await c.small_body()  # CreateBucketConfiguration (a location): one region here
    await c.store.create_bucket(c.bucket)
    return Response(status_code=200, headers={"location": f"/{c.bucket}"})


async def head_bucket(c: _Call) -> Response:
    await c.store.bucket(c.bucket)
    return Response(status_code=200, headers={"x-amz-bucket-region": c.settings.region})


async def delete_bucket(c: _Call) -> Response:
    await c.store.delete_bucket(c.bucket)
    return Response(status_code=204)


async def bucket_location(c: _Call) -> Response:
    await c.store.bucket(c.bucket)
    region = "" if c.settings.region == "us-east-1" else c.settings.region
    return _xml(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint'
        b' xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' + region.encode() + b"</LocationConstraint>"
    )


def _max_keys(c: _Call) -> int:
    try:
        value = int(c.query.get("max-keys", "1000"))
    except ValueError as exc:
        raise ValidationError("max-keys must be an integer") from exc
    if value < 0:
        raise ValidationError("max-keys must not be negative")
    return min(value, 1000)


async def list_objects_v2(c: _Call) -> Response:
    q = c.query
    prefix, delimiter, enc = q.get("prefix", ""), q.get("delimiter", ""), q.get("encoding-type")
    token = q.get("continuation-token")
    after = q.get("start-after", "")
    if token is not None:
        try:
            after = max(after, base64.urlsafe_b64decode(token.encode()).decode())
        except ValueError as exc:
            raise ValidationError("The continuation token provided is incorrect") from exc
    limit = _max_keys(c)
    page = await c.store.list(c.bucket, prefix, delimiter, after, limit)
    values: dict[str, Any] = {
        "Name": c.bucket,
        "Prefix": _encode(prefix, enc),
        "Delimiter": _encode(delimiter, enc) or None,
        "MaxKeys": limit,
        "EncodingType": enc,
        "KeyCount": len(page.objects) + len(page.common_prefixes),
        "IsTruncated": page.truncated,
        "ContinuationToken": token,
        "StartAfter": _encode(q.get("start-after"), enc),
        "Contents": [_listed(o, enc) for o in page.objects] or None,
        "CommonPrefixes": [{"Prefix": _encode(p, enc)} for p in page.common_prefixes] or None,
    }
    if page.truncated and page.next_after is not None:
        values["NextContinuationToken"] = base64.urlsafe_b64encode(page.next_after.encode()).decode()
    _, body = serialize("ListObjectsV2", values)
    return _xml(body)


async def list_objects(c: _Call) -> Response:
    """ListObjects (v1), which boto3's ``bucket.objects.all()`` and older tools still call."""
    q = c.query
    prefix, delimiter, enc = q.get("prefix", ""), q.get("delimiter", ""), q.get("encoding-type")
    marker = q.get("marker", "")
    limit = _max_keys(c)
    page = await c.store.list(c.bucket, prefix, delimiter, marker, limit)
    values: dict[str, Any] = {
        "Name": c.bucket,
        "Prefix": _encode(prefix, enc),
        "Marker": _encode(marker, enc),
        "Delimiter": _encode(delimiter, enc) or None,
        "MaxKeys": limit,
        "EncodingType": enc,
        "IsTruncated": page.truncated,
        "NextMarker": _encode(page.next_after, enc) if page.truncated and delimiter else None,
        "Contents": [_listed(o, enc) for o in page.objects] or None,
        "CommonPrefixes": [{"Prefix": _encode(p, enc)} for p in page.common_prefixes] or None,
    }
    _, body = serialize("ListObjects", values)
    return _xml(body)


def _listed(o: ObjectInfo, enc: str | None) -> dict[str, Any]:
    return {
        "Key": _encode(o.key, enc),
        "LastModified": o.last_modified,
        "ETag": _etag(o.etag),
        "Size": o.size,
        "StorageClass": "STANDARD",
    }


async def delete_objects(c: _Call) -> Response:
    spec = parse_xml("DeleteObjects", await c.small_body())
    objects = spec.get("Objects") or []
    if len(objects) > 1000:
        raise ValidationError("DeleteObjects takes at most 1000 keys")
    deleted, errors = [], []
    for obj in objects:
        key = str(obj.get("Key", ""))
        try:
            await c.store.delete(c.bucket, key)
            deleted.append({"Key": key})
        except PlatformError as exc:
            errors.append({"Key": key, "Code": s3_code(exc), "Message": exc.message})
    _, body = serialize(
        "DeleteObjects",
        {"Deleted": None if spec.get("Quiet") else deleted or None, "Errors": errors or None},
    )
    return _xml(body)


async def put_object(c: _Call) -> Response:
    limit = c.settings.s3_max_object_bytes
    _check_length(c, limit)
    info = await c.store.put(c.bucket, c.key, aiter(c.body(limit)), c.options(limit))
    headers, _ = serialize("PutObject", {"ETag": _etag(info.etag)})
    return Response(status_code=200, headers=headers)


def _check_length(c: _Call, limit: int) -> None:
    """Refuse a declared size over ``limit`` before reading a byte of it."""
    declared = c.headers.get("x-amz-decoded-content-length") or c.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise EntityTooLargeError(
            f"Your proposed upload ({declared} bytes) exceeds the maximum allowed object size ({limit})"
        )


async def copy_object(c: _Call) -> Response:
    source = unquote(c.headers["x-amz-copy-source"]).split("?", 1)[0].lstrip("/")
    src_bucket, _, src_key = source.partition("/")
    if bucket_problem(src_bucket) or not src_key:
        raise ValidationError(f"x-amz-copy-source {source[:120]!r} does not name bucket/key")
    replace = c.headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"
    info = await c.store.copy((src_bucket, src_key), (c.bucket, c.key), c.options() if replace else None)
    _, body = serialize(
        "CopyObject", {"CopyObjectResult": {"ETag": _etag(info.etag), "LastModified": info.last_modified}}
    )
    return _xml(body)


class PreconditionFailedError(ValidationError):
    code = "PreconditionFailed"


def _preconditions(c: _Call, info: ObjectInfo) -> Response | None:
    """If-Match (412 unless the ETag is one listed) and If-None-Match (304 when it is), as S3 answers
    them; s3transfer pins a multi-range download to the first ETag it saw with If-Match."""
    tags = {_etag(info.etag), "*"}
    match = c.headers.get("if-match")
    if match is not None and not tags & {t.strip() for t in match.split(",")}:
        raise PreconditionFailedError("At least one of the pre-conditions you specified did not hold")
    none_match = c.headers.get("if-none-match")
    if none_match is not None and tags & {t.strip() for t in none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": _etag(info.etag)})
    return None


async def get_object(c: _Call) -> Response:
    head = await c.store.head(c.bucket, c.key)
    if (answer := _preconditions(c, head)) is not None:
        return answer
    byte_range = _range(c.headers.get("range"), head.size)
    info, chunks = await c.store.open(c.bucket, c.key, byte_range)
    if info.etag != head.etag:  # replaced between the two looks: check and range against the new object
        await chunks.aclose()  # type: ignore[attr-defined]
        if (answer := _preconditions(c, info)) is not None:
            return answer
        byte_range = _range(c.headers.get("range"), info.size)
        info, chunks = await c.store.open(c.bucket, c.key, byte_range)
    headers = _object_headers(info)
    for param, header in _RESPONSE_OVERRIDES.items():
        if param in c.query:
            headers[header] = c.query[param]
    status = 200
    if byte_range is not None:
        start, end = byte_range
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
        headers["Content-Length"] = str(end - start + 1)
        status = 206
    return StreamingResponse(chunks, status_code=status, headers=headers)


async def head_object(c: _Call) -> Response:
    info = await c.store.head(c.bucket, c.key)
    if (answer := _preconditions(c, info)) is not None:
        return answer
    return Response(status_code=200, headers=_object_headers(info))


async def delete_object(c: _Call) -> Response:
    await c.store.delete(c.bucket, c.key)
    return Response(status_code=204)


async def create_upload(c: _Call) -> Response:
    upload_id = await c.store.start_upload(c.bucket, c.key, c.options())
    _, body = serialize("CreateMultipartUpload", {"Bucket": c.bucket, "Key": c.key, "UploadId": upload_id})
    return _xml(body)


async def _upload_of_key(c: _Call) -> str:
    upload_id = c.query["uploadId"]
    key, _ = await c.store.parts(c.bucket, upload_id)
    if key != c.key:
        raise NoSuchUploadError("The specified upload does not exist.")
    return upload_id


async def upload_part(c: _Call) -> Response:
    limit = c.settings.s3_max_object_bytes
    _check_length(c, limit)
    upload_id = await _upload_of_key(c)
    try:
        number = int(c.query["partNumber"])
    except ValueError as exc:
        raise ValidationError("partNumber must be an integer") from exc
    part = await c.store.put_part(c.bucket, upload_id, number, aiter(c.body(limit)), limit)
    headers, _ = serialize("UploadPart", {"ETag": _etag(part.etag)})
    return Response(status_code=200, headers=headers)


async def complete_upload(c: _Call) -> Response:
    upload_id = await _upload_of_key(c)
    spec = parse_xml("CompleteMultipartUpload", await c.small_body())
    parts = [(int(p.get("PartNumber", 0)), str(p.get("ETag", ""))) for p in spec.get("Parts") or []]
    info = await c.store.complete(c.bucket, upload_id, parts)
    _, body = serialize(
        "CompleteMultipartUpload",
        {
            "Location": f"/{c.bucket}/{quote(c.key)}",
            "Bucket": c.bucket,
            "Key": c.key,
            "ETag": _etag(info.etag),
        },
    )
    return _xml(body)


async def abort_upload(c: _Call) -> Response:
    await c.store.abort(c.bucket, await _upload_of_key(c))
    return Response(status_code=204)


async def list_parts(c: _Call) -> Response:
    upload_id = await _upload_of_key(c)
    _, parts = await c.store.parts(c.bucket, upload_id)
    _, body = serialize(
        "ListParts",
        {
            "Bucket": c.bucket,
            "Key": c.key,
            "UploadId": upload_id,
            "MaxParts": 10000,
            "IsTruncated": False,
            "Parts": [
                {
                    "PartNumber": p.number,
                    "LastModified": p.last_modified,
                    "ETag": _etag(p.etag),
                    "Size": p.size,
                }
                for p in parts
            ]
            or None,
        },
    )
    return _xml(body)


def _xml(body: bytes) -> Response:
    return Response(body, status_code=200, media_type="application/xml")


_Handler = Callable[[_Call], Awaitable[Response]]


def _route(method: str, bucket: str, key: str, query: dict[str, str], headers: dict[str, str]) -> _Handler:
    if not bucket:
        if method == "GET":
            return list_buckets
    elif not key:
        if method == "PUT" and not query:
            return create_bucket
        if method == "HEAD":
            return head_bucket
        if method == "DELETE" and not query:
            return delete_bucket
        if method == "GET" and query.get("list-type") == "2":
            return list_objects_v2
        if method == "GET" and "location" in query:
            return bucket_location
        if method == "GET" and set(query) <= {"prefix", "delimiter", "marker", "max-keys", "encoding-type"}:
            return list_objects
        if method == "POST" and "delete" in query:
            return delete_objects
    else:
        upload = "uploadId" in query
        if method == "PUT" and upload and "partNumber" in query and "x-amz-copy-source" not in headers:
            return upload_part
        if method == "PUT" and not upload and "x-amz-copy-source" in headers:
            return copy_object
        if method == "PUT" and not query.keys() - {"x-id"}:
            return put_object
        if method == "GET" and upload:
            return list_parts
        if method == "GET":
            return get_object
        if method == "HEAD":
            return head_object
        if method == "DELETE":
            return abort_upload if upload else delete_object
        if method == "POST" and "uploads" in query:
            return create_upload
        if method == "POST" and upload:
            return complete_upload
    subresource = ",".join(sorted(query)) or "-"
    what = "a bucket" if key == "" else "an object"
    raise NotImplementedOperationError(f"{method} on {what} with ?{subresource} is not served by haniwa's S3")


# -- the surface ---------------------------------------------------------------------------------------
class S3Surface:
    """ASGI middleware that answers S3 requests and passes every other request on to ``app``."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.store: S3Store = FolderStore(settings.s3_folder)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._is_s3(scope):
            response = await self._handle(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _is_s3(self, scope: Scope) -> bool:
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if authorization:
            return _S3_SCOPE.search(authorization) is not None
        query = scope.get("query_string", b"").decode("latin-1")
        if "X-Amz-Credential=" in query:
            return "%2Fs3%2Faws4_request" in query or "/s3/aws4_request" in query
        if _PRESIGNED_V2.search(query):
            return True  # only S3 presigns this way
        # unsigned: S3's when it names an existing bucket and no Bedrock operation
        raw_path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        bucket = unquote(raw_path.lstrip("/").split("/", 1)[0])
        if bucket in _OTHER_SURFACES or bucket_problem(bucket):
            return False
        if not (self.settings.s3_folder / bucket).is_dir():
            return False
        platform = getattr(getattr(scope.get("app"), "state", None), "platform", None)
        router = getattr(platform, "router", None)
        return router is None or router.match(scope["method"], raw_path) is None

    async def _handle(self, request: Request) -> Response:
        request_id = uuid.uuid4().hex.upper()[:16]
        scope = request.scope
        raw_path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        method = request.method
        path = raw_path.split("?", 1)[0]
        bucket_raw, _, key_raw = path.lstrip("/").partition("/")
        bucket, key = unquote(bucket_raw), unquote(key_raw)
        try:
            headers_list = [(k, v) for k, v in request.headers.items()]
            headers = {k.lower(): v for k, v in headers_list}
            query_string = scope.get("query_string", b"").decode("latin-1")
            url = f"{request.url.scheme}://{request.url.netloc}{raw_path}" + (
                f"?{query_string}" if query_string else ""
            )
            payload_hash = headers.get("x-amz-content-sha256")
            if "x-amz-credential=" in query_string.lower():
                verify_presigned(self.settings, method, url, headers_list)
            elif _PRESIGNED_V2.search(query_string) and "authorization" not in headers:
                verify_presigned_v2(self.settings, method, url, headers_list)
            else:
                signed = authenticate_headers(self.settings, headers_list, s3=True)
                if signed is not None:
                    verify_signature(self.settings, signed, method, url, headers_list, None)
            if payload_hash and payload_hash.startswith("STREAMING-AWS4-HMAC-SHA256"):
                raise NotImplementedOperationError(
                    "signed aws-chunked uploads are not served: use the default (an unsigned trailer) or"
                    " a payload hash"
                )
            query = {k: v[0] for k, v in parse_qs(query_string, keep_blank_values=True).items()}
            if bucket:
                check_bucket(bucket)
            handler = _route(method, bucket, key, query, headers)
            call = _Call(
                request, method, bucket, key, query, headers, payload_hash, self.settings, self.store
            )
            response = await handler(call)
        except ClientDisconnect:
            return Response(status_code=400)
        except PlatformError as exc:
            await _drain(request)
            return self._error(exc, request_id, raw_path, method, request.headers)
        except Exception:  # noqa: BLE001 - any other failure is ours: logged, no trace to the client
            logger.exception("S3 %s %s failed (request id %s)", method, raw_path, request_id)
            internal = PlatformError(f"We encountered an internal error (request id {request_id}).")
            return self._error(internal, request_id, raw_path, method, request.headers)
        response.headers["x-amz-request-id"] = request_id
        return response

    def _error(
        self, exc: PlatformError, request_id: str, resource: str, method: str, headers: Any
    ) -> Response:
        code = s3_code(exc)
        status = error_status(code)
        out = {"x-amz-request-id": request_id}
        length = headers.get("content-length", "")
        if headers.get("transfer-encoding") or (length.isdigit() and int(length) > _KEEP_ALIVE_UNREAD):
            out["connection"] = "close"  # the body is left unread: this connection cannot carry another
        if method == "HEAD":  # a HEAD answer has no body: botocore reads the status alone
            return Response(status_code=status, headers=out)
        body = error_xml(code, exc.message, request_id, resource.split("?", 1)[0])
        return Response(body, status_code=status, headers=out, media_type="application/xml")
