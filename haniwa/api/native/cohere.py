"""Cohere bodies: Embed (``texts`` + ``input_type``) and Command R / R+ chat (``message``).

Command R's ``search_queries_only: true`` asks the model itself to rewrite the user's message into
short keyword queries for retrieval; :class:`CommandRSearchQueries` turns the body into that rewriting
prompt and the model's lines back into ``search_queries``. :func:`command_r_format` picks the class
from the body, so the parse → render path knows which answer it is building without shared state.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal

from haniwa.api.native.base import EmbedRequest, EmbedResponse
from haniwa.api.native.fields import (
    as_object,
    check_keys,
    malformed,
    need,
    need_str,
    opt_bool,
    opt_enum,
    opt_int,
    opt_number,
    opt_str,
    opt_str_list,
)
from haniwa.knowledge.rewrite import SEARCH_QUERY_PROMPT, extract_queries, search_query_request
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

__all__ = [
    "CohereEmbed",
    "CommandR",
    "CommandRSearchQueries",
    "command_r_format",
    "extract_queries",
    "quantize",
    "SEARCH_QUERY_PROMPT",
]

# -- Embed ------------------------------------------------------------------------------------------
_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
_EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary")


def quantize(vector: Sequence[float], kind: str) -> list[float] | list[int]:
    """Cohere's compressed embeddings: int8/uint8 scaled per vector, binary/ubinary packed sign bits."""
    if kind == "float":
        return list(vector)
    if kind in ("int8", "uint8"):
        scale = max((abs(x) for x in vector), default=0.0) or 1.0
        signed = [max(-128, min(127, round(x / scale * 127))) for x in vector]
        return signed if kind == "int8" else [v + 128 for v in signed]
    packed = []
    for i in range(0, len(vector), 8):
        byte = 0
        for bit, x in enumerate(vector[i : i + 8]):
            if x > 0:
                byte |= 0x80 >> bit
        packed.append(byte)
    return packed if kind == "ubinary" else [b - 128 for b in packed]


class CohereEmbed:
    """Cohere Embed v3 / v4. ``EmbedRequest.embedding_types`` is empty when the body named none."""

    name = "cohere-embed"
    kind: Literal["embed"] = "embed"

    def parse(self, body: Mapping[str, Any]) -> EmbedRequest:
        check_keys(body, ("texts", "images", "input_type", "truncate", "embedding_types", "output_dimension"))
        if body.get("images"):
            raise malformed("/images", "image embeddings are not supported by this server's embedders")
        texts = opt_str_list(body, "texts", max_items=96)
        if not texts:
            raise malformed("", "required key [texts] not found" if "texts" not in body else "texts is empty")
        input_type = opt_enum(body, "input_type", _INPUT_TYPES)
        if input_type is None:
            raise malformed("", "required key [input_type] not found")
        opt_enum(body, "truncate", ("NONE", "START", "END"))
        types = opt_str_list(body, "embedding_types")
        if "embedding_types" in body and not types:
            raise malformed("/embedding_types", "expected minimum item count: 1, found: 0")
        for t in types:
            if t not in _EMBEDDING_TYPES:
                raise malformed(
                    "/embedding_types",
                    f"{t} is not a valid enum value (one of {', '.join(_EMBEDDING_TYPES)})",
                )
        dims = opt_int(body, "output_dimension")
        if dims is not None and dims not in (256, 512, 1024, 1536):
            raise malformed("/output_dimension", f"{dims} is not one of 256, 512, 1024, 1536")
        purpose: Literal["query", "document"] = "query" if input_type == "search_query" else "document"
        return EmbedRequest(list(texts), purpose, dimensions=dims, embedding_types=types)

    def render(self, response: EmbedResponse, req: EmbedRequest) -> dict[str, Any]:
        out: dict[str, Any] = {"id": str(uuid.uuid4()), "texts": list(req.texts)}
        if req.embedding_types:
            out["embeddings"] = {t: [quantize(v, t) for v in response.vectors] for t in req.embedding_types}
            out["response_type"] = "embeddings_by_type"
        else:
            out["embeddings"] = response.vectors
            out["response_type"] = "embeddings_floats"
        return out


