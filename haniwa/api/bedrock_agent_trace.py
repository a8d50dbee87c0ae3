"""The orchestration loop's events (``haniwa.agents.trace``) in Bedrock's InvokeAgent shapes: ``Trace``
members (``orchestrationTrace``, ``failureTrace``), the answer's ``PayloadPart`` and ``ReturnControlPayload``.

Trace ids are ``<one id per invocation>-<step>``, so every part of a step shares its id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from haniwa.agents.base import AgentSpec, Tool
from haniwa.agents.functions import wire_parameters
from haniwa.agents.trace import (
    ActionInvoked,
    ActionObserved,
    AgentEvent,
    ControlCall,
    Failure,
    Finished,
    KnowledgeFound,
    KnowledgeLookup,
    ModelInput,
    ModelOutput,
    Rationale,
    Reprompt,
    ReturnControl,
)
from haniwa.api.bedrock_agent_runtime import citation_wire
from haniwa.knowledge.generate import reference

__all__ = ["TraceRenderer", "Member"]

Member = tuple[Literal["trace", "chunk", "returnControl"], dict[str, Any]]
"""One event-stream member of the ``completion`` stream: its name and payload."""


class TraceRenderer:
    """Renders one invocation's events for ``spec``'s agent."""

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec
        self._base = uuid.uuid4().hex

    def render(self, ev: AgentEvent) -> list[Member]:
        """The ``completion`` members for ``ev``: trace parts (sent only with enableTrace), the answer's
        chunk, or the return of control."""
        if isinstance(ev, Finished):
            return [self._observation(ev.step, "FINISH", {"finalResponse": {"text": ev.text}}), _chunk(ev)]
        if isinstance(ev, ReturnControl):
            inputs = [self._control_input(c) for c in ev.calls]
            return [("returnControl", {"invocationId": ev.invocation_id, "invocationInputs": inputs})]
        if isinstance(ev, Failure):
            return [("trace", {"failureTrace": {"traceId": self._id(ev.step), "failureReason": ev.reason}})]
        return [self._orchestration(ev)]

    def _id(self, step: int) -> str:
        return f"{self._base}-{step}"

    def _orch(self, member: str, value: Mapping[str, Any]) -> Member:
        return ("trace", {"orchestrationTrace": {member: value}})

    def _observation(self, step: int, kind: str, body: Mapping[str, Any]) -> Member:
        return self._orch("observation", {"traceId": self._id(step), "type": kind, **body})

    def _orchestration(
        self,
        ev: ModelInput
        | ModelOutput
        | Rationale
        | KnowledgeLookup
        | KnowledgeFound
        | ActionInvoked
        | ActionObserved
        | Reprompt,
    ) -> Member:
        trace_id = self._id(ev.step)
        if isinstance(ev, ModelInput):
            return self._orch("modelInvocationInput", self._model_input(ev))
        if isinstance(ev, ModelOutput):
            u = ev.usage
            return self._orch(
                "modelInvocationOutput",
                {
                    "traceId": trace_id,
                    "rawResponse": {"content": ev.text},
                    "metadata": {
                        "usage": {"inputTokens": u.input_tokens, "outputTokens": u.output_tokens},
                        "totalTimeMs": ev.elapsed_ms,
                    },
                },
            )
        if isinstance(ev, Rationale):
            return self._orch("rationale", {"traceId": trace_id, "text": ev.text})
        if isinstance(ev, KnowledgeLookup):
            lookup = {"knowledgeBaseId": ev.tool.kb_id, "text": ev.query}
            return self._orch(
                "invocationInput",
                {"traceId": trace_id, "invocationType": "KNOWLEDGE_BASE", "knowledgeBaseLookupInput": lookup},
            )
        if isinstance(ev, KnowledgeFound):
            refs = [reference(h) for h in ev.hits]
            return self._observation(
                ev.step, "KNOWLEDGE_BASE", {"knowledgeBaseLookupOutput": {"retrievedReferences": refs}}
            )
        if isinstance(ev, ActionInvoked):
            return self._orch(
                "invocationInput",
                {
                    "traceId": trace_id,
                    "invocationType": "ACTION_GROUP",
                    "actionGroupInvocationInput": _action_input(ev.tool, ev.arguments),
                },
            )
        if isinstance(ev, ActionObserved):
            return self._observation(
                ev.step, "ACTION_GROUP", {"actionGroupInvocationOutput": {"text": ev.text}}
            )
        return self._observation(
            ev.step, "REPROMPT", {"repromptResponse": {"text": ev.text, "source": "PARSER"}}
        )

    def _model_input(self, ev: ModelInput) -> dict[str, Any]:
        ps = self.spec.prompt
        config = {
            "temperature": ps.temperature,
            "topP": ps.top_p,
            "topK": ps.top_k,
            "maximumLength": ps.max_tokens,
            "stopSequences": list(ps.stop_sequences),
        }
        return {
            "traceId": self._id(ev.step),
            "type": "ORCHESTRATION",
            "text": json.dumps({"system": ev.system, "messages": list(ev.messages)}, ensure_ascii=False),
            "foundationModel": self.spec.model_id,
            "promptCreationMode": "OVERRIDDEN" if ps.template else "DEFAULT",
            "inferenceConfiguration": {k: v for k, v in config.items() if v is not None},
        }

    def _control_input(self, call: ControlCall) -> dict[str, Any]:
        tool, args = call.tool, call.arguments
        kind = (
            "USER_CONFIRMATION_AND_RESULT"
            if call.confirm and tool.execution == "RETURN_CONTROL"
            else "USER_CONFIRMATION"
            if call.confirm
            else "RESULT"
        )
        if tool.function is not None:
            return {
                "functionInvocationInput": {
                    "actionGroup": tool.action_group,
                    "function": tool.function,
                    "parameters": wire_parameters(tool, args),
                    "actionInvocationType": kind,
                    "agentId": self.spec.agent_id,
                }
            }
        api: dict[str, Any] = {
            "actionGroup": tool.action_group,
            "apiPath": tool.api_path,
            "httpMethod": tool.http_method,
            "parameters": wire_parameters(tool, args, body=False),
            "actionInvocationType": kind,
            "agentId": self.spec.agent_id,
        }
        body = wire_parameters(tool, args, body=True)
        if body:
            api["requestBody"] = {"content": {"application/json": {"properties": body}}}
        return {"apiInvocationInput": api}


def _action_input(tool: Tool, args: Mapping[str, Any]) -> dict[str, Any]:
    agi: dict[str, Any] = {"actionGroupName": tool.action_group, "executionType": tool.execution}
    if tool.function is not None:
        agi["function"] = tool.function
        agi["parameters"] = wire_parameters(tool, args)
    else:
        agi["apiPath"] = tool.api_path
        agi["verb"] = (tool.http_method or "").lower()
        agi["parameters"] = wire_parameters(tool, args, body=False)
        body = wire_parameters(tool, args, body=True)
        if body:
            agi["requestBody"] = {"content": {"application/json": body}}
    return agi


def _chunk(ev: Finished) -> Member:
    chunk: dict[str, Any] = {"bytes": ev.text.encode("utf-8")}
    if ev.citations:
        chunk["attribution"] = {"citations": [citation_wire(c, ev.hits) for c in ev.citations]}
    return ("chunk", chunk)
