"""Where knowledge-base documents come from: the S3 data source of Bedrock.

A data source names ``arn:aws:s3:::BUCKET`` plus optional inclusion prefixes. Without
``HANIWA_S3_ENDPOINT`` the bucket is the local folder ``<s3_folder>/BUCKET`` (:class:`FolderSource`);
with it, the real bucket on that S3-compatible endpoint, read with botocore (:class:`EndpointSource`).

Both list cheaply (a stat or a ``ListObjectsV2`` page per object, never the contents) and give every
document a ``version`` token, so an unchanged re-sync costs one listing. Per-document metadata comes from
Bedrock's sidecar ``<key>.metadata.json``; sidecars are never documents themselves.

No path leaves the S3 root: bucket names follow S3 naming rules, prefixes may not hold ``..`` or start
with ``/``, and symlinks that resolve outside the bucket folder are skipped.

::

    source = s3_source(settings, "arn:aws:s3:::manuals", ["ja/"])
    for item in await source.list():
        doc = await source.read(item)  # doc.data, doc.metadata
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import math
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from haniwa.errors import NotFoundError, PlatformError, ValidationError
from haniwa.s3.base import bucket_problem
from haniwa.s3.remote import endpoint_client, error_code, raise_transport_error

if TYPE_CHECKING:
    from haniwa.config import Settings

__all__ = [
    "SourceItem",
    "SourceDocument",
    "DocumentSource",
    "FolderSource",
    "EndpointSource",
    "SIDECAR_SUFFIX",
    "s3_source",
    "parse_bucket_arn",
    "sidecar_metadata",
    "resolve_upload_path",
]

logger = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".metadata.json"

_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:s3:::(?P<rest>.*)$")
_RESERVED_KEY_PREFIX = "x-amz-bedrock-kb-"
_TYPED_FIELDS = {
    "STRING": "stringValue",
    "NUMBER": "numberValue",
    "BOOLEAN": "booleanValue",
    "STRING_LIST": "stringListValue",
}


@dataclass(frozen=True)
class SourceItem:
    """One document of a data source, as listed (nothing read yet)."""

    uri: str  # "s3://BUCKET/key": the location Retrieve returns
    key: str  # object key relative to the bucket
    version: str  # changes whenever the document or its sidecar changes
    size: int


@dataclass(frozen=True)
class SourceDocument:
    """A document's bytes and its sidecar metadata (plain str / number / bool / list[str] values)."""

    item: SourceItem
    data: bytes
    metadata: dict[str, Any]


class DocumentSource(Protocol):
    """The documents of one data source."""

    async def list(self) -> list[SourceItem]:
        """Every document under the inclusion prefixes, sorted by key; sidecars are not listed."""
        ...

    async def read(self, item: SourceItem) -> SourceDocument:
        """The bytes and metadata of ``item``. Raises ``ValidationError`` for a malformed sidecar and
        ``NotFoundError`` when the document vanished since it was listed."""
        ...


# -- validation ------------------------------------------------------------------------------------------
def parse_bucket_arn(arn: str) -> str:
    """The bucket of ``arn:aws:s3:::BUCKET`` (any ``aws-*`` partition); ``ValidationError`` unless the
    ARN names a bucket that follows the S3 naming rules."""
    match = _ARN.match(arn) if isinstance(arn, str) else None
    if match is None:
        raise ValidationError(f"bucketArn {arn!r} is not an S3 bucket ARN (arn:aws:s3:::BUCKET)")
    bucket = match["rest"]
    if "/" in bucket:
        raise ValidationError(f"bucketArn {arn!r} names an object, not a bucket (arn:aws:s3:::BUCKET)")
    problem = _bucket_problem(bucket)
    if problem:
        raise ValidationError(f"bucketArn {arn!r}: bucket name {bucket!r} {problem}")
    return bucket


