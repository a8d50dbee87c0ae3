"""Batch inference: JSONL records in, one answer line per record out, on the job engine.

A batch job reads every ``.jsonl`` object under an input S3 prefix, runs each line through a
:class:`RecordRunner` (the api layer's: InvokeModel bodies, Converse requests, OpenAI batch requests) and
writes ``<output>/<batch id>/<file>.jsonl.out`` — one line per input line, in input order — and
``manifest.json.out`` with the counts. The engine knows lines, order, windows and counts; what a line
means is the runner's.

::

    Submitted ──► Validating ──► InProgress ──► Completed | PartiallyCompleted | Failed
        │  (queued again after a restart: Scheduled)  ├──► Stopping ──► Stopped
        │                                             └──► Expired (timeoutDurationInHours passed)
        └──► Stopped | Expired
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from haniwa.errors import ValidationError

__all__ = [
    "KIND",
    "Answer",
    "RecordRunner",
    "BatchJob",
    "Counts",
    "STATUSES",
    "split_uri",
]

KIND = "batch"  # the job engine's kind

STATUSES = (
    "Submitted",
    "Validating",
    "Scheduled",
    "InProgress",
    "Completed",
    "PartiallyCompleted",
    "Failed",
    "Stopping",
    "Stopped",
    "Expired",
)


@dataclass(frozen=True)
class Answer:
    """What one input line became: the output line to write, and whether it holds an answer or an error."""

    line: Mapping[str, Any]
    ok: bool
    input_tokens: int = 0
    output_tokens: int = 0


class RecordRunner(Protocol):
    """Runs one input line of a batch (the api layer provides it: the same path as the online call)."""

    def parallel(self, model_id: str) -> int:
        """How many records of ``model_id`` may run at once (the model's batch slots)."""
        ...

    async def run(self, kind: str, model_id: str, line: bytes, ordinal: int) -> Answer:
        """The output line for input ``line`` (the ``ordinal``-th record of its file, from 0). A malformed
        line, a refused request and a failed model call are answers with ``ok`` False, never raised."""
        ...

    def too_long(self, kind: str, prefix: bytes, ordinal: int, limit: int) -> Answer:
        """The error line for an input line over ``limit`` bytes (``prefix``: its first bytes)."""
        ...


@dataclass(frozen=True)
class Counts:
    """Counts of one job (and of its manifest), exact: each written line counted once."""

    total: int = 0
    processed: int = 0
    success: int = 0
    error: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class BatchJob:
    """One batch job as the wire surfaces see it; ``status`` is one of :data:`STATUSES`."""

    id: str
    job_id: str  # the job engine's id
    surface: str  # "bedrock" or "openai"
    name: str
    client_token: str | None
    model_id: str
    kind: str  # "InvokeModel", "Converse" or "openai"
    input_uri: str
    output_uri: str
    spec: Mapping[str, Any]
    created: float
    expires: float | None
    status: str
    message: str | None
    updated: float
    ended: float | None
    started: float | None
    counts: Counts = field(default_factory=Counts)


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` → (bucket, key prefix)."""
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise ValidationError(f"{uri[:200]!r} is not an s3://bucket/prefix URI")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValidationError(f"{uri[:200]!r} names no bucket")
    return bucket, key
