"""The batch engine: jobs of kind ``"batch"`` on :mod:`haniwa.jobs`, JSONL through :mod:`haniwa.s3`.

Each input file is worked through once, in order. Records run concurrently up to the model's batch slots,
inside a window of at most ``window`` records read ahead: memory stays bounded however large the file,
and answers are written strictly in input order (the head of the window waits for its own answer).

Durability: each answer line is appended and flushed to a staging file
(``$HANIWA_HOME/batch/<id>/<n>.out``) as soon as it and every line before it are done. The staging file
*is* the checkpoint: after ``kill -9`` the resumed work drops a half-written last line, counts what the
file holds (answers, errors, tokens) and skips that many records of the input — a written record is never
run again and none is lost. A file's output object is published to S3 when the file is done (and what was
written so far when the job is stopped or expires), then the manifest.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import secrets
import shutil
import string
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from haniwa.batch.base import KIND, Answer, BatchJob, Counts, RecordRunner, split_uri
from haniwa.errors import ConflictError, NotFoundError, UsageError, ValidationError
from haniwa.jobs.base import ACTIVE, Job, JobContext, JobState, JobStopped
from haniwa.jobs.engine import JobEngine
from haniwa.s3.base import NoSuchKeyError, PutOptions, S3Store
from haniwa.store.db import Database

__all__ = ["BatchService", "MANIFEST", "new_id"]

MANIFEST = "manifest.json.out"
_ALPHABET = string.ascii_lowercase + string.digits
_REPORT_EVERY = 0.1  # seconds between progress reports to the job row (the staging file is the truth)
_ERROR_PREFIX = 256  # bytes of an over-long line kept for its error answer


def new_id() -> str:
    """A job id as Bedrock spells them: 12 lowercase letters and digits."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


