"""``bedrock-runtime``: Converse, ConverseStream, InvokeModel (+ stream) and CountTokens."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from haniwa.api.bedrock_guardrails_calls import (
    Checked,
    Guard,
    OutputGuard,
    acted,
    blocked_events,
    check_converse_input,
    check_request_input,
    converse_grounding,
    converse_trace,
    invoke_trace,
    load_guard,
    request_grounding,
)
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
    Usage,
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


def _guarded_text(raw: Mapping[str, Any]) -> str | None:
    """The text of a ``guardContent`` block (None for an image or anything else)."""
    text = (raw.get("guardContent") or {}).get("text") or {}
    value = text.get("text")
    return value if isinstance(value, str) else None


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
    if "guardContent" in raw:
        # guarded text is part of the prompt too; which texts the guardrail reads is bedrock_guardrails_calls'
        text = _guarded_text(raw)
        return TextBlock(text) if text is not None else None
    return None  # cachePoint markers, reasoning blocks: nothing to generate from


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
    system = (
        "\n".join(
            s["text"] if "text" in s else _guarded_text(s) or ""
            for s in params.get("system", [])
            if "text" in s or _guarded_text(s) is not None
        )
        or None
    )
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


def _missing(member: str) -> str:
    raise ValidationError(f"{member} is required")


async def _guard_input(
    call: Call, params: dict[str, Any], req: ChatRequest
) -> tuple[Guard | None, Checked | None, ChatRequest]:
    """The Converse request's guardrail and its input check (the request with masked text in place)."""
    cfg = params.get("guardrailConfig")
    if cfg is None:
        return None, None, req
    guard = await load_guard(
        call,
        cfg.get("guardrailIdentifier") or _missing("guardrailConfig.guardrailIdentifier"),
        cfg.get("guardrailVersion") or _missing("guardrailConfig.guardrailVersion"),
        cfg.get("trace"),
        cfg.get("streamProcessingMode"),
    )
    assert guard is not None
    checked, masked = await check_converse_input(guard, params)
    if masked is not None:
        req = converse_request(masked, call.platform.settings)
    return guard, checked, req


async def converse(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    req, res, model = await _prepare(call, params)
    guard, inputs, req = await _guard_input(call, params, req)
    outputs = OutputGuard(guard, converse_grounding(params)) if guard is not None else None
    logged = _logged_request(params)
    if inputs is not None and inputs.blocked:
        # refused before the model runs: no generation, no tokens
        result = ChatResult(Message("assistant", (TextBlock(inputs.texts[0]),)), "end_turn", Usage(0, 0))
        outputs = None
    else:
        try:
            result = await model.converse(req)
        except PlatformError as exc:
            await _log(
                call, params["modelId"], res.info.id, None, exc.code, request=logged, message=exc.message
            )
            raise
    content = []
    for b in result.message.content:
        if outputs is not None and isinstance(b, TextBlock):
            b = TextBlock(await outputs.text(b.text))
        content.append(_wire_block(b))
    out: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": "guardrail_intervened" if acted(inputs, outputs) else result.stop_reason,
        "usage": _usage(result.usage),
        "metrics": {"latencyMs": call.elapsed_ms()},
    }
    if guard is not None and guard.traced:
        out["trace"] = {"guardrail": converse_trace(guard, inputs, outputs)}
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
    call: Call,
    params: dict[str, Any],
    stream: AsyncIterator[ChatEvent],
    res: Resolved,
    guarded: tuple[Guard, Checked | None, OutputGuard | None] | None = None,
) -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
    if guarded is not None and guarded[2] is not None:
        stream = guarded[2].stream(stream)
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
                meta: dict[str, Any] = {
                    "usage": _usage(ev.usage),
                    "metrics": {"latencyMs": call.elapsed_ms()},
                }
                stop: str = ev.stop_reason
                if guarded is not None:
                    guard, inputs, outputs = guarded
                    stop = "guardrail_intervened" if acted(inputs, outputs) else stop
                    if guard.traced:
                        meta["trace"] = {"guardrail": converse_trace(guard, inputs, outputs)}
                yield kept("messageStop", {"stopReason": stop})
                yield kept("metadata", meta)
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
    guard, inputs, req = await _guard_input(call, params, req)
    if guard is None:
        # admits the call (rate limits) before the first event, so a 429 is an HTTP error
        return {"stream": EventStream(_converse_events(call, params, model.converse_stream(req), res))}
    if inputs is not None and inputs.blocked:
        # refused before the model runs: no generation, no tokens
        events = _converse_events(call, params, blocked_events(inputs.texts[0]), res, (guard, inputs, None))
        return {"stream": EventStream(events)}
    guarded = (guard, inputs, OutputGuard(guard, converse_grounding(params)))
    return {"stream": EventStream(_converse_events(call, params, model.converse_stream(req), res, guarded))}


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


_GUARD_MODES = ("SYNCHRONOUS", "ASYNCHRONOUS")


