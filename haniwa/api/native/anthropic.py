"""Anthropic Claude Messages on Bedrock: ``anthropic_version: bedrock-2023-05-31`` bodies.

Request: ``max_tokens``, ``messages`` (string or block content: text, image, tool_use, tool_result,
document), ``system`` (string or text blocks), ``temperature``, ``top_p``, ``top_k``, ``stop_sequences``,
``tools``, ``tool_choice``. Response: a ``message`` with ``content`` blocks, ``stop_reason`` and
``usage``; streamed as ``message_start`` … ``content_block_*`` … ``message_delta``, ``message_stop``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

from haniwa.api.native.fields import (
    as_object,
    check_keys,
    decode_base64,
    estimate_tokens,
    family_id,
    malformed,
    need,
    need_str,
    need_tool_name,
    new_id,
    opt_bool,
    opt_enum,
    opt_int,
    opt_number,
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
)
from haniwa.runtime.offload import CPU

__all__ = ["AnthropicMessages", "ANTHROPIC_VERSION", "anthropic_model_name"]

ANTHROPIC_VERSION = "bedrock-2023-05-31"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_KEYS = {
    "anthropic_version",
    "anthropic_beta",
    "max_tokens",
    "messages",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "tools",
    "tool_choice",
    "metadata",
    "thinking",
}


def anthropic_model_name(model_id: str) -> str:
    """``us.anthropic.claude-3-haiku-20240307-v1:0`` → ``claude-3-haiku-20240307``, as Bedrock reports it."""
    fid = family_id(model_id)
    if not fid.startswith("anthropic."):
        return model_id
    return re.sub(r"-v\d+(?::\d+)?$", "", fid.removeprefix("anthropic."))


def _text_of(content: Any, path: str) -> str:
    """A ``system`` or ``tool_result`` content: a string or a list of text blocks."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise malformed(path, "expected a string or a JSONArray of text blocks")
    parts = []
    for i, raw in enumerate(content):
        block = as_object(raw, f"{path}/{i}")
        if block.get("type") == "text":
            parts.append(need_str(block, "text", f"{path}/{i}", allow_empty=True))
    return "\n".join(parts)


def _image(block: Mapping[str, Any], path: str) -> ImageBlock:
    source = as_object(need(block, "source", path), f"{path}/source")
    if source.get("type") != "base64":
        raise malformed(f"{path}/source/type", "only base64 image sources are supported on Bedrock")
    media = need_str(source, "media_type", f"{path}/source")
    if media not in IMAGE_TYPES:
        raise malformed(f"{path}/source/media_type", f"{media} is not one of {', '.join(IMAGE_TYPES)}")
    return ImageBlock(decode_base64(need(source, "data", f"{path}/source"), f"{path}/source/data"), media)


def _blocks(raw: Any, role: str, path: str) -> tuple[Block, ...]:
    if isinstance(raw, str):
        return (TextBlock(raw),)
    if not isinstance(raw, list):
        raise malformed(path, "expected a string or a JSONArray of content blocks")
    out: list[Block] = []
    for i, item in enumerate(raw):
        bp = f"{path}/{i}"
        block = as_object(item, bp)
        kind = need_str(block, "type", bp)
        if kind == "text":
            out.append(TextBlock(need_str(block, "text", bp, allow_empty=True)))
        elif kind == "image":
            out.append(_image(block, bp))
        elif kind == "tool_use":
            if role != "assistant":
                raise malformed(f"{bp}/type", "tool_use blocks belong in assistant messages")
            tool_input = as_object(block.get("input", {}), f"{bp}/input")
            out.append(ToolUseBlock(need_str(block, "id", bp), need_str(block, "name", bp), dict(tool_input)))
        elif kind == "tool_result":
            if role != "user":
                raise malformed(f"{bp}/type", "tool_result blocks belong in user messages")
            content = block.get("content", "")
            out.append(
                ToolResultBlock(
                    need_str(block, "tool_use_id", bp),
                    _text_of(content, f"{bp}/content"),
                    bool(opt_bool(block, "is_error", bp)),
                )
            )
            if isinstance(content, list):  # images returned by a tool are shown to the model too
                out.extend(
                    _image(c, f"{bp}/content/{j}")
                    for j, c in enumerate(content)
                    if isinstance(c, Mapping) and c.get("type") == "image"
                )
        elif kind == "document":
            out.append(_document(block, bp))
        elif kind in ("thinking", "redacted_thinking"):
            continue  # earlier reasoning: nothing to generate from
        else:
            raise malformed(f"{bp}/type", f"{kind} is not a supported content block type")
    return tuple(out)


def _document(block: Mapping[str, Any], path: str) -> TextBlock:
    source = as_object(need(block, "source", path), f"{path}/source")
    if source.get("type") == "text":
        text = need_str(source, "data", f"{path}/source", allow_empty=True)
    elif source.get("type") == "content":
        text = _text_of(source.get("content", []), f"{path}/source/content")
    else:
        raise malformed(f"{path}/source/type", "only text documents are supported (no PDF parsing)")
    title = block.get("title") or ""
    return TextBlock(f'<document title="{title}">\n{text}\n</document>')