async def lines(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[tuple[bytes, bool]]:
    """The non-blank lines of a byte stream, each with ``True`` when it is over ``limit`` bytes (then only
    its first bytes are kept: memory stays bounded by ``limit`` whatever the input)."""
    buf = bytearray()
    over = False
    async for chunk in chunks:
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            piece = chunk[start:] if nl < 0 else chunk[start:nl]
            if not over:
                buf += piece
                if len(buf) > limit:
                    over, buf = True, buf[:_ERROR_PREFIX]
            if nl < 0:
                break
            if over or buf.strip():
                yield bytes(buf), over
            buf, over = bytearray(), False
            start = nl + 1
    if over or buf.strip():
        yield bytes(buf), over


def _recover(path: Path) -> tuple[int, Counts]:
    """Lines and counts of a staging file, after cutting a half-written last line a kill left behind."""
    if not path.exists():
        return 0, Counts()
    with path.open("r+b") as f:
        data_end = 0
        n = ok = err = tin = tout = 0
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            data_end += len(raw)
            n += 1
            row = json.loads(raw)
            meta = row.pop("_haniwa", None) if isinstance(row, dict) else None
            if meta is None:
                continue
            ok += meta["ok"]
            err += 1 - meta["ok"]
            tin += meta["in"]
            tout += meta["out"]
        f.truncate(data_end)
    return n, Counts(0, n, ok, err, tin, tout)


def _add(a: Counts, b: Counts) -> Counts:
    return Counts(
        a.total,
        a.processed + b.processed,
        a.success + b.success,
        a.error + b.error,
        a.input_tokens + b.input_tokens,
        a.output_tokens + b.output_tokens,
    )


def _figures(c: Counts, phase: int) -> dict[str, float]:
    return {
        "phase": phase,
        "total": c.total,
        "processed": c.processed,
        "success": c.success,
        "error": c.error,
        "input_tokens": c.input_tokens,
        "output_tokens": c.output_tokens,
    }


def manifest(c: Counts) -> dict[str, int]:
    """``manifest.json.out`` as Bedrock writes it."""
    return {
        "totalRecordCount": c.total,
        "processedRecordCount": c.processed,
        "successRecordCount": c.success,
        "errorRecordCount": c.error,
        "inputTokenCount": c.input_tokens,
        "outputTokenCount": c.output_tokens,
    }


def _status(job: Job, expires: float | None) -> str:
    phase = job.figures.get("phase", 0)
    if job.state is JobState.QUEUED:
        return "Scheduled" if job.started is not None else "Submitted"
    if job.state is JobState.RUNNING:
        return "InProgress" if phase else "Validating"
    if job.state is JobState.STOPPING:
        return "Stopping"
    if job.state is JobState.STOPPED:
        expired = expires is not None and job.ended is not None and job.ended >= expires
        return "Expired" if expired else "Stopped"
    if job.state is JobState.COMPLETE:
        return "PartiallyCompleted" if job.figures.get("error", 0) else "Completed"
    return "Failed"


class BatchService:
    """Batch jobs: their rows (``batch_jobs``), their work on the job engine and their files in S3.

    The :class:`RecordRunner` is bound by the api layer (:meth:`bind`), which alone knows what a record
    of each kind means."""

    def __init__(
        self,
        db: Database,
        jobs: JobEngine,
        store: S3Store,
        work_dir: Path,
        *,
        max_line_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.store = store
        self.work_dir = work_dir
        self.max_line_bytes = max_line_bytes
        self.clock = clock
        self._runner: RecordRunner | None = None
        jobs.register(KIND, self._work)

    def bind(self, runner: RecordRunner) -> None:
        self._runner = runner

    @property
    def runner(self) -> RecordRunner:
        if self._runner is None:
            raise UsageError("BatchService.bind(runner) was not called")
        return self._runner

    # -- the jobs -------------------------------------------------------------------------------------
    async def create(
        self,
        *,
        surface: str,
        name: str,
        model_id: str,
        kind: str,
        input_uri: str,
        output_uri: str,
        spec: Mapping[str, Any],
        client_token: str | None = None,
        timeout_hours: float | None = None,
    ) -> BatchJob:
        """A new job, queued; the one already made with ``client_token`` when there is one."""
        split_uri(input_uri)
        split_uri(output_uri)
        if client_token is not None:
            rows = await self.db.query(
                "SELECT id FROM batch_jobs WHERE surface = ? AND client_token = ?", (surface, client_token)
            )
            if rows:
                return await self.get(rows[0]["id"])
        if await self.db.query("SELECT 1 FROM batch_jobs WHERE surface = ? AND name = ?", (surface, name)):
            raise ConflictError(f"a batch job named {name!r} already exists; job names are unique")
        batch_id = new_id()
        now = self.clock()
        expires = now + timeout_hours * 3600 if timeout_hours else None
        # the row first: the work may start before submit() returns, and finds its row by the batch id
        await self.db.execute(
            "INSERT INTO batch_jobs (id, job_id, surface, name, client_token, model_id, kind, input_uri,"
            " output_uri, spec, created, expires) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                batch_id,
                f"pending-{batch_id}",
                surface,
                name,
                client_token,
                model_id,
                kind,
                input_uri,
                output_uri,
                json.dumps(dict(spec), ensure_ascii=False, default=str),
                now,
                expires,
            ),
        )
        try:
            job = await self.jobs.submit(KIND, name=f"batch {name}", spec={"batch_id": batch_id})
        except BaseException:
            await self.db.execute("DELETE FROM batch_jobs WHERE id = ?", (batch_id,))
            raise
        await self.db.execute("UPDATE batch_jobs SET job_id = ? WHERE id = ?", (job.id, batch_id))
        return await self.get(batch_id)

    async def _row(self, batch_id: str) -> dict[str, Any]:
        rows = await self.db.query("SELECT * FROM batch_jobs WHERE id = ?", (batch_id,))
        if not rows:
            raise NotFoundError(f"batch job {batch_id!r} does not exist")
        return rows[0]

    async def _expire(self, row: Mapping[str, Any], job: Job) -> Job:
        if job.state in ACTIVE and row["expires"] is not None and self.clock() >= row["expires"]:
            if job.state is JobState.QUEUED:
                await self.jobs.stop(job.id)
            return await self.jobs.get(job.id)
        return job

    async def _view(self, row: Mapping[str, Any]) -> BatchJob:
        job = await self._expire(row, await self.jobs.get(row["job_id"]))
        f = job.figures
        counts = Counts(
            int(f.get("total", 0)),
            int(f.get("processed", 0)),
            int(f.get("success", 0)),
            int(f.get("error", 0)),
            int(f.get("input_tokens", 0)),
            int(f.get("output_tokens", 0)),
        )
        return BatchJob(
            id=row["id"],
            job_id=row["job_id"],
            surface=row["surface"],
            name=row["name"],
            client_token=row["client_token"],
            model_id=row["model_id"],
            kind=row["kind"],
            input_uri=row["input_uri"],
            output_uri=row["output_uri"],
            spec=json.loads(row["spec"]),
            created=row["created"],
            expires=row["expires"],
            status=_status(job, row["expires"]),
            message=job.message,
            updated=job.updated,
            ended=job.ended,
            started=job.started,
            counts=counts,
        )

    async def get(self, batch_id: str) -> BatchJob:
        return await self._view(await self._row(batch_id))

    async def list(self, surface: str) -> list[BatchJob]:
        """The surface's jobs, oldest first."""
        rows = await self.db.query(
            "SELECT * FROM batch_jobs WHERE surface = ? ORDER BY created, id", (surface,)
        )
        return [await self._view(r) for r in rows]

    async def stop(self, batch_id: str) -> BatchJob:
        """Stop a job: what was written so far is published with its manifest."""
        row = await self._row(batch_id)
        await self.jobs.stop(row["job_id"])
        return await self.get(batch_id)

    async def wait(self, batch_id: str, timeout: float | None = None) -> BatchJob:
        row = await self._row(batch_id)
        await self.jobs.wait(row["job_id"], timeout)
        return await self.get(batch_id)

    # -- the work -------------------------------------------------------------------------------------
    async def _inputs(self, uri: str) -> builtins.list[tuple[str, str]]:
        bucket, prefix = split_uri(uri)
        await self.store.bucket(bucket)
        if prefix and not prefix.endswith("/"):
            with contextlib.suppress(NoSuchKeyError):
                await self.store.head(bucket, prefix)
                return [(bucket, prefix)]  # one object named exactly
        keys: builtins.list[tuple[str, str]] = []
        after = ""
        while True:
            page = await self.store.list(bucket, prefix, after=after)
            keys += [(bucket, o.key) for o in page.objects if o.key.endswith(".jsonl")]
            if not page.truncated or page.next_after is None:
                break
            after = page.next_after
        if not keys:
            raise ValidationError(f"{uri} holds no .jsonl object")
        return keys

    async def _count(self, bucket: str, key: str) -> int:
        _, body = await self.store.open(bucket, key)
        return sum([1 async for _ in lines(body, self.max_line_bytes)])

    async def _work(self, job: Job, ctx: JobContext) -> None:
        b = await self._row(job.spec["batch_id"])
        stage = self.work_dir / b["id"]
        await ctx.report(figures={**job.figures, "phase": 0}, message="validating the input")
        self._check_expiry(b)
        files = await self._inputs(b["input_uri"])
        out_bucket, out_prefix = split_uri(b["output_uri"])
        await self.store.bucket(out_bucket)
        total = 0
        for bucket, key in files:
            total += await self._count(bucket, key)
        stage.mkdir(parents=True, exist_ok=True)
        run = _Run(self, b, ctx, total)
        try:
            for i, (bucket, key) in enumerate(files):
                await run.file(i, bucket, key, stage)
        except JobStopped:
            await run.publish_all(files, stage, out_bucket, out_prefix)
            raise
        await run.publish_all(files, stage, out_bucket, out_prefix)
        shutil.rmtree(stage, ignore_errors=True)

    def _check_expiry(self, b: Mapping[str, Any]) -> None:
        if b["expires"] is not None and self.clock() >= b["expires"]:
            raise JobStopped


class _Run:
    """One run of one job's work (a resumed job gets a new one)."""

    def __init__(self, svc: BatchService, b: Mapping[str, Any], ctx: JobContext, total: int) -> None:
        self.svc = svc
        self.b = dict(b)
        self.ctx = ctx
        self.counts = Counts(total=total)
        self.started = time.monotonic()
        self.ran = 0  # records run by this run (the pace of the ETA)
        self.last_report = 0.0

    def _output_key(self, out_prefix: str, name: str) -> str:
        base = out_prefix.rstrip("/") + "/" if out_prefix.strip("/") else ""
        return f"{base}{self.b['id']}/{name}"

    async def file(self, i: int, bucket: str, key: str, stage: Path) -> None:
        staged = stage / f"{i}.out"
        done, got = _recover(staged)
        self.counts = _add(self.counts, got)
        if (stage / f"{i}.done").exists():
            return
        await self.report(force=True)
        runner, kind, model = self.svc.runner, self.b["kind"], self.b["model_id"]
        parallel = max(1, runner.parallel(model))
        window = parallel * 4
        gate = asyncio.Semaphore(parallel)
        limit = self.svc.max_line_bytes

        async def one(line: bytes, ordinal: int, over: bool) -> Answer:
            if over:
                return runner.too_long(kind, line, ordinal, limit)
            async with gate:
                return await runner.run(kind, model, line, ordinal)

        pending: deque[asyncio.Task[Answer]] = deque()
        _, body = await self.svc.store.open(bucket, key)
        ordinal = 0
        with staged.open("ab") as out:
            try:
                async for line, over in lines(body, limit):
                    if ordinal < done:
                        ordinal += 1
                        continue
                    if self.ctx.stopping or self._expired():
                        break
                    pending.append(asyncio.create_task(one(line, ordinal, over)))
                    ordinal += 1
                    while len(pending) >= window or (pending and pending[0].done()):
                        await self._write(out, await pending.popleft())
                while pending:
                    await self._write(out, await pending.popleft())
            finally:
                for task in pending:
                    task.cancel()
        await self.report(force=True)
        if self.ctx.stopping or self._expired():
            raise JobStopped
        (stage / f"{i}.done").touch()

    def _expired(self) -> bool:
        return self.b["expires"] is not None and self.svc.clock() >= self.b["expires"]

    async def _write(self, out: Any, answer: Answer) -> None:
        line = {
            **answer.line,
            "_haniwa": {"ok": int(answer.ok), "in": answer.input_tokens, "out": answer.output_tokens},
        }
        out.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
        out.flush()
        self.ran += 1
        self.counts = _add(
            self.counts,
            Counts(0, 1, int(answer.ok), int(not answer.ok), answer.input_tokens, answer.output_tokens),
        )
        await self.report()

    async def report(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_report < _REPORT_EVERY:
            return
        self.last_report = now
        c = self.counts
        elapsed = now - self.started
        left = c.total - c.processed
        if self.ran and elapsed > 0:
            rate = self.ran / elapsed
            message = (
                f"{c.processed} of {c.total} records; {rate:.1f} records/s measured on this machine;"
                f" about {left / rate:.0f} s left"
            )
        else:
            message = f"{c.processed} of {c.total} records; measuring the pace"
        await self.ctx.report(done=c.processed, total=c.total, figures=_figures(c, 1), message=message)
        # the expiry may be moved while the job runs (a client cannot, an operator can)
        rows = await self.svc.db.query("SELECT expires FROM batch_jobs WHERE id = ?", (self.b["id"],))
        if rows:
            self.b["expires"] = rows[0]["expires"]

    async def publish_all(
        self, files: list[tuple[str, str]], stage: Path, out_bucket: str, out_prefix: str
    ) -> None:
        """Every staged output (without haniwa's bookkeeping) and the manifest, to S3."""
        for i, (_, key) in enumerate(files):
            staged = stage / f"{i}.out"
            if not staged.exists():
                continue
            await self.svc.store.put(
                out_bucket,
                self._output_key(out_prefix, key.rsplit("/", 1)[-1] + ".out"),
                _public(staged),
                PutOptions(content_type="application/jsonl"),
            )
        c = self.counts
        body = json.dumps(manifest(c)).encode()

        async def one() -> AsyncIterator[bytes]:
            yield body

        await self.svc.store.put(
            out_bucket,
            self._output_key(out_prefix, MANIFEST),
            one(),
            PutOptions(content_type="application/json"),
        )
        done = "stopped" if self.ctx.stopping or self._expired() else "done"
        await self.ctx.report(
            done=c.processed,
            total=c.total,
            figures=_figures(c, 1),
            message=f"{done}: {c.processed} of {c.total} records ({c.success} answers, {c.error} errors)",
        )


async def _public(path: Path) -> AsyncIterator[bytes]:
    """A staging file's lines without the ``_haniwa`` bookkeeping, a block (about 1 MiB) at a time; each
    block is read and re-encoded on a worker thread, so a large output never holds the event loop."""
    with path.open("rb") as f:
        while block := await asyncio.to_thread(_public_block, f):
            yield block


def _public_block(f: Any) -> bytes:
    out: list[bytes] = []
    size = 0
    while size < 1 << 20 and (raw := f.readline()):
        row = json.loads(raw)
        row.pop("_haniwa", None)
        data = json.dumps(row, ensure_ascii=False).encode() + b"\n"
        out.append(data)
        size += len(data)
    return b"".join(out)
