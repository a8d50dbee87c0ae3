"""The invocation log (table ``invocations``): :func:`record` writes one row per model call, and the rest
reads it back for people.

:func:`usage` returns the newest calls and a per-model time series (requests, tokens, mean latency per
bucket), which the playground's usage tab draws and ``GET /haniwa/v1/usage`` serves.

The window must be finite (``since=nan`` or ``inf`` is a ValidationError), and rows are repaired as they
are read (an infinity some older writer left in a column reads as null), so the answer always renders."""

from __future__ import annotations

import math
import time
from dataclasses import astuple, dataclass, fields
from typing import Any

from haniwa.errors import ValidationError
from haniwa.store.db import Database
from haniwa.store.values import repaired

__all__ = ["Invocation", "record", "usage", "bucket_for"]

_COLUMNS = (
    "ts, surface, operation, model_id, model_requested, input_tokens, output_tokens, latency_ms,"
    " first_token_ms, status, error_code"
)


@dataclass(frozen=True)
class Invocation:
    """One model call as the log keeps it (columns of ``invocations`` but ``id`` and ``ts``)."""

    request_id: str
    surface: str
    operation: str
    model_requested: str | None
    model_id: str | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: int | None = None
    first_token_ms: int | None = None
    status: str = "ok"
    error_code: str | None = None


_INSERT = (
    f"INSERT INTO invocations (ts, {', '.join(f.name for f in fields(Invocation))})"
    f" VALUES ({', '.join('?' * (len(fields(Invocation)) + 1))})"
)


async def record(db: Database, call: Invocation) -> None:
    """Append ``call`` to the log, stamped now."""
    await db.execute(_INSERT, (time.time(), *astuple(call)))


def bucket_for(span_s: float) -> int:
    """A bucket width giving 30–120 points over ``span_s`` seconds: 1 min up to 2 h, … up to 1 day."""
    for width in (60, 300, 900, 3600, 4 * 3600):
        if span_s / width <= 120:
            return width
    return 86400


async def usage(db: Database, *, since: float, until: float, limit: int = 200) -> dict[str, Any]:
    """Invocations in ``[since, until]``: the newest ``limit`` rows and the series over all of them."""
    for name, value in (("since", since), ("until", until)):
        if not math.isfinite(value):
            raise ValidationError(f"{name} must be a finite number of epoch seconds", param=name)
    bucket = bucket_for(max(until - since, 1.0))
    rows = await db.query(
        f"SELECT {_COLUMNS} FROM invocations WHERE ts >= ? AND ts <= ? ORDER BY ts DESC, id DESC LIMIT ?",
        (since, until, limit),
    )
    series = await db.query(
        "SELECT CAST(ts / ? AS INTEGER) * ? AS t, COALESCE(model_id, model_requested, '-') AS model_id,"
        " COUNT(*) AS requests, COALESCE(SUM(input_tokens), 0) AS input_tokens,"
        " COALESCE(SUM(output_tokens), 0) AS output_tokens, AVG(latency_ms) AS avg_latency_ms,"
        " SUM(status != 'ok') AS errors"
        " FROM invocations WHERE ts >= ? AND ts <= ? GROUP BY t, 2 ORDER BY t, 2",
        (bucket, bucket, since, until),
    )
    return {
        "invocations": repaired(rows),
        "series": repaired(series),
        "bucket_s": bucket,
        "since": since,
        "until": until,
    }
