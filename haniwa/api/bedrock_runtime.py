"""``bedrock-runtime``: Converse, ConverseStream, InvokeModel (+ stream) and CountTokens."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from haniwa.api.context import Call
from haniwa.api.native.base import ChatFormat, EmbedFormat, EmbedResponse
from haniwa.api.native.fields import estimate_tokens
from haniwa.api.ratelimit import caller_key
from haniwa.api.wire import EventStream, load_json
from haniwa.config import Settings
from haniwa.errors import PlatformError, ValidationError
from haniwa.runtime.base import (
    Block,
    ChatBackend,
    ChatEvent,
    ChatRequest,
    ChatResult,
    ImageBlock,
    InferenceParams,
    Message,
    ModelInfo,
    StreamEnd,
    TextBlock,
    TextDelta,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    ToolUseEvent,
)
from haniwa.runtime.offload import CPU, json_chunks_off_loop
from haniwa.runtime.tokens import rough_tokens

if TYPE_CHECKING:
    from haniwa.runtime.registry import Resolved

__all__ = ["OPERATIONS", "converse_request", "check_images", "check_limits", "log_cut_short"]

_IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


# -- Converse wire → ChatRequest ---------------------------------------------------------------------
def _b64(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ValidationError("image bytes must be base64-encoded") from exc


def _block(raw: Mapping[str, Any]) -> Block | None:
    if "text" in raw:
        return TextBlock(raw["text"])
    if "image" in raw:
        img = raw["image"]
        if "bytes" not in img.get("source", {}):
            raise ValidationError("only image.source.bytes is supported (no s3Location)")
        return ImageBlock(_b64(img["source"]["bytes"]), _IMAGE_TYPES.get(img.get("format", ""), "image/png"))
    if "toolUse" in raw:
        tu = raw["toolUse"]
        return ToolUseBlock(tu["toolUseId"], tu["name"], tu.get("input") or {})
    if "toolResult" in raw:
        tr = raw["toolResult"]
        parts = []
        for c in tr.get("content", []):
            if "text" in c:
                parts.append(c["text"])
            elif "json" in c:
                parts.append(json.dumps(c["json"], ensure_ascii=False))
        return ToolResultBlock(tr["toolUseId"], "\n".join(parts), tr.get("status") == "error")
    if "document" in raw:
        doc = raw["document"]
        data = doc.get("source", {}).get("bytes")
        text = _b64(data).decode("utf-8", "replace") if data else doc.get("source", {}).get("text", "")
        return TextBlock(f'<document name="{doc.get("name", "")}">\n{text}\n</document>')
    return None  # cachePoint, guardContent markers, reasoning blocks: nothing to generate from


def converse_request(params: Mapping[str, Any], settings: Settings | None = None) -> ChatRequest:
    if settings is not None:
        # counted on the wire, before a single block is built
        _check_counts(
            len(params.get("messages", [])),
            len((params.get("toolConfig") or {}).get("tools", [])),
            settings,
        )
    messages = []
    for m in params.get("messages", []):
        blocks = tuple(b for b in (_block(c) for c in m["content"]) if b is not None)
        messages.append(Message(m["role"], blocks))
    if not messages:
        raise ValidationError("messages must contain at least one message")
    if messages[0].role != "user":
        raise ValidationError(
            "A conversation must start with a user message. Try again with a conversation that starts "
            "with a user message."
        )
    system = "\n".join(s["text"] for s in params.get("system", []) if "text" in s) or None
    ic = params.get("inferenceConfig", {})
    extra = params.get("additionalModelRequestFields") or {}
    top_k = extra.get("top_k", extra.get("topK"))
    if top_k is not None and (not _is_int(top_k) or top_k < 0):
        raise ValidationError("additionalModelRequestFields.top_k must be a non-negative integer")
    seed = extra.get("seed")
    if seed is not None and not _is_int(seed):
        raise ValidationError("additionalModelRequestFields.seed must be an integer")
    tools: list[ToolSpec] = []
    choice = "auto"
    tc = params.get("toolConfig")
    if tc:
        for t in tc.get("tools", []):
            if "toolSpec" in t:
                spec = t["toolSpec"]
                tools.append(ToolSpec(spec["name"], spec.get("description", ""), spec["inputSchema"]["json"]))
        tch = tc.get("toolChoice", {})
        choice = "any" if "any" in tch else tch["tool"]["name"] if "tool" in tch else "auto"
    return ChatRequest(
        messages=tuple(messages),
        system=system,
        params=InferenceParams(
            max_tokens=ic.get("maxTokens"),
            temperature=ic.get("temperature"),
            top_p=ic.get("topP"),
            top_k=top_k,
            stop=tuple(ic.get("stopSequences", ())),
            seed=seed,
        ),
        tools=tuple(tools),
        tool_choice=choice,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_counts(messages: int, tools: int, settings: Settings) -> None:
    if messages > settings.max_messages:
        raise ValidationError(
            f"the request has {messages} messages; this server takes at most {settings.max_messages}"
            " (HANIWA_MAX_MESSAGES)"
        )
    if tools > settings.max_tools:
        raise ValidationError(
            f"the request declares {tools} tools; this server takes at most {settings.max_tools}"
            " (HANIWA_MAX_TOOLS)"
        )


def check_limits(req: ChatRequest, info: ModelInfo, model_id: str, settings: Settings) -> None:
    """Refuse what no model call should be asked for: more output tokens than the model's context
    window holds, more messages or tools than the server's limits."""
    _check_counts(len(req.messages), len(req.tools), settings)
    wanted = req.params.max_tokens
    if wanted is not None and wanted > info.context_length:
        raise ValidationError(
            f"the maximum number of tokens to generate ({wanted}) exceeds the context window of model "
            f"{model_id} ({info.context_length} tokens)",
            param="maxTokens",
        )


