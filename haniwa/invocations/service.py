"""Invocation logs in S3, as Bedrock writes them.

With a configuration that has an S3 destination, each runtime call (InvokeModel, Converse and their
streams) becomes one record ``{"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp",
"accountId", "region", "requestId", "operation", "modelId", "input": {...}, "output": {...}}``, written as
a gzipped JSON Lines object under Bedrock's documented layout::

    <keyPrefix>/AWSLogs/<accountId>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<time>_<requestId>.json.gz

A text call is logged when ``textDataDeliveryEnabled`` is set, an embedding call when
``embeddingDataDeliveryEnabled`` is. Writing the record never fails the call it describes: a missing
bucket is logged here and the call answers as usual.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from haniwa.s3.base import PutOptions, S3Store
from haniwa.store.db import Database

__all__ = ["LogEntry", "InvocationLogs", "ACCOUNT", "log_key"]

log = logging.getLogger("haniwa.invocations")

ACCOUNT = "000000000000"  # the account id haniwa's ARNs carry


@dataclass(frozen=True)
class LogEntry:
    """One runtime call, as the S3 log records it."""

    request_id: str
    operation: str
    model_id: str
    kind: str  # "text" or "embedding": which delivery flag applies
    request: Any
    response: Any
    input_tokens: int | None
    output_tokens: int | None
    error_code: str | None = None
    error_message: str | None = None


def _jsonable(value: Any) -> Any:
    # request parameters may hold bytes (images, documents): logged base64-encoded, as on the wire
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def log_key(prefix: str, region: str, when: dt.datetime, request_id: str) -> str:
    base = prefix.strip("/") + "/" if prefix.strip("/") else ""
    stamp = when.strftime("%Y-%m-%dT%H%M%S") + f"{when.microsecond // 1000:03d}Z"
    return (
        f"{base}AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/{region}/"
        f"{when:%Y/%m/%d/%H}/{stamp}_{request_id}.json.gz"
    )


class InvocationLogs:
    """The logging configuration (table ``invocation_logging``, cached) and the S3 writer."""

    def __init__(self, db: Database, store: S3Store, region: str) -> None:
        self.db = db
        self.store = store
        self.region = region
        self._config: Mapping[str, Any] | None = None
        self._loaded = False

    async def config(self) -> Mapping[str, Any] | None:
        """The configuration as PutModelInvocationLoggingConfiguration sent it, or None."""
        if not self._loaded:
            rows = await self.db.query("SELECT config FROM invocation_logging WHERE id = 1")
            self._config = json.loads(rows[0]["config"]) if rows else None
            self._loaded = True
        return self._config

    async def put(self, config: Mapping[str, Any]) -> None:
        await self.db.execute(
            "INSERT INTO invocation_logging (id, config) VALUES (1, ?)"
            " ON CONFLICT (id) DO UPDATE SET config = excluded.config",
            (json.dumps(dict(config), ensure_ascii=False),),
        )
        self._config, self._loaded = dict(config), True

    async def delete(self) -> None:
        await self.db.execute("DELETE FROM invocation_logging WHERE id = 1")
        self._config, self._loaded = None, True

    async def write(self, entry: LogEntry) -> None:
        """Deliver ``entry`` to S3 when the configuration asks for it (never raises)."""
        cfg = await self.config()
        if not cfg or "s3Config" not in cfg:
            return
        flag = "embeddingDataDeliveryEnabled" if entry.kind == "embedding" else "textDataDeliveryEnabled"
        if not cfg.get(flag, False):
            return
        s3 = cfg["s3Config"]
        now = dt.datetime.now(dt.UTC)
        record: dict[str, Any] = {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "accountId": ACCOUNT,
            "identity": {"arn": f"arn:aws:iam::{ACCOUNT}:user/haniwa"},
            "region": self.region,
            "requestId": entry.request_id,
            "operation": entry.operation,
            "modelId": entry.model_id,
            "input": {
                "inputContentType": "application/json",
                "inputBodyJson": entry.request,
                "inputTokenCount": entry.input_tokens,
            },
        }
        if entry.error_code is None:
            record["output"] = {
                "outputContentType": "application/json",
                "outputBodyJson": entry.response,
                "outputTokenCount": entry.output_tokens,
            }
        else:
            record["errorCode"] = entry.error_code
            if entry.error_message:
                record["errorMessage"] = entry.error_message
        data = gzip.compress(json.dumps(record, ensure_ascii=False, default=_jsonable).encode() + b"\n")

        async def body() -> AsyncIterator[bytes]:
            yield data

        key = log_key(s3.get("keyPrefix", ""), self.region, now, entry.request_id)
        try:
            await self.store.put(s3["bucketName"], key, body(), PutOptions(content_type="application/x-gzip"))
        except Exception:  # noqa: BLE001 - a log that cannot be written must not fail the call it logs
            log.exception("could not write the invocation log record to s3://%s/%s", s3["bucketName"], key)
