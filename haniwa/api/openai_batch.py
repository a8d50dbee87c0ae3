"""The OpenAI Batch API on haniwa's batch engine: ``/v1/files`` and ``/v1/batches``.

Files are objects in haniwa's S3 (bucket ``haniwa-files``, made on the first upload), listed in the
``openai_files`` table. A batch is a job of :mod:`haniwa.batch` whose records are OpenAI batch lines
``{"custom_id", "method", "url": "/v1/chat/completions", "body"}``; each runs the chat completion the
online route runs and becomes ``{"id", "custom_id", "response": {"status_code", "request_id", "body"},
"error"}``. When the job ends, its answers become the batch's ``output_file_id`` and its failed lines its
``error_file_id``, both in input order. Uploads are bounded by ``HANIWA_MAX_BODY_BYTES`` before a byte is
read (``api/limits.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, Response, StreamingResponse

from haniwa.api.context import Platform
from haniwa.api.errors import OPENAI_RESPONSES, OPENAI_STATUS
from haniwa.api.openai import (
    ChatCompletionRequest,
    OpenAIRoute,
    _Call,
    _completion,
    _error_body,
    chat_request,
)
from haniwa.batch.base import Answer, BatchJob
from haniwa.batch.service import lines
from haniwa.errors import NotFoundError, PlatformError, ThrottledError, ValidationError
from haniwa.s3.base import BucketExistsError, PutOptions

__all__ = ["router", "FILES_BUCKET", "run_record"]

FILES_BUCKET = "haniwa-files"
KIND = "openai"
_PURPOSES = ("batch", "batch_output", "user_data", "fine-tune", "assistants", "vision", "evals")
_ENDPOINTS = ("/v1/chat/completions",)
_STATUS = {
    "Submitted": "validating",
    "Scheduled": "validating",
    "Validating": "validating",
    "InProgress": "in_progress",
    "Completed": "completed",
    "PartiallyCompleted": "completed",
    "Failed": "failed",
    "Stopping": "cancelling",
    "Stopped": "cancelled",
    "Expired": "expired",
}

router = APIRouter(route_class=OpenAIRoute, responses=OPENAI_RESPONSES)


def _platform(request: Request) -> Platform:
    p: Platform = request.app.state.platform
    return p


# -- one record --------------------------------------------------------------------------------------
def _failed(custom_id: Any, code: str, message: str) -> Answer:
    return Answer(
        {
            "id": f"batch_req_{uuid.uuid4().hex}",
            "custom_id": custom_id,
            "response": None,
            "error": {"code": code, "message": message},
        },
        False,
    )


async def run_record(platform: Platform, model_id: str, line: bytes, ordinal: int) -> Answer:
    """One OpenAI batch line through the chat completion path."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return _failed(None, "invalid_json", f"line {ordinal + 1} is not valid JSON")
    if not isinstance(record, dict):
        return _failed(None, "invalid_request", f"line {ordinal + 1} is not a JSON object")
    custom_id = record.get("custom_id")
    if record.get("url") not in _ENDPOINTS or record.get("method", "POST") != "POST":
        return _failed(
            custom_id, "invalid_url", f"line {ordinal + 1}: url must be POST {', '.join(_ENDPOINTS)}"
        )
    try:
        body = ChatCompletionRequest.model_validate(record.get("body"))
    except PydanticValidationError as exc:
        return _failed(custom_id, "invalid_request", f"line {ordinal + 1}: {exc.errors()[0]['msg']}")
    request_id = str(uuid.uuid4())
    call = _Call(platform, request_id, "ChatCompletions", body.model)
    try:
        if body.stream:
            raise ValidationError("stream is not available in a batch", param="stream")
        req = chat_request(body)
        for attempt in range(30):
            try:
                res, model = await platform.registry.chat(body.model)
                call.model_id = res.info.id
                async with asyncio.timeout(platform.settings.request_timeout):
                    result = await model.converse(req)
                break
            except ThrottledError as exc:
                if attempt == 29:
                    raise
                await asyncio.sleep(min(exc.retry_after or 0.5, 5.0))
        await call.log(result.usage)
        out = _completion(call, result)
        response = {"status_code": 200, "request_id": request_id, "body": out}
        line_out = {
            "id": f"batch_req_{uuid.uuid4().hex}",
            "custom_id": custom_id,
            "response": response,
            "error": None,
        }
        return Answer(line_out, True, result.usage.input_tokens, result.usage.output_tokens)
    except TimeoutError:
        exc2: PlatformError = PlatformError("the model did not answer within HANIWA_REQUEST_TIMEOUT")
    except PlatformError as exc:
        exc2 = exc
    await call.log(None, error=exc2.code)
    status = OPENAI_STATUS.get(exc2.code, (500, ""))[0]
    response = {"status_code": status, "request_id": request_id, "body": _error_body(exc2)}
    return Answer(
        {"id": f"batch_req_{uuid.uuid4().hex}", "custom_id": custom_id, "response": response, "error": None},
        False,
    )


def _too_long(prefix: bytes, ordinal: int, limit: int) -> Answer:
    return _failed(None, "invalid_request", f"line {ordinal + 1} is longer than {limit} bytes")


