"""The S3 wire format (rest-xml): responses from botocore's s3 service model, request bodies checked as they
stream in.

botocore writes rest-xml requests and reads responses; the server's half is its mirror and is written
here, driven by the output shapes of ``botocore/data/s3/.../service-2.json`` (which header carries what,
which list is flattened, element names), so the answers are what botocore's ``RestXMLParser`` reads.
Small XML request bodies (DeleteObjects, CompleteMultipartUpload) are read with that same parser.

:class:`Body` decodes ``aws-chunked`` uploads (what botocore sends over TLS by default since 1.36:
``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` with a CRC32 trailer) and checks, once the last byte is in and
before the store publishes anything, every digest the client sent: ``x-amz-content-sha256``,
``Content-MD5`` and ``x-amz-checksum-<algorithm>`` (as a header or a trailer).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
from botocore.httpchecksum import Crc32Checksum, Sha1Checksum, Sha256Checksum, Sha512Checksum
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.parsers import RestXMLParser

from haniwa.errors import AccessDeniedError, PlatformError, ValidationError
from haniwa.s3.base import BadDigestError

__all__ = ["s3_model", "serialize", "error_xml", "parse_xml", "Body", "ERROR_STATUS", "error_status"]

_NS = "http://s3.amazonaws.com/doc/2006-03-01/"

# the root element AWS names for each output; botocore reads the children whatever the root is called
_ROOTS = {
    "ListObjectsV2": "ListBucketResult",
    "ListBuckets": "ListAllMyBucketsResult",
    "CreateMultipartUpload": "InitiateMultipartUploadResult",
    "CompleteMultipartUpload": "CompleteMultipartUploadResult",
    "DeleteObjects": "DeleteResult",
    "ListParts": "ListPartsResult",
}

# S3 errors the model declares carry their status there; these are the ones it leaves out
ERROR_STATUS = {
    "AccessDenied": 403,
    "BucketNotEmpty": 409,
    "InvalidRange": 416,
    "InvalidBucketName": 400,
    "InvalidArgument": 400,
    "InvalidPart": 400,
    "InvalidRequest": 400,
    "EntityTooSmall": 400,
    "EntityTooLarge": 400,
    "BadDigest": 400,
    "MalformedXML": 400,
    "NotImplemented": 501,
    "InternalError": 500,
    "SignatureDoesNotMatch": 403,
    "RequestTimeout": 400,
    "PreconditionFailed": 412,
    "MetadataTooLarge": 400,
}

# haniwa's own error codes, said the way S3 says them
_S3_CODES = {
    "AccessDeniedException": "AccessDenied",
    "ValidationException": "InvalidRequest",
    "ResourceNotFoundException": "NoSuchKey",
    "NotImplementedException": "NotImplemented",
    "InternalServerException": "InternalError",
    "ConflictException": "InvalidRequest",
    "ThrottlingException": "SlowDown",
}


@functools.cache
def s3_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("s3")


def op(name: str) -> OperationModel:
    return s3_model().operation_model(name)


def s3_code(exc: PlatformError) -> str:
    return _S3_CODES.get(exc.code, exc.code)


def error_status(code: str) -> int:
    if code in ERROR_STATUS:
        return ERROR_STATUS[code]
    try:
        shape = s3_model().shape_for(code)
    except Exception:  # noqa: BLE001 - botocore raises NoShapeFoundError for a code it does not model
        return 503 if code == "SlowDown" else 400
    return int(shape.metadata.get("error", {}).get("httpStatusCode", 400))


def error_xml(code: str, message: str, request_id: str, resource: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{escape(request_id)}</RequestId></Error>"
    ).encode()


# -- output ------------------------------------------------------------------------------------------------
def _text(shape: Shape, value: Any, *, header: bool = False) -> str:
    if shape.type_name == "timestamp":
        assert isinstance(value, dt.datetime)
        when = value.astimezone(dt.UTC)
        if header:  # HTTP dates in headers (Last-Modified), ISO 8601 in bodies
            return when.strftime("%a, %d %b %Y %H:%M:%S GMT")
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    if shape.type_name == "boolean":
        return "true" if value else "false"
    return str(value)


def _element(name: str, shape: Shape, value: Any) -> str:
    if shape.type_name == "structure":
        inner = "".join(_member(m, s, value[m]) for m, s in shape.members.items() if value.get(m) is not None)
        return f"<{name}>{inner}</{name}>"
    if shape.type_name == "list":
        item = shape.member
        item_name = item.serialization.get("name", "member")
        return f"<{name}>{''.join(_element(item_name, item, v) for v in value)}</{name}>"
    return f"<{name}>{escape(_text(shape, value))}</{name}>"


def _member(member: str, shape: Shape, value: Any) -> str:
    name = shape.serialization.get("name", member)
    if shape.type_name == "list" and shape.serialization.get("flattened"):
        return "".join(_element(name, shape.member, v) for v in value)
    return _element(name, shape, value)


def serialize(op_name: str, values: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
    """Headers and XML body of ``op_name``'s output holding ``values`` (member names as in the model)."""
    shape = op(op_name).output_shape
    headers: dict[str, str] = {}
    body_members: dict[str, Any] = {}
    if shape is None:
        return headers, b""
    payload = shape.serialization.get("payload")
    for member, mshape in shape.members.items():
        value = values.get(member)
        if value is None:
            continue
        location = mshape.serialization.get("location")
        if location == "header":
            headers[mshape.serialization["name"]] = _text(mshape, value, header=True)
        elif location == "headers":
            prefix = mshape.serialization["name"]
            headers.update({f"{prefix}{k}": v for k, v in value.items()})
        elif member == payload:
            root = mshape.serialization.get("name", member)
            inner = "".join(
                _member(m, s, value[m]) for m, s in mshape.members.items() if value.get(m) is not None
            )
            return headers, _document(root, inner)
        else:
            body_members[member] = value
    if not body_members:
        return headers, b""
    inner = "".join(_member(m, shape.members[m], v) for m, v in body_members.items())
    return headers, _document(_ROOTS.get(op_name, f"{op_name}Result"), inner)