def _os_reason(exc: OSError) -> str:
    # str(OSError) names the absolute file; the reason alone is what a client may see
    return exc.strerror or type(exc).__name__


def _bucket_problem(bucket: str) -> str | None:
    return bucket_problem(bucket)  # the S3 naming rules have one home: haniwa/s3/base.py


def _check_prefixes(prefixes: Sequence[str]) -> tuple[str, ...]:
    """Validated prefixes, minimal: one that another prefix already covers is dropped; ``("",)`` = all."""
    if isinstance(prefixes, str):  # a bare string would silently become one prefix per character
        prefixes = [prefixes]
    checked: list[str] = []
    for prefix in prefixes:
        if not isinstance(prefix, str):
            raise ValidationError(f"inclusion prefix {prefix!r} must be a string")
        if prefix.startswith(("/", "\\")):
            raise ValidationError(f"inclusion prefix {prefix!r} escapes the bucket folder (absolute path)")
        if ".." in re.split(r"[/\\]", prefix):
            raise ValidationError(f"inclusion prefix {prefix!r} escapes the bucket folder ('..' segment)")
        if "\x00" in prefix:
            raise ValidationError(f"inclusion prefix {prefix!r} holds a NUL character")
        checked.append(prefix)
    if not checked:
        return ("",)
    unique = sorted(set(checked))
    return tuple(p for p in unique if not any(p != q and p.startswith(q) for q in unique))


def resolve_upload_path(root: Path, relative: str) -> Path:
    """``root / relative``, resolved; ``ValidationError`` when ``relative`` is empty, absolute, holds a
    ``..`` segment, or resolves (through symlinks) outside ``root``."""
    if not relative or "\x00" in relative:
        raise ValidationError(f"path {relative!r} is not a valid relative path")
    parts = re.split(r"[/\\]", relative)
    if relative.startswith(("/", "\\")) or Path(relative).is_absolute() or ".." in parts:
        raise ValidationError(f"path {relative!r} escapes its folder")
    base = root.resolve()
    target = (base / relative).resolve()
    if target == base or not target.is_relative_to(base):
        raise ValidationError(f"path {relative!r} escapes its folder")
    return target


