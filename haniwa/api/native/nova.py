"""Amazon Nova understanding models (Micro, Lite, Pro, Premier, Nova 2): the ``messages-v1`` body.

Request: ``schemaVersion`` (optional, ``messages-v1``), ``system`` (text blocks), ``messages`` (text,
image, toolUse, toolResult blocks; images as base64 strings), ``inferenceConfig`` (``maxTokens`` or
the older ``max_new_tokens``, ``temperature``, ``topP``, ``topK``, ``stopSequences``) and ``toolConfig``.
The shapes are Converse's, so the response is too: ``output.message``, ``stopReason``, ``usage``;
streamed as ``messageStart``, ``contentBlock*``, ``messageStop`` and ``metadata`` chunks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

from haniwa.api.native.fields import (
    as_object,
    check_keys,
    decode_base64,
    malformed,
    need,
    need_str,
    need_tool_name,
    opt_enum,
    opt_int,
    opt_number,
    opt_str,
    opt_str_list,
)
from haniwa.runtime.base import (
    Block,
    ChatEvent,
    ChatRequest,
    ChatResult,
    ImageBlock,
    InferenceParams,
    Message,
    StreamEnd,
    TextBlock,
    TextDelta,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    ToolUseEvent,
    Usage,
)

__all__ = ["NovaMessages", "SCHEMA_VERSION", "looks_like_nova"]

SCHEMA_VERSION = "messages-v1"
_KEYS = ("schemaVersion", "system", "messages", "inferenceConfig", "toolConfig")
_CONFIG_KEYS = (
    "maxTokens",
    "max_new_tokens",
    "temperature",
    "topP",
    "top_p",
    "topK",
    "top_k",
    "stopSequences",
    "reasoningConfig",  # Nova 2: accepted, the local model does not reason separately
)
_IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
_UNSUPPORTED = {
    "video": "video input is not supported by this server",
    "audio": "audio input is not supported by this server",
    "document": "document blocks belong to the Converse API; the Nova InvokeModel body does not take them",
}


def looks_like_nova(body: Mapping[str, Any]) -> bool:
    """A Nova body sent to an id of no family: Nova's own keys, or Converse-style ``{text}`` blocks."""
    if "anthropic_version" in body:
        return False
    if any(k in body for k in ("schemaVersion", "inferenceConfig", "toolConfig")):
        return True
    messages = body.get("messages")
    if not isinstance(messages, list):
        return False
    return any(
        isinstance(m, Mapping)
        and isinstance(m.get("content"), list)
        and any(isinstance(b, Mapping) and "type" not in b and "text" in b for b in m["content"])
        for m in messages
    )


def _alias(cfg: Mapping[str, Any], names: tuple[str, str], path: str) -> str:
    """The one of two spellings the body used (``maxTokens`` / ``max_new_tokens``)."""
    if all(n in cfg for n in names):
        raise malformed(path, f"send {names[0]} or {names[1]}, not both")
    return names[1] if names[1] in cfg else names[0]


def _params(body: Mapping[str, Any]) -> InferenceParams:
    path = "/inferenceConfig"
    cfg = as_object(body.get("inferenceConfig") or {}, path)
    check_keys(cfg, _CONFIG_KEYS, path)
    if cfg.get("reasoningConfig") is not None:
        as_object(cfg["reasoningConfig"], f"{path}/reasoningConfig")
    return InferenceParams(
        max_tokens=opt_int(cfg, _alias(cfg, ("maxTokens", "max_new_tokens"), path), 1, path=path),
        temperature=opt_number(cfg, "temperature", 0, 1, path),
        top_p=opt_number(cfg, _alias(cfg, ("topP", "top_p"), path), 0, 1, path),
        top_k=opt_int(cfg, _alias(cfg, ("topK", "top_k"), path), 0, path=path),
        stop=opt_str_list(cfg, "stopSequences", path),
    )


def _system(body: Mapping[str, Any]) -> str | None:
    raw = body.get("system")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise malformed("/system", "expected a JSONArray of {text} blocks")
    parts = []
    for i, item in enumerate(raw):
        block = as_object(item, f"/system/{i}")
        if "cachePoint" in block:
            continue
        check_keys(block, ("text",), f"/system/{i}")
        parts.append(need_str(block, "text", f"/system/{i}", allow_empty=True))
    return "\n".join(parts) or None


