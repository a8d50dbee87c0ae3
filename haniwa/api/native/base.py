"""The seams for native InvokeModel bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from haniwa.runtime.base import ChatEvent, ChatRequest, ChatResult, EmbedPurpose

__all__ = ["ChatFormat", "EmbedFormat", "EmbedRequest", "EmbedResponse", "StreamStats"]


@dataclass(frozen=True)
class StreamStats:
    """Figures for the final chunk's ``amazon-bedrock-invocationMetrics``."""

    input_tokens: int
    output_tokens: int
    latency_ms: int
    first_byte_latency_ms: int


class ChatFormat(Protocol):
    """A provider's text-generation body: e.g. Anthropic Messages, Titan Text, Cohere Command R."""

    name: str
    kind: Literal["chat"]

    def parse(self, body: Mapping[str, Any]) -> ChatRequest:
        """Body → request; raises ``ValidationError`` naming the offending field."""
        ...

    def render(self, result: ChatResult, model_id: str) -> dict[str, Any]:
        """Result → the provider's response body (with usage where the provider reports it)."""
        ...

    def chunks(self, events: AsyncIterator[ChatEvent], model_id: str) -> AsyncIterator[dict[str, Any]]:
        """Events → the provider's stream chunks (the caller adds invocation metrics to the last)."""
        ...


@dataclass(frozen=True)
class EmbedRequest:
    texts: Sequence[str]
    purpose: EmbedPurpose = "document"
    dimensions: int | None = None
    normalize: bool = True
    embedding_types: tuple[str, ...] = ("float",)


@dataclass(frozen=True)
class EmbedResponse:
    vectors: list[list[float]]
    input_tokens: int


class EmbedFormat(Protocol):
    """A provider's embedding body: Titan Embeddings G1/V2, Cohere Embed."""

    name: str
    kind: Literal["embed"]

    def parse(self, body: Mapping[str, Any]) -> EmbedRequest:
        """Body → request; raises ``ValidationError`` naming the offending field."""
        ...

    def render(self, response: EmbedResponse, req: EmbedRequest) -> dict[str, Any]:
        """Vectors → the provider's response body."""
        ...
