"""``bedrock-agent-runtime`` agent operations: InvokeAgent, InvokeInlineAgent and agent memory.

Wire ↔ engine only: the orchestration is ``haniwa.agents.orchestrate``; this module resolves the alias,
loads and saves the session, runs knowledge-base lookups through the KB retrieval, and sends the loop's
events, rendered by ``bedrock_agent_trace``, as the ``completion`` event stream (``chunk``, ``trace``,
``returnControl``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

from haniwa.agents.base import AgentSnapshot, AgentSpec
from haniwa.agents.orchestrate import Orchestration, RunContext
from haniwa.agents.sessions import StoredSession, summarize
from haniwa.agents.state import ControlResult
from haniwa.agents.trace import Finished
from haniwa.api.bedrock_agent_runtime import retrieval_query
from haniwa.api.bedrock_agent_spec import build_spec
from haniwa.api.bedrock_agent_trace import TraceRenderer
from haniwa.api.bedrock_guardrails_calls import Guard, agent_trace, check, load_guard
from haniwa.api.context import Call
from haniwa.api.pagination import paginate
from haniwa.api.wire import EventStream
from haniwa.errors import ValidationError
from haniwa.knowledge.base import Hit
from haniwa.knowledge.retrieve import retrieve
from haniwa.runtime.base import ChatBackend
from haniwa.runtime.offload import CPU

__all__ = ["OPERATIONS", "control_results"]

INLINE_AGENT_ID = "INLINE"


def _now() -> dt.datetime:
    return dt.datetime.now(tz=dt.UTC)


def control_results(state: Mapping[str, Any]) -> list[ControlResult]:
    """``sessionState.returnControlInvocationResults`` → the loop's results."""
    out = []
    for member in state.get("returnControlInvocationResults") or []:
        r = member.get("functionResult") or member.get("apiResult")
        if r is None:
            raise ValidationError(
                "each returnControlInvocationResults entry needs functionResult or apiResult"
            )
        body = r.get("responseBody") or {}
        text = next((v.get("body") for v in body.values() if isinstance(v, Mapping)), None)
        out.append(
            ControlResult(
                action_group=r["actionGroup"],
                target=r.get("function") or r.get("apiPath") or "",
                body=None if text is None else str(text),
                confirmation=r.get("confirmationState"),
                failed=r.get("responseState") in ("FAILURE", "REPROMPT"),
            )
        )
    return out


def _searcher(call: Call, state: Mapping[str, Any]) -> Any:
    """KB lookups for the loop; ``sessionState.knowledgeBaseConfigurations`` may tune retrieval per KB."""
    svc = call.platform.knowledge
    per_kb = {
        c["knowledgeBaseId"]: c.get("retrievalConfiguration")
        for c in state.get("knowledgeBaseConfigurations") or []
    }

    async def search(kb_id: str, query: str) -> list[Hit]:
        kb = await svc.get_kb(kb_id)
        store = await svc.store(kb)

        async def embed_query(text: str) -> list[float]:
            return (await svc.embed(kb, [text], "query"))[0]

        return await retrieve(store, embed_query, retrieval_query(call, query, per_kb.get(kb_id)))

    return search


