"""The OpenAI-compatible surface: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/embeddings``.

Request bodies are small pydantic models of the OpenAI shapes. They are converted to a ``ChatRequest`` on
the way in (:func:`chat_request`) and from ``ChatResult`` / ``ChatEvent`` on the way out, one converter
per direction. Every route of :data:`router` uses ``OpenAIRoute``, which checks the bearer key and
renders any ``PlatformError`` (and any body that fails validation) as ``{"error": {...}}``; the Bedrock
routes keep their own rendering.

Bodies are read strictly, as OpenAI does: the JSON must be plain (no ``NaN``/``Infinity``, no number beyond
64 bits, no lone surrogate, at most ``MAX_JSON_DEPTH`` levels deep) and values are not coerced (``"stream":
"yes"`` is a 400, not ``true``). Every failure, even an unexpected one, answers ``{"error": ...}``; a
wrong method on a known path is a 405 and an unknown path under ``/v1`` a 404, both in the same shape.

Streaming answers are server-sent events, ``data: {chunk}`` ... ``data: [DONE]``. The first event is
awaited before the response starts, so a model that fails at once still gets a real HTTP status; an error
after that arrives as a ``data: {"error": {...}}`` event.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response, StreamingResponse

from haniwa.api.auth import verify_bearer
from haniwa.api.bedrock_runtime import check_images
from haniwa.api.context import Platform
from haniwa.api.deadline import ClientGone, bounded, gone_response
from haniwa.api.errors import OPENAI_RESPONSES, openai_error, openai_status_error
from haniwa.api.openai_http import add_fallback, read_json
from haniwa.api.ratelimit import caller_key
from haniwa.errors import ModelError, PlatformError, ValidationError
from haniwa.runtime.base import (
    Block,
    ChatBackend,
    ChatEvent,
    ChatRequest,
    ChatResult,
    ImageBlock,
    InferenceParams,
    Message,
    StopReason,
    TextBlock,
    TextDelta,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    ToolUseEvent,
    Usage,
)
from haniwa.runtime.offload import CPU, json_chunks
from haniwa.runtime.tokens import rough_tokens

__all__ = [
    "router",
    "OpenAIRoute",
    "ChatCompletionRequest",
    "EmbeddingRequest",
    "chat_request",
]

logger = logging.getLogger("haniwa.api")


# -- request bodies (OpenAI shapes; unknown fields are ignored as OpenAI-compatible servers do) ----------
class _Body(BaseModel):
    # strict: OpenAI refuses "stream": "yes" or "max_tokens": "5" rather than guessing what was meant
    model_config = ConfigDict(extra="ignore", strict=True)


class TextPart(_Body):
    type: Literal["text"]
    text: str


class ImageURL(_Body):
    url: str
    detail: str | None = None


class ImagePart(_Body):
    type: Literal["image_url"]
    image_url: ImageURL


class FunctionCall(_Body):
    name: str
    arguments: str


class ToolCall(_Body):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Body):
    role: Literal["system", "developer"]
    content: str | list[TextPart]


class UserMessage(_Body):
    role: Literal["user"]
    content: str | list[Annotated[TextPart | ImagePart, Field(discriminator="type")]]


class AssistantMessage(_Body):
    role: Literal["assistant"]
    content: str | list[TextPart] | None = None
    tool_calls: list[ToolCall] | None = None


class ToolMessage(_Body):
    role: Literal["tool"]
    tool_call_id: str
    content: str | list[TextPart]


ChatMessage = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]


_TAGS = {"system", "developer", "user", "assistant", "tool", "text", "image_url"}


class FunctionDef(_Body):
    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class FunctionTool(_Body):
    type: Literal["function"]
    function: FunctionDef


class _Name(_Body):
    name: str


class NamedToolChoice(_Body):
    type: Literal["function"]
    function: _Name


class TextFormat(_Body):
    type: Literal["text"]


class JsonObjectFormat(_Body):
    type: Literal["json_object"]


class JsonSchemaSpec(_Body):
    name: str = "response"
    # "schema" would shadow a BaseModel attribute
    json_schema: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class JsonSchemaFormat(_Body):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


class StreamOptions(_Body):
    include_usage: bool = False


class ChatCompletionRequest(_Body):
    """``POST /v1/chat/completions``."""

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)  # not OpenAI's, but vLLM and llama.cpp accept it too
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=1)
    response_format: (
        Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")] | None
    ) = None
    stream: bool = False
    stream_options: StreamOptions | None = None


class EmbeddingRequest(_Body):
    """``POST /v1/embeddings`` (text input only; token arrays are not accepted)."""

    model: str
    input: str | list[str]
    dimensions: int | None = Field(None, ge=1)
    encoding_format: Literal["float", "base64"] = "float"


# -- OpenAI body → ChatRequest ---------------------------------------------------------------------
def _text(content: str | list[TextPart] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(p.text for p in content)


def _image(url: str, param: str) -> ImageBlock:
    if not url.startswith("data:"):
        raise ValidationError(
            "image_url must be a data: URL; haniwa does not fetch remote images", param=param
        )
    head, sep, data = url[5:].partition(",")
    media_type, _, encoding = head.partition(";")
    if not sep or encoding != "base64" or not media_type.startswith("image/"):
        raise ValidationError("image_url must look like data:image/png;base64,...", param=param)
    try:
        return ImageBlock(base64.b64decode(data, validate=True), media_type)
    except binascii.Error as exc:
        raise ValidationError("image_url data is not valid base64", param=param) from exc


def _tool_input(call: ToolCall, param: str) -> dict[str, Any]:
    try:
        value = json.loads(call.function.arguments or "{}")
    except ValueError as exc:
        raise ValidationError("tool call arguments must be a JSON object", param=param) from exc
    if not isinstance(value, dict):
        raise ValidationError("tool call arguments must be a JSON object", param=param)
    return value


def _append(messages: list[Message], role: Literal["user", "assistant"], blocks: list[Block]) -> None:
    # consecutive turns of one role (tool results, then a user note) become one message, as Bedrock wants
    if messages and messages[-1].role == role:
        messages[-1] = Message(role, messages[-1].content + tuple(blocks))
    else:
        messages.append(Message(role, tuple(blocks)))


def chat_request(body: ChatCompletionRequest) -> ChatRequest:
    """Convert a chat completion body to the runtime's ``ChatRequest``."""
    system: list[str] = []
    messages: list[Message] = []
    for i, m in enumerate(body.messages):
        if isinstance(m, SystemMessage):
            system.append(_text(m.content))
        elif isinstance(m, UserMessage):
            blocks: list[Block] = []
            if isinstance(m.content, str):
                blocks.append(TextBlock(m.content))
            for j, part in enumerate(m.content if isinstance(m.content, list) else []):
                if isinstance(part, TextPart):
                    blocks.append(TextBlock(part.text))
                else:
                    blocks.append(_image(part.image_url.url, f"messages[{i}].content[{j}].image_url.url"))
            _append(messages, "user", blocks)
        elif isinstance(m, AssistantMessage):
            blocks = [TextBlock(_text(m.content))] if _text(m.content) else []
            for j, call in enumerate(m.tool_calls or []):
                param = f"messages[{i}].tool_calls[{j}].function.arguments"
                blocks.append(ToolUseBlock(call.id, call.function.name, _tool_input(call, param)))
            _append(messages, "assistant", blocks)
        else:
            _append(messages, "user", [ToolResultBlock(m.tool_call_id, _text(m.content))])
    tools = tuple(
        ToolSpec(t.function.name, t.function.description, t.function.parameters) for t in body.tools or ()
    )
    choice = "auto"
    if isinstance(body.tool_choice, NamedToolChoice):
        choice = body.tool_choice.function.name
        if choice not in {t.name for t in tools}:
            raise ValidationError(f"tool_choice names {choice!r}, which is not in tools", param="tool_choice")
    elif body.tool_choice == "required":
        if not tools:
            raise ValidationError("tool_choice 'required' needs at least one tool", param="tool_choice")
        choice = "any"
    elif body.tool_choice == "none":
        choice = "none"
    schema: dict[str, Any] | None = None
    if isinstance(body.response_format, JsonObjectFormat):
        schema = {"type": "object"}
    elif isinstance(body.response_format, JsonSchemaFormat):
        schema = body.response_format.json_schema.json_schema or {"type": "object"}
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    return ChatRequest(
        messages=tuple(messages),
        system="\n".join(system) or None,
        params=InferenceParams(
            max_tokens=body.max_completion_tokens or body.max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=body.top_k,
            stop=stop,
            seed=body.seed,
        ),
        tools=tools,
        tool_choice=choice,
        response_schema=schema,
    )