def _tools(body: Mapping[str, Any]) -> tuple[ToolSpec, ...]:
    raw = body.get("tools")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise malformed("/tools", "expected a JSONArray of tools")
    specs = []
    for i, item in enumerate(raw):
        tp = f"/tools/{i}"
        tool = as_object(item, tp)
        if tool.get("type", "custom") != "custom":
            raise malformed(
                f"{tp}/type", f"server tool {tool.get('type')} is not supported; define a custom tool"
            )
        name = need_tool_name(tool, tp)
        schema = as_object(need(tool, "input_schema", tp), f"{tp}/input_schema")
        specs.append(ToolSpec(name, str(tool.get("description") or ""), dict(schema)))
    return tuple(specs)


def _tool_choice(body: Mapping[str, Any], tools: tuple[ToolSpec, ...]) -> str:
    raw = body.get("tool_choice")
    if raw is None:
        return "auto"
    choice = as_object(raw, "/tool_choice")
    kind = opt_enum(choice, "type", ("auto", "any", "tool", "none"), "/tool_choice")
    if kind is None:
        raise malformed("/tool_choice", "required key [type] not found")
    if kind != "tool":
        return kind
    name = need_str(choice, "name", "/tool_choice")
    if name not in {t.name for t in tools}:
        raise malformed("/tool_choice/name", f"no tool named {name} is in tools")
    return name


class AnthropicMessages:
    """The Anthropic Messages API as Bedrock serves it (``InvokeModel`` on ``anthropic.*`` ids)."""

    name = "anthropic-messages"
    kind: Literal["chat"] = "chat"

    def __init__(self, body: Mapping[str, Any] | None = None) -> None:
        self._body = body  # the call's body, for the prompt-size estimate in message_start

    def parse(self, body: Mapping[str, Any]) -> ChatRequest:
        check_keys(body, _KEYS)
        version = need(body, "anthropic_version")
        if version != ANTHROPIC_VERSION:
            raise malformed("/anthropic_version", f"{version} is not supported; use {ANTHROPIC_VERSION}")
        max_tokens = opt_int(body, "max_tokens", lo=1)
        if max_tokens is None:
            raise malformed("", "required key [max_tokens] not found")
        raw_messages = need(body, "messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            raise malformed("/messages", "expected a non-empty JSONArray of messages")
        messages = []
        for i, item in enumerate(raw_messages):
            mp = f"/messages/{i}"
            msg = as_object(item, mp)
            check_keys(msg, ("role", "content"), mp)
            role = opt_enum(msg, "role", ("user", "assistant"), mp)
            if role is None:
                raise malformed(mp, "required key [role] not found")
            messages.append(
                Message(
                    "user" if role == "user" else "assistant",
                    _blocks(need(msg, "content", mp), role, f"{mp}/content"),
                )
            )
        if messages[0].role != "user":
            raise malformed("/messages/0/role", "the first message must use the user role")
        system = _text_of(body["system"], "/system") if body.get("system") is not None else None
        tools = _tools(body)
        return ChatRequest(
            messages=tuple(messages),
            system=system or None,
            params=InferenceParams(
                max_tokens=max_tokens,
                temperature=opt_number(body, "temperature", 0, 1),
                top_p=opt_number(body, "top_p", 0, 1),
                top_k=opt_int(body, "top_k", 0, 500),
                stop=opt_str_list(body, "stop_sequences", max_items=8191),
            ),
            tools=tools,
            tool_choice=_tool_choice(body, tools),
        )

    def render(self, result: ChatResult, model_id: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        for block in result.message.content:
            if isinstance(block, TextBlock):
                content.append({"type": "text", "text": block.text})
            elif isinstance(block, ToolUseBlock):
                content.append(
                    {"type": "tool_use", "id": block.id, "name": block.name, "input": dict(block.input)}
                )
        return {
            "id": new_id("msg_bdrk_"),
            "type": "message",
            "role": "assistant",
            "model": anthropic_model_name(model_id),
            "content": content,
            "stop_reason": result.stop_reason,
            "stop_sequence": result.stop_sequence,
            "usage": _usage(result.usage.input_tokens, result.usage.output_tokens),
        }

    async def chunks(self, events: AsyncIterator[ChatEvent], model_id: str) -> AsyncIterator[dict[str, Any]]:
        # message_start precedes any text, before the backend reports the prompt size: estimate it from
        # the body (the last chunk's invocation metrics carry the exact count)
        estimate = await CPU.run(estimate_tokens, self.parse(self._body)) if self._body is not None else 0
        yield {
            "type": "message_start",
            "message": {
                "id": new_id("msg_bdrk_"),
                "type": "message",
                "role": "assistant",
                "model": anthropic_model_name(model_id),
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": _usage(estimate, 1),
            },
        }
        index, text_open = 0, False
        async for ev in events:
            if isinstance(ev, TextDelta):
                if not text_open:
                    yield {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    }
                    text_open = True
                yield {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": ev.text},
                }
            elif isinstance(ev, ToolUseEvent):
                if text_open:
                    yield {"type": "content_block_stop", "index": index}
                    index, text_open = index + 1, False
                yield {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "tool_use", "id": ev.id, "name": ev.name, "input": {}},
                }
                yield {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {
                        "type": "input_json_delta",
                        "partial_json": json.dumps(dict(ev.input), ensure_ascii=False),
                    },
                }
                yield {"type": "content_block_stop", "index": index}
                index += 1
            elif isinstance(ev, StreamEnd):
                if text_open:
                    yield {"type": "content_block_stop", "index": index}
                yield {
                    "type": "message_delta",
                    "delta": {"stop_reason": ev.stop_reason, "stop_sequence": ev.stop_sequence},
                    "usage": {"output_tokens": ev.usage.output_tokens},
                }
                yield {"type": "message_stop"}


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }
