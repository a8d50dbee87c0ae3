"""What a job is, the one state machine it moves through, and the seams its work runs behind.

::

    QUEUED ──► RUNNING ──► STOPPING ──► STOPPED | COMPLETE | FAILED
      │          ├──► COMPLETE | FAILED | STOPPED (cancelled)
      │          └──► QUEUED (a restart found it running: it resumes from its checkpoint)
      └──► STOPPED (stopped before it ran) | FAILED

A job's *work* is an async function registered per kind (``engine.register("ingestion", work)``). It
receives the job as stored — ``spec``, last ``checkpoint``, last figures — and a :class:`JobContext` to
report progress and new checkpoints through. A :class:`Runner` decides where the work runs; the default
runs it on this process's event loop (work that computes offloads to a thread itself).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

__all__ = [
    "JobState",
    "ACTIVE",
    "TRANSITIONS",
    "Job",
    "JobContext",
    "JobStopped",
    "Work",
    "Runner",
]


class JobState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @property
    def terminal(self) -> bool:
        return self in (JobState.COMPLETE, JobState.FAILED, JobState.STOPPED)


ACTIVE = (JobState.QUEUED, JobState.RUNNING, JobState.STOPPING)

# Every move the engine may make. RUNNING -> QUEUED is the restart path only: a job a kill left running
# waits for a free slot again, then resumes from its checkpoint.
TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.STOPPED, JobState.FAILED}),
    JobState.RUNNING: frozenset(
        {JobState.STOPPING, JobState.COMPLETE, JobState.FAILED, JobState.STOPPED, JobState.QUEUED}
    ),
    JobState.STOPPING: frozenset({JobState.STOPPED, JobState.COMPLETE, JobState.FAILED}),
    JobState.COMPLETE: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.STOPPED: frozenset(),
}


@dataclass(frozen=True)
class Job:
    """One job as stored. ``done``/``total`` drive the progress bar and the ETA (``total`` is None until
    the work knows it); ``figures`` are the kind's own counters (documents new/failed, loss, ...);
    ``failures`` the reasons kept for failed items and for the job's own failure. Times are epoch
    seconds; ``eta`` is the expected end, estimated from the current run's pace."""

    id: str
    kind: str
    name: str
    state: JobState
    spec: Mapping[str, Any]
    created: float
    updated: float
    started: float | None = None
    ended: float | None = None
    done: float = 0.0
    total: float | None = None
    figures: Mapping[str, float] = field(default_factory=dict)
    message: str | None = None
    failures: tuple[str, ...] = ()
    eta: float | None = None
    checkpoint: bytes | None = None


class JobStopped(Exception):
    """Raised by work (through :meth:`JobContext.check`) to end the job as STOPPED. A signal, not an
    error: no client ever sees it."""


class JobContext(Protocol):
    """What a running job's work reports through. Each report is written at once, so a kill loses at
    most the work done since the last one."""

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for: finish the current step, then return or call :meth:`check`."""
        ...

    def check(self) -> None:
        """Raise :class:`JobStopped` if a stop was asked for."""
        ...

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
        """Record progress; arguments left None keep their stored value. ``checkpoint`` is what a resumed
        run receives as ``job.checkpoint``; ``eta`` overrides the engine's own estimate."""
        ...


Work = Callable[[Job, JobContext], Awaitable[None]]
"""A kind's work: runs ``job`` to its end, resuming from ``job.checkpoint`` when it is set. Returning
completes the job; :class:`JobStopped` stops it; a :class:`PlatformError` fails it with its message;
any other exception fails it as an internal error (and is logged)."""


class Runner(Protocol):
    """Where a job's work runs. The engine owns the state machine and the rows; a runner only executes.

    The default, :class:`haniwa.jobs.engine.InProcessRunner`, awaits the work on this event loop. A
    child-process runner would start ``python -m`` a worker that imports the work by name
    (``work.__module__``/``__qualname__``), opens the same database and relays the context's calls over
    a pipe; a cluster runner would submit the same to a scheduler. Either way the engine's task awaits
    :meth:`run`, and cancelling it must end the work (kill the child, cancel the remote job)."""

    async def run(self, job: Job, work: Work, ctx: JobContext) -> None:
        """Run ``work(job, ctx)`` to its end, raising what it raised."""
        ...

    async def close(self) -> None:
        """Release what the runner holds (after the engine cancelled its jobs)."""
        ...