# -- ChatResult / ChatEvent → OpenAI body --------------------------------------------------------------
_FINISH: dict[StopReason, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


def _tool_call(id_: str, name: str, args: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(dict(args), ensure_ascii=False)},
    }


def _usage(u: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
    }


def _choice_extra(stop_sequence: str | None) -> dict[str, Any]:
    # vLLM's field for the stop string that ended the answer; lets a chained haniwa report stop_sequence
    return {"stop_reason": stop_sequence} if stop_sequence else {}


def _completion(call: _Call, result: ChatResult) -> dict[str, Any]:
    blocks = result.message.content
    text = "".join(b.text for b in blocks if isinstance(b, TextBlock))
    tool_calls = [_tool_call(b.id, b.name, b.input) for b in blocks if isinstance(b, ToolUseBlock)]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text or (None if tool_calls else ""),
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": call.completion_id,
        "object": "chat.completion",
        "created": call.created,
        "model": call.model_requested,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _FINISH[result.stop_reason],
                **_choice_extra(result.stop_sequence),
            }
        ],
        "usage": _usage(result.usage),
    }


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _error_body(exc: PlatformError) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(bytes(openai_error(exc).body))
    return body


async def _chunks(
    call: _Call, stream: AsyncIterator[ChatEvent], include_usage: bool
) -> AsyncGenerator[str, None]:
    """SSE events for one completion. Errors before the first model event propagate (an HTTP error)."""

    def chunk(choices: list[dict[str, Any]], usage: Usage | None = None) -> str:
        out: dict[str, Any] = {
            "id": call.completion_id,
            "object": "chat.completion.chunk",
            "created": call.created,
            "model": call.model_requested,
            "system_fingerprint": None,
            "choices": choices,
        }
        if include_usage:
            out["usage"] = _usage(usage) if usage else None
        return _sse(out)

    def delta(d: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return chunk([{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish, **extra}])

    events = aiter(stream)
    started = False
    try:
        event: ChatEvent | None = await anext(events, None)
        first_ms = call.ms()
        yield delta({"role": "assistant", "content": ""})
        started = True
        n_tools = 0
        while event is not None:
            if isinstance(event, TextDelta):
                yield delta({"content": event.text})
            elif isinstance(event, ToolUseEvent):
                yield delta(
                    {"tool_calls": [{"index": n_tools, **_tool_call(event.id, event.name, event.input)}]}
                )
                n_tools += 1
            else:
                await call.log(event.usage, first_token_ms=first_ms)
                yield delta({}, _FINISH[event.stop_reason], **_choice_extra(event.stop_sequence))
                if include_usage:
                    yield chunk([], event.usage)
                yield "data: [DONE]\n\n"
                return
            event = await anext(events, None)
        raise ModelError(f"model {call.model_id} ended its stream without a stop reason")
    except PlatformError as exc:
        if not started:  # the route renders it with its HTTP status
            raise
        await call.log(None, error=exc.code)
        yield _sse(_error_body(exc))
    except Exception:  # noqa: BLE001 - a stream ends with an error event, never a cut connection
        if not started:
            raise
        logger.exception("ChatCompletions stream failed (request id %s)", call.request_id)
        await call.log(None, error="InternalServerException")
        yield _sse(_error_body(_internal(call.request_id)))
    finally:
        if isinstance(events, AsyncGenerator):
            await events.aclose()


async def _resume(head: str, rest: AsyncGenerator[str, None]) -> AsyncIterator[str]:
    try:
        yield head
        async for item in rest:
            yield item
    finally:
        await rest.aclose()


# -- the per-request context and the route class -------------------------------------------------------
@dataclass
class _Call:
    platform: Platform
    request_id: str
    operation: str
    model_requested: str | None = None
    model_id: str | None = None
    started: float = field(default_factory=time.perf_counter)
    created: int = field(default_factory=lambda: int(time.time()))
    logged: bool = False

    @property
    def completion_id(self) -> str:
        return "chatcmpl-" + self.request_id.replace("-", "")

    def ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)

    async def log(
        self, usage: Usage | None, *, error: str | None = None, first_token_ms: int | None = None
    ) -> None:
        if self.logged:
            return
        self.logged = True
        await self.platform.log_invocation(
            request_id=self.request_id,
            surface="openai",
            operation=self.operation,
            model_requested=self.model_requested,
            model_id=self.model_id,
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
            latency_ms=self.ms(),
            first_token_ms=first_token_ms,
            status="error" if error else "ok",
            error_code=error,
        )


