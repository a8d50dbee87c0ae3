"""The job engine on a real SQLite database: the state machine, progress and ETA, stop and cancel, the
per-kind bound on concurrent jobs, and a job that resumes from its checkpoint after ``kill -9``."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import haniwa
from haniwa.errors import ConflictError, NotFoundError, UsageError, ValidationError
from haniwa.jobs.base import ACTIVE, TRANSITIONS, Job, JobContext, JobState
from haniwa.jobs.engine import DEFAULT_LIMIT, MAX_FAILURES, JobEngine
from haniwa.store import migrations
from haniwa.store.db import Database

ROOT = Path(haniwa.__file__).resolve().parent.parent


@asynccontextmanager
async def engine(tmp_path: Path, **kwargs: Any) -> AsyncIterator[JobEngine]:
    db = Database(tmp_path / "haniwa.db")
    jobs = JobEngine(db, **kwargs)
    try:
        yield jobs
    finally:
        await jobs.close()
        db.close()


def run(fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(fn(), 60))


class Gate:
    """Work that waits for the test between steps: ``step()`` lets it take one more."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self._steps = asyncio.Semaphore(0)

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self._steps.release()

    async def work(self, job: Job, ctx: JobContext) -> None:
        self.started.append(job.id)
        for i in range(int(job.spec.get("steps", 1))):
            await self._steps.acquire()
            ctx.check()
            await ctx.report(done=i + 1, figures={"i": i + 1})


async def until(job_id: str, jobs: JobEngine, state: JobState) -> Job:
    for _ in range(500):
        job = await jobs.get(job_id)
        if job.state is state:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} is {job.state}, not {state}")


def test_transitions_are_one_state_machine() -> None:
    assert set(TRANSITIONS) == set(JobState)
    assert all(not TRANSITIONS[s] for s in JobState if s.terminal)
    assert set(ACTIVE) == {s for s in JobState if not s.terminal}
    # every path ends in a terminal state, and nothing returns to QUEUED except a restart
    assert [s for s in JobState if JobState.QUEUED in TRANSITIONS[s]] == [JobState.RUNNING]
    assert JobState.STOPPING not in TRANSITIONS[JobState.QUEUED]


def test_a_job_runs_to_complete(tmp_path: Path) -> None:
    async def main() -> None:
        gate = Gate()
        async with engine(tmp_path) as jobs:
            jobs.register("demo", gate.work)
            job = await jobs.submit("demo", name="first", spec={"steps": 2})
            assert (job.kind, job.name, job.spec) == ("demo", "first", {"steps": 2})
            assert job.state in (JobState.QUEUED, JobState.RUNNING)
            running = await until(job.id, jobs, JobState.RUNNING)
            assert running.started is not None and running.ended is None
            gate.step(2)
            done = await jobs.wait(job.id, timeout=10)
            assert done.state is JobState.COMPLETE
            assert done.ended is not None and done.ended >= running.started
            assert (done.done, dict(done.figures), done.eta) == (2, {"i": 2}, None)
            assert [j.id for j in await jobs.find("demo")] == [job.id]
            assert await jobs.find("other") == []
            with pytest.raises(ConflictError):
                await jobs.stop(job.id)
            with pytest.raises(NotFoundError):
                await jobs.get("NOPE")
            with pytest.raises(UsageError):
                await jobs.submit("unknown")
            with pytest.raises(UsageError):
                jobs.register("demo", gate.work)

    run(main)


def test_failures_end_the_job_with_their_reason(tmp_path: Path) -> None:
    async def refuse(job: Job, ctx: JobContext) -> None:
        await ctx.report(failures=[f"item {i}: unreadable" for i in range(MAX_FAILURES + 5)])
        raise ValidationError("the source went away")

    async def crash(job: Job, ctx: JobContext) -> None:
        raise KeyError("oops")

    async def main() -> None:
        async with engine(tmp_path) as jobs:
            jobs.register("refuse", refuse)
            jobs.register("crash", crash)
            refused = await jobs.wait((await jobs.submit("refuse")).id, timeout=10)
            crashed = await jobs.wait((await jobs.submit("crash")).id, timeout=10)
        assert refused.state is JobState.FAILED and crashed.state is JobState.FAILED
        assert refused.message == "the source went away"
        assert len(refused.failures) == MAX_FAILURES
        assert refused.failures[-1] == "the source went away"
        assert refused.failures[-2] == f"item {MAX_FAILURES + 4}: unreadable"
        assert crashed.failures == ("internal error: 'oops'",)

    run(main)