def _image(raw: Any, path: str) -> ImageBlock:
    image = as_object(raw, path)
    check_keys(image, ("format", "source"), path)
    fmt = opt_enum(image, "format", tuple(_IMAGE_TYPES), path)
    if fmt is None:
        raise malformed(path, "required key [format] not found")
    source = as_object(need(image, "source", path), f"{path}/source")
    if "s3Location" in source:
        raise malformed(f"{path}/source", "s3Location is not supported; send the image as base64 bytes")
    check_keys(source, ("bytes",), f"{path}/source")
    return ImageBlock(
        decode_base64(need(source, "bytes", f"{path}/source"), f"{path}/source/bytes"), _IMAGE_TYPES[fmt]
    )


def _tool_result(raw: Any, path: str) -> ToolResultBlock:
    result = as_object(raw, path)
    check_keys(result, ("toolUseId", "content", "status"), path)
    content = need(result, "content", path)
    if not isinstance(content, list):
        raise malformed(f"{path}/content", "expected a JSONArray of {text} or {json} blocks")
    parts = []
    for j, item in enumerate(content):
        cp = f"{path}/content/{j}"
        part = as_object(item, cp)
        if "text" in part:
            parts.append(need_str(part, "text", cp, allow_empty=True))
        elif "json" in part:
            parts.append(json.dumps(part["json"], ensure_ascii=False))
        else:
            raise malformed(cp, "only text and json tool results are supported")
    status = opt_enum(result, "status", ("success", "error"), path)
    return ToolResultBlock(need_str(result, "toolUseId", path), "\n".join(parts), status == "error")


def _block(raw: Any, role: str, path: str) -> Block | None:
    block = as_object(raw, path)
    if len(block) != 1:
        keys = ", ".join(sorted(block)) or "none"
        raise malformed(
            path, f"a content block holds exactly one of text, image, toolUse, toolResult (found {keys})"
        )
    kind = next(iter(block))
    if kind == "text":
        return TextBlock(need_str(block, "text", path, allow_empty=True))
    if kind == "image":
        return _image(block["image"], f"{path}/image")
    if kind == "toolUse":
        if role != "assistant":
            raise malformed(f"{path}/toolUse", "toolUse blocks belong in assistant messages")
        use = as_object(block["toolUse"], f"{path}/toolUse")
        check_keys(use, ("toolUseId", "name", "input"), f"{path}/toolUse")
        tool_input = as_object(use.get("input", {}), f"{path}/toolUse/input")
        return ToolUseBlock(
            need_str(use, "toolUseId", f"{path}/toolUse"),
            need_str(use, "name", f"{path}/toolUse"),
            dict(tool_input),
        )
    if kind == "toolResult":
        if role != "user":
            raise malformed(f"{path}/toolResult", "toolResult blocks belong in user messages")
        return _tool_result(block["toolResult"], f"{path}/toolResult")
    if kind in ("cachePoint", "reasoningContent"):
        return None  # a cache marker, earlier reasoning: nothing to generate from
    if kind in _UNSUPPORTED:
        raise malformed(f"{path}/{kind}", _UNSUPPORTED[kind])
    raise malformed(path, f"{kind} is not a supported content block type (text, image, toolUse, toolResult)")


def _messages(body: Mapping[str, Any]) -> tuple[Message, ...]:
    raw = need(body, "messages")
    if not isinstance(raw, list) or not raw:
        raise malformed("/messages", "expected a non-empty JSONArray of messages")
    out = []
    for i, item in enumerate(raw):
        mp = f"/messages/{i}"
        msg = as_object(item, mp)
        check_keys(msg, ("role", "content"), mp)
        role = opt_enum(msg, "role", ("user", "assistant"), mp)
        if role is None:
            raise malformed(mp, "required key [role] not found")
        content = need(msg, "content", mp)
        if not isinstance(content, list):
            raise malformed(f"{mp}/content", "expected a JSONArray of content blocks such as {text}")
        blocks = tuple(
            b for j, c in enumerate(content) if (b := _block(c, role, f"{mp}/content/{j}")) is not None
        )
        out.append(Message("user" if role == "user" else "assistant", blocks))
    if out[0].role != "user":
        raise malformed("/messages/0/role", "the first message must use the user role")
    return tuple(out)