def _document(root: str, inner: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{_NS}">{inner}</{root}>'.encode()


class MalformedXMLError(ValidationError):
    """A request body that is not the XML the operation takes."""

    code = "MalformedXML"


# -- input -------------------------------------------------------------------------------------------------
def parse_xml(op_name: str, body: bytes) -> dict[str, Any]:
    """The payload member of ``op_name``'s input parsed from ``body`` (botocore's own rest-xml reader)."""
    shape = op(op_name).input_shape
    payload = shape.serialization["payload"]
    # no DTDs: entity tricks (billion laughs, external entities) have no place in these small bodies
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise ValidationError("XML with a DOCTYPE or ENTITY declaration is not accepted")
    try:
        parsed: dict[str, Any] = RestXMLParser().parse(
            {"body": body, "headers": {}, "status_code": 200}, shape.members[payload]
        )
    except Exception as exc:  # noqa: BLE001 - any parse failure is the client's malformed XML
        raise MalformedXMLError("The XML you provided was not well-formed") from exc
    parsed.pop("ResponseMetadata", None)
    return parsed


# -- streamed bodies ---------------------------------------------------------------------------------------
_CHECKSUMS: dict[str, Any] = {
    "crc32": Crc32Checksum,
    "sha1": Sha1Checksum,
    "sha256": Sha256Checksum,
    "sha512": Sha512Checksum,
}
_MAX_CHUNK_LINE = 4096
_BATCH = 1024 * 1024


async def _batched(source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``source`` regrouped into pieces of about ``_BATCH`` bytes (the server receives ~64 KiB at a time)."""
    pending: list[bytes] = []
    held = 0
    async for data in source:
        pending.append(data)
        held += len(data)
        if held >= _BATCH:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)


async def _hashed(update: Callable[[bytes], None], data: bytes) -> None:
    # hashlib lets go of the GIL on large inputs: a worker thread keeps the event loop free, and the
    # hashes of one upload run beside the server's other work
    if len(data) >= 64 * 1024:
        await asyncio.to_thread(update, data)
    else:
        update(data)


class Body:
    """A request body as it streams in: ``aws-chunked`` decoded, digests checked at the end."""

    def __init__(self, stream: AsyncIterator[bytes], headers: Mapping[str, str], payload_hash: str | None):
        self._stream = stream
        self._headers = headers
        self._chunked = "aws-chunked" in headers.get("content-encoding", "").lower()
        self._sha256 = hashlib.sha256() if payload_hash and len(payload_hash) == 64 else None
        self._payload_hash = payload_hash
        self._md5 = hashlib.md5(usedforsecurity=False) if "content-md5" in headers else None
        self._checksums: dict[str, Any] = {}
        for name, cls in _CHECKSUMS.items():
            if f"x-amz-checksum-{name}" in headers:
                self._checksums[name] = cls()
        trailer = headers.get("x-amz-trailer", "").strip().lower()
        if trailer:
            algorithm = trailer.removeprefix("x-amz-checksum-")
            if algorithm not in _CHECKSUMS:
                raise ValidationError(
                    f"the trailing checksum {trailer!r} is not supported (crc32, sha1, sha256)"
                )
            self._checksums[algorithm] = _CHECKSUMS[algorithm]()
        self.trailers: dict[str, str] = {}

    async def __aiter__(self) -> AsyncIterator[bytes]:
        raw = self._decoded() if self._chunked else self._raw()
        async for data in _batched(raw):
            await _hashed(self._update, data)
            yield data
        self._check()

    def _update(self, data: bytes) -> None:
        for h in (self._md5, *self._checksums.values()):
            if h is not None:
                h.update(data)

    async def _raw(self) -> AsyncIterator[bytes]:
        # the payload hash covers the bytes as sent: the chunk framing too, when there is one
        async for data in _batched(self._stream):
            if self._sha256 is not None:
                await _hashed(self._sha256.update, data)
            yield data

    async def _decoded(self) -> AsyncIterator[bytes]:
        """``<hex size>[;chunk-signature=..]\\r\\n<data>\\r\\n`` ... ``0\\r\\n<trailers>\\r\\n\\r\\n``."""
        buffer = bytearray()
        source = aiter(self._raw())

        async def fill(n: int) -> None:
            while len(buffer) < n:
                more = await anext(source, None)
                if more is None:
                    raise ValidationError("the aws-chunked body ended early")
                buffer.extend(more)

        async def line() -> bytes:
            while (end := buffer.find(b"\r\n")) < 0:
                if len(buffer) > _MAX_CHUNK_LINE:
                    raise ValidationError("an aws-chunked header line is too long")
                await fill(len(buffer) + 1)
            text = bytes(buffer[:end])
            del buffer[: end + 2]
            return text

        while True:
            size_text = (await line()).split(b";", 1)[0]
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise ValidationError("malformed aws-chunked chunk size") from exc
            if size == 0:
                break
            while size > 0:  # hand on what is there: a chunk may be larger than we want to hold
                if not buffer:
                    await fill(1)
                take = min(size, len(buffer))
                yield bytes(buffer[:take])
                del buffer[:take]
                size -= take
            await fill(2)
            if buffer[:2] != b"\r\n":
                raise ValidationError("malformed aws-chunked body (no CRLF after a chunk)")
            del buffer[:2]
        while text := await line():
            name, _, value = text.decode("latin-1").partition(":")
            self.trailers[name.strip().lower()] = value.strip()
        async for _ in source:  # drain, so the payload hash sees every byte
            pass

    def _check(self) -> None:
        if self._sha256 is not None and not hmac.compare_digest(
            self._sha256.hexdigest(), str(self._payload_hash)
        ):
            raise AccessDeniedError(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            )
        if self._md5 is not None:
            md5 = self._headers["content-md5"]
            if not hmac.compare_digest(base64.b64encode(self._md5.digest()).decode(), md5.strip()):
                raise BadDigestError("The Content-MD5 you specified did not match what we received.")
        for name, checksum in self._checksums.items():
            field = f"x-amz-checksum-{name}"
            sent = self.trailers.get(field) or self._headers.get(field)
            if sent is None:
                raise ValidationError(f"the trailer {field} announced in x-amz-trailer never came")
            if not hmac.compare_digest(checksum.b64digest(), sent.strip()):
                raise BadDigestError(
                    f"The {name.upper()} you specified did not match the calculated checksum."
                )
