"""Batch inference on the wire: ``bedrock`` Create/Get/List/StopModelInvocationJob, and the record runner
that puts each JSONL record through the very handler an online InvokeModel or Converse call reaches.

A record ``{"recordId", "modelInput"}`` becomes ``{"recordId", "modelInput", "modelOutput"}``, or
``{"recordId", "modelInput", "error": {"errorCode", "errorMessage"}}`` (``errorCode`` is the HTTP status
the online call would have answered). A line that is not such a record is an error line too."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from haniwa.api import bedrock_runtime
from haniwa.api.context import Call, Platform
from haniwa.api.pagination import paginate
from haniwa.api.wire import error_status, parse_input
from haniwa.batch.base import Answer, BatchJob
from haniwa.errors import ModelTimeoutError, NotFoundError, PlatformError, ThrottledError, ValidationError

__all__ = ["OPERATIONS", "BedrockRecords", "job_arn", "wire_job"]

logger = logging.getLogger("haniwa.batch")

# records of a model without batch slots (echo, a remote backend) run this many at a time, and never more
# than half the model's queue (HANIWA_MAX_QUEUE), which online callers keep the rest of
FREE_PARALLEL = 32
_THROTTLED_TRIES = 30  # a record the model's queue turned away waits and tries again, this many times
_KINDS = ("InvokeModel", "Converse")


def job_arn(platform: Platform, batch_id: str) -> str:
    return f"arn:aws:bedrock:{platform.settings.region}:000000000000:model-invocation-job/{batch_id}"


def _batch_id(identifier: str) -> str:
    return identifier.rsplit("model-invocation-job/", 1)[-1]


def _ts(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


class BedrockRecords:
    """The :class:`~haniwa.batch.base.RecordRunner` of Bedrock batch jobs (and, through ``extra``, of
    other surfaces' record kinds, which ``api/openai_batch.py`` adds)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.extra: dict[str, Callable[[str, bytes, int], Awaitable[Answer]]] = {}
        self.extra_too_long: dict[str, Callable[[bytes, int, int], Answer]] = {}

    def parallel(self, model_id: str) -> int:
        try:
            info = self.platform.registry.resolve(model_id).info
        except PlatformError:
            return 1
        settings = self.platform.settings
        room = max(1, settings.max_queue // 2)
        return min(settings.llama_slots if info.backend == "llamacpp" else FREE_PARALLEL, room)

    def _call(self, operation: str) -> Call:
        op = self.platform.router.find("bedrock-runtime", operation)
        return Call(self.platform, op, str(uuid.uuid4()), {})

    def too_long(self, kind: str, prefix: bytes, ordinal: int, limit: int) -> Answer:
        if kind in self.extra_too_long:
            return self.extra_too_long[kind](prefix, ordinal, limit)
        message = f"record {ordinal + 1} is longer than {limit} bytes (HANIWA_MAX_BODY_BYTES)"
        return _error({"recordId": _default_id(ordinal)}, ValidationError(message))

    async def run(self, kind: str, model_id: str, line: bytes, ordinal: int) -> Answer:
        if kind in self.extra:
            return await self.extra[kind](model_id, line, ordinal)
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            return _error(
                {"recordId": _default_id(ordinal)},
                ValidationError(f"record {ordinal + 1} is not valid JSON"),
            )
        if not isinstance(record, dict) or not isinstance(record.get("modelInput"), dict):
            return _error(
                {"recordId": _default_id(ordinal)},
                ValidationError(f'record {ordinal + 1} is not {{"recordId": ..., "modelInput": {{...}}}}'),
            )
        rid = record.get("recordId")
        head = {"recordId": rid if isinstance(rid, str) and rid else _default_id(ordinal)}
        head["modelInput"] = record["modelInput"]
        try:
            for attempt in range(_THROTTLED_TRIES):
                try:
                    async with asyncio.timeout(self.platform.settings.request_timeout):
                        return await self._invoke(kind, model_id, record["modelInput"], head)
                except ThrottledError as exc:
                    if attempt == _THROTTLED_TRIES - 1:
                        raise
                    await asyncio.sleep(min(exc.retry_after or 0.5, 5.0))
            raise AssertionError("unreachable")
        except TimeoutError:
            return _error(head, ModelTimeoutError("the model did not answer within HANIWA_REQUEST_TIMEOUT"))
        except PlatformError as exc:
            return _error(head, exc)
        except Exception:  # noqa: BLE001 - one record's failure is its error line, never the job's end
            logger.exception("batch record %d failed", ordinal + 1)
            return _error(head, PlatformError("internal error while running this record"))

    async def _invoke(
        self, kind: str, model_id: str, model_input: Mapping[str, Any], head: dict[str, Any]
    ) -> Answer:
        body = json.dumps(model_input, ensure_ascii=False).encode()
        if kind == "Converse":
            call = self._call("Converse")
            params = parse_input(call.op, {"modelId": model_id}, {}, {}, body)
            out = await bedrock_runtime.converse(call, params)
            usage = out["usage"]
            return Answer({**head, "modelOutput": out}, True, usage["inputTokens"], usage["outputTokens"])
        call = self._call("InvokeModel")
        headers = {"content-type": "application/json", "accept": "application/json"}
        params = parse_input(call.op, {"modelId": model_id}, {}, headers, body)
        out = await bedrock_runtime.invoke_model(call, params)
        h = call.response_headers
        return Answer(
            {**head, "modelOutput": json.loads(out["body"])},
            True,
            int(h.get("X-Amzn-Bedrock-Input-Token-Count", 0)),
            int(h.get("X-Amzn-Bedrock-Output-Token-Count", 0)),
        )


def _default_id(ordinal: int) -> str:
    # Bedrock names records without an id itself; ours say where the record was
    return f"RECORD{ordinal + 1:010d}"


def _error(head: Mapping[str, Any], exc: PlatformError) -> Answer:
    status = error_status("bedrock-runtime", exc.code)
    return Answer({**head, "error": {"errorCode": status, "errorMessage": exc.message}}, False)


# -- the operations --------------------------------------------------------------------------------------
def wire_job(platform: Platform, b: BatchJob) -> dict[str, Any]:
    spec = b.spec
    out: dict[str, Any] = {
        "jobArn": job_arn(platform, b.id),
        "jobName": b.name,
        "modelId": b.model_id,
        "roleArn": spec.get("roleArn", ""),
        "status": b.status,
        "submitTime": _ts(b.created),
        "lastModifiedTime": _ts(b.updated),
        "inputDataConfig": spec["inputDataConfig"],
        "outputDataConfig": spec["outputDataConfig"],
        "modelInvocationType": b.kind,
        "totalRecordCount": b.counts.total,
        "processedRecordCount": b.counts.processed,
        "successRecordCount": b.counts.success,
        "errorRecordCount": b.counts.error,
    }
    if b.message:
        out["message"] = b.message[:2048]
    if b.client_token:
        out["clientRequestToken"] = b.client_token
    if b.ended is not None:
        out["endTime"] = _ts(b.ended)
    if "vpcConfig" in spec:
        out["vpcConfig"] = spec["vpcConfig"]
    if b.expires is not None:
        out["timeoutDurationInHours"] = spec.get("timeoutDurationInHours")
        out["jobExpirationTime"] = _ts(b.expires)
    return out


async def create_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    platform = call.platform
    platform.registry.resolve(p["modelId"])  # an unknown model is refused now, not when the job runs
    s3_in = p["inputDataConfig"].get("s3InputDataConfig")
    s3_out = p["outputDataConfig"].get("s3OutputDataConfig")
    if s3_in is None or s3_out is None:
        raise ValidationError(
            "inputDataConfig.s3InputDataConfig and outputDataConfig.s3OutputDataConfig are required"
        )
    kind = p.get("modelInvocationType", "InvokeModel")
    if kind not in _KINDS:
        raise ValidationError(f"modelInvocationType must be one of {', '.join(_KINDS)}")
    members = (
        "roleArn",
        "inputDataConfig",
        "outputDataConfig",
        "vpcConfig",
        "tags",
        "timeoutDurationInHours",
    )
    spec: dict[str, Any] = {k: p[k] for k in members if k in p}
    b = await platform.batch.create(
        surface="bedrock",
        name=p["jobName"],
        model_id=p["modelId"],
        kind=kind,
        input_uri=s3_in["s3Uri"],
        output_uri=s3_out["s3Uri"],
        spec=spec,
        client_token=p.get("clientRequestToken"),
        timeout_hours=p.get("timeoutDurationInHours"),
    )
    return {"jobArn": job_arn(platform, b.id)}


async def _bedrock_job(call: Call, identifier: str) -> BatchJob:
    b = await call.platform.batch.get(_batch_id(identifier))
    if b.surface != "bedrock":
        raise NotFoundError(f"batch job {identifier!r} does not exist")
    return b


async def get_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    return wire_job(call.platform, await _bedrock_job(call, p["jobIdentifier"]))


async def list_jobs(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    jobs = await call.platform.batch.list("bedrock")
    after, before = p.get("submitTimeAfter"), p.get("submitTimeBefore")
    if after is not None:
        jobs = [j for j in jobs if _ts(j.created) >= after]
    if before is not None:
        jobs = [j for j in jobs if _ts(j.created) <= before]
    if "statusEquals" in p:
        jobs = [j for j in jobs if j.status == p["statusEquals"]]
    if "nameContains" in p:
        jobs = [j for j in jobs if p["nameContains"] in j.name]
    if p.get("sortOrder", "Descending") == "Descending":
        jobs.reverse()
    page = paginate(call, p, jobs, key=lambda j: j.id)
    return page.wire("invocationJobSummaries", [wire_job(call.platform, j) for j in page.items])


async def stop_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    b = await _bedrock_job(call, p["jobIdentifier"])
    await call.platform.batch.stop(b.id)
    return {}


OPERATIONS = {
    ("bedrock", "CreateModelInvocationJob"): create_job,
    ("bedrock", "GetModelInvocationJob"): get_job,
    ("bedrock", "ListModelInvocationJobs"): list_jobs,
    ("bedrock", "StopModelInvocationJob"): stop_job,
}