async def _run(
    call: Call,
    p: Mapping[str, Any],
    spec: AgentSpec,
    operation: str,
    guard: Guard | None = None,
) -> dict[str, Any]:
    platform = call.platform
    session_id = p["sessionId"]
    state_in: Mapping[str, Any] = p.get("sessionState") or {}
    results = control_results(state_in)
    question = p.get("inputText") or ""
    if not results and not question.strip():
        raise ValidationError("inputText is empty (send it, or returnControlInvocationResults to resume)")
    sessions = platform.agent_sessions
    stored = await sessions.load(spec.agent_id, spec.alias_id, session_id, spec.idle_ttl_s)
    if results and stored.state.pending is None:
        raise ValidationError("there is no pending return of control in this session to send results for")
    state = stored.state
    if "sessionAttributes" in state_in:
        state.session_attributes = dict(state_in["sessionAttributes"])
    # prompt session attributes last one turn (Bedrock): what this call sends, nothing otherwise
    state.prompt_session_attributes = dict(state_in.get("promptSessionAttributes") or {})
    resolved, backend = await platform.registry.chat(spec.model_id)
    memory_id = p.get("memoryId") if spec.memory_enabled else None
    if stored.expired is not None and stored.expired.turns and stored.memory_id and spec.memory_enabled:
        await _remember(
            call, spec, backend, stored.memory_id, session_id, stored.expired, stored.expired_created
        )
    summaries = (
        [
            m.summary
            for m in await sessions.memories(spec.agent_id, spec.alias_id, memory_id, spec.memory_days)
        ]
        if memory_id
        else []
    )
    pci = p.get("promptCreationConfigurations") or {}
    ctx = RunContext(
        backend=backend,
        functions=platform.functions,
        search=_searcher(call, state_in),
        session_id=session_id,
        max_steps=platform.settings.agent_max_steps,
        time_limit=platform.settings.agent_time_limit,
        memory=summaries,
        history_turns=pci.get("previousConversationTurnsToInclude"),
    )
    orch = Orchestration(spec, ctx, state)
    # the agent's guardrail reads the user's input before the orchestration runs, and the final answer
    inputs = await check(guard, [question], "INPUT") if guard is not None and not results else None
    if inputs is not None and inputs.intervened and not inputs.blocked:
        question = inputs.texts[0]
    if inputs is not None and inputs.blocked:
        run: AsyncIterator[Any] = _nothing()
    else:
        run = orch.resume(state_in.get("invocationId"), results) if results else orch.ask(question)
    trace_on = bool(p.get("enableTrace"))
    renderer = TraceRenderer(spec)
    end = bool(p.get("endSession"))

    def part(trace: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "agentId": spec.agent_id,
            "agentAliasId": spec.alias_id,
            "agentVersion": spec.version,
            "sessionId": session_id,
            "eventTime": _now(),
            "trace": trace,
        }

    async def events() -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
        status = "ok"
        try:
            if inputs is not None:
                if trace_on:
                    yield "trace", part(agent_trace(f"{call.request_id}-guardrail-pre-0", inputs, "INPUT"))
                if inputs.blocked:
                    yield "chunk", {"bytes": inputs.texts[0].encode("utf-8")}
            async for ev in run:
                if guard is not None and isinstance(ev, Finished):
                    checked = await check(guard, [ev.text], "OUTPUT")
                    if trace_on:
                        yield (
                            "trace",
                            part(agent_trace(f"{call.request_id}-guardrail-post-0", checked, "OUTPUT")),
                        )
                    if checked.intervened:
                        # citations point into the text as generated: they go with it
                        ev = replace(ev, text=checked.texts[0], citations=(), hits=())
                for name, payload in renderer.render(ev):
                    if name != "trace":
                        yield name, payload
                    elif trace_on:
                        yield name, part(payload)
        except BaseException:
            status = "error"
            raise
        finally:
            if end and state.pending is None:
                await sessions.end(spec.agent_id, spec.alias_id, session_id)
                if memory_id and state.turns:
                    await _remember(call, spec, backend, memory_id, session_id, state, stored.created)
            else:
                await sessions.save(
                    spec.agent_id,
                    spec.alias_id,
                    session_id,
                    StoredSession(state, stored.created, memory_id),
                    memory_id,
                )
            await platform.log_invocation(
                request_id=call.request_id,
                surface="bedrock",
                operation=operation,
                model_requested=spec.model_id,
                model_id=resolved.info.id,
                input_tokens=orch.usage.input_tokens,
                output_tokens=orch.usage.output_tokens,
                latency_ms=call.elapsed_ms(),
                status=status,
            )

    out: dict[str, Any] = {
        "sessionId": session_id,
        "contentType": "application/json",
        "completion": EventStream(events()),
    }
    if memory_id:
        out["memoryId"] = memory_id
    return out


