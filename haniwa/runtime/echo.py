"""Deterministic built-in backends, shipped as product features for demos and tests.

* ``echo``: answers with the last user message (optionally prefixed), honours ``max_tokens`` and stop
  sequences, and calls the first offered tool with schema-shaped arguments when tools are offered;
  ``delay_ms`` paces the answer token by token (streamed or not). Its cost is linear in the input; a
  large prompt is tokenized on the model's own worker thread, off the event loop.
* ``scripted``: answers by rules — the first ``match`` regex found in the last user turn picks the
  ``reply`` (``\\1``/``\\g<name>`` expand its groups; a rule with a ``seed`` applies only to requests
  sampled with that seed, so sampling is observable); for demos and tests of multi-step logic such as
  agents, where each step's input decides the next reply. ``delay_ms`` as for ``echo``.
* ``hash``: a feature-hashing bag-of-words embedder (words and, for CJK text, character bigrams), so
  texts sharing words are close; instant and stable across machines. Batches run on the embedder's
  own worker thread.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import math
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
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
    Message,
    ModelInfo,
    StopReason,
    StreamEnd,
    TextBlock,
    TextDelta,
    ToolResultBlock,
    ToolUseBlock,
    ToolUseEvent,
    Usage,
)
from haniwa.runtime.batching import MicroBatcher
from haniwa.runtime.offload import Worker
from haniwa.runtime.tokens import TOKEN, rough_tokens

__all__ = [
    "EchoChat",
    "ScriptedChat",
    "HashEmbedder",
    "EchoBackend",
    "ScriptedBackend",
    "HashBackend",
]


def _example(schema: Any) -> Any:
    # a tool's schema comes from the client: any JSON value, so every field is checked before use
    if not isinstance(schema, Mapping):
        return "echo"
    kind = schema.get("type")
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if kind == "object":
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        required = schema.get("required")
        wanted = required if isinstance(required, list) else list(props)
        return {k: _example(v) for k, v in props.items() if k in wanted}
    return {"integer": 1, "number": 1.0, "boolean": True, "array": []}.get(str(kind), "echo")


# Inputs larger than this (characters) are tokenized on the model's worker thread; smaller ones cost
# well under a millisecond on the event loop, less than the hop to a thread.
_INLINE_CHARS = 32 * 1024
_EMBED_BATCH = 256  # texts per turn on the hash embedder's worker
_YIELD_EVERY = 64  # a stream without delay gives the event loop a turn every this many tokens


def _chars(req: ChatRequest) -> int:
    texts = [
        b.text if isinstance(b, TextBlock) else b.content
        for m in req.messages
        for b in m.content
        if isinstance(b, TextBlock | ToolResultBlock)
    ]
    return len(req.system or "") + sum(len(t) for t in texts)


def _count(req: ChatRequest) -> int:
    # finditer, not findall: a Python loop between matches lets the event loop's thread take the GIL
    parts = [req.system or ""] + [m.text for m in req.messages]
    return sum(1 for p in parts for _ in TOKEN.finditer(p))


@dataclass(frozen=True)
class _Plan:
    """An echo answer, worked out before it is sent: text pieces (one per token) or one tool call."""

    pieces: list[str]
    end: StreamEnd
    tool: ToolUseEvent | None = None


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
        self._worker = Worker(f"echo:{name}")

    async def count_tokens(self, req: ChatRequest) -> int:
        if _chars(req) > _INLINE_CHARS:
            return await self._worker.run(_count, req)
        return _count(req)

    def _reply(self, req: ChatRequest) -> str:
        last = next((m for m in reversed(req.messages) if m.role == "user"), None)
        if last is None:
            return self.prefix
        results = [b.content for b in last.content if isinstance(b, ToolResultBlock)]
        return self.prefix + (last.text or " ".join(results))

    def _plan(self, req: ChatRequest) -> _Plan:
        """The whole answer, computed at once in time linear in the input (a 1 MB prompt: ~0.1 s)."""
        n_in = _count(req)
        last = req.messages[-1] if req.messages else None
        answered_tool = last is not None and any(isinstance(b, ToolResultBlock) for b in last.content)
        if req.tools and req.tool_choice != "none" and not answered_tool:
            tool = next((t for t in req.tools if t.name == req.tool_choice), req.tools[0])
            example = _example(tool.input_schema)
            # a tool's input is a JSON object, even for a schema that is not one (e.g. ``{}``)
            args = example if isinstance(example, dict) else {}
            call = ToolUseEvent(f"tooluse_{uuid.uuid4().hex[:20]}", tool.name, args)
            return _Plan([], StreamEnd("tool_use", Usage(n_in, len(rough_tokens(str(args))))), call)
        text = self._reply(req)
        # each piece is a token with the spacing before it; the last one keeps the trailing spacing
        pieces: list[str] = []
        ends: list[int] = []
        pos = 0
        for match in TOKEN.finditer(text):
            pieces.append(text[pos : match.end()])
            pos = match.end()
            ends.append(pos)
        if pos < len(text) and pieces:
            pieces[-1] += text[pos:]
            ends[-1] = len(text)
        limit = req.params.max_tokens
        stop_reason: StopReason = "end_turn"
        if limit is not None and len(pieces) > limit:
            pieces, ends, stop_reason = pieces[:limit], ends[:limit], "max_tokens"
        # the first piece after which the answer so far holds a stop sequence ends it (searched once in
        # the whole text, not again after every piece: that was quadratic)
        produced = "".join(pieces)
        stops = [s for s in req.params.stop if s]
        done = min(
            (bisect.bisect_left(ends, i + len(s)) for s in stops if (i := produced.find(s)) >= 0),
            default=None,
        )
        if done is None:
            return _Plan(pieces, StreamEnd(stop_reason, Usage(n_in, len(pieces))))
        joined = produced[: ends[done]]
        hit = next(s for s in stops if s in joined)
        cut = joined[: joined.index(hit)]
        return _Plan([cut], StreamEnd("stop_sequence", Usage(n_in, done + 1), hit))

    async def _planned(self, req: ChatRequest) -> _Plan:
        # a small prompt is planned at once; a large one on this model's worker, off the event loop
        if _chars(req) > _INLINE_CHARS:
            return await self._worker.run(self._plan, req)
        return self._plan(req)

    async def converse(self, req: ChatRequest) -> ChatResult:
        plan = await self._planned(req)
        if plan.tool is not None:
            call = plan.tool
            block = ToolUseBlock(call.id, call.name, dict(call.input))
            return ChatResult(Message("assistant", (block,)), plan.end.stop_reason, plan.end.usage)
        if self.delay_s:
            # paced as the stream is, so that deadlines and cancellation behave alike on both
            for piece in plan.pieces:
                if piece:
                    await asyncio.sleep(self.delay_s)
        text = "".join(plan.pieces)
        message = Message("assistant", (TextBlock(text),) if text else ())
        return ChatResult(message, plan.end.stop_reason, plan.end.usage, plan.end.stop_sequence)

    async def converse_stream(self, req: ChatRequest) -> AsyncIterator[ChatEvent]:
        plan = await self._planned(req)
        if plan.tool is not None:
            yield plan.tool
            yield plan.end
            return
        for i, piece in enumerate(plan.pieces):
            if not piece:
                continue
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            elif i % _YIELD_EVERY == _YIELD_EVERY - 1:
                # a consumer that never waits (nothing to send yet) would keep the loop to itself
                await asyncio.sleep(0)
            yield TextDelta(piece)
        yield plan.end


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match: str
    reply: str
    seed: int | None = None  # set: the rule applies only to requests with this sampling seed


class ScriptedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = []
    default: str = ""
    delay_ms: float = Field(0.0, ge=0, le=10_000)  # as the echo model's: a pause before each token


class ScriptedChat(EchoChat):
    """Replies chosen by regex rules over the last user turn (see the module docstring)."""

    def __init__(self, name: str, rules: Sequence[Rule], default: str = "", delay_ms: float = 0.0) -> None:
        super().__init__(name, delay_ms=delay_ms)
        self.rules = [(re.compile(r.match, re.DOTALL), r.reply, r.seed) for r in rules]
        self.default = default

    def _reply(self, req: ChatRequest) -> str:
        last = next((m for m in reversed(req.messages) if m.role == "user"), None)
        text = "" if last is None else last.text
        for pattern, reply, seed in self.rules:
            if seed is not None and req.params.seed != seed:
                continue
            m = pattern.search(text)
            if m:
                return m.expand(reply)
        return self.default


class HashEmbedder:
    """Feature-hashing embedder: L2-normalised counts of hashed words and CJK bigrams."""

    def __init__(self, name: str, dimensions: int = 384, microbatch: bool = True) -> None:
        self.name = name
        self.dimensions = dimensions
        self._worker = Worker(f"hash:{name}")
        # the vectors do not depend on the purpose: one key, so every waiting request may share a call
        self.batcher: MicroBatcher[None] | None = None
        if microbatch:
            self.batcher = MicroBatcher(lambda texts, _key: self._many(texts), self._worker, _EMBED_BATCH)

    def _one(self, text: str) -> list[float]:
        vec = [0.0] * self.dimensions
        toks = [t.lower() for t in rough_tokens(text) if t.strip() and (t.isalnum() or len(t) > 1)]
        feats = toks + [a + b for a, b in zip(toks, toks[1:], strict=False) if len(a) == len(b) == 1]
        for f in feats:
            h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
            vec[h % self.dimensions] += 1.0 if (h >> 63) == 0 else -1.0
        norm = math.sqrt(sum(x * x for x in vec)) or 1.0
        return [x / norm for x in vec]

    def _many(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    async def embed(self, texts: Sequence[str], purpose: EmbedPurpose = "document") -> list[list[float]]:
        if len(texts) <= 1 and sum(len(t) for t in texts) <= _INLINE_CHARS:
            return self._many(texts)  # one short text: quicker than the hop to a thread
        if self.batcher is not None:
            return await self.batcher.run(texts, None)
        # on this embedder's own worker, a batch at a time: requests that arrive meanwhile take turns
        # with a large one, and a cancelled request stops at the next batch
        out: list[list[float]] = []
        for i in range(0, len(texts), _EMBED_BATCH):
            out += await self._worker.run(self._many, texts[i : i + _EMBED_BATCH])
        return out


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
        return ScriptedChat(info.id, options.rules, options.default, options.delay_ms)

    def load_embedder(self, info: ModelInfo, options: BaseModel, settings: Settings) -> Embedder:
        raise UsageError("the scripted backend serves chat models only")


class HashBackend:
    name = "hash"
    options_model: type[BaseModel] = HashOptions

    def load_chat(self, info: ModelInfo, options: BaseModel, settings: Settings) -> ChatBackend:
        raise UsageError("the hash backend only embeds; use the echo backend for chat")

    def load_embedder(self, info: ModelInfo, options: BaseModel, settings: Settings) -> Embedder:
        assert isinstance(options, HashOptions)
        return HashEmbedder(info.id, options.dimensions, settings.embed_microbatch)


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
