"""The agent engine's vocabulary: what an agent is once resolved for a run, what a tool is and how an action
is executed (the events a run emits are in ``trace.py``).

The API layer stores agents as the wire configuration the client sent (``AgentSnapshot``);
``haniwa.api.bedrock_agent_spec.build_spec`` turns a snapshot into an :class:`AgentSpec`, the only thing the
orchestration loop reads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "DRAFT",
    "TEST_ALIAS_ID",
    "AgentSnapshot",
    "Parameter",
    "Tool",
    "KnowledgeBaseRef",
    "PromptSettings",
    "AgentSpec",
    "ActionInvocation",
    "ActionExecutor",
    "AgentFunction",
    "FunctionStyle",
]

DRAFT = "DRAFT"
# Bedrock's built-in test alias: it always runs the prepared DRAFT.
TEST_ALIAS_ID = "TSTALIASID"


@dataclass(frozen=True)
class AgentSnapshot:
    """An agent frozen at one version, as wire dicts: ``agent`` holds the CreateAgent/UpdateAgent fields
    (plus ``agentId``), ``action_groups`` the CreateAgentActionGroup fields (plus ``actionGroupId``),
    ``knowledge_bases`` the AssociateAgentKnowledgeBase fields."""

    agent: Mapping[str, Any]
    version: str
    action_groups: tuple[Mapping[str, Any], ...] = ()
    knowledge_bases: tuple[Mapping[str, Any], ...] = ()


ParamType = Literal["string", "number", "integer", "boolean", "array"]


@dataclass(frozen=True)
class Parameter:
    name: str
    type: ParamType
    description: str = ""
    required: bool = False
    # OpenAPI only: where the value goes ("path", "query", "header", "body").
    location: str = "body"


@dataclass(frozen=True)
class Tool:
    """One thing the model may call. ``name`` is what the model sees (unique within an agent)."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    kind: Literal["action", "knowledge_base"] = "action"
    action_group: str = ""
    function: str | None = None  # function-schema action groups
    api_path: str | None = None  # OpenAPI action groups
    http_method: str | None = None
    # LAMBDA: run by a registered executor named ``executor``; RETURN_CONTROL: handed to the caller.
    execution: Literal["LAMBDA", "RETURN_CONTROL"] = "LAMBDA"
    executor: str | None = None
    require_confirmation: bool = False
    kb_id: str | None = None

    def input_schema(self) -> dict[str, Any]:
        """The JSON schema the model's arguments are constrained to."""
        props: dict[str, Any] = {}
        for p in self.parameters:
            s: dict[str, Any] = {"type": p.type}
            if p.type == "array":
                s["items"] = {"type": "string"}
            if p.description:
                s["description"] = p.description
            props[p.name] = s
        return {
            "type": "object",
            "properties": props,
            "required": [p.name for p in self.parameters if p.required],
            "additionalProperties": False,
        }


@dataclass(frozen=True)
class KnowledgeBaseRef:
    kb_id: str
    description: str


@dataclass(frozen=True)
class PromptSettings:
    """The ORCHESTRATION prompt: a template override (``None``: the bundled data file for the question's
    language) and its inference configuration."""

    template: str | None = None
    temperature: float | None = 0.0
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int = 512
    stop_sequences: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentSpec:
    agent_id: str
    alias_id: str
    version: str
    name: str
    instruction: str
    model_id: str
    tools: tuple[Tool, ...] = ()
    knowledge_bases: tuple[KnowledgeBaseRef, ...] = ()
    prompt: PromptSettings = field(default_factory=PromptSettings)
    idle_ttl_s: int = 600
    memory_enabled: bool = False
    memory_days: int = 30


@dataclass(frozen=True)
class ActionInvocation:
    """One action call, as an executor receives it. ``arguments`` are typed (coerced to the parameters'
    types); ``session_attributes`` may be changed by the executor and are kept for the session."""

    tool: Tool
    arguments: Mapping[str, Any]
    agent: AgentSpec
    session_id: str
    input_text: str
    session_attributes: dict[str, str]
    prompt_session_attributes: dict[str, str]


class ActionExecutor(Protocol):
    """Runs a LAMBDA action; returns the text the model observes. Raising is fine: the loop turns the
    exception into an observation."""

    async def __call__(self, call: ActionInvocation) -> str: ...


# "kwargs": fn(**arguments) → any JSON-able value or str. "lambda": fn(event) with Bedrock's Lambda input
# event, returning Bedrock's Lambda response shape — so existing Lambda handlers run unchanged.
FunctionStyle = Literal["kwargs", "lambda"]


@dataclass(frozen=True)
class AgentFunction:
    """A Python callable registered under a name (our stand-in for a Lambda ARN). Sync or async."""

    name: str
    fn: Callable[..., Any] | Callable[..., Awaitable[Any]]
    style: FunctionStyle = "kwargs"