def test_progress_and_eta(tmp_path: Path) -> None:
    async def main() -> None:
        gate = Gate()

        async def paced(job: Job, ctx: JobContext) -> None:
            await ctx.report(done=0, total=10, message="listing done")
            for i in range(1, 11):
                await gate._steps.acquire()
                await asyncio.sleep(0.05)
                await ctx.report(done=i, checkpoint=str(i).encode())

        async with engine(tmp_path) as jobs:
            jobs.register("paced", paced)
            job = await jobs.submit("paced")
            await until(job.id, jobs, JobState.RUNNING)
            gate.step(4)
            for _ in range(500):
                now = await jobs.get(job.id)
                if now.done == 4:
                    break
                await asyncio.sleep(0.01)
            assert (now.done, now.total, now.message, now.checkpoint) == (4, 10, "listing done", b"4")
            # 4 steps of ≥ 50 ms took ≥ 0.2 s: 6 more take about 1.5 times that
            assert now.eta is not None
            left = now.eta - now.updated
            assert left >= 0.29
            assert left < 60
            gate.step(6)
            done = await jobs.wait(job.id, timeout=10)
            assert (done.state, done.done, done.eta, done.checkpoint) == (JobState.COMPLETE, 10, None, b"10")

    run(main)


def test_stop_a_running_and_a_queued_job(tmp_path: Path) -> None:
    async def main() -> None:
        gate = Gate()
        async with engine(tmp_path, limits={"demo": 1}) as jobs:
            jobs.register("demo", gate.work)
            first = await jobs.submit("demo", spec={"steps": 5})
            second = await jobs.submit("demo", spec={"steps": 5})
            await until(first.id, jobs, JobState.RUNNING)
            assert (await jobs.get(second.id)).state is JobState.QUEUED
            # a queued job stops at once and never runs
            assert (await jobs.stop(second.id)).state is JobState.STOPPED
            # a running one is STOPPING until its work next checks
            gate.step()
            await until(first.id, jobs, JobState.RUNNING)
            stopping = await jobs.stop(first.id)
            assert stopping.state is JobState.STOPPING
            assert (await jobs.stop(first.id)).state is JobState.STOPPING  # asking twice is fine
            gate.step()
            stopped = await jobs.wait(first.id, timeout=10)
            assert stopped.state is JobState.STOPPED and stopped.ended is not None
            assert stopped.done <= 2
            assert gate.started == [first.id]
            with pytest.raises(ConflictError):
                await jobs.stop(first.id)

    run(main)


def test_cancel_does_not_wait_for_the_work(tmp_path: Path) -> None:
    async def main() -> None:
        gate = Gate()
        async with engine(tmp_path) as jobs:
            jobs.register("demo", gate.work)
            job = await jobs.submit("demo", spec={"steps": 3})
            await until(job.id, jobs, JobState.RUNNING)
            cancelled = await jobs.cancel(job.id)  # the work is blocked: only cancelling ends it
            assert cancelled.state is JobState.STOPPED
            await jobs.delete(job.id)
            assert await jobs.find() == []

    run(main)


