"""The runtime seams: what a chat model and an embedding model must do, and the data they exchange.

Requests, results and events are frozen dataclasses with snake_case fields; wire formats (Bedrock,
OpenAI) are converted to and from these in ``haniwa/api`` only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

if TYPE_CHECKING:
    from haniwa.config import Settings

__all__ = [
    "Closable",
    "TextBlock",
    "ImageBlock",
    "ToolUseBlock",
    "ToolResultBlock",
    "Block",
    "Message",
    "ToolSpec",
    "InferenceParams",
    "ChatRequest",
    "Usage",
    "StopReason",
    "ChatResult",
    "TextDelta",
    "ToolUseEvent",
    "StreamEnd",
    "ChatEvent",
    "ChatBackend",
    "TokenCounter",
    "Embedder",
    "EmbedPurpose",
    "ModelInfo",
    "Backend",
    "collect",
]


@dataclass(frozen=True)
class TextBlock:
    text: str


@dataclass(frozen=True)
class ImageBlock:
    data: bytes
    media_type: str  # "image/png", "image/jpeg", ...


@dataclass(frozen=True)
class ToolUseBlock:
    id: str
    name: str
    input: Mapping[str, Any]


@dataclass(frozen=True)
class ToolResultBlock:
    tool_use_id: str
    content: str
    is_error: bool = False


Block = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock


@dataclass(frozen=True)
class Message:
    role: Literal["user", "assistant"]
    content: tuple[Block, ...]

    @property
    def text(self) -> str:
        """The concatenated text blocks."""
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: Mapping[str, Any]


@dataclass(frozen=True)
class InferenceParams:
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[Message, ...]
    system: str | None = None
    params: InferenceParams = field(default_factory=InferenceParams)
    tools: tuple[ToolSpec, ...] = ()
    # "auto": the model decides; "any": it must call some tool; "none": it must not; any other value names
    # the tool to call. Usage of a tool request adds up every generation step the backend ran.
    tool_choice: str = "auto"
    # A JSON schema the answer must satisfy (constrained decoding where the backend supports it).
    response_schema: Mapping[str, Any] | None = None
    # Restate the system prompt's rules next to the last user turn (small models drift away from a system
    # prompt over a long answer). None: the model's default (the llamacpp option ``system_reminder``).
    # Backends never apply it to a request with tools or a response_schema.
    system_reminder: bool | None = None
    # Keep the format rules the system prompt states (an ending on every sentence, at most N sentences, a
    # list, letter case, JSON only...) by constrained decoding (runtime/sysrules.py). None: the model's
    # default (the llamacpp option ``system_rules``). Never applied with tools or a response_schema.
    system_rules: bool | None = None
    # The text those rules are read from, when the system prompt also carries data: a knowledge-base answer
    # reads its prompt template, not the search results filled into it. None: the system prompt.
    rules_from: str | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]


@dataclass(frozen=True)
class ChatResult:
    message: Message
    stop_reason: StopReason
    usage: Usage
    stop_sequence: str | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolUseEvent:
    """A complete tool call; surfaces split it into start/delta/stop events as their wire format wants."""

    id: str
    name: str
    input: Mapping[str, Any]


@dataclass(frozen=True)
class StreamEnd:
    stop_reason: StopReason
    usage: Usage
    stop_sequence: str | None = None


ChatEvent = TextDelta | ToolUseEvent | StreamEnd


class ChatBackend(Protocol):
    """A loaded chat model. Implementations must be safe to call from concurrent tasks."""

    name: str
    supports_tools: bool
    supports_images: bool

    async def converse(self, req: ChatRequest) -> ChatResult:
        """Answer the conversation in one piece."""
        ...

    def converse_stream(self, req: ChatRequest) -> AsyncIterator[ChatEvent]:
        """Answer as a stream of events that ends with exactly one :class:`StreamEnd`."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    """Optional ability: count the prompt tokens a request would use, without generating."""

    async def count_tokens(self, req: ChatRequest) -> int:
        """The number of input tokens ``req`` costs on this model."""
        ...


@runtime_checkable
class Closable(Protocol):
    """Optional ability: free what a loaded model holds (threads, native memory) when the server stops."""

    def close(self) -> None:
        """Stop the model's threads and free its memory; requests still running may fail."""
        ...


EmbedPurpose = Literal["query", "document"]


class Embedder(Protocol):
    """A loaded embedding model."""

    name: str
    dimensions: int

    async def embed(self, texts: Sequence[str], purpose: EmbedPurpose = "document") -> list[list[float]]:
        """One vector of ``dimensions`` floats per text; ``purpose`` lets asymmetric models add prefixes."""
        ...


@dataclass(frozen=True)
class ModelInfo:
    """One catalog entry: what a model id means and what it can do."""

    id: str
    backend: str
    kind: Literal["chat", "embedding"]
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    provider: str = "haniwa"
    input_modalities: tuple[str, ...] = ("TEXT",)
    output_modalities: tuple[str, ...] = ("TEXT",)
    context_length: int = 4096
    streaming: bool = True
    customizations: tuple[str, ...] = ()
    description: str = ""


class Backend(Protocol):
    """A kind of model runtime ("llamacpp", "openai", "echo", ...) registered through ``register_backends``.

    ``options_model`` validates the catalog's ``options`` table (``extra="forbid"``) before ``load`` runs.
    """

    name: str
    options_model: type[BaseModel]

    def load_chat(self, info: ModelInfo, options: BaseModel, settings: Settings) -> ChatBackend:
        """Build the chat model ``info`` describes; heavy work may be deferred to the first request."""
        ...

    def load_embedder(self, info: ModelInfo, options: BaseModel, settings: Settings) -> Embedder:
        """Build the embedding model ``info`` describes."""
        ...


async def collect(stream: AsyncIterator[ChatEvent]) -> ChatResult:
    """Fold a event stream into a :class:`ChatResult` (for backends whose native API is streaming)."""
    text: list[str] = []
    blocks: list[Block] = []
    end: StreamEnd | None = None
    async for event in stream:
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, ToolUseEvent):
            if text:
                blocks.append(TextBlock("".join(text)))
                text = []
            blocks.append(ToolUseBlock(event.id, event.name, dict(event.input)))
        else:
            end = event
    if text:
        blocks.append(TextBlock("".join(text)))
    if end is None:  # a backend bug, not a client error
        raise RuntimeError("chat stream ended without a StreamEnd event")
    return ChatResult(Message("assistant", tuple(blocks)), end.stop_reason, end.usage, end.stop_sequence)