# -- sidecar metadata ------------------------------------------------------------------------------------
def sidecar_metadata(raw: bytes) -> dict[str, Any]:
    """The attributes of a Bedrock ``<key>.metadata.json`` as plain values.

    Accepts ``{"metadataAttributes": {"k": "v", "n": 3, "ok": true, "tags": ["a"]}}`` and the typed form
    ``{"metadataAttributes": {"k": {"value": {"type": "STRING", "stringValue": "v"},
    "includeForEmbedding": true}}}``. Raises ``ValidationError`` saying what is wrong."""
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError(f"metadata is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("metadataAttributes"), dict):
        raise ValidationError('metadata must be a JSON object with a "metadataAttributes" object')
    out: dict[str, Any] = {}
    for key, value in doc["metadataAttributes"].items():
        if not key:
            raise ValidationError("metadata attribute names may not be empty")
        if key.startswith(_RESERVED_KEY_PREFIX):
            raise ValidationError(
                f"metadata attribute {key!r} uses the reserved prefix {_RESERVED_KEY_PREFIX!r}"
            )
        out[key] = _attribute(key, _typed_value(key, value) if isinstance(value, dict) else value)
    return out


def _typed_value(key: str, attr: dict[str, Any]) -> Any:
    value = attr.get("value")
    if not isinstance(value, dict):
        raise ValidationError(f'metadata attribute {key!r}: a typed attribute needs a "value" object')
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in _TYPED_FIELDS:
        raise ValidationError(
            f"metadata attribute {key!r}: type {kind!r} is not one of {', '.join(_TYPED_FIELDS)}"
        )
    field = _TYPED_FIELDS[kind]
    if field not in value:
        raise ValidationError(f"metadata attribute {key!r}: type {kind} needs {field!r}")
    got = value[field]
    # bool is an int in Python, so NUMBER must rule it out explicitly
    ok = {
        "STRING": isinstance(got, str),
        "NUMBER": isinstance(got, int | float) and not isinstance(got, bool),
        "BOOLEAN": isinstance(got, bool),
        "STRING_LIST": isinstance(got, list),
    }[kind]
    if not ok:
        raise ValidationError(f"metadata attribute {key!r}: {field} {got!r} does not match type {kind}")
    return got


def _attribute(key: str, value: Any) -> Any:
    if isinstance(value, str | bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValidationError(f"metadata attribute {key!r}: {value} is not a finite number")
        return value
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ValidationError(f"metadata attribute {key!r}: lists may hold only strings")
        return list(value)
    raise ValidationError(
        f"metadata attribute {key!r}: {value!r} is not a string, number, boolean or list of strings"
    )


def _sidecar_error(key: str, exc: ValidationError) -> ValidationError:
    return ValidationError(f"{key}{SIDECAR_SUFFIX}: {exc.message}")


def _matches(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key.startswith(p) for p in prefixes)


def _version(own: str, sidecar: str | None) -> str:
    return own if sidecar is None else f"{own}+{sidecar}"


# -- local folder ----------------------------------------------------------------------------------------
class FolderSource:
    """The bucket as the folder ``<s3_folder>/BUCKET``; ``version`` is size + mtime of the file and its
    sidecar. Hidden names (``.git``, ``.DS_Store``) are skipped: they are filesystem artefacts, not data, and
    ``.haniwa-s3meta`` holds what haniwa's S3 surface keeps beside the objects (ETags, metadata, uploads)."""

    def __init__(self, root: Path, bucket: str, prefixes: Sequence[str] = ()) -> None:
        self.root = root
        self.bucket = bucket
        self.prefixes = _check_prefixes(prefixes)
        self._bucket_dir()  # refuse now a bucket folder that already points elsewhere

    def _bucket_dir(self) -> Path | None:
        """The real path of the bucket folder; ``None`` while it does not exist."""
        real_root = self.root.resolve()
        folder = self.root / self.bucket
        if not folder.is_dir():
            return None
        real = folder.resolve()
        if not real.is_relative_to(real_root):
            # name the bucket, not the server's folders: a client never sees a server path
            raise ValidationError(f"bucket {self.bucket!r}: its folder resolves outside the S3 root")
        return real

    async def list(self) -> list[SourceItem]:
        """Every document under the prefixes, sorted by key (stat only, in a worker thread)."""
        return await asyncio.to_thread(self._list)

    def _list(self) -> builtins.list[SourceItem]:  # `list` is the method here
        base = self._bucket_dir()
        if base is None:
            return []
        files: dict[str, os.stat_result] = {}
        top = os.stat(base)
        for key, st in self._walk(base, base, "", {(top.st_dev, top.st_ino)}):
            files[key] = st
        items = []
        for key, st in files.items():
            if key.endswith(SIDECAR_SUFFIX) or not _matches(key, self.prefixes):
                continue
            side = files.get(key + SIDECAR_SUFFIX)
            own = f"{st.st_size}-{st.st_mtime_ns}"
            items.append(
                SourceItem(
                    uri=f"s3://{self.bucket}/{key}",
                    key=key,
                    version=_version(own, None if side is None else f"{side.st_size}-{side.st_mtime_ns}"),
                    size=st.st_size,
                )
            )
        return sorted(items, key=lambda i: i.key)

    def _walk(
        self, base: Path, folder: Path, rel: str, seen: set[tuple[int, int]]
    ) -> Iterator[tuple[str, os.stat_result]]:
        """``(key, stat)`` of every regular file below ``folder``; ``seen`` holds the folders on the way
        down, by device and inode, so a symlink back to one of them is not followed again."""
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:  # unreadable or vanished mid-walk: the rest of the listing still counts
            logger.debug("skipping %s: %s", folder, exc)
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                entry.name.encode("utf-8")
            except UnicodeEncodeError:  # not valid as an S3 key
                logger.debug("skipping %s: name is not UTF-8", entry.path)
                continue
            key = rel + entry.name
            try:
                real = Path(os.path.realpath(entry.path)) if entry.is_symlink() else None
                if real is not None and not real.is_relative_to(base):
                    logger.debug("skipping %s: symlink resolves outside the bucket folder", entry.path)
                    continue
                st = entry.stat()  # follows a symlink, now known to stay inside
            except OSError as exc:  # dangling symlink, permission denied
                logger.debug("skipping %s: %s", entry.path, exc)
                continue
            if stat.S_ISDIR(st.st_mode):
                sub = key + "/"
                # prune folders that no prefix can reach; guard against symlink cycles
                if not any(p.startswith(sub) or sub.startswith(p) for p in self.prefixes):
                    continue
                node = (st.st_dev, st.st_ino)
                if node in seen:
                    continue
                yield from self._walk(base, Path(entry.path), sub, seen | {node})
            elif stat.S_ISREG(st.st_mode):
                yield key, st

    async def read(self, item: SourceItem) -> SourceDocument:
        """The file and its sidecar metadata. ``item`` is returned as listed: if the file changed since,
        its next listing shows a new version, so the change is picked up by the next sync."""
        return await asyncio.to_thread(self._read, item)

    def _read(self, item: SourceItem) -> SourceDocument:
        base = self._bucket_dir()
        if base is None:
            raise NotFoundError(f"bucket s3://{self.bucket} does not exist (no such folder in the S3 root)")
        path = self._inside(base, item.key)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"{item.uri} no longer exists") from exc
        except OSError as exc:
            raise PlatformError(f"cannot read {item.uri}: {_os_reason(exc)}") from exc
        metadata: dict[str, Any] = {}
        side = self._inside(base, item.key + SIDECAR_SUFFIX)
        try:
            raw: bytes | None = side.read_bytes()
        except FileNotFoundError:
            raw = None
        except OSError as exc:  # a folder or unreadable file where the sidecar should be
            raise ValidationError(f"{item.key}{SIDECAR_SUFFIX}: cannot be read: {_os_reason(exc)}") from exc
        if raw is not None:
            try:
                metadata = sidecar_metadata(raw)
            except ValidationError as exc:
                raise _sidecar_error(item.key, exc) from exc
        return SourceDocument(item=item, data=data, metadata=metadata)

    def _inside(self, base: Path, key: str) -> Path:
        # keys come back from storage, so check them again rather than trust them
        if key.startswith("/") or ".." in key.split("/") or any(p.startswith(".") for p in key.split("/")):
            raise NotFoundError(f"s3://{self.bucket}/{key} is not a document of this bucket")
        path = base / key
        if not path.resolve().is_relative_to(base):
            raise NotFoundError(f"s3://{self.bucket}/{key} resolves outside the bucket folder")
        return path


# -- S3-compatible endpoint ------------------------------------------------------------------------------
class EndpointSource:
    """The real bucket on ``HANIWA_S3_ENDPOINT`` (MinIO, ...), read with botocore; ``version`` is the
    ETag and size of the object and of its sidecar, both from one ``ListObjectsV2`` listing."""

    def __init__(self, settings: Settings, bucket: str, prefixes: Sequence[str] = ()) -> None:
        if not settings.s3_endpoint:
            raise ValidationError("no S3 endpoint is configured (HANIWA_S3_ENDPOINT)")
        self.endpoint = settings.s3_endpoint
        self.bucket = bucket
        self.prefixes = _check_prefixes(prefixes)
        self._settings = settings
        self._client_obj: Any = None
        # keys the last listing saw a sidecar for; None until listed (read then asks for one)
        self._with_sidecar: set[str] | None = None

    def _client(self) -> Any:
        # built lazily, in a worker thread: loading the service model takes a moment
        if self._client_obj is None:
            self._client_obj = endpoint_client(self._settings)  # the one client haniwa/s3 builds
        return self._client_obj

    async def list(self) -> list[SourceItem]:
        """Every object under the prefixes (one paginated listing per prefix), sorted by key."""
        return await asyncio.to_thread(self._list)

    def _list(self) -> builtins.list[SourceItem]:  # `list` is the method here
        objects: dict[str, tuple[str, int]] = {}
        try:
            paginator = self._client().get_paginator("list_objects_v2")
            for prefix in self.prefixes:
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                    for obj in page.get("Contents", ()):
                        objects[obj["Key"]] = (str(obj.get("ETag", "")).strip('"'), int(obj.get("Size", 0)))
        except Exception as exc:
            self._translate(exc)
        items = []
        for key, (etag, size) in objects.items():
            if key.endswith(SIDECAR_SUFFIX) or key.endswith("/"):  # sidecars and folder markers
                continue
            side = objects.get(key + SIDECAR_SUFFIX)
            items.append(
                SourceItem(
                    uri=f"s3://{self.bucket}/{key}",
                    key=key,
                    version=_version(f"{etag}-{size}", None if side is None else f"{side[0]}-{side[1]}"),
                    size=size,
                )
            )
        self._with_sidecar = {k[: -len(SIDECAR_SUFFIX)] for k in objects if k.endswith(SIDECAR_SUFFIX)}
        return sorted(items, key=lambda i: i.key)

    async def read(self, item: SourceItem) -> SourceDocument:
        """The object and its sidecar metadata (``GetObject`` each)."""
        return await asyncio.to_thread(self._read, item)

    def _read(self, item: SourceItem) -> SourceDocument:
        data = self._get(item.key)
        if data is None:
            raise NotFoundError(f"{item.uri} no longer exists")
        metadata: dict[str, Any] = {}
        if self._with_sidecar is None or item.key in self._with_sidecar:
            raw = self._get(item.key + SIDECAR_SUFFIX)
            if raw is not None:
                try:
                    metadata = sidecar_metadata(raw)
                except ValidationError as exc:
                    raise _sidecar_error(item.key, exc) from exc
        return SourceDocument(item=item, data=data, metadata=metadata)

    def _get(self, key: str) -> bytes | None:
        """The object's bytes, or ``None`` when there is no such key."""
        try:
            body = self._client().get_object(Bucket=self.bucket, Key=key)["Body"]
            with contextlib.closing(body):
                return bytes(body.read())
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            self._translate(exc)

    def _translate(self, exc: Exception) -> NoReturn:
        """Re-raise a botocore failure as a haniwa error naming the bucket and endpoint."""
        from botocore.exceptions import ClientError

        where = f"S3 bucket {self.bucket!r} at {self.endpoint}"
        if isinstance(exc, ClientError):
            code = error_code(exc)
            if code == "NoSuchBucket":
                raise NotFoundError(f"{where} does not exist") from exc
            message = exc.response.get("Error", {}).get("Message") or code
            raise PlatformError(f"{where}: {code}: {message}") from exc
        raise_transport_error(exc, self.endpoint, where)


# -- factory ---------------------------------------------------------------------------------------------
def s3_source(settings: Settings, bucket_arn: str, inclusion_prefixes: Sequence[str] = ()) -> DocumentSource:
    """The source of a Bedrock S3 data source: the real bucket when ``s3_endpoint`` is set, else the folder
    ``<s3_folder>/BUCKET``. Raises ``ValidationError`` for a bad ARN or an escaping prefix."""
    bucket = parse_bucket_arn(bucket_arn)
    if settings.s3_endpoint:
        return EndpointSource(settings, bucket, inclusion_prefixes)
    return FolderSource(settings.s3_folder, bucket, inclusion_prefixes)
