"""Deterministic built-in backends, shipped as product features for demos and tests.

* ``echo``: answers with the last user message (optionally prefixed), honours ``max_tokens`` and stop
  sequences, and calls the first offered tool with schema-shaped arguments when tools are offered;
  ``delay_ms`` paces the stream token by token.
* ``scripted``: answers by rules — the first ``match`` regex found in the last user turn picks the
  ``reply`` (``\\1``/``\\g<name>`` expand its groups); for demos and tests of multi-step logic such as
  agents, where each step's input decides the next reply.
* ``hash``: a feature-hashing bag-of-words embedder (words and, for CJK text, character bigrams), so
  texts sharing words are close; instant and stable across machines.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from haniwa.config import Settings
from haniwa.errors import UsageError
from haniwa.hookspecs import hookimpl
from haniwa.runtime.base import (
    ChatBackend,
    ChatEvent,
    ChatRequest,
    ChatResult,
    Embedder,
    EmbedPurpose,
    ModelInfo,
    StreamEnd,
    TextDelta,
    ToolResultBlock,
    ToolUseEvent,
    Usage,
    collect,
)

__all__ = [
    "EchoChat",
    "ScriptedChat",
    "HashEmbedder",
    "EchoBackend",
    "ScriptedBackend",
    "HashBackend",
    "rough_tokens",
]

_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W_]+|[^\s\w]", re.UNICODE)


def rough_tokens(text: str) -> list[str]:
    """Word-ish tokens: each CJK character alone, runs of letters/digits, single punctuation marks."""
    return _WORD.findall(text)


def _example(schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _example(v) for k, v in props.items() if k in schema.get("required", props)}
    return {"integer": 1, "number": 1.0, "boolean": True, "array": []}.get(str(kind), "echo")


class EchoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: str = ""
    vision: bool = True
    # pause before each streamed token, so streaming and compare timings show in demos and browser tests
    delay_ms: float = Field(0.0, ge=0, le=10_000)


class EchoChat:
    """Echoes the last user turn; its output is fully determined by its input."""

    supports_tools = True

    def __init__(self, name: str, prefix: str = "", vision: bool = True, delay_ms: float = 0.0) -> None:
        self.name = name
        self.prefix = prefix
        self.supports_images = vision
        self.delay_s = delay_ms / 1000

    async def count_tokens(self, req: ChatRequest) -> int:
        parts = [req.system or ""] + [m.text for m in req.messages]
        return sum(len(rough_tokens(p)) for p in parts)

    def _reply(self, req: ChatRequest) -> str:
        last = next((m for m in reversed(req.messages) if m.role == "user"), None)
        if last is None:
            return self.prefix
        results = [b.content for b in last.content if isinstance(b, ToolResultBlock)]
        return self.prefix + (last.text or " ".join(results))

    async def converse(self, req: ChatRequest) -> ChatResult:
        return await collect(self.converse_stream(req))

    async def converse_stream(self, req: ChatRequest) -> AsyncIterator[ChatEvent]:
        n_in = await self.count_tokens(req)
        last = req.messages[-1] if req.messages else None
        answered_tool = last is not None and any(isinstance(b, ToolResultBlock) for b in last.content)
        if req.tools and req.tool_choice != "none" and not answered_tool:
            tool = next((t for t in req.tools if t.name == req.tool_choice), req.tools[0])
            args = _example(tool.input_schema)
            yield ToolUseEvent(f"tooluse_{uuid.uuid4().hex[:20]}", tool.name, args)
            yield StreamEnd("tool_use", Usage(n_in, len(rough_tokens(str(args)))))
            return
        text = self._reply(req)
        tokens = rough_tokens(text)
        # keep the original spacing: re-find each token's span
        pieces, pos = [], 0
        for tok in tokens:
            start = text.index(tok, pos)
            pieces.append(text[pos : start + len(tok)])
            pos = start + len(tok)
        if pos < len(text) and pieces:
            pieces[-1] += text[pos:]
        stop_reason: Any = "end_turn"
        stop_seq = None
        limit = req.params.max_tokens
        out, produced = [], 0
        for piece in pieces:
            if limit is not None and produced >= limit:
                stop_reason = "max_tokens"
                break
            out.append(piece)
            produced += 1
            joined = "".join(out)
            hit = next((s for s in req.params.stop if s and s in joined), None)
            if hit:
                out = [joined[: joined.index(hit)]]
                stop_reason, stop_seq = "stop_sequence", hit
                break
        for piece in out:
            if piece:
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                yield TextDelta(piece)
        yield StreamEnd(stop_reason, Usage(n_in, produced), stop_seq)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match: str
    reply: str


class ScriptedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = []
    default: str = ""


class ScriptedChat(EchoChat):
    """Replies chosen by regex rules over the last user turn (see the module docstring)."""

    def __init__(self, name: str, rules: Sequence[Rule], default: str = "") -> None:
        super().__init__(name)
        self.rules = [(re.compile(r.match, re.DOTALL), r.reply) for r in rules]
        self.default = default

    def _reply(self, req: ChatRequest) -> str:
        last = next((m for m in reversed(req.messages) if m.role == "user"), None)
        text = "" if last is None else last.text
        for pattern, reply in self.rules:
            m = pattern.search(text)
            if m:
                return m.expand(reply)
        return self.default


class HashEmbedder:
    """Feature-hashing embedder: L2-normalised counts of hashed words and CJK bigrams."""

    def __init__(self, name: str, dimensions: int = 384) -> None:
        self.name = name
        self.dimensions = dimensions

    def _one(self, text: str) -> list[float]:
        vec = [0.0] * self.dimensions
        toks = [t.lower() for t in rough_tokens(text) if t.strip() and (t.isalnum() or len(t) > 1)]
        feats = toks + [a + b for a, b in zip(toks, toks[1:], strict=False) if len(a) == len(b) == 1]
        for f in feats:
            h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
            vec[h % self.dimensions] += 1.0 if (h >> 63) == 0 else -1.0
        norm = math.sqrt(sum(x * x for x in vec)) or 1.0
        return [x / norm for x in vec]

    async def embed(self, texts: Sequence[str], purpose: EmbedPurpose = "document") -> list[list[float]]:
        return [self._one(t) for t in texts]


class HashOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dimensions: int = 384


class EchoBackend:
    name = "echo"
    options_model: type[BaseModel] = EchoOptions

    def load_chat(self, info: ModelInfo, options: BaseModel, settings: Settings) -> ChatBackend:
        assert isinstance(options, EchoOptions)
        return EchoChat(info.id, options.prefix, options.vision, options.delay_ms)

    def load_embedder(self, info: ModelInfo, options: BaseModel, settings: Settings) -> Embedder:
        raise UsageError("the echo backend has no embedding model; use the hash backend")


class ScriptedBackend:
    name = "scripted"
    options_model: type[BaseModel] = ScriptedOptions

    def load_chat(self, info: ModelInfo, options: BaseModel, settings: Settings) -> ChatBackend:
        assert isinstance(options, ScriptedOptions)
        return ScriptedChat(info.id, options.rules, options.default)

    def load_embedder(self, info: ModelInfo, options: BaseModel, settings: Settings) -> Embedder:
        raise UsageError("the scripted backend serves chat models only")


class HashBackend:
    name = "hash"
    options_model: type[BaseModel] = HashOptions

    def load_chat(self, info: ModelInfo, options: BaseModel, settings: Settings) -> ChatBackend:
        raise UsageError("the hash backend only embeds; use the echo backend for chat")

    def load_embedder(self, info: ModelInfo, options: BaseModel, settings: Settings) -> Embedder:
        assert isinstance(options, HashOptions)
        return HashEmbedder(info.id, options.dimensions)


@hookimpl
def register_backends(register: Any) -> None:
    register(EchoBackend())
    register(ScriptedBackend())
    register(HashBackend())


@hookimpl
def register_models(register: Any) -> None:
    register(
        ModelInfo(
            id="echo:echo",
            backend="echo",
            kind="chat",
            name="Echo",
            input_modalities=("TEXT", "IMAGE"),
            description="Deterministic: repeats the last user message; calls the first offered tool.",
        )
    )
    register(
        ModelInfo(
            id="hash:hash-384",
            backend="hash",
            kind="embedding",
            name="Hash embedder",
            output_modalities=("EMBEDDING",),
            description="Deterministic feature-hashing embeddings (words + CJK bigrams), 384 dims.",
        )
    )