# -- Command R --------------------------------------------------------------------------------------
_CHAT_KEYS = (
    "message", "chat_history", "documents", "search_queries_only", "preamble", "max_tokens", "temperature",
    "p", "k", "prompt_truncation", "frequency_penalty", "presence_penalty", "seed", "return_prompt", "tools",
    "tool_results", "stop_sequences", "raw_prompting",
)  # fmt: skip
_FINISH: dict[StopReason, str] = {
    "end_turn": "COMPLETE",
    "max_tokens": "MAX_TOKENS",
    "stop_sequence": "STOP_SEQUENCE",
    "tool_use": "COMPLETE",
}
_PARAM_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def _history(body: Mapping[str, Any]) -> tuple[list[str], list[Message]]:
    """``chat_history`` → (SYSTEM entries, turns)."""
    raw = body.get("chat_history") or []
    if not isinstance(raw, list):
        raise malformed("/chat_history", "expected a JSONArray of messages")
    system: list[str] = []
    turns: list[Message] = []
    for i, item in enumerate(raw):
        hp = f"/chat_history/{i}"
        entry = as_object(item, hp)
        role = opt_enum(entry, "role", ("USER", "CHATBOT", "SYSTEM", "TOOL"), hp)
        if role is None:
            raise malformed(hp, "required key [role] not found")
        if role == "TOOL":
            turns.extend(_tool_turns(entry.get("tool_results") or [], f"{hp}/tool_results"))
            continue
        text = need_str(entry, "message", hp, allow_empty=True)
        if role == "SYSTEM":
            system.append(text)
        else:
            turns.append(Message("user" if role == "USER" else "assistant", (TextBlock(text),)))
    return system, turns


def _tool_turns(raw: Any, path: str) -> list[Message]:
    """``tool_results`` → the assistant's calls and the user turn carrying their outputs."""
    if not isinstance(raw, list):
        raise malformed(path, "expected a JSONArray of tool results")
    calls: list[Block] = []
    results: list[Block] = []
    for i, item in enumerate(raw):
        rp = f"{path}/{i}"
        result = as_object(item, rp)
        call = as_object(need(result, "call", rp), f"{rp}/call")
        name = need_str(call, "name", f"{rp}/call")
        params = as_object(call.get("parameters") or {}, f"{rp}/call/parameters")
        outputs = result.get("outputs") or []
        if not isinstance(outputs, list):
            raise malformed(f"{rp}/outputs", "expected a JSONArray of objects")
        call_id = f"call_{i}_{name}"
        calls.append(ToolUseBlock(call_id, name, dict(params)))
        results.append(ToolResultBlock(call_id, json.dumps(outputs, ensure_ascii=False)))
    return [Message("assistant", tuple(calls)), Message("user", tuple(results))] if calls else []


def _tools(body: Mapping[str, Any]) -> tuple[ToolSpec, ...]:
    raw = body.get("tools") or []
    if not isinstance(raw, list):
        raise malformed("/tools", "expected a JSONArray of tools")
    specs = []
    for i, item in enumerate(raw):
        tp = f"/tools/{i}"
        tool = as_object(item, tp)
        props: dict[str, Any] = {}
        required: list[str] = []
        defs = as_object(tool.get("parameter_definitions") or {}, f"{tp}/parameter_definitions")
        for pname, pdef_raw in defs.items():
            pdef = as_object(pdef_raw, f"{tp}/parameter_definitions/{pname}")
            ptype = str(pdef.get("type", "str")).lower()
            json_type = (
                "array" if ptype.startswith("list") else "object" if ptype.startswith("dict") else None
            )
            props[pname] = {"type": json_type or _PARAM_TYPES.get(ptype, "string")}
            if pdef.get("description"):
                props[pname]["description"] = str(pdef["description"])
            if pdef.get("required"):
                required.append(pname)
        schema = {"type": "object", "properties": props, "required": required}
        specs.append(ToolSpec(need_str(tool, "name", tp), str(tool.get("description") or ""), schema))
    return tuple(specs)


