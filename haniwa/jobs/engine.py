"""The job engine: job rows in the project's database, the state machine, progress, stop, a bound on
concurrent jobs per kind, and resumption after a kill.

Durability comes from the rows alone: every move and every report is written when it happens, so after
``kill -9`` the next engine finds the jobs that were running, queues them again and their work starts
from the last checkpoint it reported (see :meth:`JobEngine.recover`). A clean shutdown
(:meth:`JobEngine.close`) leaves them the same way, so a restart resumes them too.

Each move is read-checked-written in one call on the database's single thread, so no other statement of
this process can slip between the check and the write (a stop racing the work's end, say).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from haniwa.errors import ConflictError, NotFoundError, PlatformError, UsageError
from haniwa.jobs.base import ACTIVE, TRANSITIONS, Job, JobContext, JobState, JobStopped, Runner, Work
from haniwa.store.db import Database

__all__ = ["JobEngine", "InProcessRunner", "DEFAULT_LIMITS", "DEFAULT_LIMIT", "MAX_FAILURES"]

log = logging.getLogger("haniwa.jobs")

# Jobs of one kind that may run at once; "*" sets it for kinds not named. Training takes every core (and
# the accelerator, when there is one): a second one would only slow both.
DEFAULT_LIMITS: Mapping[str, int] = {"training": 1}
DEFAULT_LIMIT = 4
MAX_FAILURES = 20  # failure reasons kept per job


class InProcessRunner:
    """Runs work on this process's event loop, inside the engine's task for the job."""

    async def run(self, job: Job, work: Work, ctx: JobContext) -> None:
        await work(job, ctx)

    async def close(self) -> None:
        return None


def _job(row: Mapping[str, Any]) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        state=JobState(row["state"]),
        spec=json.loads(row["spec"]),
        created=row["created"],
        updated=row["updated"],
        started=row["started"],
        ended=row["ended"],
        done=row["done"],
        total=row["total"],
        figures=json.loads(row["figures"]),
        message=row["message"],
        failures=tuple(json.loads(row["failures"])),
        eta=row["eta"],
        checkpoint=row["checkpoint"],
    )


class _Context:
    """The in-process :class:`JobContext`: reports go straight to the job's row."""

    def __init__(self, engine: JobEngine, job: Job) -> None:
        self._engine = engine
        self._id = job.id
        self._total = job.total
        # the pace is measured over this run only: a resumed job may count again from zero
        self._first: tuple[float, float] | None = None

    @property
    def stopping(self) -> bool:
        return self._id in self._engine._stopping

    def check(self) -> None:
        if self.stopping:
            raise JobStopped

    async def report(
        self,
        *,
        done: float | None = None,
        total: float | None = None,
        figures: Mapping[str, float] | None = None,
        message: str | None = None,
        failures: Sequence[str] | None = None,
        checkpoint: bytes | None = None,
        eta: float | None = None,
    ) -> None:
        now = time.time()
        sets: dict[str, Any] = {"updated": now}
        if total is not None:
            self._total = sets["total"] = total
        if done is not None:
            sets["done"] = done
            sets["eta"] = eta if eta is not None else self._estimate(now, done)
        elif eta is not None:
            sets["eta"] = eta
        if figures is not None:
            sets["figures"] = json.dumps(dict(figures))
        if message is not None:
            sets["message"] = message
        if failures is not None:
            sets["failures"] = json.dumps(list(failures)[-MAX_FAILURES:], ensure_ascii=False)
        if checkpoint is not None:
            sets["checkpoint"] = checkpoint
        await self._engine._update(self._id, sets)

    def _estimate(self, now: float, done: float) -> float | None:
        if self._first is None or done < self._first[1]:
            self._first = (now, done)
            return None
        if self._total is None:
            return None
        if done >= self._total:
            return now
        t0, d0 = self._first
        if done == d0 or now == t0:
            return None
        return now + (self._total - done) * (now - t0) / (done - d0)