async def _remember(
    call: Call,
    spec: AgentSpec,
    backend: ChatBackend,
    memory_id: str,
    session_id: str,
    state: Any,
    started: float | None,
) -> None:
    summary = await summarize(backend, state.turns)
    await call.platform.agent_sessions.remember(
        spec.agent_id, spec.alias_id, memory_id, session_id, summary, started or time.time()
    )


async def invoke_agent(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    snap = await call.platform.agents.resolve(p["agentId"], p["agentAliasId"])
    # off the event loop: an OpenAPI action group is a YAML document to parse
    spec = await CPU.run(build_spec, snap, p["agentAliasId"], call.platform.functions)
    return await _run(
        call, p, spec, "InvokeAgent", await _guard(call, snap.agent.get("guardrailConfiguration"))
    )


async def _guard(call: Call, cfg: Mapping[str, Any] | None) -> Guard | None:
    """An agent's ``guardrailConfiguration`` (CreateAgent/UpdateAgent, or InvokeInlineAgent's own)."""
    if not cfg:
        return None
    return await load_guard(call, cfg.get("guardrailIdentifier"), cfg.get("guardrailVersion"))


async def _nothing() -> AsyncIterator[Any]:
    """The orchestration of a turn the guardrail refused: no step runs."""
    return
    yield


async def invoke_inline_agent(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """An agent defined in the request itself; its sessions live under the agent id ``INLINE``."""
    groups = tuple(
        {**g, "actionGroupState": g.get("actionGroupState", "ENABLED")} for g in p.get("actionGroups") or []
    )
    kbs = tuple(
        {"knowledgeBaseId": k["knowledgeBaseId"], "description": k.get("description", "")}
        for k in p.get("knowledgeBases") or []
    )
    agent = {
        "agentId": INLINE_AGENT_ID,
        "agentName": p.get("agentName") or "inline-agent",
        "instruction": p.get("instruction", ""),
        "foundationModel": p["foundationModel"],
        "idleSessionTTLInSeconds": p.get("idleSessionTTLInSeconds", 600),
        "promptOverrideConfiguration": p.get("promptOverrideConfiguration"),
    }
    snap = AgentSnapshot(agent, "DRAFT", groups, kbs)
    spec = await CPU.run(build_spec, snap, INLINE_AGENT_ID, call.platform.functions)
    state = p.get("inlineSessionState") or {}
    guard = await _guard(call, p.get("guardrailConfiguration"))
    return await _run(call, {**p, "sessionState": state}, spec, "InvokeInlineAgent", guard)


async def get_agent_memory(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    await call.platform.agents.resolve(p["agentId"], p["agentAliasId"])
    records = await call.platform.agent_sessions.memories(p["agentId"], p["agentAliasId"], p["memoryId"])
    page = paginate(call, p, records, key=lambda r: r.session_id, size_member="maxItems", default_size=1000)
    return page.wire(
        "memoryContents",
        [
            {
                "sessionSummary": {
                    "memoryId": r.memory_id,
                    "sessionId": r.session_id,
                    "sessionStartTime": dt.datetime.fromtimestamp(r.started, tz=dt.UTC),
                    "sessionExpiryTime": dt.datetime.fromtimestamp(r.ended, tz=dt.UTC),
                    "summaryText": r.summary,
                }
            }
            for r in page.items
        ],
    )


async def delete_agent_memory(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    await call.platform.agents.resolve(p["agentId"], p["agentAliasId"])
    await call.platform.agent_sessions.forget(
        p["agentId"], p["agentAliasId"], p.get("memoryId"), p.get("sessionId")
    )
    return {}


OPERATIONS = {
    ("bedrock-agent-runtime", "InvokeAgent"): invoke_agent,
    ("bedrock-agent-runtime", "InvokeInlineAgent"): invoke_inline_agent,
    ("bedrock-agent-runtime", "GetAgentMemory"): get_agent_memory,
    ("bedrock-agent-runtime", "DeleteAgentMemory"): delete_agent_memory,
}
