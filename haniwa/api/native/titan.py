"""Amazon Titan bodies: Titan Text (``inputText`` + ``textGenerationConfig``) and Titan Embeddings.

Titan Text prompts may be written as a conversation (``User: …\\nBot: …\\nUser: …\\nBot:``); such a
prompt becomes turns, anything else one user message. Titan Embeddings G1 takes ``inputText`` only;
V2 adds ``dimensions`` (256/512/1024), ``normalize`` and ``embeddingTypes`` (float, binary).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

from haniwa.api.native.base import EmbedRequest, EmbedResponse
from haniwa.api.native.fields import (
    as_object,
    check_keys,
    lagged_text,
    malformed,
    need_str,
    opt_bool,
    opt_int,
    opt_number,
    opt_str_list,
)
from haniwa.runtime.base import (
    ChatEvent,
    ChatRequest,
    ChatResult,
    InferenceParams,
    Message,
    StopReason,
    TextBlock,
)
from haniwa.runtime.dims import normalize

__all__ = ["TitanText", "TitanEmbed", "completion_reason", "split_conversation"]

_CONFIG_KEYS = ("maxTokenCount", "temperature", "topP", "stopSequences")
_TURN = re.compile(r"^(User|Bot):[ \t]?", re.MULTILINE)
_REASONS: dict[StopReason, str] = {
    "end_turn": "FINISH",
    "max_tokens": "LENGTH",
    "stop_sequence": "STOP_CRITERIA_MET",
    "tool_use": "FINISH",
}


def completion_reason(stop: StopReason) -> str:
    return _REASONS[stop]


def split_conversation(text: str) -> tuple[str | None, tuple[Message, ...]]:
    """``[preface]User: a\\nBot: b\\nUser: c\\nBot:`` → (preface, turns); plain text → one user turn."""
    marks = list(_TURN.finditer(text))
    if not marks or marks[0].group(1) != "User":
        return None, (Message("user", (TextBlock(text),)),)
    preface = text[: marks[0].start()].strip() or None
    turns: list[Message] = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[m.end() : end].strip()
        role: Literal["user", "assistant"] = "user" if m.group(1) == "User" else "assistant"
        if not body and role == "assistant" and i == len(marks) - 1:
            continue  # the trailing "Bot:" is where the answer goes
        if turns and turns[-1].role == role:
            turns[-1] = Message(role, (TextBlock(turns[-1].text + "\n" + body),))
        else:
            turns.append(Message(role, (TextBlock(body),)))
    return preface, tuple(turns)


class TitanText:
    """Titan Text G1 (Lite, Express, Premier)."""

    name = "titan-text"
    kind: Literal["chat"] = "chat"

    def parse(self, body: Mapping[str, Any]) -> ChatRequest:
        check_keys(body, ("inputText", "textGenerationConfig"))
        text = need_str(body, "inputText")
        cfg = as_object(body.get("textGenerationConfig") or {}, "/textGenerationConfig")
        path = "/textGenerationConfig"
        check_keys(cfg, _CONFIG_KEYS, path)
        system, messages = split_conversation(text)
        max_tokens = opt_int(cfg, "maxTokenCount", 1, 8192, path)
        return ChatRequest(
            messages=messages,
            system=system,
            params=InferenceParams(
                max_tokens=512 if max_tokens is None else max_tokens,  # Titan's documented default
                temperature=opt_number(cfg, "temperature", 0, 1, path),
                top_p=opt_number(cfg, "topP", 0, 1, path),
                stop=opt_str_list(cfg, "stopSequences", path),
            ),
        )

    def render(self, result: ChatResult, model_id: str) -> dict[str, Any]:
        return {
            "inputTextTokenCount": result.usage.input_tokens,
            "results": [
                {
                    "tokenCount": result.usage.output_tokens,
                    "outputText": result.message.text,
                    "completionReason": completion_reason(result.stop_reason),
                }
            ],
        }

    async def chunks(self, events: AsyncIterator[ChatEvent], model_id: str) -> AsyncIterator[dict[str, Any]]:
        async for text, count, end in lagged_text(events):
            yield {
                "outputText": text,
                "index": 0,
                "totalOutputTextTokenCount": end.usage.output_tokens if end else count,
                "completionReason": completion_reason(end.stop_reason) if end else None,
                "inputTextTokenCount": end.usage.input_tokens if end else None,
            }


class TitanEmbed:
    """Titan Embeddings: ``g1`` (text v1, 1536 numbers), ``v2`` (256/512/1024) or ``image`` (multimodal).

    ``EmbedRequest.embedding_types`` is empty when the body did not ask for ``embeddingTypes``, so the
    response then has no ``embeddingsByType``.
    """

    name = "titan-embed"
    kind: Literal["embed"] = "embed"

    def __init__(self, version: Literal["g1", "v2", "image"] = "v2") -> None:
        self.version = version

    @classmethod
    def for_model(cls, family_id: str) -> TitanEmbed:
        if family_id.startswith(("amazon.titan-embed-text-v1", "amazon.titan-embed-g1")):
            return cls("g1")
        if family_id.startswith("amazon.titan-embed-image"):
            return cls("image")
        return cls("v2")

    def parse(self, body: Mapping[str, Any]) -> EmbedRequest:
        if self.version == "g1":
            check_keys(body, ("inputText",))
            return EmbedRequest([need_str(body, "inputText")], "document", embedding_types=())
        if self.version == "image":
            return self._parse_image(body)
        check_keys(body, ("inputText", "dimensions", "normalize", "embeddingTypes"))
        text = need_str(body, "inputText")
        dims = opt_int(body, "dimensions")
        if dims is not None and dims not in (256, 512, 1024):
            raise malformed("/dimensions", f"{dims} is not a valid enum value (one of 256, 512, 1024)")
        types = opt_str_list(body, "embeddingTypes")
        if "embeddingTypes" in body and not types:
            raise malformed("/embeddingTypes", "expected minimum item count: 1, found: 0")
        for t in types:
            if t not in ("float", "binary"):
                raise malformed("/embeddingTypes", f"{t} is not a valid enum value (one of float, binary)")
        norm = opt_bool(body, "normalize")
        return EmbedRequest(
            [text],
            "document",
            dimensions=dims,
            normalize=True if norm is None else norm,
            embedding_types=types,
        )

    def _parse_image(self, body: Mapping[str, Any]) -> EmbedRequest:
        check_keys(body, ("inputText", "inputImage", "embeddingConfig"))
        if "inputImage" in body:
            raise malformed("/inputImage", "image embeddings are not supported by this server's embedders")
        cfg = as_object(body.get("embeddingConfig") or {}, "/embeddingConfig")
        check_keys(cfg, ("outputEmbeddingLength",), "/embeddingConfig")
        dims = opt_int(cfg, "outputEmbeddingLength", path="/embeddingConfig")
        if dims is not None and dims not in (256, 384, 1024):
            raise malformed("/embeddingConfig/outputEmbeddingLength", f"{dims} is not one of 256, 384, 1024")
        return EmbedRequest([need_str(body, "inputText")], "document", dimensions=dims, embedding_types=())

    def render(self, response: EmbedResponse, req: EmbedRequest) -> dict[str, Any]:
        vector = response.vectors[0]
        if req.normalize:
            vector = normalize(vector)
        out: dict[str, Any] = {"embedding": vector, "inputTextTokenCount": response.input_tokens}
        if req.embedding_types:
            by_type: dict[str, Any] = {}
            for t in req.embedding_types:
                by_type[t] = vector if t == "float" else [1 if x > 0 else 0 for x in vector]
            out["embeddingsByType"] = by_type
        return out