def _documents_prompt(body: Mapping[str, Any]) -> str | None:
    raw = body.get("documents")
    if not raw:
        return None
    if not isinstance(raw, list):
        raise malformed("/documents", "expected a JSONArray of objects")
    parts = [
        "## Documents\nAnswer from the documents below when they are relevant; "
        "say so when they do not contain the answer."
    ]
    for i, item in enumerate(raw):
        doc = as_object(item, f"/documents/{i}")
        fields = "\n".join(
            f"{k}: {v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}" for k, v in doc.items()
        )
        parts.append(f"Document {i}\n{fields}")
    return "\n\n".join(parts)


def _validate_params(body: Mapping[str, Any]) -> InferenceParams:
    opt_enum(body, "prompt_truncation", ("OFF", "AUTO_PRESERVE_ORDER"))
    opt_number(body, "frequency_penalty", 0, 1)
    opt_number(body, "presence_penalty", 0, 1)
    for flag in ("search_queries_only", "return_prompt", "raw_prompting"):
        opt_bool(body, flag)
    return InferenceParams(
        max_tokens=opt_int(body, "max_tokens", 1),
        temperature=opt_number(body, "temperature", 0, 1),
        top_p=opt_number(body, "p", 0.01, 0.99),
        top_k=opt_int(body, "k", 0, 500),
        stop=opt_str_list(body, "stop_sequences", max_items=4),
        seed=opt_int(body, "seed"),
    )