def check_images(req: ChatRequest, supports_images: bool, model_id: str) -> None:
    """A model that cannot see gets a clear ValidationException rather than a silent text-only answer."""
    if supports_images:
        return
    if any(isinstance(b, ImageBlock) for m in req.messages for b in m.content):
        raise ValidationError(
            f"model {model_id} does not support image input. Configure a vision model (an OpenAI-compatible "
            "backend or a llama.cpp GGUF with an mmproj) and send the image to it."
        )


# -- ChatResult → Converse wire ----------------------------------------------------------------------
def _wire_block(b: Block) -> dict[str, Any]:
    if isinstance(b, TextBlock):
        return {"text": b.text}
    if isinstance(b, ToolUseBlock):
        return {"toolUse": {"toolUseId": b.id, "name": b.name, "input": dict(b.input)}}
    raise AssertionError(f"assistant messages hold text and tool uses, not {type(b).__name__}")


def _usage(u: Any) -> dict[str, int]:
    return {"inputTokens": u.input_tokens, "outputTokens": u.output_tokens, "totalTokens": u.total_tokens}


async def _prepare(call: Call, params: Mapping[str, Any]) -> tuple[ChatRequest, Resolved, ChatBackend]:
    """Everything that can refuse a Converse request, done before any answer (or stream) starts."""
    settings = call.platform.settings
    req = converse_request(params, settings)
    caller = caller_key(call.headers.get("authorization"))  # whose rate limits the call counts against
    res, model = await call.platform.registry.chat(params["modelId"], caller=caller)
    check_images(req, model.supports_images, params["modelId"])
    check_limits(req, res.info, params["modelId"], settings)
    return req, res, model