def test_concurrent_jobs_are_bounded_per_kind(tmp_path: Path) -> None:
    async def main() -> None:
        training, ingestion = Gate(), Gate()
        async with engine(tmp_path, limits={"ingestion": 2}) as jobs:
            limits = [jobs.limit(kind) for kind in ("training", "ingestion", "eval")]
            assert limits == [1, 2, DEFAULT_LIMIT]
            jobs.register("training", training.work)
            jobs.register("ingestion", ingestion.work)
            trains = [await jobs.submit("training", name=f"t{i}") for i in range(3)]
            ingests = [await jobs.submit("ingestion", name=f"i{i}") for i in range(3)]
            await until(ingests[1].id, jobs, JobState.RUNNING)

            async def states(kind: str) -> list[JobState]:
                return [j.state for j in await jobs.find(kind)]

            assert await states("training") == [JobState.RUNNING, JobState.QUEUED, JobState.QUEUED]
            assert await states("ingestion") == [JobState.RUNNING, JobState.RUNNING, JobState.QUEUED]
            # the oldest queued job takes the slot the first one frees
            training.step()
            await jobs.wait(trains[0].id, timeout=10)
            await until(trains[1].id, jobs, JobState.RUNNING)
            assert await states("training") == [JobState.COMPLETE, JobState.RUNNING, JobState.QUEUED]
            training.step(2)
            ingestion.step(3)
            for job in trains + ingests:
                assert (await jobs.wait(job.id, timeout=10)).state is JobState.COMPLETE
            assert training.started == [j.id for j in trains]
        with pytest.raises(UsageError):
            JobEngine(Database(tmp_path / "other.db"), limits={"training": 0})

    run(main)


def test_restart_resumes_running_jobs_and_ends_stopping_ones(tmp_path: Path) -> None:
    async def main() -> None:
        gate = Gate()
        async with engine(tmp_path) as jobs:
            jobs.register("demo", gate.work)
            kept = await jobs.submit("demo", spec={"steps": 2})
            halted = await jobs.submit("demo", spec={"steps": 2})
            await until(halted.id, jobs, JobState.RUNNING)
            await jobs.stop(halted.id)
        again = Gate()
        async with engine(tmp_path) as jobs:
            jobs.register("demo", again.work)
            # a clean shutdown left them as they were
            assert {j.id: j.state for j in await jobs.find()} == {
                kept.id: JobState.RUNNING,
                halted.id: JobState.STOPPING,
            }
            assert await jobs.recover() == [kept.id]
            assert (await jobs.get(halted.id)).state is JobState.STOPPED
            await until(kept.id, jobs, JobState.RUNNING)
            again.step(2)
            done = await jobs.wait(kept.id, timeout=10)
            assert done.state is JobState.COMPLETE and done.started == (await jobs.get(kept.id)).started

    run(main)