class JobEngine:
    """Owns the ``jobs`` rows and runs their work. One per app, built by ``create_app``; capabilities
    register their kinds' work at construction and submit jobs."""

    def __init__(
        self, db: Database, *, limits: Mapping[str, int] | None = None, runner: Runner | None = None
    ) -> None:
        self.db = db
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        bad = {k: n for k, n in self.limits.items() if n < 1}
        if bad:
            raise UsageError(f"job limits must be at least 1 (HANIWA_JOB_LIMITS): {bad}")
        self.runner: Runner = runner or InProcessRunner()
        self._kinds: dict[str, tuple[Work, Runner]] = {}
        self._tasks: dict[str, tuple[str, asyncio.Task[None]]] = {}  # job id -> (kind, task)
        self._stopping: set[str] = set()
        self._schedule_lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._closed = False

    def register(self, kind: str, work: Work, *, runner: Runner | None = None) -> None:
        """Name the work that runs jobs of ``kind`` (and where, when not the engine's default runner)."""
        if kind in self._kinds:
            raise UsageError(f"job kind {kind!r} is registered twice")
        self._kinds[kind] = (work, runner or self.runner)

    def limit(self, kind: str) -> int:
        return self.limits.get(kind, self.limits.get("*", DEFAULT_LIMIT))

    # -- the jobs ----------------------------------------------------------------------------------
    async def submit(self, kind: str, *, name: str = "", spec: Mapping[str, Any] | None = None) -> Job:
        """Queue a job; it starts as soon as its kind has a free slot."""
        if kind not in self._kinds:
            raise UsageError(f"no work is registered for job kind {kind!r}")
        job_id = uuid.uuid4().hex[:10].upper()
        now = time.time()
        await self.db.execute(
            "INSERT INTO jobs (id, kind, name, state, spec, created, updated) VALUES (?,?,?,?,?,?,?)",
            (job_id, kind, name, JobState.QUEUED.value, json.dumps(dict(spec or {})), now, now),
        )
        await self._schedule()
        return await self.get(job_id)

    async def get(self, job_id: str) -> Job:
        rows = await self.db.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise NotFoundError(f"job {job_id!r} does not exist")
        return _job(rows[0])

    async def find(self, kind: str | None = None, states: Sequence[JobState] = ()) -> list[Job]:
        """Jobs, oldest first; of one kind and in the given states when these are set."""
        where, params = [], []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            params.extend(s.value for s in states)
        sql = "SELECT * FROM jobs" + (f" WHERE {' AND '.join(where)}" if where else "")
        return [_job(r) for r in await self.db.query(sql + " ORDER BY created, id", params)]

    async def stop(self, job_id: str) -> Job:
        """Ask a job to stop: a queued one stops at once; a running one is STOPPING until its work next
        checks (:meth:`JobContext.check`), then STOPPED — or COMPLETE if it finished first."""
        job = await self.get(job_id)
        if job.state is JobState.STOPPING:
            return job
        self._stopping.add(job_id)
        if await self._move(job_id, JobState.STOPPING) is not None:
            return await self.get(job_id)
        self._stopping.discard(job_id)
        if await self._move(job_id, JobState.STOPPED) is not None:
            return await self.get(job_id)
        job = await self.get(job_id)
        raise ConflictError(f"job {job_id} is {job.state}; only a queued or running job can be stopped")

    async def cancel(self, job_id: str) -> Job:
        """Stop a job now, without waiting for its work to check: its task is cancelled."""
        entry = self._tasks.get(job_id)
        if entry is not None:
            entry[1].cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await entry[1]
        await self._move(job_id, JobState.STOPPED)
        self._stopping.discard(job_id)
        await self._schedule()
        return await self.get(job_id)

    async def delete(self, job_id: str) -> None:
        """Forget a job (cancelled first if it is still active)."""
        if (await self.get(job_id)).state in ACTIVE:
            await self.cancel(job_id)
        await self.db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    async def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """The job once it has ended (TimeoutError after ``timeout`` seconds)."""
        async with asyncio.timeout(timeout), self._changed:
            while not (job := await self.get(job_id)).state.terminal:
                await self._changed.wait()
        return job

    async def recover(self) -> list[str]:
        """At start-up, once every kind is registered: jobs a kill (or a shutdown) left running are
        queued again and resume from their checkpoint; a stop that was under way is finished. Returns
        the ids queued again."""
        resumed = []
        for job in await self.find(states=(JobState.RUNNING, JobState.STOPPING)):
            if job.id in self._tasks:
                continue
            if job.state is JobState.STOPPING:
                await self._move(job.id, JobState.STOPPED)
                continue
            if job.kind not in self._kinds:
                log.warning("job %s: no work is registered for kind %r; it waits queued", job.id, job.kind)
            log.info("resuming %s job %s interrupted by a restart", job.kind, job.id)
            await self._move(job.id, JobState.QUEUED, {"message": "resumed after a restart"})
            resumed.append(job.id)
        await self._schedule()
        return resumed

    async def close(self) -> None:
        """Cancel the running work; the jobs stay RUNNING and resume at the next :meth:`recover`."""
        self._closed = True
        tasks = [task for _, task in self._tasks.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for runner in {id(r): r for r in [self.runner, *(r for _, r in self._kinds.values())]}.values():
            await runner.close()

    # -- the machinery -----------------------------------------------------------------------------
    async def _schedule(self) -> None:
        """Start queued jobs, oldest first, while their kind has a free slot."""
        async with self._schedule_lock:
            if self._closed:
                return
            for job in await self.find(states=(JobState.QUEUED,)):
                if job.kind not in self._kinds:
                    continue
                running = sum(1 for kind, _ in self._tasks.values() if kind == job.kind)
                if running >= self.limit(job.kind):
                    continue
                fields = {} if job.started is not None else {"started": time.time()}
                if await self._move(job.id, JobState.RUNNING, fields) is None:
                    continue  # stopped meanwhile
                task = asyncio.get_running_loop().create_task(
                    self._run(await self.get(job.id)), name=f"job-{job.kind}-{job.id}"
                )
                self._tasks[job.id] = (job.kind, task)
                task.add_done_callback(functools.partial(self._forget, job.id))

    def _forget(self, job_id: str, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(job_id, None)

    async def _run(self, job: Job) -> None:
        work, runner = self._kinds[job.kind]
        try:
            await runner.run(job, work, _Context(self, job))
        except asyncio.CancelledError:
            raise  # shutdown (the job resumes at the next start) or cancel() (which stops it)
        except JobStopped:
            await self._move(job.id, JobState.STOPPED)
        except PlatformError as exc:
            await self._move(job.id, JobState.FAILED, failure=exc.message)
        except Exception as exc:  # a bug in the work: the job says so, and the log shows where
            log.exception("%s job %s failed", job.kind, job.id)
            await self._move(job.id, JobState.FAILED, failure=f"internal error: {exc}")
        else:
            await self._move(job.id, JobState.COMPLETE)
        self._stopping.discard(job.id)
        self._tasks.pop(job.id, None)
        await self._schedule()

    async def _move(
        self,
        job_id: str,
        to: JobState,
        fields: Mapping[str, Any] | None = None,
        *,
        failure: str | None = None,
    ) -> JobState | None:
        """Move a job to ``to`` if the state machine allows it; returns the state it left (None: no move)."""
        prev = await self.db.run(self._move_sync, job_id, to, dict(fields or {}), failure)
        if prev is not None and to.terminal:
            async with self._changed:
                self._changed.notify_all()
        return prev

    def _move_sync(
        self, job_id: str, to: JobState, fields: dict[str, Any], failure: str | None
    ) -> JobState | None:
        rows = self.db.query_sync("SELECT state, failures FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            return None
        prev = JobState(rows[0]["state"])
        if to not in TRANSITIONS[prev]:
            return None
        now = time.time()
        sets = {**fields, "state": to.value, "updated": now}
        if to.terminal:
            sets.update(ended=now, eta=None)
        if failure is not None:
            kept = [*json.loads(rows[0]["failures"]), failure][-MAX_FAILURES:]
            sets.update(message=failure, failures=json.dumps(kept, ensure_ascii=False))
        self._update_sync(job_id, sets)
        return prev

    async def _update(self, job_id: str, sets: Mapping[str, Any]) -> None:
        await self.db.run(self._update_sync, job_id, sets)

    def _update_sync(self, job_id: str, sets: Mapping[str, Any]) -> None:
        # column names come from this module only, never from a caller's data
        assignments = ", ".join(f"{column} = ?" for column in sets)
        self.db.execute_sync(f"UPDATE jobs SET {assignments} WHERE id = ?", (*sets.values(), job_id))
