"""Conformance suites a backend plugin inherits: override one fixture, get every test.

```python
class TestMyBackend(ChatBackendConformance):
    @pytest.fixture
    def chat(self) -> ChatBackend:
        return MyBackend().load_chat(info, options, settings)
```
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from haniwa.runtime.base import (
    ChatBackend,
    ChatRequest,
    Embedder,
    InferenceParams,
    Message,
    StreamEnd,
    TextBlock,
    TextDelta,
    ToolSpec,
    ToolUseBlock,
    collect,
)

__all__ = ["ChatBackendConformance", "EmbedderConformance"]


def _ask(text: str, **params: Any) -> ChatRequest:
    return ChatRequest((Message("user", (TextBlock(text),)),), params=InferenceParams(**params))


class ChatBackendConformance:
    """Behaviour every ChatBackend owes its callers."""

    @pytest.fixture
    def chat(self) -> ChatBackend:
        raise NotImplementedError("override the `chat` fixture")

    def test_converse_answers_with_usage(self, chat: ChatBackend) -> None:
        result = asyncio.run(chat.converse(_ask("Say hello.", max_tokens=16, temperature=0)))
        assert result.message.role == "assistant" and result.message.text
        assert result.usage.input_tokens > 0 and 0 < result.usage.output_tokens <= 16

    def test_stream_ends_with_exactly_one_stream_end(self, chat: ChatBackend) -> None:
        async def run() -> list[Any]:
            return [e async for e in chat.converse_stream(_ask("Say hello.", max_tokens=16, temperature=0))]

        events = asyncio.run(run())
        assert isinstance(events[-1], StreamEnd)
        assert sum(isinstance(e, StreamEnd) for e in events) == 1
        assert any(isinstance(e, TextDelta) and e.text for e in events)

    def test_max_tokens_stops_with_max_tokens(self, chat: ChatBackend) -> None:
        result = asyncio.run(
            chat.converse(_ask("Count from 1 to 100 separated by spaces.", max_tokens=3, temperature=0))
        )
        assert result.stop_reason == "max_tokens" and result.usage.output_tokens <= 3

    def test_stream_and_converse_agree_in_shape(self, chat: ChatBackend) -> None:
        req = _ask("Name one colour.", max_tokens=8, temperature=0, seed=1)
        streamed = asyncio.run(collect(chat.converse_stream(req)))
        direct = asyncio.run(chat.converse(req))
        assert streamed.stop_reason == direct.stop_reason
        assert streamed.usage.input_tokens == direct.usage.input_tokens

    def test_tool_call_when_forced(self, chat: ChatBackend) -> None:
        if not chat.supports_tools:
            pytest.skip("backend declares no tool support")
        tool = ToolSpec(
            "get_weather",
            "Weather for a city",
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        )
        req = ChatRequest(_ask("Weather in Tokyo?").messages, tools=(tool,), tool_choice="get_weather")
        result = asyncio.run(chat.converse(req))
        assert result.stop_reason == "tool_use"
        use = next(b for b in result.message.content if isinstance(b, ToolUseBlock))
        assert use.name == "get_weather" and isinstance(use.input.get("city"), str)


class EmbedderConformance:
    """Behaviour every Embedder owes its callers."""

    @pytest.fixture
    def embedder(self) -> Embedder:
        raise NotImplementedError("override the `embedder` fixture")

    def test_one_vector_per_text_of_declared_size(self, embedder: Embedder) -> None:
        vecs = asyncio.run(embedder.embed(["埴輪", "a clay figure", ""]))
        assert len(vecs) == 3 and all(len(v) == embedder.dimensions for v in vecs)

    def test_deterministic(self, embedder: Embedder) -> None:
        a = asyncio.run(embedder.embed(["同じ文"]))
        b = asyncio.run(embedder.embed(["同じ文"]))
        assert a == b or max(abs(x - y) for x, y in zip(a[0], b[0], strict=True)) < 1e-5

    def test_empty_batch(self, embedder: Embedder) -> None:
        assert asyncio.run(embedder.embed([])) == []