# -- kill -9 ---------------------------------------------------------------------------------------------
# The work lives in a module of its own so that the child (which runs it until it is killed) and this
# test (which resumes it) run the same code.
COUNTER = '''
import asyncio, json, sys
from pathlib import Path
from haniwa.jobs.engine import JobEngine
from haniwa.store import migrations
from haniwa.store.db import Database


async def count(job, ctx):
    """Counts to spec["n"], one step per ``delay`` seconds, checkpointing after every step."""
    start = json.loads(job.checkpoint)["i"] if job.checkpoint else 0
    runs = int(job.figures.get("runs", 0)) + 1
    await ctx.report(total=job.spec["n"], figures={"runs": runs, "resumed_from": start})
    for i in range(start, job.spec["n"]):
        await asyncio.sleep(job.spec["delay"])
        await ctx.report(done=i + 1, checkpoint=json.dumps({"i": i + 1}).encode())


async def main(path):
    db = Database(Path(path))
    jobs = JobEngine(db)
    jobs.register("count", count)
    job = await jobs.submit("count", name="counter", spec={"n": 150, "delay": 0.02})
    await jobs.wait(job.id)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
'''


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("counter_job", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kill_9_then_resume_from_the_checkpoint(tmp_path: Path) -> None:
    script = tmp_path / "counter_job.py"
    script.write_text(COUNTER, encoding="utf-8")
    db_path = tmp_path / "haniwa.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), str(db_path)], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the child ended before it was killed"
            assert time.monotonic() < deadline
            if db_path.exists():
                with sqlite3.connect(db_path) as db:
                    rows = db.execute("SELECT done FROM jobs").fetchall() if _has_jobs(db) else []
                if rows and rows[0][0] >= 20:
                    break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()

    with sqlite3.connect(db_path) as db:  # what the kill left behind
        (state, done, checkpoint), *rest = db.execute("SELECT state, done, checkpoint FROM jobs").fetchall()
    assert rest == [] and state == "RUNNING"
    assert 20 <= done < 150
    at_kill = int(done)

    counter = _load(script)

    async def main() -> None:
        db = Database(db_path)
        jobs = JobEngine(db)
        jobs.register("count", counter.count)
        try:
            (job_id,) = await jobs.recover()
            job = await jobs.wait(job_id, timeout=60)
        finally:
            await jobs.close()
            db.close()
        assert job.state is JobState.COMPLETE
        assert (job.done, job.total) == (150, 150)
        # the second run started where the last checkpoint said, not from zero
        assert dict(job.figures) == {"runs": 2, "resumed_from": at_kill}
        assert checkpoint == f'{{"i": {at_kill}}}'.encode()
        assert job.message == "resumed after a restart"

    run(main)


def _has_jobs(db: sqlite3.Connection) -> bool:
    return bool(db.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs'").fetchall())


def test_ingestion_jobs_move_onto_the_engine(tmp_path: Path) -> None:
    """A database written before the engine: its ingestion jobs become engine jobs, and ``ingestion_jobs``
    (now a view) shows them as before, Bedrock statuses included."""
    path = tmp_path / "haniwa.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    before = [fn for fn in migrations.MIGRATIONS if fn.__name__ < "m006"]
    for fn in before:
        fn(db)
        db.execute("INSERT INTO _migrations VALUES (?, 0)", (fn.__name__,))
    db.execute("INSERT INTO knowledge_bases VALUES ('KB', 'kb', NULL, 'ACTIVE', 'm', 4, 'local', '{}', 1, 1)")
    db.execute("INSERT INTO data_sources VALUES ('DS', 'KB', 'ds', NULL, 'AVAILABLE', '{}', 1, 1)")
    stats = '{"scanned": 3, "new": 2, "listed": 9}'
    for job_id, status, started in (("J1", "COMPLETE", 10.0), ("J2", "IN_PROGRESS", 20.0)):
        db.execute(
            "INSERT INTO ingestion_jobs VALUES (?, 'KB', 'DS', ?, 'nightly', ?, '[\"x: bad\"]', ?, ?)",
            (job_id, status, stats, started, started + 5),
        )
    db.close()

    async def main() -> None:
        database = Database(path)  # applies the rest
        jobs = JobEngine(database)
        try:
            view = await database.query("SELECT * FROM ingestion_jobs ORDER BY started")
            assert [(r["id"], r["kb_id"], r["ds_id"], r["status"]) for r in view] == [
                ("J1", "KB", "DS", "COMPLETE"),
                ("J2", "KB", "DS", "IN_PROGRESS"),
            ]
            assert {(r["description"], r["stats"], r["failures"], r["updated"]) for r in view} == {
                ("nightly", stats, '["x: bad"]', 15.0),
                ("nightly", stats, '["x: bad"]', 25.0),
            }
            first, second = await jobs.find("ingestion")
            assert (first.state, first.ended, second.state, second.ended) == (
                JobState.COMPLETE,
                15.0,
                JobState.RUNNING,
                None,
            )
            assert (second.spec, second.done, second.total) == ({"kb_id": "KB", "ds_id": "DS"}, 3, 9)
            # every engine state has its Bedrock status, read through the view
            for state, status in {
                JobState.QUEUED: "STARTING",
                JobState.RUNNING: "IN_PROGRESS",
                JobState.STOPPING: "STOPPING",
                JobState.COMPLETE: "COMPLETE",
                JobState.FAILED: "FAILED",
                JobState.STOPPED: "STOPPED",
            }.items():
                await database.execute("UPDATE jobs SET state = ? WHERE id = 'J2'", (state.value,))
                rows = await database.query("SELECT status FROM ingestion_jobs WHERE id = 'J2'")
                assert rows == [{"status": status}]
            # deleting the data source takes the link with it; the engine's row is the engine's to delete
            await database.execute("DELETE FROM data_sources WHERE id = 'DS'")
            assert await database.query("SELECT * FROM ingestion_jobs") == []
        finally:
            await jobs.close()
            database.close()

    run(main)