def _tools(body: Mapping[str, Any]) -> tuple[tuple[ToolSpec, ...], str]:
    if body.get("toolConfig") is None:
        return (), "auto"
    path = "/toolConfig"
    cfg = as_object(body["toolConfig"], path)
    check_keys(cfg, ("tools", "toolChoice"), path)
    raw = need(cfg, "tools", path)
    if not isinstance(raw, list) or not raw:
        raise malformed(f"{path}/tools", "expected a non-empty JSONArray of {toolSpec} entries")
    specs = []
    for i, item in enumerate(raw):
        tp = f"{path}/tools/{i}"
        tool = as_object(item, tp)
        check_keys(tool, ("toolSpec",), tp)
        spec = as_object(need(tool, "toolSpec", tp), f"{tp}/toolSpec")
        sp = f"{tp}/toolSpec"
        check_keys(spec, ("name", "description", "inputSchema"), sp)
        name = need_tool_name(spec, sp)
        schema = as_object(need(spec, "inputSchema", sp), f"{sp}/inputSchema")
        check_keys(schema, ("json",), f"{sp}/inputSchema")
        json_schema = as_object(need(schema, "json", f"{sp}/inputSchema"), f"{sp}/inputSchema/json")
        specs.append(ToolSpec(name, opt_str(spec, "description", sp) or "", dict(json_schema)))
    choice = "auto"
    if cfg.get("toolChoice") is not None:
        cp = f"{path}/toolChoice"
        raw_choice = as_object(cfg["toolChoice"], cp)
        check_keys(raw_choice, ("auto", "any", "tool"), cp)
        if len(raw_choice) != 1:
            raise malformed(cp, "expected exactly one of auto, any, tool")
        if "any" in raw_choice:
            choice = "any"
        elif "tool" in raw_choice:
            choice = need_str(as_object(raw_choice["tool"], f"{cp}/tool"), "name", f"{cp}/tool")
            if choice not in {s.name for s in specs}:
                raise malformed(f"{cp}/tool/name", f"no tool named {choice} is in tools")
    return tuple(specs), choice


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.total_tokens,
        "cacheReadInputTokenCount": 0,
        "cacheWriteInputTokenCount": 0,
    }


class NovaMessages:
    """Amazon Nova's native ``InvokeModel`` body on ``amazon.nova-*`` ids (and their inference profiles)."""

    name = "nova-messages"
    kind: Literal["chat"] = "chat"

    def parse(self, body: Mapping[str, Any]) -> ChatRequest:
        if "taskType" in body:
            raise malformed("/taskType", "Nova Canvas / Reel image and video generation is not supported")
        check_keys(body, _KEYS)
        version = opt_str(body, "schemaVersion")
        if version is not None and version != SCHEMA_VERSION:
            raise malformed("/schemaVersion", f"{version} is not supported; use {SCHEMA_VERSION}")
        tools, choice = _tools(body)
        return ChatRequest(
            messages=_messages(body),
            system=_system(body),
            params=_params(body),
            tools=tools,
            tool_choice=choice,
        )

    def render(self, result: ChatResult, model_id: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        for block in result.message.content:
            if isinstance(block, TextBlock):
                content.append({"text": block.text})
            elif isinstance(block, ToolUseBlock):
                content.append(
                    {"toolUse": {"toolUseId": block.id, "name": block.name, "input": dict(block.input)}}
                )
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": result.stop_reason,
            "usage": _usage(result.usage),
        }

    async def chunks(self, events: AsyncIterator[ChatEvent], model_id: str) -> AsyncIterator[dict[str, Any]]:
        yield {"messageStart": {"role": "assistant"}}
        index, text_open = 0, False
        async for ev in events:
            if isinstance(ev, TextDelta):
                text_open = True
                yield {"contentBlockDelta": {"delta": {"text": ev.text}, "contentBlockIndex": index}}
            elif isinstance(ev, ToolUseEvent):
                if text_open:
                    yield {"contentBlockStop": {"contentBlockIndex": index}}
                    index, text_open = index + 1, False
                yield {
                    "contentBlockStart": {
                        "start": {"toolUse": {"toolUseId": ev.id, "name": ev.name}},
                        "contentBlockIndex": index,
                    }
                }
                tool_input = json.dumps(dict(ev.input), ensure_ascii=False)
                yield {
                    "contentBlockDelta": {
                        "delta": {"toolUse": {"input": tool_input}},
                        "contentBlockIndex": index,
                    }
                }
                yield {"contentBlockStop": {"contentBlockIndex": index}}
                index += 1
            elif isinstance(ev, StreamEnd):
                if text_open:
                    yield {"contentBlockStop": {"contentBlockIndex": index}}
                yield {"messageStop": {"stopReason": ev.stop_reason}}
                yield {"metadata": {"usage": _usage(ev.usage), "metrics": {}, "trace": {}}}
