r"""``/haniwa/v1``: haniwa's own REST resources that Bedrock and OpenAI have no operation for.

Conversations (chat history shared with ``haniwa chat``), compare-mode history and the invocation log.
The playground uses these exactly as any client may (curl, ``requests``): same bearer keys, strict JSON
bodies and OpenAI-shaped errors as the OpenAI surface, because they are routed through :class:`OpenAIRoute`.
Values that could not be stored and served back (``NaN``, integers beyond 64 bits, lone surrogates) are a
400, and nothing is stored.

Example::

    curl -s localhost:8765/haniwa/v1/conversations -H 'content-type: application/json' \
        -d '{"model_id": "llamacpp:qwen2.5-coder-1.5b", "system": "簡潔に"}'
    curl -s localhost:8765/haniwa/v1/usage?since=0
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from haniwa.api.errors import OPENAI_RESPONSES
from haniwa.api.openai import OpenAIRoute
from haniwa.api.openai_http import add_fallback
from haniwa.customization.base import FAMILIES, family_of
from haniwa.customization.training import read_steps
from haniwa.playground.comparisons import ComparisonStore
from haniwa.store.conversations import Conversation, ConversationStore, StoredMessage
from haniwa.store.db import Database
from haniwa.store.usage import usage

__all__ = ["router"]

router = APIRouter(route_class=OpenAIRoute, prefix="/haniwa/v1", responses=OPENAI_RESPONSES)

# the history of one conversation is bounded only by the body limit; these bound what a list returns
_MAX_LIST = 500


class _Body(BaseModel):
    # strict and finite: no "5" for 5, and a NaN would make every later list of the table fail to render
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ConversationIn(_Body):
    model_id: str = Field(min_length=1)
    system: str | None = None
    title: str = Field("", max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)


class ConversationPatch(_Body):
    title: str | None = Field(None, max_length=200)
    system: str | None = None
    model_id: str | None = Field(None, min_length=1)
    params: dict[str, Any] | None = None


class MessageIn(_Body):
    role: Literal["user", "assistant"]
    content: str
    input_tokens: int | None = Field(None, ge=0)
    output_tokens: int | None = Field(None, ge=0)
    latency_ms: int | None = Field(None, ge=0)


class ComparisonResult(BaseModel):
    # clients may keep more measurements than these
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)
    model: str = Field(min_length=1)
    text: str = ""
    ttft_ms: float | None = None
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    tokens_per_s: float | None = None
    error: str | None = None


class ComparisonIn(_Body):
    prompt: str
    system: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    results: list[ComparisonResult] = Field(min_length=1, max_length=8)


def _db(request: Request) -> Database:
    db: Database = request.app.state.platform.db
    return db


def _message(m: StoredMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "role": m.role,
        "content": m.content,
        "created": m.created,
        "input_tokens": m.input_tokens,
        "output_tokens": m.output_tokens,
        "latency_ms": m.latency_ms,
    }


def _conversation(c: Conversation, *, messages: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.id,
        "object": "conversation",
        "title": c.title,
        "model_id": c.model_id,
        "system": c.system,
        "created": c.created,
        "updated": c.updated,
        "message_count": c.message_count,
        "params": dict(c.params),
    }
    if messages:
        out["messages"] = [_message(m) for m in c.messages]
    return out


# -- conversations ---------------------------------------------------------------------------------------
@router.get("/conversations")
async def list_conversations(
    request: Request, limit: int = Query(50, ge=1, le=_MAX_LIST), model_id: str | None = None
) -> Response:
    convs = await ConversationStore(_db(request)).list(limit=limit, model_id=model_id)
    return JSONResponse({"object": "list", "data": [_conversation(c) for c in convs]})


@router.post("/conversations", status_code=201)
async def create_conversation(body: ConversationIn, request: Request) -> Response:
    store = ConversationStore(_db(request))
    conv_id = await store.create(body.model_id, body.system, body.title, params=body.params)
    return JSONResponse(_conversation(await store.get(conv_id)), status_code=201)


@router.get("/conversations/{conv_id}")
async def get_conversation(conv_id: str, request: Request, download: bool = False) -> Response:
    conv = await ConversationStore(_db(request)).get(conv_id)
    headers = (
        {"content-disposition": f'attachment; filename="conversation-{conv_id}.json"'} if download else {}
    )
    return JSONResponse(_conversation(conv, messages=True), headers=headers)


@router.patch("/conversations/{conv_id}")
async def update_conversation(conv_id: str, body: ConversationPatch, request: Request) -> Response:
    store = ConversationStore(_db(request))
    await store.update(
        conv_id, title=body.title, system=body.system, model_id=body.model_id, params=body.params
    )
    return JSONResponse(_conversation(await store.get(conv_id)))


@router.delete("/conversations/{conv_id}")
async def delete_conversation(conv_id: str, request: Request) -> Response:
    await ConversationStore(_db(request)).delete(conv_id)
    return JSONResponse({"id": conv_id, "object": "conversation.deleted", "deleted": True})


@router.post("/conversations/{conv_id}/messages", status_code=201)
async def add_message(conv_id: str, body: MessageIn, request: Request) -> Response:
    store = ConversationStore(_db(request))
    msg_id = await store.append(
        conv_id,
        body.role,
        body.content,
        input_tokens=body.input_tokens,
        output_tokens=body.output_tokens,
        latency_ms=body.latency_ms,
    )
    conv = await store.get(conv_id)
    found = next(m for m in conv.messages if m.id == msg_id)
    return JSONResponse(_message(found), status_code=201)


# -- comparisons -----------------------------------------------------------------------------------------
@router.get("/comparisons")
async def list_comparisons(request: Request, limit: int = Query(50, ge=1, le=_MAX_LIST)) -> Response:
    return JSONResponse({"object": "list", "data": await ComparisonStore(_db(request)).list(limit)})


@router.post("/comparisons", status_code=201)
async def create_comparison(body: ComparisonIn, request: Request) -> Response:
    store = ComparisonStore(_db(request))
    cid = await store.create(
        body.prompt,
        system=body.system,
        params=body.params,
        results=[r.model_dump() for r in body.results],
    )
    return JSONResponse(await store.get(cid), status_code=201)


@router.get("/comparisons/{cid}")
async def get_comparison(cid: str, request: Request) -> Response:
    return JSONResponse(await ComparisonStore(_db(request)).get(cid))


@router.delete("/comparisons/{cid}")
async def delete_comparison(cid: str, request: Request) -> Response:
    await ComparisonStore(_db(request)).delete(cid)
    return JSONResponse({"id": cid, "deleted": True})


# -- usage -----------------------------------------------------------------------------------------------
@router.get("/usage")
async def get_usage(
    request: Request,
    since: float | None = Query(None, description="epoch seconds; default: one day ago", allow_inf_nan=False),
    until: float | None = Query(None, description="epoch seconds; default: now", allow_inf_nan=False),
    limit: int = Query(200, ge=1, le=5000),
) -> Response:
    now = time.time()
    end = until if until is not None else now
    start = since if since is not None else end - 86400
    return JSONResponse(await usage(_db(request), since=start, until=end, limit=limit))


# -- customization jobs: what Bedrock's output shapes have no member for ------------------------------------
@router.get("/customization/jobs/{job_id}")
async def get_customization_job(request: Request, job_id: str) -> Response:
    """Progress (step/total, ETA, the engine's message: "waiting for the training slot" while another job
    trains), the loss curve so far and, once the job completed, the before/after comparison."""
    service = request.app.state.platform.customization
    view = await service.get_job(job_id)
    job = view.job
    waiting = job.state.value == "QUEUED"
    return JSONResponse(
        {
            "jobId": view.record.id,
            "jobName": view.record.name,
            "state": job.state.value,
            "message": (
                "waiting: another training job holds the training slot (HANIWA_JOB_LIMITS)"
                if waiting
                else job.message
            ),
            "step": job.done,
            "totalSteps": job.total,
            "eta": job.eta,
            "figures": dict(job.figures),
            "baseModel": view.record.base_info,
            "lossCurve": read_steps(request.app.state.platform.settings, view.record.id),
            "comparison": service.comparison(view.record.id),
        }
    )


@router.get("/customization/hyperparameters")
async def get_customization_hyperparameters(base_model: str = Query("", alias="baseModel")) -> Response:
    """The hyperparameter ranges Bedrock documents for ``baseModel``'s family (what the create form shows;
    CreateModelCustomizationJob checks the same table)."""
    family = family_of(base_model)
    ranges = FAMILIES[family][1]
    return JSONResponse(
        {
            "family": family,
            "hyperParameters": {
                name: {"min": r.low, "max": r.high, "default": r.default, "integer": r.integer}
                for name, r in ranges.items()
            },
        }
    )


add_fallback(router, "/{path:path}")