def bind(platform: Platform, records: Any) -> None:
    """Teach the batch record runner the OpenAI record kind."""

    async def run(model_id: str, line: bytes, ordinal: int) -> Answer:
        return await run_record(platform, model_id, line, ordinal)

    records.extra[KIND] = run
    records.extra_too_long[KIND] = _too_long


# -- files ---------------------------------------------------------------------------------------------
def _file(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": int(row["created"]),
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": "processed",
        "status_details": None,
    }


async def _file_row(platform: Platform, file_id: str) -> dict[str, Any]:
    rows = await platform.db.query("SELECT * FROM openai_files WHERE id = ?", (file_id,))
    if not rows:
        raise NotFoundError(f"No such File object: {file_id}", param="id")
    return rows[0]


async def _ensure_bucket(platform: Platform) -> None:
    with contextlib.suppress(BucketExistsError):
        await platform.batch.store.create_bucket(FILES_BUCKET)


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(1 << 20):
        yield chunk


@router.post("/v1/files")
async def upload_file(request: Request) -> Response:
    platform = _platform(request)
    form = await request.form(max_files=1, max_fields=10)
    upload, purpose = form.get("file"), form.get("purpose")
    if not isinstance(upload, UploadFile):
        raise ValidationError("'file' is a required multipart field holding the file", param="file")
    if not isinstance(purpose, str) or purpose not in _PURPOSES:
        raise ValidationError(f"'purpose' must be one of {', '.join(_PURPOSES)}", param="purpose")
    file_id = "file-" + uuid.uuid4().hex[:24]
    await _ensure_bucket(platform)
    key = f"files/{file_id}.jsonl"
    info = await platform.batch.store.put(
        FILES_BUCKET, key, _chunks(upload), PutOptions(content_type="application/jsonl")
    )
    name = upload.filename or "upload.jsonl"
    row = {
        "id": file_id,
        "filename": name,
        "purpose": purpose,
        "bytes": info.size,
        "bucket": FILES_BUCKET,
        "key": key,
        "created": time.time(),
    }
    await platform.db.execute(
        "INSERT INTO openai_files (id, filename, purpose, bytes, bucket, key, created)"
        " VALUES (?,?,?,?,?,?,?)",
        tuple(row.values()),
    )
    return JSONResponse(_file(row))


@router.get("/v1/files")
async def list_files(
    request: Request,
    purpose: str | None = None,
    limit: int = 10000,
    order: str = "desc",
    after: str | None = None,
) -> Response:
    platform = _platform(request)
    rows = await platform.db.query("SELECT * FROM openai_files ORDER BY created, id")
    if purpose is not None:
        rows = [r for r in rows if r["purpose"] == purpose]
    if order == "desc":
        rows.reverse()
    if after is not None:
        ids = [r["id"] for r in rows]
        rows = rows[ids.index(after) + 1 :] if after in ids else []
    page = rows[: max(1, min(limit, 10000))]
    data = [_file(r) for r in page]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(rows) > len(page),
        }
    )


@router.get("/v1/files/{file_id}")
async def retrieve_file(file_id: str, request: Request) -> Response:
    return JSONResponse(_file(await _file_row(_platform(request), file_id)))


@router.get("/v1/files/{file_id}/content")
async def file_content(file_id: str, request: Request) -> Response:
    platform = _platform(request)
    row = await _file_row(platform, file_id)
    info, body = await platform.batch.store.open(row["bucket"], row["key"])
    return StreamingResponse(
        body, media_type="application/octet-stream", headers={"content-length": str(info.size)}
    )


@router.delete("/v1/files/{file_id}")
async def delete_file(file_id: str, request: Request) -> Response:
    platform = _platform(request)
    row = await _file_row(platform, file_id)
    await platform.batch.store.delete(row["bucket"], row["key"])
    await platform.db.execute("DELETE FROM openai_files WHERE id = ?", (file_id,))
    return JSONResponse({"id": file_id, "object": "file", "deleted": True})


# -- batches -------------------------------------------------------------------------------------------
class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None = None


async def _first_model(platform: Platform, row: dict[str, Any]) -> str:
    """The model the file's first request names (what the job's batch slots are sized for)."""
    _, body = await platform.batch.store.open(row["bucket"], row["key"])
    async for line, over in lines(body, platform.settings.max_body_bytes):
        try:
            model = json.loads(line)["body"]["model"] if not over else None
        except (ValueError, KeyError, TypeError):
            model = None
        if isinstance(model, str):
            return model
        break
    raise ValidationError(
        "the input file's first line is not a request with a body.model", param="input_file_id"
    )