async def _invoke_guard(
    call: Call, params: Mapping[str, Any], body: dict[str, Any]
) -> tuple[Guard | None, str | None]:
    """InvokeModel's guardrail: the identifier, version and trace headers, and the body's
    ``amazon-bedrock-guardrailConfig`` (taken out of the body: no provider format knows it)."""
    cfg = body.pop("amazon-bedrock-guardrailConfig", None)
    if cfg is not None and not isinstance(cfg, dict):
        raise ValidationError("amazon-bedrock-guardrailConfig must be a JSON object")
    cfg = cfg or {}
    suffix, mode = cfg.get("tagSuffix"), cfg.get("streamProcessingMode")
    if suffix is not None and (not isinstance(suffix, str) or not suffix.isalnum() or len(suffix) > 20):
        raise ValidationError("amazon-bedrock-guardrailConfig.tagSuffix must be 1 to 20 letters and digits")
    if mode is not None and mode not in _GUARD_MODES:
        raise ValidationError(
            "amazon-bedrock-guardrailConfig.streamProcessingMode must be SYNCHRONOUS or ASYNCHRONOUS"
        )
    guard = await load_guard(
        call, params.get("guardrailIdentifier"), params.get("guardrailVersion"), params.get("trace"), mode
    )
    return guard, suffix


def _guard_members(
    out: dict[str, Any], guard: Guard | None, inputs: Checked | None, outputs: OutputGuard | None
) -> None:
    """InvokeModel's answer (or last chunk) reports what the guardrail did."""
    if guard is None:
        return
    out["amazon-bedrock-guardrailAction"] = "INTERVENED" if acted(inputs, outputs) else "NONE"
    if guard.traced:
        out["amazon-bedrock-trace"] = invoke_trace(guard, inputs, outputs)


async def invoke_model(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    model_id = params["modelId"]
    body = await _body(call, params.get("body", b""))
    guard, suffix = await _invoke_guard(call, params, body)
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
    inputs: Checked | None = None
    grounding = request_grounding(req, suffix)
    if guard is not None:
        inputs, req = await check_request_input(guard, req, suffix)
    outputs = OutputGuard(guard, grounding) if guard is not None else None
    if inputs is not None and inputs.blocked:
        # refused before the model runs: no generation, no tokens
        result = ChatResult(Message("assistant", (TextBlock(inputs.texts[0]),)), "end_turn", Usage(0, 0))
        outputs = None
    else:
        try:
            result = await model.converse(req)
        except PlatformError as exc:
            await _log(call, model_id, res.info.id, None, exc.code, request=body, message=exc.message)
            raise
        if outputs is not None:
            blocks = [
                TextBlock(await outputs.text(b.text)) if isinstance(b, TextBlock) else b
                for b in result.message.content
            ]
            result = ChatResult(Message("assistant", tuple(blocks)), result.stop_reason, result.usage)
    _usage_headers(call, result.usage.input_tokens, result.usage.output_tokens)
    out = fmt.render(result, model_id)
    _guard_members(out, guard, inputs, outputs)
    await _log(call, model_id, res.info.id, result, request=body, response=out)
    return {"body": json.dumps(out, ensure_ascii=False).encode(), "contentType": "application/json"}


async def _invoke_chunks(
    call: Call,
    model_id: str,
    fmt: ChatFormat,
    source: AsyncIterator[ChatEvent],
    res: Resolved,
    body: Mapping[str, Any],
    guarded: tuple[Guard, Checked | None, OutputGuard | None] | None = None,
) -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
    sent: list[dict[str, Any]] = []  # the chunks, for the invocation log
    first: int | None = None
    end: StreamEnd | None = None
    if guarded is not None and guarded[2] is not None:
        source = guarded[2].stream(source)

    async def events() -> AsyncIterator[ChatEvent]:
        nonlocal first, end
        async for ev in source:
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
    if guarded is not None:
        _guard_members(pending, *guarded)
    sent.append(pending)
    await _log(call, model_id, res.info.id, end, first_token_ms=first, request=body, response=sent)
    yield "chunk", {"bytes": base64.b64encode(json.dumps(pending, ensure_ascii=False).encode()).decode()}


async def invoke_model_stream(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    model_id = params["modelId"]
    body = await _body(call, params.get("body", b""))
    guard, suffix = await _invoke_guard(call, params, body)
    res = call.platform.registry.resolve(model_id)
    fmt = call.platform.formats.pick(model_id, res.info.kind, body)
    if fmt.kind == "embed":
        raise ValidationError(f"model {model_id} is an embedding model and does not support streaming")
    req = fmt.parse(body)
    caller = caller_key(call.headers.get("authorization"))
    res, model = await call.platform.registry.chat(model_id, caller=caller)
    check_images(req, model.supports_images, model_id)
    check_limits(req, res.info, model_id, call.platform.settings)
    if guard is None:
        chunks = _invoke_chunks(call, model_id, fmt, model.converse_stream(req), res, body)
    else:
        grounding = request_grounding(req, suffix)
        inputs, req = await check_request_input(guard, req, suffix)
        if inputs.blocked:
            # refused before the model runs: no generation, no tokens
            chunks = _invoke_chunks(
                call, model_id, fmt, blocked_events(inputs.texts[0]), res, body, (guard, inputs, None)
            )
        else:
            guarded = (guard, inputs, OutputGuard(guard, grounding))
            chunks = _invoke_chunks(call, model_id, fmt, model.converse_stream(req), res, body, guarded)
    return {"body": EventStream(chunks), "contentType": "application/json"}


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