async def converse(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    req, res, model = await _prepare(call, params)
    logged = _logged_request(params)
    try:
        result = await model.converse(req)
    except PlatformError as exc:
        await _log(call, params["modelId"], res.info.id, None, exc.code, request=logged, message=exc.message)
        raise
    out = {
        "output": {
            "message": {"role": "assistant", "content": [_wire_block(b) for b in result.message.content]}
        },
        "stopReason": result.stop_reason,
        "usage": _usage(result.usage),
        "metrics": {"latencyMs": call.elapsed_ms()},
    }
    await _log(call, params["modelId"], res.info.id, result, request=logged, response=out)
    return out


def _logged_request(params: Mapping[str, Any]) -> dict[str, Any]:
    """A Converse request as the invocation log shows it: the body, without the path's model id."""
    return {k: v for k, v in params.items() if k != "modelId"}


async def _log(
    call: Call,
    requested: str,
    model_id: str | None,
    result: ChatResult | StreamEnd | None,
    error: str | None = None,
    first_token_ms: int | None = None,
    *,
    request: Any = None,
    response: Any = None,
    message: str | None = None,
) -> None:
    await call.platform.log_invocation(
        request_id=call.request_id,
        surface="bedrock",
        operation=call.op.name,
        model_requested=requested,
        model_id=model_id,
        input_tokens=result.usage.input_tokens if result else None,
        output_tokens=result.usage.output_tokens if result else None,
        latency_ms=call.elapsed_ms(),
        first_token_ms=first_token_ms,
        status="error" if error else "ok",
        error_code=error,
        request=request,
        response=response,
        error_message=message,
    )


async def log_cut_short(call: Call, params: Mapping[str, Any], code: str) -> None:
    """Log a call whose handler was cancelled (deadline, client gone) before it could log itself."""
    model = params.get("modelId")
    if not isinstance(model, str):
        return
    try:
        model_id: str | None = call.platform.registry.resolve(model).info.id
    except PlatformError:
        model_id = None
    await _log(call, model, model_id, None, code)


async def _converse_events(
    call: Call, params: dict[str, Any], req: ChatRequest, res: Resolved, model: ChatBackend
) -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
    stream = model.converse_stream(req)  # admits the call (rate limits) before the first event, so a 429
    logged = _logged_request(params)
    sent: list[dict[str, Any]] = []  # the events, for the invocation log (as long as the answer)

    def kept(name: str, payload: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
        sent.append({name: payload})
        return name, payload

    yield kept("messageStart", {"role": "assistant"})
    index, text_open, first = 0, False, None
    try:
        async for ev in stream:
            if first is None:
                first = call.elapsed_ms()
            if isinstance(ev, TextDelta):
                text_open = True
                yield kept("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": ev.text}})
            elif isinstance(ev, ToolUseEvent):
                if text_open:
                    yield kept("contentBlockStop", {"contentBlockIndex": index})
                    index, text_open = index + 1, False
                yield kept(
                    "contentBlockStart",
                    {
                        "contentBlockIndex": index,
                        "start": {"toolUse": {"toolUseId": ev.id, "name": ev.name}},
                    },
                )
                yield kept(
                    "contentBlockDelta",
                    {
                        "contentBlockIndex": index,
                        "delta": {"toolUse": {"input": json.dumps(dict(ev.input), ensure_ascii=False)}},
                    },
                )
                yield kept("contentBlockStop", {"contentBlockIndex": index})
                index += 1
            else:
                if text_open:
                    yield kept("contentBlockStop", {"contentBlockIndex": index})
                yield kept("messageStop", {"stopReason": ev.stop_reason})
                metadata = {"usage": _usage(ev.usage), "metrics": {"latencyMs": call.elapsed_ms()}}
                yield kept("metadata", metadata)
                await _log(
                    call,
                    params["modelId"],
                    res.info.id,
                    ev,
                    first_token_ms=first,
                    request=logged,
                    response=sent,
                )
    except PlatformError as exc:
        await _log(call, params["modelId"], res.info.id, None, exc.code, request=logged, message=exc.message)
        raise