async def _output_files(platform: Platform, b: BatchJob) -> tuple[str | None, str | None]:
    """The ids of the batch's output and error files, made from the job's output once it has ended."""
    if _STATUS[b.status] not in ("completed", "cancelled", "expired"):
        return None, None
    out_id, err_id = f"file-{b.id}-output", f"file-{b.id}-errors"
    got = {
        r["id"]
        for r in await platform.db.query("SELECT id FROM openai_files WHERE id IN (?, ?)", (out_id, err_id))
    }
    if not got:
        source = f"batches/{b.id}/{b.input_uri.rsplit('/', 1)[-1]}.out"
        for file_id, ok in ((out_id, True), (err_id, False)):
            try:
                info = await platform.batch.store.put(
                    FILES_BUCKET,
                    f"files/{file_id}.jsonl",
                    _filtered(platform, source, ok),
                    PutOptions(content_type="application/jsonl"),
                )
            except NotFoundError:
                return None, None  # nothing was written (a job cancelled before it ran)
            if info.size:
                await platform.db.execute(
                    "INSERT OR IGNORE INTO openai_files (id, filename, purpose, bytes, bucket, key, created)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (
                        file_id,
                        f"{file_id}.jsonl",
                        "batch_output",
                        info.size,
                        FILES_BUCKET,
                        f"files/{file_id}.jsonl",
                        time.time(),
                    ),
                )
                got.add(file_id)
    return (out_id if out_id in got else None), (err_id if err_id in got else None)


async def _filtered(platform: Platform, key: str, ok: bool) -> AsyncIterator[bytes]:
    _, body = await platform.batch.store.open(FILES_BUCKET, key)
    async for line, _over in lines(body, platform.settings.max_body_bytes):
        row = json.loads(line)
        good = row.get("error") is None and (row.get("response") or {}).get("status_code") == 200
        if good == ok:
            yield line + b"\n"


async def _batch(platform: Platform, b: BatchJob) -> dict[str, Any]:
    status = _STATUS[b.status]
    out_id, err_id = await _output_files(platform, b)
    spec = b.spec
    ended = int(b.ended) if b.ended else None
    return {
        "id": f"batch_{b.id}",
        "object": "batch",
        "endpoint": spec["endpoint"],
        "errors": {"object": "list", "data": [{"code": "failed", "message": b.message}]}
        if status == "failed"
        else None,
        "input_file_id": spec["input_file_id"],
        "completion_window": spec["completion_window"],
        "status": status,
        "output_file_id": out_id,
        "error_file_id": err_id,
        "created_at": int(b.created),
        "in_progress_at": int(b.started) if b.started else None,
        "expires_at": int(b.expires) if b.expires else None,
        "finalizing_at": ended if status == "completed" else None,
        "completed_at": ended if status == "completed" else None,
        "failed_at": ended if status == "failed" else None,
        "expired_at": ended if status == "expired" else None,
        "cancelling_at": None,
        "cancelled_at": ended if status == "cancelled" else None,
        "request_counts": {"total": b.counts.total, "completed": b.counts.success, "failed": b.counts.error},
        "metadata": spec.get("metadata"),
    }


async def _openai_batch(platform: Platform, batch_id: str) -> BatchJob:
    try:
        b = await platform.batch.get(batch_id.removeprefix("batch_"))
    except NotFoundError:
        b = None
    if b is None or b.surface != "openai":
        raise NotFoundError(f"No such Batch object: {batch_id}", param="batch_id")
    return b


@router.post("/v1/batches")
async def create_batch(body: BatchCreate, request: Request) -> Response:
    platform = _platform(request)
    if body.endpoint not in _ENDPOINTS:
        raise ValidationError(f"endpoint must be one of {', '.join(_ENDPOINTS)}", param="endpoint")
    if body.completion_window != "24h":
        raise ValidationError("completion_window must be 24h", param="completion_window")
    row = await _file_row(platform, body.input_file_id)
    if row["purpose"] != "batch":
        raise ValidationError("the input file's purpose must be batch", param="input_file_id")
    model = await _first_model(platform, row)
    platform.registry.resolve(model)
    b = await platform.batch.create(
        surface="openai",
        name=f"openai-{uuid.uuid4().hex[:12]}",
        model_id=model,
        kind=KIND,
        input_uri=f"s3://{row['bucket']}/{row['key']}",
        output_uri=f"s3://{FILES_BUCKET}/batches/",
        spec=body.model_dump(),
        timeout_hours=24,
    )
    return JSONResponse(await _batch(platform, b))


@router.get("/v1/batches/{batch_id}")
async def retrieve_batch(batch_id: str, request: Request) -> Response:
    platform = _platform(request)
    return JSONResponse(await _batch(platform, await _openai_batch(platform, batch_id)))


@router.post("/v1/batches/{batch_id}/cancel")
async def cancel_batch(batch_id: str, request: Request) -> Response:
    platform = _platform(request)
    b = await _openai_batch(platform, batch_id)
    b = await platform.batch.stop(b.id)
    return JSONResponse(await _batch(platform, b))


@router.get("/v1/batches")
async def list_batches(request: Request, limit: int = 20, after: str | None = None) -> Response:
    platform = _platform(request)
    jobs = (await platform.batch.list("openai"))[::-1]
    if after is not None:
        ids = [f"batch_{j.id}" for j in jobs]
        jobs = jobs[ids.index(after) + 1 :] if after in ids else []
    page = jobs[: max(1, min(limit, 100))]
    data = [await _batch(platform, j) for j in page]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(jobs) > len(page),
        }
    )
