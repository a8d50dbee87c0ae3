"""``FolderStore``: buckets as folders under ``HANIWA_S3_ROOT``, objects as plain files.

``<root>/<bucket>/<key>`` is the object itself, so knowledge-base data sources (``knowledge/sources.py``
``FolderSource``) and a person with a file manager see the same bytes. What S3 keeps beside an object
(ETag, content type, ``x-amz-meta-*``) lives in ``<root>/<bucket>/.haniwa-s3meta/objects/<key>.json``;
that folder also holds write staging (``tmp/``) and multipart uploads (``uploads/<id>/``). Being hidden,
it is never listed as an object nor read as a document.

- Every write streams into ``.haniwa-s3meta/tmp/`` (same file system as the bucket) and is published with
  ``os.replace``: a reader sees the old object or the new one, never half of one.
- A file dropped in by hand has no metadata yet: its ETag is computed on first sight and kept.
- Keys are checked (:func:`~haniwa.s3.base.check_key`) and the resolved path must stay inside the bucket
  folder (a symlink out is refused).
- Temp files a crash left in ``tmp/`` are removed the next time the bucket stages a write (after an hour
  untouched). Multipart uploads stay until completed or aborted, as in S3 (no lifecycle rules here).
- A folder cannot hold both ``a`` and ``a/b``; S3 can. Such a put is refused with ``InvalidArgument``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from haniwa.errors import PlatformError
from haniwa.s3.base import (
    META_DIR,
    MIN_PART_BYTES,
    BucketExistsError,
    BucketInfo,
    BucketNotEmptyError,
    EntityTooLargeError,
    EntityTooSmallError,
    InvalidKeyError,
    InvalidPartError,
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

__all__ = ["FolderStore"]

_CHUNK = 1024 * 1024  # bytes per worker-thread write or read: large enough that thread hops cost little
_MAX_PARTS = 10_000
_ORPHAN_AGE = 3600.0
_SETTLED = 5.0  # seconds after which a file's metadata is no longer on its way from a writer


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _mtime(st: os.stat_result) -> dt.datetime:
    return dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)


def _md5_file(path: Path) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            md5.update(block)
    return md5.hexdigest()


def _md5_open(f: IO[bytes]) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    f.seek(0)
    for block in iter(lambda: f.read(_CHUNK), b""):
        md5.update(block)
    f.seek(0)
    return md5.hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class _Staged:
    """A temp file in the bucket's staging folder that a streamed body is written into."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / secrets.token_hex(12)
        self.file: IO[bytes] = open(self.path, "xb")  # noqa: SIM115 - closed in fill()/discard()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.md5.update(data)

    async def fill(self, body: AsyncIterator[bytes], max_bytes: int | None) -> None:
        pending: list[bytes] = []
        held = 0
        async for chunk in body:
            self.size += len(chunk)
            if max_bytes is not None and self.size > max_bytes:
                raise EntityTooLargeError(
                    f"the body exceeds the largest object or part accepted, {max_bytes} bytes"
                    " (HANIWA_S3_MAX_OBJECT_BYTES)"
                )
            pending.append(chunk)
            held += len(chunk)
            if held >= _CHUNK:
                await asyncio.to_thread(self.write, b"".join(pending))
                pending, held = [], 0
        if pending:
            await asyncio.to_thread(self.write, b"".join(pending))
        self.file.close()

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