async def converse_stream(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    # validate eagerly, as Bedrock does: a bad request is an HTTP error, not a 200 whose stream fails
    req, res, model = await _prepare(call, params)
    return {"stream": EventStream(_converse_events(call, params, req, res, model))}


# -- InvokeModel ---------------------------------------------------------------------------------------
def _parse_body(raw: bytes | str, settings: Settings) -> dict[str, Any]:
    body = load_json(raw, "Malformed input request: the body")
    if not isinstance(body, dict):
        raise ValidationError("Malformed input request: the body must be a JSON object")
    # the providers' bodies carry their turns and tools under these keys: counted before any is built
    turns = [body.get(k) for k in ("messages", "chat_history")]
    _check_counts(
        sum(len(t) for t in turns if isinstance(t, list)),
        len(body["tools"]) if isinstance(body.get("tools"), list) else 0,
        settings,
    )
    return body


async def _body(call: Call, raw: bytes | str) -> dict[str, Any]:
    # a large body takes a while to parse and check: off the event loop
    if len(raw) > 64 * 1024:
        return await CPU.run(_parse_body, raw, call.platform.settings)
    return _parse_body(raw, call.platform.settings)


async def _embed(
    call: Call, model_id: str, fmt: EmbedFormat, body: dict[str, Any]
) -> tuple[dict[str, Any], int]:
    req = fmt.parse(body)
    res, vectors = await call.platform.registry.embed(
        model_id,
        list(req.texts),
        req.purpose,
        dimensions=req.dimensions,
        caller=caller_key(call.headers.get("authorization")),
    )
    tokens = sum(len(rough_tokens(t)) for t in req.texts)
    # thousands of vectors (quantized for some embedding types): off the event loop
    out = await CPU.run(fmt.render, EmbedResponse(vectors, tokens), req)
    await call.platform.log_invocation(
        request_id=call.request_id,
        surface="bedrock",
        operation=call.op.name,
        model_requested=model_id,
        model_id=res.info.id,
        input_tokens=tokens,
        output_tokens=0,
        latency_ms=call.elapsed_ms(),
        request=body,
        response=out,
        kind="embedding",
    )
    return out, tokens


def _usage_headers(call: Call, input_tokens: int, output_tokens: int) -> None:
    # Bedrock reports InvokeModel's usage in these headers (not in botocore's output shape); LangChain's
    # ChatBedrock reads its usage_metadata from them
    call.response_headers.update(
        {
            "X-Amzn-Bedrock-Input-Token-Count": str(input_tokens),
            "X-Amzn-Bedrock-Output-Token-Count": str(output_tokens),
            "X-Amzn-Bedrock-Invocation-Latency": str(call.elapsed_ms()),
        }
    )


async def invoke_model(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    model_id = params["modelId"]
    body = await _body(call, params.get("body", b""))
    res = call.platform.registry.resolve(model_id)
    fmt = call.platform.formats.pick(model_id, res.info.kind, body)
    if fmt.kind == "embed":
        out, tokens = await _embed(call, model_id, fmt, body)
        _usage_headers(call, tokens, 0)
        # encoded a piece at a time on a worker: one json.dumps of millions of floats holds the GIL
        return {"body": b"".join(await json_chunks_off_loop(out)), "contentType": "application/json"}
    req = fmt.parse(body)
    caller = caller_key(call.headers.get("authorization"))
    res, model = await call.platform.registry.chat(model_id, caller=caller)
    check_images(req, model.supports_images, model_id)
    check_limits(req, res.info, model_id, call.platform.settings)
    try:
        result = await model.converse(req)
    except PlatformError as exc:
        await _log(call, model_id, res.info.id, None, exc.code, request=body, message=exc.message)
        raise
    rendered = fmt.render(result, model_id)
    await _log(call, model_id, res.info.id, result, request=body, response=rendered)
    _usage_headers(call, result.usage.input_tokens, result.usage.output_tokens)
    return {"body": json.dumps(rendered, ensure_ascii=False).encode(), "contentType": "application/json"}


async def _invoke_chunks(
    call: Call,
    model_id: str,
    fmt: ChatFormat,
    req: ChatRequest,
    res: Resolved,
    model: ChatBackend,
    body: Mapping[str, Any],
) -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
    sent: list[dict[str, Any]] = []  # the chunks, for the invocation log
    first: int | None = None
    end: StreamEnd | None = None

    async def events() -> AsyncIterator[ChatEvent]:
        nonlocal first, end
        async for ev in model.converse_stream(req):
            if first is None:
                first = call.elapsed_ms()
            if isinstance(ev, StreamEnd):
                end = ev
            yield ev

    pending: dict[str, Any] | None = None
    try:
        async for chunk in fmt.chunks(events(), model_id):
            if pending is not None:
                sent.append(pending)
                yield (
                    "chunk",
                    {"bytes": base64.b64encode(json.dumps(pending, ensure_ascii=False).encode()).decode()},
                )
            pending = dict(chunk)
    except PlatformError as exc:
        await _log(call, model_id, res.info.id, None, exc.code, request=body, message=exc.message)
        raise
    assert end is not None
    pending = pending or {}
    pending["amazon-bedrock-invocationMetrics"] = {
        "inputTokenCount": end.usage.input_tokens,
        "outputTokenCount": end.usage.output_tokens,
        "invocationLatency": call.elapsed_ms(),
        "firstByteLatency": first if first is not None else call.elapsed_ms(),
    }
    sent.append(pending)
    await _log(call, model_id, res.info.id, end, first_token_ms=first, request=body, response=sent)
    yield "chunk", {"bytes": base64.b64encode(json.dumps(pending, ensure_ascii=False).encode()).decode()}


async def invoke_model_stream(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    model_id = params["modelId"]
    body = await _body(call, params.get("body", b""))
    res = call.platform.registry.resolve(model_id)
    fmt = call.platform.formats.pick(model_id, res.info.kind, body)
    if fmt.kind == "embed":
        raise ValidationError(f"model {model_id} is an embedding model and does not support streaming")
    req = fmt.parse(body)
    caller = caller_key(call.headers.get("authorization"))
    res, model = await call.platform.registry.chat(model_id, caller=caller)
    check_images(req, model.supports_images, model_id)
    check_limits(req, res.info, model_id, call.platform.settings)
    return {
        "body": EventStream(_invoke_chunks(call, model_id, fmt, req, res, model, body)),
        "contentType": "application/json",
    }


async def count_tokens(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    model_id = params["modelId"]
    inp = params["input"]
    res = call.platform.registry.resolve(model_id)
    if "converse" in inp:
        req = converse_request(inp["converse"], call.platform.settings)
    else:
        # a blob nested in JSON arrives base64-encoded
        body = await _body(call, _b64(inp["invokeModel"]["body"]))
        fmt = call.platform.formats.pick(model_id, res.info.kind, body)
        if fmt.kind == "embed":
            texts = fmt.parse(body).texts
            return {"inputTokens": await CPU.run(lambda: sum(len(rough_tokens(t)) for t in texts))}
        req = fmt.parse(body)
    _, model = await call.platform.registry.chat(model_id)
    check_limits(req, res.info, model_id, call.platform.settings)
    n = await model.count_tokens(req)
    if n is None:
        n = await CPU.run(estimate_tokens, req)  # a regex pass over up to HANIWA_MAX_BODY_BYTES
    return {"inputTokens": n}


OPERATIONS = {
    ("bedrock-runtime", "Converse"): converse,
    ("bedrock-runtime", "ConverseStream"): converse_stream,
    ("bedrock-runtime", "InvokeModel"): invoke_model,
    ("bedrock-runtime", "InvokeModelWithResponseStream"): invoke_model_stream,
    ("bedrock-runtime", "CountTokens"): count_tokens,
}
