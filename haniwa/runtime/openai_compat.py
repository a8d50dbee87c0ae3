"""The ``openai`` backend: any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, LiteLLM, another
haniwa) as a haniwa chat and embedding model.

Declare models in ``$HANIWA_HOME/models.toml`` and point Bedrock ids at them with aliases::

    [models."openai:llama3.1"]
    backend = "openai"
    kind = "chat"
    options = { base_url = "http://127.0.0.1:11434/v1", model = "llama3.1" }

    [models."openai:nomic"]
    backend = "openai"
    kind = "embedding"
    options = { base_url = "http://127.0.0.1:11434/v1", model = "nomic-embed-text", dimensions = 768 }

    [aliases]
    "anthropic.claude-3-haiku-20240307-v1:0" = "openai:llama3.1"

Options (unknown keys are an error):

* ``base_url``: the server's OpenAI root, ending in ``/v1`` for most servers.
* ``model``: the model name the server knows.
* ``api_key_env``: the *name* of an environment variable holding the key, sent as a bearer token. The key
  itself never goes in the catalog.
* ``timeout`` (seconds, default 120): for connecting, and between bytes of an answer.
* ``supports_images`` (default false), ``supports_tools`` (default true): what the served model can do.
* ``dimensions``: the vector size of an embedding model; when unset it is learnt by embedding one text
  when the model is first used.

Upstream failures become haniwa errors at one boundary (:meth:`_Upstream.boundary`): unreachable server →
ModelNotReadyError, timeout → ModelTimeoutError, 429 → ThrottledError, other 4xx → ValidationError with
the upstream message, 5xx → ModelError.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from contextlib import aclosing, contextmanager
from typing import Any

import httpx
import numpy as np
from pydantic import BaseModel, ConfigDict

from haniwa.config import Settings
from haniwa.errors import (
    ModelError,
    ModelNotReadyError,
    ModelTimeoutError,
    ThrottledError,
    ValidationError,
)
from haniwa.hookspecs import hookimpl
from haniwa.runtime.base import (
    Block,
    ChatBackend,
    ChatEvent,
    ChatRequest,
    ChatResult,
    Embedder,
    EmbedPurpose,
    ImageBlock,
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
from haniwa.runtime.tokens import rough_tokens

__all__ = ["OpenAIOptions", "OpenAIChat", "OpenAIEmbedder", "OpenAIBackend"]


class OpenAIOptions(BaseModel):
    """The ``options`` table of an ``openai`` model in ``models.toml``."""

    model_config = ConfigDict(extra="forbid")
    base_url: str
    model: str
    api_key_env: str | None = None
    timeout: float = 120
    supports_images: bool = False
    supports_tools: bool = True
    dimensions: int | None = None


# -- the HTTP boundary ---------------------------------------------------------------------------------
def _upstream_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            for key in ("message", "detail", "msg"):
                if isinstance(err.get(key), str):
                    return str(err[key])
        if isinstance(err, str):
            return err
    return json.dumps(data)[:500]


class _Upstream:
    """One configured server: URL, key, timeout, and the translation of its failures."""

    def __init__(self, model_id: str, options: OpenAIOptions) -> None:
        self.base_url = options.base_url.rstrip("/")
        self.timeout = options.timeout
        self.headers = {"accept": "application/json"}
        # building an SSL context costs ~50 ms; the per-call clients below share this one
        self._ssl = httpx.create_ssl_context()
        if options.api_key_env:
            key = os.environ.get(options.api_key_env)
            if not key:
                raise ModelNotReadyError(
                    f"model {model_id}: environment variable {options.api_key_env} (its api_key_env) is not "
                    "set; export the key there and restart haniwa"
                )
            self.headers["authorization"] = f"Bearer {key}"

    @contextmanager
    def boundary(self) -> Iterator[None]:
        """Turn every httpx failure inside the block into the matching haniwa error."""
        try:
            yield
        except httpx.HTTPStatusError as exc:
            status, msg = exc.response.status_code, _upstream_message(exc.response)
            where = f"{self.base_url} answered {status}"
            if status == 429:
                raise ThrottledError(f"{where}: {msg}") from exc
            if status < 500:
                raise ValidationError(f"{where}: {msg}") from exc
            raise ModelError(f"{where}: {msg}") from exc
        except httpx.TimeoutException as exc:
            raise ModelTimeoutError(f"{self.base_url} did not answer within {self.timeout:g} s") from exc
        except httpx.ConnectError as exc:
            raise ModelNotReadyError(
                f"cannot connect to the OpenAI-compatible server at {self.base_url} ({exc}); is it running?"
            ) from exc
        except httpx.HTTPError as exc:
            raise ModelError(f"request to {self.base_url} failed: {exc!r}") from exc

    def client(self) -> httpx.AsyncClient:
        # a client per call: nothing to close at shutdown, and no pool tied to one event loop
        return httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=self.timeout, verify=self._ssl
        )

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with self.boundary():
            async with self.client() as client:
                response = await client.post(path, json=body)
                response.raise_for_status()
        return _json_object(response.text, self.base_url)

    def post_sync(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        client = httpx.Client(
            base_url=self.base_url, headers=self.headers, timeout=self.timeout, verify=self._ssl
        )
        with self.boundary(), client:
            response = client.post(path, json=body)
            response.raise_for_status()
        return _json_object(response.text, self.base_url)

    async def events(self, path: str, body: Mapping[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """POST and yield each server-sent ``data:`` payload until ``[DONE]``."""
        with self.boundary():
            async with self.client() as client, client.stream("POST", path, json=body) as response:
                if response.is_error:
                    await response.aread()
                    response.raise_for_status()
                if response.headers.get("content-type", "").startswith("application/json"):
                    # a server that ignored stream=true: replay its one answer as a single chunk
                    whole = _json_object((await response.aread()).decode(), self.base_url)
                    for choice in whole.get("choices") or []:
                        choice["delta"] = choice.pop("message", None) or {}
                    yield whole
                    return
                data: list[str] = []
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    elif not line and data:
                        payload, data = "\n".join(data), []
                        if payload.strip() == "[DONE]":
                            return
                        yield _json_object(payload, self.base_url)
                if data and "\n".join(data).strip() != "[DONE]":
                    yield _json_object("\n".join(data), self.base_url)


def _json_object(text: str, base_url: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ModelError(f"{base_url} answered with something that is not JSON: {text[:200]!r}") from exc
    if not isinstance(value, dict):
        raise ModelError(f"{base_url} answered with JSON that is not an object: {text[:200]!r}")
    if value.get("error"):  # OpenAI-style servers report in-stream failures this way
        err = value["error"]
        raise ModelError(f"{base_url} failed: {err.get('message') if isinstance(err, dict) else err}")
    return value


# -- ChatRequest → OpenAI body -------------------------------------------------------------------------
def _data_url(block: ImageBlock) -> str:
    return f"data:{block.media_type};base64,{base64.b64encode(block.data).decode()}"


def _messages(req: ChatRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "system", "content": req.system}] if req.system else []
    for m in req.messages:
        if m.role == "assistant":
            calls = [
                {
                    "id": b.id,
                    "type": "function",
                    "function": {"name": b.name, "arguments": json.dumps(dict(b.input), ensure_ascii=False)},
                }
                for b in m.content
                if isinstance(b, ToolUseBlock)
            ]
            msg: dict[str, Any] = {"role": "assistant", "content": m.text or (None if calls else "")}
            if calls:
                msg["tool_calls"] = calls
            out.append(msg)
            continue
        # tool results must directly follow the assistant turn that called, so they go first
        for b in m.content:
            if isinstance(b, ToolResultBlock):
                content = f"Error: {b.content}" if b.is_error else b.content
                out.append({"role": "tool", "tool_call_id": b.tool_use_id, "content": content})
        parts: list[dict[str, Any]] = []
        for b in m.content:
            if isinstance(b, TextBlock):
                parts.append({"type": "text", "text": b.text})
            elif isinstance(b, ImageBlock):
                parts.append({"type": "image_url", "image_url": {"url": _data_url(b)}})
        if parts:
            only_text = all(p["type"] == "text" for p in parts)
            out.append({"role": "user", "content": m.text if only_text else parts})
    return out


def _tool_choice(choice: str) -> Any:
    if choice in ("auto", "none"):
        return choice
    if choice == "any":
        return "required"
    return {"type": "function", "function": {"name": choice}}


def _chat_body(model: str, req: ChatRequest, stream: bool) -> dict[str, Any]:
    p = req.params
    body: dict[str, Any] = {"model": model, "messages": _messages(req), "stream": stream}
    optional = {
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "top_k": p.top_k,  # not OpenAI's; sent only when asked for (vLLM, llama.cpp and Ollama accept it)
        "seed": p.seed,
        "stop": list(p.stop) or None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if req.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": dict(t.input_schema),
                },
            }
            for t in req.tools
        ]
        body["tool_choice"] = _tool_choice(req.tool_choice)
    if req.response_schema is not None:
        schema = dict(req.response_schema)
        body["response_format"] = (
            {"type": "json_object"}
            if schema == {"type": "object"}
            else {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
        )
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


# -- OpenAI body → results -----------------------------------------------------------------------------
def _tool_input(arguments: Any, base_url: str) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments or "{}")
    except ValueError as exc:
        raise ModelError(f"{base_url} returned tool arguments that are not JSON: {arguments!r}") from exc
    if not isinstance(value, dict):
        raise ModelError(f"{base_url} returned tool arguments that are not a JSON object: {arguments!r}")
    return value


def _stop(choice: Mapping[str, Any], req: ChatRequest, called: bool) -> tuple[StopReason, str | None]:
    finish = choice.get("finish_reason")
    if called or finish in ("tool_calls", "function_call"):
        return "tool_use", None
    if finish == "length":
        return "max_tokens", None
    matched = choice.get("stop_reason")  # vLLM (and haniwa) name the stop string that ended the answer
    if isinstance(matched, str) and matched in req.params.stop:
        return "stop_sequence", matched
    return "end_turn", None


def _usage(raw: Any, req: ChatRequest, output: Sequence[str]) -> Usage:
    if isinstance(raw, dict) and isinstance(raw.get("prompt_tokens"), int):
        return Usage(raw["prompt_tokens"], int(raw.get("completion_tokens") or 0))
    # the server reported none: estimate the way the echo model counts
    texts = [req.system or ""] + [m.text for m in req.messages]
    texts += [b.content for m in req.messages for b in m.content if isinstance(b, ToolResultBlock)]
    return Usage(sum(len(rough_tokens(t)) for t in texts), sum(len(rough_tokens(t)) for t in output))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class OpenAIChat:
    """A chat model served by an OpenAI-compatible server."""

    def __init__(self, name: str, options: OpenAIOptions) -> None:
        self.name = name
        self.model = options.model
        self.supports_tools = options.supports_tools
        self.supports_images = options.supports_images
        self._up = _Upstream(name, options)

    def _body(self, req: ChatRequest, stream: bool) -> dict[str, Any]:
        if req.tools and not self.supports_tools:
            raise ValidationError(f"model {self.name} is configured with supports_tools = false")
        return _chat_body(self.model, req, stream)

    async def converse(self, req: ChatRequest) -> ChatResult:
        data = await self._up.post("/chat/completions", self._body(req, stream=False))
        choices = data.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            raise ModelError(f"{self._up.base_url} answered without choices")
        choice = choices[0]
        message = choice.get("message") or {}
        text = _content_text(message.get("content"))
        blocks: list[Block] = [TextBlock(text)] if text else []
        out = [text]
        calls = message.get("tool_calls") or []
        for call in calls:
            fn = call.get("function") or {}
            args = _tool_input(fn.get("arguments"), self._up.base_url)
            blocks.append(ToolUseBlock(call.get("id") or _call_id(), fn.get("name", ""), args))
            out.append(json.dumps(args))
        stop, matched = _stop(choice, req, called=bool(calls))
        usage = _usage(data.get("usage"), req, out)
        return ChatResult(Message("assistant", tuple(blocks)), stop, usage, matched)

    async def converse_stream(self, req: ChatRequest) -> AsyncIterator[ChatEvent]:
        calls: dict[int, dict[str, str]] = {}
        out: list[str] = []
        usage: Any = None
        last: Mapping[str, Any] = {}
        # aclosing: a client that goes away mid-answer closes the upstream connection at once
        async with aclosing(self._up.events("/chat/completions", self._body(req, stream=True))) as events:
            async for data in events:
                usage = data.get("usage") or usage
                for choice in data.get("choices") or []:
                    delta = choice.get("delta") or {}
                    text = _content_text(delta.get("content"))
                    if text:
                        out.append(text)
                        yield TextDelta(text)
                    for tc in delta.get("tool_calls") or []:
                        _accumulate(calls, tc)
                    if choice.get("finish_reason"):
                        last = choice
        for slot in (calls[i] for i in sorted(calls)):
            args = _tool_input(slot["arguments"], self._up.base_url)
            out.append(slot["arguments"])
            yield ToolUseEvent(slot["id"] or _call_id(), slot["name"], args)
        stop, matched = _stop(last, req, called=bool(calls))
        yield StreamEnd(stop, _usage(usage, req, out), matched)


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _accumulate(calls: dict[int, dict[str, str]], delta: Mapping[str, Any]) -> None:
    """Fold one streamed tool-call fragment into ``calls`` (keyed by the fragment's ``index``)."""
    index = delta.get("index")
    if not isinstance(index, int):  # servers that send whole calls without an index
        index = len(calls) if delta.get("id") or not calls else max(calls)
    slot = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
    slot["id"] = slot["id"] or str(delta.get("id") or "")
    fn = delta.get("function") or {}
    slot["name"] = slot["name"] or str(fn.get("name") or "")
    args = fn.get("arguments")
    if isinstance(args, dict):
        slot["arguments"] = json.dumps(args)
    elif isinstance(args, str):
        slot["arguments"] += args


# -- embeddings ----------------------------------------------------------------------------------------
def _vector(raw: Any) -> list[float]:
    if isinstance(raw, str):  # base64 little-endian float32, as OpenAI sends for encoding_format=base64
        return [float(x) for x in np.frombuffer(base64.b64decode(raw), dtype="<f4")]
    return [float(x) for x in raw]


class OpenAIEmbedder:
    """An embedding model served by an OpenAI-compatible server."""

    def __init__(self, name: str, options: OpenAIOptions) -> None:
        self.name = name
        self.model = options.model
        self._up = _Upstream(name, options)
        if options.dimensions is None:
            # the registry loads models in a worker thread, so a blocking probe is fine here
            probe = self._parse(
                self._up.post_sync("/embeddings", {"model": self.model, "input": ["haniwa"]}), 1
            )
            self.dimensions = len(probe[0])
        else:
            self.dimensions = options.dimensions

    def _parse(self, data: Mapping[str, Any], n: int) -> list[list[float]]:
        items = data.get("data")
        if not isinstance(items, list) or len(items) != n:
            raise ModelError(f"{self._up.base_url} returned {len(items or [])} embeddings for {n} inputs")
        items = sorted(items, key=lambda d: d.get("index", 0))
        return [_vector(item.get("embedding")) for item in items]

    async def embed(self, texts: Sequence[str], purpose: EmbedPurpose = "document") -> list[list[float]]:
        if not texts:
            return []
        data = await self._up.post("/embeddings", {"model": self.model, "input": list(texts)})
        return self._parse(data, len(texts))


class OpenAIBackend:
    """Registered as ``openai``; see the module docstring for the options."""

    name = "openai"
    options_model: type[BaseModel] = OpenAIOptions

    def load_chat(self, info: ModelInfo, options: BaseModel, settings: Settings) -> ChatBackend:
        assert isinstance(options, OpenAIOptions)
        return OpenAIChat(info.id, options)

    def load_embedder(self, info: ModelInfo, options: BaseModel, settings: Settings) -> Embedder:
        assert isinstance(options, OpenAIOptions)
        return OpenAIEmbedder(info.id, options)


@hookimpl
def register_backends(register: Any) -> None:
    register(OpenAIBackend())
