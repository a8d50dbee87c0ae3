"""The knowledge-base engine: state (SQLite), ingestion jobs and the per-KB stores.

Ingestion is incremental and crash-safe by construction:

* a source listing is cheap (stat / ETag only); a document whose ``version`` token is unchanged is
  skipped without being read, so an unchanged re-sync costs O(listing), and its indexing cost O(changed);
* a changed token leads to reading and hashing the content: an identical hash is not re-indexed;
* each document is replaced in the store in one transaction (``VectorStore.upsert``) and only then
  recorded in ``kb_documents`` — a kill between the two makes the next run index it again, never leaves
  it half-written;
* ingestion jobs run on the job engine (:mod:`haniwa.jobs`), kind ``"ingestion"``: the statistics are
  reported after every document, so ``GetIngestionJob`` shows progress, and a job a kill interrupted is
  resumed by the engine at the next start. The resume point is ``kb_documents`` itself (a resumed job
  skips what it already indexed, unread), so the job needs no checkpoint beyond its counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from haniwa.config import Settings
from haniwa.errors import ConflictError, NotFoundError, PlatformError, ValidationError
from haniwa.jobs.base import Job, JobContext
from haniwa.jobs.engine import MAX_FAILURES, JobEngine
from haniwa.knowledge.base import (
    CHUNK_ID,
    DATA_SOURCE_ID,
    PAGE_NUMBER,
    SOURCE_URI,
    Chunk,
    ChunkingStrategy,
    DataSourceConfig,
    VectorStore,
    VectorStoreFactory,
)
from haniwa.knowledge.chunk import chunk_document
from haniwa.knowledge.parse import ParserSet
from haniwa.knowledge.sources import DocumentSource, SourceItem, s3_source
from haniwa.runtime.registry import ModelRegistry
from haniwa.store.db import Database

log = logging.getLogger(__name__)

__all__ = [
    "KnowledgeBase",
    "DataSource",
    "DataSourcePlan",
    "IngestionJob",
    "DocumentRecord",
    "DirectDocument",
    "KnowledgeService",
    "STAT_KEYS",
    "LISTED",
    "EMBED_BATCH",
    "INGESTION",
]

STAT_KEYS = ("scanned", "metadata_scanned", "new", "modified", "metadata_modified", "deleted", "failed")
# Saved with the statistics but not one of Bedrock's: how many documents the job's listing found, so a
# progress bar knows its 100% (absent until the listing is done).
LISTED = "listed"
EMBED_BATCH = 32
# documents a sync reads, parses and embeds at once: the embedding requests of small documents (one chunk
# each) then share engine calls through the embedder's micro-batcher instead of taking one call each
SYNC_IN_FLIGHT = 8
INGESTION = "ingestion"  # the job kind


@dataclass(frozen=True)
class KnowledgeBase:
    id: str
    name: str
    description: str | None
    status: str
    embedding_model: str
    dimensions: int
    store: str
    spec: dict[str, Any]
    created: float
    updated: float


@dataclass(frozen=True)
class DataSource:
    id: str
    kb_id: str
    name: str
    description: str | None
    status: str
    spec: dict[str, Any]  # the wire spec, kept for the api to echo back; the service never reads it
    created: float
    updated: float
    config: DataSourceConfig = field(default_factory=DataSourceConfig)


@dataclass(frozen=True)
class DataSourcePlan:
    """What ingestion needs of a data source: where documents come from (None: direct uploads only)
    and how they are chunked."""

    source: DocumentSource | None
    chunking: ChunkingStrategy


@dataclass(frozen=True)
class IngestionJob:
    id: str
    kb_id: str
    ds_id: str
    status: str
    description: str | None
    stats: dict[str, int]
    failures: list[str]
    started: float
    updated: float


@dataclass(frozen=True)
class DocumentRecord:
    kb_id: str
    ds_id: str
    id: str
    kind: str  # "S3" | "CUSTOM"
    uri: str
    status: str
    reason: str | None
    chunks: int
    updated: float


@dataclass(frozen=True)
class DirectDocument:
    """A document sent with IngestKnowledgeBaseDocuments: inline ``data`` or an ``s3_uri`` to read."""

    id: str
    kind: str
    uri: str
    filename: str
    data: bytes | None = None
    s3_uri: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


def _kb(row: Mapping[str, Any]) -> KnowledgeBase:
    return KnowledgeBase(**{**row, "spec": json.loads(row["spec"])})


def _ds(row: Mapping[str, Any]) -> DataSource:
    # ``config`` is NULL only in rows written before it existed, until ``upgrade`` fills it at start-up
    config = DataSourceConfig.from_json(row["config"]) if row["config"] else DataSourceConfig()
    return DataSource(**{**row, "spec": json.loads(row["spec"]), "config": config})


def _job(row: Mapping[str, Any]) -> IngestionJob:
    return IngestionJob(**{**row, "stats": json.loads(row["stats"]), "failures": json.loads(row["failures"])})


def _doc(row: Mapping[str, Any]) -> DocumentRecord:
    return DocumentRecord(
        **{
            k: row[k]
            for k in ("kb_id", "ds_id", "id", "kind", "uri", "status", "reason", "chunks", "updated")
        }
    )


def _content_hash(data: bytes, metadata: Mapping[str, Any]) -> str:
    h = hashlib.sha256(data)
    h.update(json.dumps(metadata, sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()


def document_id(ds_id: str, uri: str) -> str:
    """Stable id of a document within its knowledge base."""
    return f"{ds_id}:{uri}"


class KnowledgeService:
    """Owns knowledge-base state and ingestion. One per app, built by ``create_app``."""

    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        db: Database,
        parsers: ParserSet,
        stores: Mapping[str, VectorStoreFactory],
        jobs: JobEngine,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.db = db
        self.parsers = parsers
        self.factories = dict(stores)
        self._stores: dict[str, VectorStore] = {}
        self._store_lock = asyncio.Lock()
        self.jobs = jobs
        jobs.register(INGESTION, self._ingest)
        self._tasks: dict[str, asyncio.Task[None]] = {}  # direct-document indexing

    # -- knowledge bases ---------------------------------------------------------------------------
    async def create_kb(
        self,
        *,
        name: str,
        description: str | None,
        embedding_model: str,
        dimensions: int,
        store: str,
        spec: Mapping[str, Any],
    ) -> KnowledgeBase:
        if store not in self.factories:
            raise ValidationError(
                f"unknown vector store {store!r}; known: {', '.join(sorted(self.factories))}"
            )
        if not self.factories[store].available(self.settings):
            raise ValidationError(f"vector store {store!r} is not configured (set HANIWA_PG_URL)")
        if await self.db.query("SELECT 1 FROM knowledge_bases WHERE name = ?", (name,)):
            raise ConflictError(f"a knowledge base named {name!r} already exists")
        kb_id = uuid.uuid4().hex[:10].upper()
        now = time.time()
        await self.db.execute(
            "INSERT INTO knowledge_bases VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                kb_id,
                name,
                description,
                "ACTIVE",
                embedding_model,
                dimensions,
                store,
                json.dumps(spec),
                now,
                now,
            ),
        )
        return await self.get_kb(kb_id)

    async def get_kb(self, kb_id: str) -> KnowledgeBase:
        rows = await self.db.query("SELECT * FROM knowledge_bases WHERE id = ?", (kb_id,))
        if not rows:
            raise NotFoundError(f"knowledge base {kb_id!r} does not exist")
        return _kb(rows[0])

    async def list_kbs(self) -> list[KnowledgeBase]:
        return [_kb(r) for r in await self.db.query("SELECT * FROM knowledge_bases ORDER BY created")]

    async def update_kb(
        self, kb_id: str, *, name: str, description: str | None, spec: Mapping[str, Any]
    ) -> KnowledgeBase:
        await self.get_kb(kb_id)
        clash = await self.db.query("SELECT 1 FROM knowledge_bases WHERE name = ? AND id != ?", (name, kb_id))
        if clash:
            raise ConflictError(f"a knowledge base named {name!r} already exists")
        await self.db.execute(
            "UPDATE knowledge_bases SET name = ?, description = ?, spec = ?, updated = ? WHERE id = ?",
            (name, description, json.dumps(spec), time.time(), kb_id),
        )
        return await self.get_kb(kb_id)

    async def delete_kb(self, kb_id: str) -> KnowledgeBase:
        kb = await self.get_kb(kb_id)
        for job in await self.db.query("SELECT job_id FROM kb_ingestion_jobs WHERE kb_id = ?", (kb_id,)):
            await self.jobs.delete(job["job_id"])
        async with self._store_lock:
            store = self._stores.pop(kb_id, None)
            if store is not None:
                await store.close()
            await self.factories[kb.store].drop(kb_id, self.settings)
        await self.db.execute("DELETE FROM knowledge_bases WHERE id = ?", (kb_id,))
        return KnowledgeBase(**{**kb.__dict__, "status": "DELETING"})

    async def store(self, kb: KnowledgeBase) -> VectorStore:
        """The open store of ``kb`` (opened once, kept for the app's life)."""
        async with self._store_lock:
            if kb.id not in self._stores:
                factory = self.factories.get(kb.store)
                if factory is None:
                    raise PlatformError(f"the store {kb.store!r} of knowledge base {kb.id} is not installed")
                self._stores[kb.id] = await factory.open(kb.id, kb.dimensions, self.settings)
            return self._stores[kb.id]

    async def embed(
        self, kb: KnowledgeBase, texts: Sequence[str], purpose: str = "document"
    ) -> list[list[float]]:
        """Embed in batches of :data:`EMBED_BATCH` with the knowledge base's model.

        Vectors are stored at the model's native size whatever size the Bedrock id promises: padding
        or projecting them (as InvokeModel must) would only slow the index, and retrieval never
        returns vectors."""
        _, embedder = await self.registry.embedder(kb.embedding_model)
        out: list[list[float]] = []
        for i in range(0, len(texts), EMBED_BATCH):
            batch = list(texts[i : i + EMBED_BATCH])
            out.extend(await embedder.embed(batch, "query" if purpose == "query" else "document"))
        return out

    # -- data sources ------------------------------------------------------------------------------
    async def create_ds(
        self,
        kb_id: str,
        *,
        name: str,
        description: str | None,
        config: DataSourceConfig,
        spec: Mapping[str, Any],
    ) -> DataSource:
        """A new data source. ``config`` is what ingestion follows; ``spec`` is the caller's own record
        of it (the wire request), stored and returned untouched."""
        await self.get_kb(kb_id)
        if await self.db.query("SELECT 1 FROM data_sources WHERE kb_id = ? AND name = ?", (kb_id, name)):
            raise ConflictError(f"knowledge base {kb_id} already has a data source named {name!r}")
        ds_id = uuid.uuid4().hex[:10].upper()
        now = time.time()
        await self.db.execute(
            "INSERT INTO data_sources (id, kb_id, name, description, status, spec, created, updated, config)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (ds_id, kb_id, name, description, "AVAILABLE", json.dumps(spec), now, now, config.to_json()),
        )
        return await self.get_ds(kb_id, ds_id)

    async def get_ds(self, kb_id: str, ds_id: str) -> DataSource:
        await self.get_kb(kb_id)
        rows = await self.db.query("SELECT * FROM data_sources WHERE id = ? AND kb_id = ?", (ds_id, kb_id))
        if not rows:
            raise NotFoundError(f"data source {ds_id!r} does not exist in knowledge base {kb_id}")
        return _ds(rows[0])

    async def list_ds(self, kb_id: str) -> list[DataSource]:
        await self.get_kb(kb_id)
        rows = await self.db.query("SELECT * FROM data_sources WHERE kb_id = ? ORDER BY created", (kb_id,))
        return [_ds(r) for r in rows]

    async def update_ds(
        self,
        kb_id: str,
        ds_id: str,
        *,
        name: str,
        description: str | None,
        config: DataSourceConfig,
        spec: Mapping[str, Any],
    ) -> DataSource:
        await self.get_ds(kb_id, ds_id)
        if await self.db.query(
            "SELECT 1 FROM data_sources WHERE kb_id = ? AND name = ? AND id != ?", (kb_id, name, ds_id)
        ):
            raise ConflictError(f"knowledge base {kb_id} already has a data source named {name!r}")
        await self.db.execute(
            "UPDATE data_sources SET name = ?, description = ?, spec = ?, config = ?, updated = ?"
            " WHERE id = ?",
            (name, description, json.dumps(spec), config.to_json(), time.time(), ds_id),
        )
        return await self.get_ds(kb_id, ds_id)

    async def upgrade(self, convert: Callable[[Mapping[str, Any]], DataSourceConfig]) -> int:
        """At start-up: give data sources written before ``config`` existed theirs, made by ``convert``
        from their stored spec (the api layer's wire → domain conversion). Returns how many."""
        rows = await self.db.query("SELECT id, spec FROM data_sources WHERE config IS NULL")
        done = 0
        for row in rows:
            try:
                config = convert(json.loads(row["spec"]))
            except PlatformError as e:  # one bad old row must not stop the server; it stays as it was
                log.warning("data source %s keeps no ingestion config: %s", row["id"], e)
                continue
            await self.db.execute(
                "UPDATE data_sources SET config = ? WHERE id = ?", (config.to_json(), row["id"])
            )
            done += 1
        return done

    def plan(self, ds: DataSource) -> DataSourcePlan:
        """Where ``ds``'s documents come from (None: direct uploads only) and how they are chunked."""
        cfg = ds.config
        source = None if cfg.bucket_arn is None else s3_source(self.settings, cfg.bucket_arn, cfg.prefixes)
        return DataSourcePlan(source, cfg.chunking)

    async def delete_ds(self, kb_id: str, ds_id: str, *, retain: bool = False) -> DataSource:
        """Delete a data source; its chunks go too unless ``retain`` (Bedrock dataDeletionPolicy RETAIN)."""
        ds = await self.get_ds(kb_id, ds_id)
        for job in await self.db.query("SELECT job_id FROM kb_ingestion_jobs WHERE ds_id = ?", (ds_id,)):
            await self.jobs.delete(job["job_id"])
        if not retain:
            ids = [
                r["id"] for r in await self.db.query("SELECT id FROM kb_documents WHERE ds_id = ?", (ds_id,))
            ]
            if ids:
                store = await self.store(await self.get_kb(kb_id))
                await store.delete_documents(ids)
        await self.db.execute("DELETE FROM data_sources WHERE id = ?", (ds_id,))
        return DataSource(**{**ds.__dict__, "status": "DELETING"})

    # -- ingestion jobs ----------------------------------------------------------------------------
    async def start_job(self, kb_id: str, ds_id: str, description: str | None = None) -> IngestionJob:
        ds = await self.get_ds(kb_id, ds_id)
        plan = self.plan(ds)
        if plan.source is None:
            raise ValidationError(
                f"data source {ds_id} is CUSTOM: add documents with IngestKnowledgeBaseDocuments instead"
            )
        running = await self.db.query(
            "SELECT id FROM ingestion_jobs WHERE ds_id = ?"
            " AND status IN ('STARTING', 'IN_PROGRESS', 'STOPPING')",
            (ds_id,),
        )
        if running:
            raise ConflictError(f"ingestion job {running[0]['id']} is still running on data source {ds_id}")
        job = await self.jobs.submit(
            INGESTION, name=f"ingestion of data source {ds_id}", spec={"kb_id": kb_id, "ds_id": ds_id}
        )
        await self.db.execute(
            "INSERT INTO kb_ingestion_jobs (job_id, kb_id, ds_id, description) VALUES (?,?,?,?)",
            (job.id, kb_id, ds_id, description),
        )
        return await self.get_job(kb_id, ds_id, job.id)

    async def get_job(self, kb_id: str, ds_id: str, job_id: str) -> IngestionJob:
        await self.get_ds(kb_id, ds_id)
        rows = await self.db.query("SELECT * FROM ingestion_jobs WHERE id = ? AND ds_id = ?", (job_id, ds_id))
        if not rows:
            raise NotFoundError(f"ingestion job {job_id!r} does not exist in data source {ds_id}")
        return _job(rows[0])

    async def list_jobs(self, kb_id: str, ds_id: str) -> list[IngestionJob]:
        await self.get_ds(kb_id, ds_id)
        rows = await self.db.query("SELECT * FROM ingestion_jobs WHERE ds_id = ? ORDER BY started", (ds_id,))
        return [_job(r) for r in rows]

    async def stop_job(self, kb_id: str, ds_id: str, job_id: str) -> IngestionJob:
        job = await self.get_job(kb_id, ds_id, job_id)
        if job.status not in ("STARTING", "IN_PROGRESS"):
            raise ConflictError(f"ingestion job {job_id} is {job.status}; only a running job can be stopped")
        await self.jobs.stop(job_id)
        return await self.get_job(kb_id, ds_id, job_id)

    async def wait(self, job_id: str) -> None:
        """Wait for an ingestion job to end (CLI, tests)."""
        await self.jobs.wait(job_id)

    async def recover(self) -> None:
        """At start-up: direct uploads that were still queued fail, their content gone with the process.
        (Ingestion jobs are the job engine's to resume.)"""
        await self.db.execute(
            "UPDATE kb_documents SET status = 'FAILED', reason = 'interrupted by a restart; ingest it again'"
            " WHERE status IN ('STARTING', 'IN_PROGRESS') AND kind = 'CUSTOM'"
        )

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        async with self._store_lock:
            for store in self._stores.values():
                await store.close()
            self._stores.clear()

    async def _ingest(self, job: Job, ctx: JobContext) -> None:
        """The work of an ingestion job: sync the data source into the knowledge base."""
        stats = {k: int(job.figures.get(k, 0)) for k in STAT_KEYS}
        stats["scanned"] = stats["metadata_scanned"] = 0  # recounted on resume; the others carry on
        failures = list(job.failures)
        try:
            kb = await self.get_kb(job.spec["kb_id"])
            ds = await self.get_ds(kb.id, job.spec["ds_id"])
            source = self.plan(ds).source
            assert source is not None  # start_job refuses direct-upload data sources
            await self._sync(kb, ds, source, job.id, stats, failures, ctx)
        except asyncio.CancelledError:
            raise  # shutdown: the job stays running and is resumed at the next start
        except Exception:
            await self._report(ctx, stats, failures)
            raise  # the engine records the outcome (stopped, failed and why)
        await self._report(ctx, stats, failures)

    @staticmethod
    async def _report(ctx: JobContext, stats: Mapping[str, int], failures: Sequence[str]) -> None:
        await ctx.report(done=stats["scanned"], total=stats.get(LISTED), figures=stats, failures=failures)

    async def _sync(
        self,
        kb: KnowledgeBase,
        ds: DataSource,
        source: DocumentSource,
        job_id: str,
        stats: dict[str, int],
        failures: list[str],
        ctx: JobContext,
    ) -> None:
        items = await source.list()
        stats[LISTED] = len(items)
        await self._report(ctx, stats, failures)
        known = {
            r["id"]: r
            for r in await self.db.query(
                "SELECT id, version, hash, status, job_id FROM kb_documents WHERE ds_id = ? AND kind = 'S3'",
                (ds.id,),
            )
        }
        plan = self.plan(ds)
        listed: set[str] = set()
        last_save = 0.0
        window: list[tuple[SourceItem, Mapping[str, Any] | None]] = []

        async def index_window() -> None:
            try:
                async with asyncio.TaskGroup() as group:  # one failing for good stops its siblings
                    tasks = [
                        group.create_task(self._sync_one(kb, ds, plan, source, item, prev, job_id))
                        for item, prev in window
                    ]
            except BaseExceptionGroup as group_error:  # the job records the error itself, as before
                raise group_error.exceptions[0] from None
            for (item, _), task in zip(window, tasks, strict=True):
                change, reason = task.result()
                if change == "failed":
                    stats["failed"] += 1
                    if len(failures) < MAX_FAILURES:  # the counter keeps counting
                        failures.append(f"{item.uri}: {reason}")
                elif change in ("new", "modified"):
                    stats[change] += 1
            window.clear()

        for item in items:
            ctx.check()
            doc_id = document_id(ds.id, item.uri)
            listed.add(doc_id)
            stats["scanned"] += 1
            prev = known.get(doc_id)
            if prev is not None and prev["version"] == item.version and prev["status"] == "INDEXED":
                # unchanged since the last sync (or since before this job's restart): not even read
                if time.monotonic() - last_save <= 0.5:
                    continue
            else:
                window.append((item, prev))
                if len(window) < SYNC_IN_FLIGHT:
                    continue
                await index_window()
            # after every window of documents that were read, so a resumed job's counts stay right
            await self._report(ctx, stats, failures)
            last_save = time.monotonic()
        if window:
            await index_window()
            await self._report(ctx, stats, failures)
        gone = [doc_id for doc_id in known if doc_id not in listed]
        if gone:
            ctx.check()
            store = await self.store(kb)
            await store.delete_documents(gone)
            await self.db.execute(
                f"DELETE FROM kb_documents WHERE kb_id = ? AND id IN ({','.join('?' * len(gone))})",
                (kb.id, *gone),
            )
            stats["deleted"] += len(gone)

    async def _sync_one(
        self,
        kb: KnowledgeBase,
        ds: DataSource,
        plan: DataSourcePlan,
        source: DocumentSource,
        item: SourceItem,
        prev: Mapping[str, Any] | None,
        job_id: str,
    ) -> tuple[str, str | None]:
        """Index one listed document if its content changed; returns new/modified/same/failed and, for
        a failure, its reason."""
        doc_id = document_id(ds.id, item.uri)
        try:
            doc = await source.read(item)
            digest = _content_hash(doc.data, doc.metadata)
            if prev is not None and prev["hash"] == digest and prev["status"] == "INDEXED":
                await self._record(
                    kb, ds, doc_id, "S3", item.uri, item.version, digest, "INDEXED", None, None, job_id
                )
                return "same", None
            count = await self._index(kb, ds, plan, doc_id, item.uri, item.key, doc.data, doc.metadata)
        except PlatformError as exc:
            await self._record(
                kb, ds, doc_id, "S3", item.uri, item.version, None, "FAILED", exc.message, 0, job_id
            )
            return "failed", exc.message
        await self._record(
            kb, ds, doc_id, "S3", item.uri, item.version, digest, "INDEXED", None, count, job_id
        )
        return ("modified" if prev is not None and prev["hash"] is not None else "new"), None

    async def _record(
        self,
        kb: KnowledgeBase,
        ds: DataSource,
        doc_id: str,
        kind: str,
        uri: str,
        version: str | None,
        digest: str | None,
        status: str,
        reason: str | None,
        chunks: int | None,
        job_id: str | None,
    ) -> None:
        await self.db.execute(
            "INSERT INTO kb_documents (kb_id, ds_id, id, kind, uri, version, hash, status, reason, chunks,"
            " job_id, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (kb_id, id) DO UPDATE SET version = excluded.version,"
            " hash = COALESCE(excluded.hash, kb_documents.hash), status = excluded.status,"
            " reason = excluded.reason,"
            " chunks = CASE WHEN ? IS NULL THEN kb_documents.chunks ELSE excluded.chunks END,"
            " job_id = excluded.job_id, updated = excluded.updated",
            (
                kb.id,
                ds.id,
                doc_id,
                kind,
                uri,
                version,
                digest,
                status,
                reason,
                chunks or 0,
                job_id,
                time.time(),
            )
            + (chunks,),
        )

    async def _index(
        self,
        kb: KnowledgeBase,
        ds: DataSource,
        plan: DataSourcePlan,
        doc_id: str,
        uri: str,
        filename: str,
        data: bytes,
        metadata: Mapping[str, Any],
    ) -> int:
        """Parse, chunk, embed and store one document (all its chunks replaced at once)."""
        parsed = await asyncio.to_thread(self.parsers.parse, data, filename)

        async def embed(texts: list[str]) -> list[list[float]]:
            return await self.embed(kb, texts)

        drafts = await chunk_document(parsed, plan.chunking, embed)
        vectors = await self.embed(kb, [d.text for d in drafts])
        chunks = []
        for i, (draft, vector) in enumerate(zip(drafts, vectors, strict=True)):
            chunk_id = f"{doc_id}#{i}"
            meta: dict[str, Any] = {**metadata, SOURCE_URI: uri, DATA_SOURCE_ID: ds.id, CHUNK_ID: chunk_id}
            if draft.page is not None:
                meta[PAGE_NUMBER] = draft.page
            chunks.append(Chunk(chunk_id, doc_id, draft.text, vector, meta, draft.parent))
        store = await self.store(kb)
        if chunks:
            await store.upsert(chunks)
        else:
            await store.delete_documents([doc_id])
        return len(chunks)

    # -- direct documents --------------------------------------------------------------------------
    async def ingest_documents(
        self,
        kb_id: str,
        ds_id: str,
        docs: Sequence[DirectDocument],
        read_s3: Callable[[str], Any] | None = None,
    ) -> list[DocumentRecord]:
        """Queue documents for indexing (status STARTING) and index them in the background."""
        kb = await self.get_kb(kb_id)
        ds = await self.get_ds(kb_id, ds_id)
        plan = self.plan(ds)
        for d in docs:
            await self._record(kb, ds, d.id, d.kind, d.uri, None, None, "STARTING", None, None, None)
        records = [await self.get_document(kb_id, ds_id, d.id) for d in docs]

        async def run() -> None:
            for d in docs:
                await self.db.execute(
                    "UPDATE kb_documents SET status = 'IN_PROGRESS' WHERE kb_id = ? AND id = ?", (kb.id, d.id)
                )
                try:
                    data = d.data
                    metadata = dict(d.metadata)
                    if data is None and d.s3_uri is not None and read_s3 is not None:
                        data, sidecar = await read_s3(d.s3_uri)
                        metadata = {**sidecar, **metadata}
                    if data is None:
                        raise ValidationError("the document has no content")
                    digest = _content_hash(data, metadata)
                    count = await self._index(kb, ds, plan, d.id, d.uri, d.filename, data, metadata)
                except PlatformError as exc:
                    await self._record(
                        kb, ds, d.id, d.kind, d.uri, None, None, "FAILED", exc.message, 0, None
                    )
                else:
                    await self._record(
                        kb, ds, d.id, d.kind, d.uri, None, digest, "INDEXED", None, count, None
                    )

        key = f"docs-{uuid.uuid4().hex[:8]}"
        task = asyncio.get_running_loop().create_task(run(), name=key)
        self._tasks[key] = task
        task.add_done_callback(lambda _t: self._tasks.pop(key, None))
        return records

    async def get_document(self, kb_id: str, ds_id: str, doc_id: str) -> DocumentRecord:
        rows = await self.db.query(
            "SELECT * FROM kb_documents WHERE kb_id = ? AND ds_id = ? AND id = ?", (kb_id, ds_id, doc_id)
        )
        if not rows:
            raise NotFoundError(f"document {doc_id!r} does not exist in data source {ds_id}")
        return _doc(rows[0])

    async def list_documents(self, kb_id: str, ds_id: str) -> list[DocumentRecord]:
        await self.get_ds(kb_id, ds_id)
        rows = await self.db.query("SELECT * FROM kb_documents WHERE ds_id = ? ORDER BY id", (ds_id,))
        return [_doc(r) for r in rows]

    async def delete_documents(self, kb_id: str, ds_id: str, doc_ids: Sequence[str]) -> list[DocumentRecord]:
        kb = await self.get_kb(kb_id)
        await self.get_ds(kb_id, ds_id)
        out = []
        store = await self.store(kb)
        await store.delete_documents(list(doc_ids))
        for doc_id in doc_ids:
            rows = await self.db.query(
                "SELECT * FROM kb_documents WHERE kb_id = ? AND ds_id = ? AND id = ?", (kb_id, ds_id, doc_id)
            )
            if rows:
                await self.db.execute("DELETE FROM kb_documents WHERE kb_id = ? AND id = ?", (kb_id, doc_id))
                out.append(DocumentRecord(**{**_doc(rows[0]).__dict__, "status": "DELETING"}))
            else:
                out.append(
                    DocumentRecord(kb_id, ds_id, doc_id, "CUSTOM", doc_id, "NOT_FOUND", None, 0, time.time())
                )
        return out