class CommandR:
    """Command R / R+ chat; built per call with its body, which ``render`` echoes in ``chat_history``."""

    name = "cohere-command-r"
    kind: Literal["chat"] = "chat"

    def __init__(self, body: Mapping[str, Any] | None = None) -> None:
        self._body: Mapping[str, Any] = body or {}

    def parse(self, body: Mapping[str, Any]) -> ChatRequest:
        check_keys(body, _CHAT_KEYS)
        has_tool_results = bool(body.get("tool_results"))
        message = need_str(body, "message", allow_empty=has_tool_results)
        params = _validate_params(body)
        history_system, turns = _history(body)
        if message:
            turns.append(Message("user", (TextBlock(message),)))
        turns.extend(_tool_turns(body.get("tool_results") or [], "/tool_results"))
        system_parts = [opt_str(body, "preamble") or "", *history_system, _documents_prompt(body) or ""]
        tools = _tools(body)
        return ChatRequest(
            messages=tuple(turns),
            system="\n\n".join(p for p in system_parts if p) or None,
            params=params,
            tools=tools,
        )

    def _chat_history(self, text: str, tool_calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        history = [dict(h) for h in self._body.get("chat_history") or [] if isinstance(h, Mapping)]
        if self._body.get("message"):
            history.append({"role": "USER", "message": self._body["message"]})
        reply: dict[str, Any] = {"role": "CHATBOT", "message": text}
        if tool_calls:
            reply["tool_calls"] = tool_calls
        history.append(reply)
        return history

    def render(self, result: ChatResult, model_id: str) -> dict[str, Any]:
        return self._response(result, str(uuid.uuid4()))

    def _response(self, result: ChatResult, generation_id: str) -> dict[str, Any]:
        text = result.message.text
        tool_calls = [
            {"name": b.name, "parameters": dict(b.input)}
            for b in result.message.content
            if isinstance(b, ToolUseBlock)
        ]
        out: dict[str, Any] = {
            "response_id": str(uuid.uuid4()),
            "text": text,
            "generation_id": generation_id,
            "chat_history": self._chat_history(text, tool_calls),
            "finish_reason": _FINISH[result.stop_reason],
            "meta": {
                "api_version": {"version": "1"},
                "billed_units": {
                    "input_tokens": result.usage.input_tokens,
                    "output_tokens": result.usage.output_tokens,
                },
            },
        }
        if tool_calls:
            out["tool_calls"] = tool_calls
        return out

    async def chunks(self, events: AsyncIterator[ChatEvent], model_id: str) -> AsyncIterator[dict[str, Any]]:
        generation_id = str(uuid.uuid4())
        yield {"is_finished": False, "event_type": "stream-start", "generation_id": generation_id}
        text: list[str] = []
        calls: list[Block] = []
        async for ev in events:
            if isinstance(ev, TextDelta):
                text.append(ev.text)
                yield {"is_finished": False, "event_type": "text-generation", "text": ev.text}
            elif isinstance(ev, ToolUseEvent):
                calls.append(ToolUseBlock(ev.id, ev.name, dict(ev.input)))
                yield {
                    "is_finished": False,
                    "event_type": "tool-calls-generation",
                    "text": "".join(text),
                    "tool_calls": [{"name": ev.name, "parameters": dict(ev.input)}],
                }
            elif isinstance(ev, StreamEnd):
                blocks: list[Block] = [TextBlock("".join(text)), *calls]
                result = ChatResult(
                    Message("assistant", tuple(blocks)), ev.stop_reason, ev.usage, ev.stop_sequence
                )
                yield {
                    "is_finished": True,
                    "event_type": "stream-end",
                    "finish_reason": _FINISH[ev.stop_reason],
                    "response": self._response(result, generation_id),
                }


# -- Command R: search_queries_only -------------------------------------------------------------------
class CommandRSearchQueries(CommandR):
    """Command R with ``search_queries_only: true``: the model writes queries instead of an answer."""

    name = "cohere-command-r-search-queries"

    def parse(self, body: Mapping[str, Any]) -> ChatRequest:
        base = super().parse(body)  # the same validation as an answering call
        message = need_str(body, "message")
        history = [(m.role, m.text) for m in base.messages[:-1] if m.text]
        return search_query_request(message, history, seed=base.params.seed)

    def _response(self, result: ChatResult, generation_id: str) -> dict[str, Any]:
        message = str(self._body.get("message") or "").strip()
        queries = extract_queries(result.message.text) or ([message] if message else [])
        return {
            "response_id": str(uuid.uuid4()),
            "text": "",
            "generation_id": generation_id,
            "chat_history": [dict(h) for h in self._body.get("chat_history") or [] if isinstance(h, Mapping)],
            "finish_reason": "COMPLETE",
            "search_queries": [{"text": q, "generation_id": generation_id} for q in queries],
            "is_search_required": bool(queries),
            "meta": {
                "api_version": {"version": "1"},
                "billed_units": {
                    "input_tokens": result.usage.input_tokens,
                    "output_tokens": result.usage.output_tokens,
                },
            },
        }

    async def chunks(self, events: AsyncIterator[ChatEvent], model_id: str) -> AsyncIterator[dict[str, Any]]:
        generation_id = str(uuid.uuid4())
        yield {"is_finished": False, "event_type": "stream-start", "generation_id": generation_id}
        text: list[str] = []
        async for ev in events:
            if isinstance(ev, TextDelta):
                text.append(ev.text)  # the rewritten queries are not an answer: nothing to stream
            elif isinstance(ev, StreamEnd):
                result = ChatResult(
                    Message("assistant", (TextBlock("".join(text)),)), ev.stop_reason, ev.usage
                )
                response = self._response(result, generation_id)
                yield {
                    "is_finished": False,
                    "event_type": "search-queries-generation",
                    "search_queries": response["search_queries"],
                }
                yield {
                    "is_finished": True,
                    "event_type": "stream-end",
                    "finish_reason": "COMPLETE",
                    "response": response,
                }


def command_r_format(body: Mapping[str, Any]) -> CommandR:
    """The Command R format for this body: answering, or rewriting into search queries."""
    return CommandRSearchQueries(body) if body.get("search_queries_only") is True else CommandR(body)
