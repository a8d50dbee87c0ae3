"""What a run of the orchestration loop emits, as it happens: domain events, not wire shapes.

Each event names the ``step`` it belongs to (the model step under way, counted from 0 over a session's
paused and resumed runs). The API renders them in Bedrock's shapes (``haniwa.api.bedrock_agent_trace``);
a benchmark or a test can read them as they are. A run ends with :class:`Finished` (the answer) or
:class:`ReturnControl` (a call handed to the caller).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from haniwa.agents.base import Tool
from haniwa.knowledge.base import Hit
from haniwa.knowledge.generate import Citation
from haniwa.runtime.base import Usage

__all__ = [
    "ModelInput",
    "ModelOutput",
    "Rationale",
    "KnowledgeLookup",
    "KnowledgeFound",
    "ActionInvoked",
    "ActionObserved",
    "Reprompt",
    "Failure",
    "Finished",
    "ControlCall",
    "ReturnControl",
    "AgentEvent",
]


@dataclass(frozen=True)
class ModelInput:
    """The model is asked for a step: the system prompt and the conversation it reads."""

    step: int
    system: str
    messages: Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class ModelOutput:
    """The model's raw reply to :class:`ModelInput`, what it cost and how long it took."""

    step: int
    text: str
    usage: Usage
    elapsed_ms: int


@dataclass(frozen=True)
class Rationale:
    """The thought the model wrote before its action."""

    step: int
    text: str


@dataclass(frozen=True)
class KnowledgeLookup:
    """A knowledge-base search is about to run (``tool.kb_id``)."""

    step: int
    tool: Tool
    query: str


@dataclass(frozen=True)
class KnowledgeFound:
    """The passages a knowledge-base search found (absent when the time limit cut the search off)."""

    step: int
    hits: Sequence[Hit]


@dataclass(frozen=True)
class ActionInvoked:
    """An action is about to run with these (checked and grounded) arguments."""

    step: int
    tool: Tool
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class ActionObserved:
    """What an action returned, as the model reads it; ``failed``: it raised or reported a failure, and
    ``text`` says so."""

    step: int
    text: str
    failed: bool = False


@dataclass(frozen=True)
class Reprompt:
    """A step the loop did not carry out (invalid, unknown tool, bad or placeholder arguments, a repeat,
    an answer sent back): ``text`` is what the model is told instead."""

    step: int
    text: str


@dataclass(frozen=True)
class Failure:
    """The run stops short (step or time limit, a loop): ``reason`` says why."""

    step: int
    reason: str


@dataclass(frozen=True)
class Finished:
    """The final answer; ``citations`` map its sentences to the knowledge-base ``hits`` it used."""

    step: int
    text: str
    citations: Sequence[Citation] = ()
    hits: Sequence[Hit] = ()


@dataclass(frozen=True)
class ControlCall:
    """A call handed to the caller: a RETURN_CONTROL action, whose result the caller sends, or (``confirm``,
    requireConfirmation) one the user must allow first."""

    tool: Tool
    arguments: Mapping[str, Any]
    confirm: bool


@dataclass(frozen=True)
class ReturnControl:
    """The run pauses until the caller answers ``calls`` under ``invocation_id``."""

    invocation_id: str
    calls: Sequence[ControlCall]


AgentEvent = (
    ModelInput
    | ModelOutput
    | Rationale
    | KnowledgeLookup
    | KnowledgeFound
    | ActionInvoked
    | ActionObserved
    | Reprompt
    | Failure
    | Finished
    | ReturnControl
)