class FolderStore:
    """Buckets under ``root``; implements ObjectStore, BucketStore and MultipartStore."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._swept: set[Path] = set()

    def _stage(self, base: Path) -> _Staged:
        """A new temp file in the bucket's staging folder. The first time a bucket stages in this
        process, temp files a crash left behind go: a live upload writes at least every body_timeout
        seconds, so a file untouched for an hour belongs to no one."""
        folder = base / META_DIR / "tmp"
        if base not in self._swept:
            self._swept.add(base)
            cutoff = time.time() - _ORPHAN_AGE
            for entry in os.scandir(folder) if folder.is_dir() else ():
                with contextlib.suppress(OSError):
                    if entry.is_file() and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
        return _Staged(folder)

    # -- paths ----------------------------------------------------------------------------------------------
    def _bucket_dir(self, bucket: str) -> Path:
        check_bucket(bucket)
        folder = self.root / bucket
        if not folder.is_dir():
            raise NoSuchBucketError(f"The specified bucket does not exist: {bucket}")
        if not folder.resolve().is_relative_to(self.root.resolve()):
            raise NoSuchBucketError(f"bucket {bucket!r}: its folder resolves outside the S3 root")
        return folder

    def _object_path(self, base: Path, key: str) -> Path:
        check_key(key)
        path = base / key
        real_base = base.resolve()
        # the parent resolves through any symlinked folder; the file itself may not exist yet
        if not path.parent.resolve().is_relative_to(real_base) or (
            path.is_symlink() and not path.resolve().is_relative_to(real_base)
        ):
            raise InvalidKeyError(f"key {key[:80]!r} resolves outside its bucket")
        return path

    @staticmethod
    def _meta_path(base: Path, key: str) -> Path:
        return base / META_DIR / "objects" / f"{key}.json"

    # -- buckets --------------------------------------------------------------------------------------------
    async def create_bucket(self, name: str) -> None:
        check_bucket(name)
        folder = self.root / name

        def create() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                folder.mkdir()
            except FileExistsError as exc:
                raise BucketExistsError(
                    "Your previous request to create the named bucket succeeded and you already own it."
                ) from exc
            _write_json(folder / META_DIR / "bucket.json", {"created": _now().isoformat()})

        await asyncio.to_thread(create)

    async def delete_bucket(self, name: str) -> None:
        base = self._bucket_dir(name)
        if (await self.list(name, limit=1)).objects:
            raise BucketNotEmptyError("The bucket you tried to delete is not empty")

        def remove() -> None:
            shutil.rmtree(base / META_DIR, ignore_errors=True)
            shutil.rmtree(base)  # only empty folders (or hidden files) are left

        await asyncio.to_thread(remove)

    async def bucket(self, name: str) -> BucketInfo:
        base = self._bucket_dir(name)
        meta = _read_json(base / META_DIR / "bucket.json")
        if meta and isinstance(meta.get("created"), str):
            return BucketInfo(name, dt.datetime.fromisoformat(meta["created"]))
        return BucketInfo(name, _mtime(base.stat()))  # a folder made by hand

    async def buckets(self) -> builtins.list[BucketInfo]:
        if not self.root.is_dir():
            return []
        out = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if entry.is_dir() and not entry.name.startswith("."):
                try:
                    out.append(await self.bucket(entry.name))
                except (PlatformError, ValueError):
                    continue  # a folder whose name is no bucket name, or that points outside
        return out

    # -- objects --------------------------------------------------------------------------------------------
    def _info(self, base: Path, key: str, path: Path, f: IO[bytes] | None = None) -> ObjectInfo:
        """The object at ``path``; with ``f`` (the file, opened), the description of exactly those bytes."""
        try:
            st = os.fstat(f.fileno()) if f is not None else path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NoSuchKeyError("The specified key does not exist.") from exc
        if not stat.S_ISREG(st.st_mode):
            raise NoSuchKeyError("The specified key does not exist.")
        meta_path = self._meta_path(base, key)
        meta = _read_json(meta_path) or {}
        if meta.get("size") != st.st_size or meta.get("mtime_ns") != st.st_mtime_ns:
            # written by hand, replaced outside haniwa, or published a moment ago with its metadata still
            # on the way: the ETag is the file's own; it is kept only for a file that has settled, so a
            # writer's metadata (content type, x-amz-meta-*) is never overwritten by a reader
            meta = {"etag": _md5_open(f) if f is not None else _md5_file(path)}
            if time.time() - st.st_mtime > _SETTLED:
                _write_json(meta_path, {**meta, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=str(meta["etag"]),
            last_modified=_mtime(st),
            content_type=str(meta.get("content_type") or "binary/octet-stream"),
            metadata=dict(meta.get("metadata") or {}),
            parts=meta.get("parts"),
        )

    def _publish(
        self, base: Path, key: str, staged: Path, etag: str, options: PutOptions, parts: int | None
    ) -> ObjectInfo:
        path = self._object_path(base, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                raise IsADirectoryError(str(path))
            os.replace(staged, path)
        except (NotADirectoryError, FileExistsError, IsADirectoryError) as exc:
            staged.unlink(missing_ok=True)
            raise InvalidKeyError(
                f"key {key[:80]!r}: a folder cannot hold both a key and keys below it (a/ and a/b)"
            ) from exc
        st = path.stat()
        meta: dict[str, Any] = {
            "etag": etag,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "content_type": options.content_type,
            "metadata": dict(options.metadata),
        }
        if parts is not None:
            meta["parts"] = parts
        _write_json(self._meta_path(base, key), meta)
        return ObjectInfo(
            key, st.st_size, etag, _mtime(st), options.content_type, dict(options.metadata), parts
        )

    async def put(self, bucket: str, key: str, body: AsyncIterator[bytes], options: PutOptions) -> ObjectInfo:
        base = self._bucket_dir(bucket)
        self._object_path(base, key)  # refuse a bad key before reading the body
        staged = await asyncio.to_thread(self._stage, base)
        try:
            await staged.fill(body, options.max_bytes)
            return await asyncio.to_thread(
                self._publish, base, key, staged.path, staged.md5.hexdigest(), options, None
            )
        finally:
            await asyncio.to_thread(staged.discard)  # a no-op once published

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        base = self._bucket_dir(bucket)
        return await asyncio.to_thread(self._info, base, key, self._object_path(base, key))

    async def open(
        self, bucket: str, key: str, byte_range: tuple[int, int] | None = None
    ) -> tuple[ObjectInfo, AsyncIterator[bytes]]:
        base = self._bucket_dir(bucket)
        path = self._object_path(base, key)

        def opened() -> tuple[ObjectInfo, IO[bytes]]:
            try:
                f = open(path, "rb")  # noqa: SIM115 - closed by the reader below
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
                raise NoSuchKeyError("The specified key does not exist.") from exc
            try:
                return self._info(base, key, path, f), f  # what is described is what is read
            except BaseException:
                f.close()
                raise

        info, f = await asyncio.to_thread(opened)
        start, end = byte_range if byte_range is not None else (0, info.size - 1)

        async def reader() -> AsyncIterator[bytes]:
            try:
                await asyncio.to_thread(f.seek, start)
                left = end - start + 1
                while left > 0:
                    block = await asyncio.to_thread(f.read, min(_CHUNK, left))
                    if not block:
                        break
                    left -= len(block)
                    yield block
            finally:
                f.close()

        return info, reader()

    async def delete(self, bucket: str, key: str) -> None:
        base = self._bucket_dir(bucket)
        path = self._object_path(base, key)

        def remove() -> None:
            if path.is_file() or path.is_symlink():
                path.unlink(missing_ok=True)
            self._meta_path(base, key).unlink(missing_ok=True)
            # prune the folders the key made, as S3 has no folders to leave behind
            for top in (base, base / META_DIR / "objects"):
                folder = (top / key).parent
                while folder != top and folder.is_relative_to(top):
                    try:
                        folder.rmdir()
                    except OSError:
                        break
                    folder = folder.parent

        await asyncio.to_thread(remove)

    async def copy(
        self, source: tuple[str, str], target: tuple[str, str], options: PutOptions | None
    ) -> ObjectInfo:
        src_base = self._bucket_dir(source[0])
        src = self._object_path(src_base, source[1])
        dst_base = self._bucket_dir(target[0])
        self._object_path(dst_base, target[1])

        def run() -> ObjectInfo:
            info = self._info(src_base, source[1], src)
            staged = self._stage(dst_base)
            try:
                with open(src, "rb") as f:
                    for block in iter(lambda: f.read(_CHUNK), b""):
                        staged.write(block)
                staged.file.close()
                keep = options or PutOptions(info.content_type, info.metadata)
                etag = staged.md5.hexdigest() if info.parts is None else info.etag
                return self._publish(dst_base, target[1], staged.path, etag, keep, info.parts)
            finally:
                staged.discard()

        return await asyncio.to_thread(run)

    async def list(
        self, bucket: str, prefix: str = "", delimiter: str = "", after: str = "", limit: int = 1000
    ) -> Listing:
        base = self._bucket_dir(bucket)
        return await asyncio.to_thread(self._list, base, prefix, delimiter, after, limit)

    def _list(self, base: Path, prefix: str, delimiter: str, after: str, limit: int) -> Listing:
        keys = sorted(k for k in self._keys(base, base.resolve(), "", prefix) if k.startswith(prefix))
        objects: builtins.list[ObjectInfo] = []
        prefixes: builtins.list[str] = []
        last: str | None = None
        for key in keys:
            rolled = None
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    rolled = key[: cut + len(delimiter)]
            entry = rolled or key
            if entry <= after or (rolled is not None and prefixes and prefixes[-1] == rolled):
                continue
            if len(objects) + len(prefixes) >= limit:
                return Listing(objects, prefixes, True, last)
            if rolled is not None:
                prefixes.append(rolled)
            else:
                try:
                    objects.append(self._info(base, key, base / key))
                except NoSuchKeyError:
                    continue  # deleted while listing
            last = entry
        return Listing(objects, prefixes, False, None)

    def _keys(self, base: Path, real_base: Path, rel: str, prefix: str) -> Iterator[str]:
        try:
            entries = list(os.scandir(base / rel if rel else base))
        except OSError:
            return
        for entry in entries:
            if not rel and entry.name == META_DIR:
                continue
            key = rel + entry.name
            if entry.is_symlink() and not Path(os.path.realpath(entry.path)).is_relative_to(real_base):
                continue
            if entry.is_dir():
                sub = key + "/"
                if sub.startswith(prefix) or prefix.startswith(sub):  # prune what the prefix cannot reach
                    yield from self._keys(base, real_base, sub, prefix)
            elif entry.is_file():
                yield key

    # -- multipart uploads -------------------------------------------------------------------------------
    def _upload_dir(self, base: Path, upload_id: str) -> Path:
        if not upload_id.isalnum() or len(upload_id) > 64:
            raise NoSuchUploadError("The specified upload does not exist.")
        folder = base / META_DIR / "uploads" / upload_id
        if not (folder / "upload.json").is_file():
            raise NoSuchUploadError("The specified upload does not exist.")
        return folder

    async def start_upload(self, bucket: str, key: str, options: PutOptions) -> str:
        base = self._bucket_dir(bucket)
        self._object_path(base, key)
        upload_id = secrets.token_hex(16)
        record = {
            "key": key,
            "content_type": options.content_type,
            "metadata": dict(options.metadata),
            "started": _now().isoformat(),
        }
        await asyncio.to_thread(_write_json, base / META_DIR / "uploads" / upload_id / "upload.json", record)
        return upload_id

    async def put_part(
        self, bucket: str, upload_id: str, number: int, body: AsyncIterator[bytes], max_bytes: int | None
    ) -> PartInfo:
        base = self._bucket_dir(bucket)
        folder = self._upload_dir(base, upload_id)
        if not 1 <= number <= _MAX_PARTS:
            raise InvalidPartError(f"part numbers run from 1 to {_MAX_PARTS}, not {number}")
        staged = await asyncio.to_thread(self._stage, base)
        try:
            await staged.fill(body, max_bytes)
            etag = staged.md5.hexdigest()

            def publish() -> PartInfo:
                os.replace(staged.path, folder / f"{number:05d}")
                _write_json(folder / f"{number:05d}.json", {"etag": etag, "size": staged.size})
                return PartInfo(number, staged.size, etag, _now())

            return await asyncio.to_thread(publish)
        finally:
            await asyncio.to_thread(staged.discard)

    def _parts(self, folder: Path) -> builtins.list[PartInfo]:  # `list` is a method here
        out = []
        for meta_path in sorted(folder.glob("[0-9]*.json")):
            meta = _read_json(meta_path)
            data = meta_path.with_suffix("")
            if meta is None or not data.is_file():
                continue
            out.append(PartInfo(int(data.name), int(meta["size"]), str(meta["etag"]), _mtime(data.stat())))
        return out

    async def parts(self, bucket: str, upload_id: str) -> tuple[str, builtins.list[PartInfo]]:
        base = self._bucket_dir(bucket)
        folder = self._upload_dir(base, upload_id)
        record = _read_json(folder / "upload.json") or {}
        return str(record.get("key", "")), await asyncio.to_thread(self._parts, folder)

    async def complete(self, bucket: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> ObjectInfo:
        base = self._bucket_dir(bucket)
        folder = self._upload_dir(base, upload_id)

        def run() -> ObjectInfo:
            record = _read_json(folder / "upload.json") or {}
            have = {p.number: p for p in self._parts(folder)}
            if not parts:
                raise InvalidPartError("CompleteMultipartUpload needs at least one part")
            numbers = [n for n, _ in parts]
            if numbers != sorted(set(numbers)):
                raise InvalidPartError("The list of parts was not in ascending order (InvalidPartOrder)")
            chosen = []
            for i, (number, etag) in enumerate(parts):
                part = have.get(number)
                if part is None or part.etag != etag.strip('"'):
                    raise InvalidPartError(f"part {number} was not uploaded or its ETag is not {etag}")
                if i < len(parts) - 1 and part.size < MIN_PART_BYTES:
                    raise EntityTooSmallError(
                        f"part {number} is {part.size} bytes; every part but the last must be at least"
                        f" {MIN_PART_BYTES}"
                    )
                chosen.append(part)
            digest = hashlib.md5(usedforsecurity=False)
            staged = self._stage(base)
            try:
                for part in chosen:
                    digest.update(bytes.fromhex(part.etag))
                    with open(folder / f"{part.number:05d}", "rb") as f:
                        shutil.copyfileobj(f, staged.file, _CHUNK)
                staged.file.close()
                options = PutOptions(
                    str(record.get("content_type") or "binary/octet-stream"),
                    dict(record.get("metadata") or {}),
                )
                etag = f"{digest.hexdigest()}-{len(chosen)}"
                info = self._publish(base, str(record["key"]), staged.path, etag, options, len(chosen))
            finally:
                staged.discard()
            shutil.rmtree(folder, ignore_errors=True)
            return info

        return await asyncio.to_thread(run)

    async def abort(self, bucket: str, upload_id: str) -> None:
        base = self._bucket_dir(bucket)
        folder = self._upload_dir(base, upload_id)
        await asyncio.to_thread(shutil.rmtree, folder, True)