def _begin(request: Request, operation: str, model: str | None) -> _Call:
    call = _Call(request.app.state.platform, request.state.request_id, operation, model)
    request.state.openai_call = call
    return call


# pydantic names union branches in error locations ("str", "list[...]", "NamedToolChoice") and puts a
# discriminated union's tag after the list index ("messages", 0, "user", "content"); clients want the
# field path only
_BRANCH = re.compile(r"^[a-z-]+\[.*\]$|^(str|int|float|bool|list|dict|none)$|^[A-Z]")
_TAGGED_FIELDS = {"response_format"}


def _param(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    out: list[int | str] = []
    for i, part in enumerate(loc):
        prev = loc[i - 1] if i else None
        if isinstance(part, str) and (_BRANCH.match(part) or isinstance(prev, int) and part in _TAGS):
            continue
        if isinstance(part, str) and prev in _TAGGED_FIELDS:
            continue
        out.append(part)
    return tuple(out)


def _dotted(loc: tuple[int | str, ...]) -> str | None:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _validation_error(exc: RequestValidationError) -> ValidationError:
    errors = list(exc.errors())
    if errors and errors[0].get("type") == "json_invalid":
        return ValidationError(
            f"the request body is not valid JSON: {errors[0].get('ctx', {}).get('error', '')}"
        )
    found: dict[tuple[str | None, str], int] = {}  # (param, message) → depth, first seen first
    for e in errors:
        loc = _param(tuple(e.get("loc", ()))[1:])  # drop "body"
        found.setdefault((_dotted(loc), str(e.get("msg", "invalid"))), len(loc))
    # the deepest location is the most specific (a bad content part rather than "not a string")
    ordered = sorted(found, key=lambda k: -found[k])
    parts = [f"{p or 'request body'}: {msg}" for p, msg in ordered]
    more = f" (and {len(parts) - 3} more)" if len(parts) > 3 else ""
    return ValidationError("; ".join(parts[:3]) + more, param=ordered[0][0] if ordered else None)


def _internal(request_id: str) -> PlatformError:
    return PlatformError(f"The server could not complete the request (request id {request_id}).")


class OpenAIRoute(APIRoute):
    """Bearer-key check, request ids and OpenAI-shaped errors for the routes of this router only."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        reads_body = self.body_field is not None

        async def route(request: Request) -> Response:
            request.state.request_id = str(uuid.uuid4())
            request.state.openai_call = None
            platform: Platform = request.app.state.platform
            response: Response
            try:
                # the key is checked before the body is read; BodyLimits (api/limits.py) caps that read
                verify_bearer(platform.settings, request.headers.get("authorization"))
                if reads_body:
                    await read_json(request)
                try:
                    response = await handler(request)
                except RequestValidationError as exc:
                    raise _validation_error(exc) from exc
            except ClientGone:  # the call was cancelled: it is logged, and the answer goes nowhere
                gone: _Call | None = request.state.openai_call
                if gone is not None:
                    await gone.log(None, error="ClientClosedRequest")
                response = gone_response()
            except PlatformError as exc:
                call: _Call | None = request.state.openai_call
                if call is not None:
                    await call.log(None, error=exc.code)
                response = openai_error(exc)
            except HTTPException as exc:  # Starlette's own 4xx, in this surface's shape
                response = openai_status_error(exc.status_code, str(exc.detail), dict(exc.headers or {}))
            except Exception:  # noqa: BLE001 - ours, not the client's: typed and logged, never a trace
                rid = request.state.request_id
                logger.exception("%s %s failed (request id %s)", request.method, request.url.path, rid)
                failed: _Call | None = request.state.openai_call
                if failed is not None:
                    await failed.log(None, error="InternalServerException")
                response = openai_error(_internal(rid))
            response.headers["x-request-id"] = request.state.request_id
            return response

        return route


router = APIRouter(route_class=OpenAIRoute, responses=OPENAI_RESPONSES)


# -- routes --------------------------------------------------------------------------------------------
def _model_object(model_id: str, owned_by: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    """Every catalog model, then every exact alias (patterns cannot be listed)."""
    platform: Platform = request.app.state.platform
    registry, created = platform.registry, int(platform.started)
    data = [_model_object(i.id, i.provider, created) for i in registry.models.values()]
    seen = {d["id"] for d in data}
    for alias, target in registry.alias_table():
        if alias.is_pattern or alias.pattern in seen or target not in registry.models:
            continue
        seen.add(alias.pattern)
        data.append(_model_object(alias.pattern, registry.models[target].provider, created))
    return JSONResponse({"object": "list", "data": data})


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(model_id: str, request: Request) -> Response:
    platform: Platform = request.app.state.platform
    res = platform.registry.resolve(model_id)
    return JSONResponse(_model_object(model_id, res.info.provider, int(platform.started)))


def _check_counts(body: ChatCompletionRequest, platform: Platform) -> None:
    settings = platform.settings
    if len(body.messages) > settings.max_messages:
        raise ValidationError(
            f"the request has {len(body.messages)} messages; this server takes at most "
            f"{settings.max_messages} (HANIWA_MAX_MESSAGES)",
            param="messages",
        )
    if len(body.tools or ()) > settings.max_tools:
        raise ValidationError(
            f"the request declares {len(body.tools or ())} tools; this server takes at most "
            f"{settings.max_tools} (HANIWA_MAX_TOOLS)",
            param="tools",
        )


def _check_max_tokens(body: ChatCompletionRequest, context_length: int) -> None:
    wanted = body.max_completion_tokens or body.max_tokens
    if wanted is not None and wanted > context_length:
        param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
        raise ValidationError(
            f"{param} is too large: {wanted}. Model {body.model} has a context window of "
            f"{context_length} tokens",
            param=param,
        )


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    call = _begin(request, "ChatCompletions", body.model)
    _check_counts(body, call.platform)
    req = chat_request(body)
    caller = caller_key(request.headers.get("authorization"))
    res, model = await call.platform.registry.chat(body.model, caller=caller)
    call.model_id = res.info.id
    _check_max_tokens(body, res.info.context_length)
    check_images(req, model.supports_images, body.model)
    if req.tools and not model.supports_tools:
        raise ValidationError(f"model {body.model} does not support tool use", param="tools")
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return await _stream(call, model, req, include_usage)
    # answered in one piece: a deadline, and cancelled when the client goes (api/deadline.py)
    result = await bounded(model.converse(req), request.receive, call.platform.settings.request_timeout)
    await call.log(result.usage)
    return JSONResponse(_completion(call, result))


async def _stream(call: _Call, model: ChatBackend, req: ChatRequest, include_usage: bool) -> Response:
    chunks = _chunks(call, model.converse_stream(req), include_usage)
    head = await anext(chunks)  # waits for the model's first event: early failures keep their status
    return StreamingResponse(
        _resume(head, chunks), media_type="text/event-stream", headers={"cache-control": "no-cache"}
    )


def _base64(vector: list[float]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request) -> Response:
    call = _begin(request, "Embeddings", body.model)
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts:
        raise ValidationError("input must not be empty", param="input")
    work = call.platform.registry.embed(
        body.model,
        texts,
        "document",
        dimensions=body.dimensions,
        caller=caller_key(request.headers.get("authorization")),
    )
    res, vectors = await bounded(work, request.receive, call.platform.settings.request_timeout)
    call.model_id = res.info.id
    # counting and encoding thousands of vectors takes seconds: off the event loop
    tokens, chunks = await CPU.run(_embedding_body, body, texts, vectors)
    await call.log(Usage(tokens, 0))
    return StreamingResponse(
        _sent(chunks),
        media_type="application/json",
        headers={"content-length": str(sum(len(c) for c in chunks))},
    )


def _embedding_body(
    body: EmbeddingRequest, texts: list[str], vectors: list[list[float]]
) -> tuple[int, list[bytes]]:
    tokens = sum(len(rough_tokens(t)) for t in texts)
    # the vectors as they are (lists already): a copy of each would only be more for the GC to walk
    encode: Callable[[list[float]], Any] = _base64 if body.encoding_format == "base64" else _as_list
    data = [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return tokens, json_chunks({"object": "list", "data": data, "model": body.model, "usage": usage})


def _as_list(vector: list[float]) -> list[float]:
    return vector if isinstance(vector, list) else list(vector)


async def _sent(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


add_fallback(router, "/v1/{path:path}")
