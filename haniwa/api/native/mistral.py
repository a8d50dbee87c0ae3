"""Mistral bodies: the text-completion ``prompt`` (``<s>[INST] … [/INST]``) for Mistral 7B / Mixtral /
Mistral Large, and the chat ``messages`` body Mistral Large 2 also takes.

Prompt responses are ``{"outputs": [{"text", "stop_reason"}]}``; chat responses are
``{"choices": [{"index", "message": {"role", "content", "tool_calls"}, "stop_reason"}]}``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

from haniwa.api.native.fields import (
    as_object,
    check_keys,
    lagged_text,
    malformed,
    need,
    need_str,
    opt_enum,
    opt_int,
    opt_number,
    opt_str_list,
)
from haniwa.api.native.meta import parse_prompt, simple_stop_reason
from haniwa.api.wire import load_json
from haniwa.errors import ValidationError
from haniwa.runtime.base import (
    Block,
    ChatEvent,
    ChatRequest,
    ChatResult,
    InferenceParams,
    Message,
    StopReason,
    StreamEnd,
    TextBlock,
    TextDelta,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    ToolUseEvent,
)

__all__ = ["MistralPrompt", "MistralChat"]


def _params(body: Mapping[str, Any]) -> InferenceParams:
    return InferenceParams(
        max_tokens=opt_int(body, "max_tokens", 1),
        temperature=opt_number(body, "temperature", 0, 1),
        top_p=opt_number(body, "top_p", 0, 1),
        top_k=opt_int(body, "top_k", 0, 200),
        stop=opt_str_list(body, "stop", max_items=10),
    )


class MistralPrompt:
    """Text completion: ``prompt``, ``max_tokens``, ``stop``, ``temperature``, ``top_p``, ``top_k``."""

    name = "mistral-prompt"
    kind: Literal["chat"] = "chat"

    def parse(self, body: Mapping[str, Any]) -> ChatRequest:
        check_keys(body, ("prompt", "max_tokens", "stop", "temperature", "top_p", "top_k"))
        system, turns = parse_prompt(need_str(body, "prompt"))
        if not turns or turns[0].role != "user":
            raise malformed("/prompt", "the prompt holds no [INST] user turn")
        return ChatRequest(messages=turns, system=system, params=_params(body))

    def render(self, result: ChatResult, model_id: str) -> dict[str, Any]:
        return {
            "outputs": [{"text": result.message.text, "stop_reason": simple_stop_reason(result.stop_reason)}]
        }

    async def chunks(self, events: AsyncIterator[ChatEvent], model_id: str) -> AsyncIterator[dict[str, Any]]:
        async for text, _, end in lagged_text(events):
            yield {
                "outputs": [
                    {"text": text, "stop_reason": simple_stop_reason(end.stop_reason) if end else None}
                ]
            }


def _chat_stop(stop: StopReason) -> str:
    return "tool_calls" if stop == "tool_use" else simple_stop_reason(stop)


def _wire_tool_call(b: ToolUseBlock | ToolUseEvent) -> dict[str, Any]:
    args = json.dumps(dict(b.input), ensure_ascii=False)
    return {"id": b.id, "type": "function", "function": {"name": b.name, "arguments": args}}


def _content_text(raw: Any, path: str) -> str:
    if raw is None or isinstance(raw, str):
        return raw or ""
    if isinstance(raw, list):
        return "".join(str(as_object(c, f"{path}/{i}").get("text", "")) for i, c in enumerate(raw))
    raise malformed(path, "expected a string or a JSONArray of text chunks")


class MistralChat:
    """Mistral Large chat: OpenAI-like ``messages`` (system/user/assistant/tool) with ``tools``."""

    name = "mistral-chat"
    kind: Literal["chat"] = "chat"

    def parse(self, body: Mapping[str, Any]) -> ChatRequest:
        check_keys(
            body,
            (
                "messages",
                "tools",
                "tool_choice",
                "max_tokens",
                "temperature",
                "top_p",
                "top_k",
                "stop",
                "response_format",
            ),
        )
        raw = need(body, "messages")
        if not isinstance(raw, list) or not raw:
            raise malformed("/messages", "expected a non-empty JSONArray of messages")
        system: list[str] = []
        turns: list[Message] = []
        for i, item in enumerate(raw):
            mp = f"/messages/{i}"
            msg = as_object(item, mp)
            role = opt_enum(msg, "role", ("system", "user", "assistant", "tool"), mp)
            text = _content_text(msg.get("content"), f"{mp}/content")
            blocks: list[Block] = [TextBlock(text)] if text else []
            if role == "system":
                system.append(text)
            elif role == "user":
                turns.append(Message("user", tuple(blocks)))
            elif role == "assistant":
                for j, call in enumerate(msg.get("tool_calls") or []):
                    cp = f"{mp}/tool_calls/{j}"
                    fn = as_object(need(as_object(call, cp), "function", cp), f"{cp}/function")
                    args = fn.get("arguments") or "{}"
                    try:
                        parsed = load_json(args, "arguments") if isinstance(args, str) else args
                    except ValidationError as exc:
                        raise malformed(f"{cp}/function/arguments", exc.message) from exc
                    tool_input = dict(as_object(parsed, f"{cp}/function/arguments"))
                    blocks.append(
                        ToolUseBlock(str(call.get("id") or f"call_{j}"), need_str(fn, "name", cp), tool_input)
                    )
                turns.append(Message("assistant", tuple(blocks)))
            elif role == "tool":
                result = ToolResultBlock(need_str(msg, "tool_call_id", mp), text)
                if (
                    turns
                    and turns[-1].role == "user"
                    and all(isinstance(b, ToolResultBlock) for b in turns[-1].content)
                ):
                    turns[-1] = Message("user", (*turns[-1].content, result))
                else:
                    turns.append(Message("user", (result,)))
            else:
                raise malformed(mp, "required key [role] not found")
        if not turns or turns[0].role != "user":
            raise malformed("/messages", "the conversation must start with a user message")
        tools = self._tools(body)
        choice = body.get("tool_choice") or "auto"
        return ChatRequest(
            messages=tuple(turns),
            system="\n\n".join(system) or None,
            params=_params(body),
            tools=tools,
            tool_choice={"auto": "auto", "any": "any", "none": "none"}.get(str(choice), "auto"),
        )

    @staticmethod
    def _tools(body: Mapping[str, Any]) -> tuple[ToolSpec, ...]:
        raw = body.get("tools") or []
        if not isinstance(raw, list):
            raise malformed("/tools", "expected a JSONArray of tools")
        specs = []
        for i, item in enumerate(raw):
            tp = f"/tools/{i}"
            fn = as_object(need(as_object(item, tp), "function", tp), f"{tp}/function")
            params = as_object(
                fn.get("parameters") or {"type": "object", "properties": {}}, f"{tp}/function/parameters"
            )
            specs.append(
                ToolSpec(
                    need_str(fn, "name", f"{tp}/function"), str(fn.get("description") or ""), dict(params)
                )
            )
        return tuple(specs)

    def render(self, result: ChatResult, model_id: str) -> dict[str, Any]:
        calls = [_wire_tool_call(b) for b in result.message.content if isinstance(b, ToolUseBlock)]
        message: dict[str, Any] = {"role": "assistant", "content": result.message.text}
        if calls:
            message["tool_calls"] = calls
        return {"choices": [{"index": 0, "message": message, "stop_reason": _chat_stop(result.stop_reason)}]}

    async def chunks(self, events: AsyncIterator[ChatEvent], model_id: str) -> AsyncIterator[dict[str, Any]]:
        async for ev in events:
            if isinstance(ev, TextDelta):
                message: dict[str, Any] = {"role": "assistant", "content": ev.text}
                yield {"choices": [{"index": 0, "message": message, "stop_reason": None}]}
            elif isinstance(ev, ToolUseEvent):
                message = {"role": "assistant", "content": "", "tool_calls": [_wire_tool_call(ev)]}
                yield {"choices": [{"index": 0, "message": message, "stop_reason": None}]}
            elif isinstance(ev, StreamEnd):
                message = {"role": "assistant", "content": ""}
                yield {
                    "choices": [{"index": 0, "message": message, "stop_reason": _chat_stop(ev.stop_reason)}]
                }
