"""The orchestration loop: ReAct steps in which the model thinks, calls one tool, observes the result,
and finally answers.

Reliability on small models comes from three choices:

* **every step is constrained** (``ChatRequest.response_schema``): the model can only write
  ``{"thought": …, "action": {"tool": <an offered tool>, "input": <that tool's schema>}}`` or
  ``{"thought": …, "action": {"tool": "final_answer", "answer": …}}`` — no invalid JSON, no unknown tool,
  no missing required argument (MODELS.md: free-form tool calls of the bundled Qwen models fail);
* **mistakes the model makes are observations**, not errors: an unknown tool, a bad argument, an action
  that raised, a repeated call — it reads what went wrong and goes on (our own bugs still raise);
* **bounded**: a step limit and a time limit end with a forced final answer instead of a loop. The time
  limit also cuts off a model, tool or knowledge-base call that runs past it; the answer is then a fixed
  apology, since there is no time left to ask the model for one.

The step format (schema, parsing, argument checks) lives in ``steps.py``.

What holds on any task, whatever the model does:

* **the knowledge bases first**: a new question is looked up in each attached knowledge base before the
  model's first step (a ``knowledgeBaseLookupInput`` in the trace), and the results sit in the user's turn,
  as RAG puts its context, since the answer may hang on facts only they hold;
* **no placeholder reaches a function** (``placeholders.py``): a value that is a parameter's own name or
  description, empty, or found neither in the conversation nor in an earlier result is refused as an
  observation; the same again ends the run with an answer that asks the user for the value (Bedrock
  agents elicit a missing parameter the same way). A value from an earlier result is fine: that is how a
  chained call (search → id → reserve) gets its input;
* **answers are checked once** (``review.py``): one that leaves out items the question named side by side,
  or items a knowledge-base result listed next to the one looked up, or an observed result, or that is not
  in the user's language, is sent back once. String arguments written with Chinese character forms or
  full-width letters are **grounded** in what the user wrote (``variants.ground``: ``铜线`` → ``銅線``).

The loop emits Bedrock-shaped trace parts (``orchestrationTrace``: modelInvocationInput/Output,
rationale, invocationInput, observation) as it goes, so a client sees each step live.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from haniwa.agents.base import (
    ActionInvocation,
    AgentEvent,
    AgentSpec,
    ChunkEvent,
    ReturnControlEvent,
    Tool,
    TraceEvent,
)
from haniwa.agents.functions import ActionError, FunctionRegistry, wire_parameters
from haniwa.agents.placeholders import find_placeholders, tool_text
from haniwa.agents.prompting import ask_user, language, observation, prompts, system_prompt
from haniwa.agents.review import complete_answer, listed_siblings, review_answer, unasked_siblings
from haniwa.agents.state import (
    ControlResult,
    Lang,
    Pending,
    PendingCall,
    SessionState,
    Turn,
    hit_record,
    record_hit,
)
from haniwa.agents.steps import (
    FINAL,
    ArgumentError,
    StepError,
    call_key,
    check_arguments,
    parse_step,
    signature,
    step_schema,
)
from haniwa.agents.variants import ground_arguments
from haniwa.errors import ValidationError
from haniwa.knowledge.base import Hit
from haniwa.knowledge.generate import cite, reference
from haniwa.runtime.base import ChatBackend, ChatRequest, InferenceParams, Message, TextBlock, Usage

__all__ = ["RunContext", "Orchestration", "OutOfTime"]

KB_RESULTS = 5
MAX_REPEATS = 2  # a second identical call ends the loop with a forced final answer
T = TypeVar("T")


@dataclass
class RunContext:
    """What a run needs from the platform. ``search(kb_id, query)``: knowledge-base retrieval."""

    backend: ChatBackend
    functions: FunctionRegistry
    search: Callable[[str, str], Awaitable[list[Hit]]]
    session_id: str
    max_steps: int = 10
    time_limit: float = 300.0
    constrained: bool = True
    memory: Sequence[str] = ()
    history_turns: int | None = None


# -- the loop ------------------------------------------------------------------------------------------
class OutOfTime(Exception):
    """The invocation's time limit passed during a model, tool or knowledge-base call."""


class Orchestration:
    """One InvokeAgent call: a new question, or the results that resume a paused one.

    ``events()`` yields trace parts as they happen, then a :class:`ChunkEvent` (the answer) or a
    :class:`ReturnControlEvent`; ``session`` is updated in place and ``usage`` sums every model call."""

    def __init__(self, spec: AgentSpec, ctx: RunContext, session: SessionState) -> None:
        self.spec, self.ctx, self.session = spec, ctx, session
        self.usage = Usage(0, 0)
        self.tools = {t.name: t for t in spec.tools}
        self._trace_base = uuid.uuid4().hex
        self._started = time.monotonic()
        self._step = 0  # the step under way, for the trace of a step cut off by the time limit

    # public entry points ------------------------------------------------------------------------------
    async def ask(self, question: str) -> AsyncIterator[AgentEvent]:
        if not question.strip():
            raise ValidationError("inputText is empty")
        self.session.pending = None  # a new question abandons a paused one
        lang = language(question)
        messages: list[dict[str, str]] = []
        turns = self.session.turns
        if self.ctx.history_turns is not None:
            turns = turns[-self.ctx.history_turns :] if self.ctx.history_turns else []
        for t in turns:
            messages += [{"role": "user", "content": t.question}, {"role": "assistant", "content": t.answer}]
        messages.append({"role": "user", "content": question})
        async for ev in self._loop(question, lang, messages, 0, [], {}, prefetch=True):
            yield ev

    async def resume(
        self, invocation_id: str | None, results: Sequence[ControlResult]
    ) -> AsyncIterator[AgentEvent]:
        pending = self.session.pending
        if pending is None:
            raise ValidationError("there is no pending return of control in this session to send results for")
        if invocation_id and invocation_id != pending.invocation_id:
            raise ValidationError(
                f"invocationId {invocation_id!r} does not match the pending one ({pending.invocation_id!r})"
            )
        p = prompts(pending.lang)
        messages, hits, seen = (
            list(pending.messages),
            [record_hit(h) for h in pending.hits],
            dict(pending.seen),
        )
        self.session.pending = None
        for call in pending.calls:
            tool = self.tools.get(call.tool)
            if tool is None:
                raise ValidationError(f"the agent no longer has the tool {call.tool!r}; start a new session")
            res = next(
                (r for r in results if r.target in (tool.function, tool.api_path, tool.name)),
                None,
            )
            if res is None:
                raise ValidationError(
                    "returnControlInvocationResults has no result for "
                    f"{tool.action_group}/{tool.function or tool.api_path}"
                )
            trace_id = self._trace_id(pending.steps)
            if res.confirmation == "DENY":
                text = p["denied"].format(name=tool.name)
            elif call.confirm and tool.execution == "LAMBDA":
                text = await self._run_action(tool, call.arguments, pending.question, p)
            elif res.failed:
                text = p["error"].format(message=res.body or "the caller reported a failure")
            else:
                text = res.body if res.body is not None else ""
            yield self._observation(trace_id, "ACTION_GROUP", {"actionGroupInvocationOutput": {"text": text}})
            seen[call_key(tool.name, call.arguments)] = text
            messages.append({"role": "user", "content": self._observed(p, tool.name, text)})
        async for ev in self._loop(pending.question, pending.lang, messages, pending.steps, hits, seen):
            yield ev

    # internals -----------------------------------------------------------------------------------------
    def _trace_id(self, step: int) -> str:
        return f"{self._trace_base}-{step}"

    def _orch(self, member: str, value: Mapping[str, Any]) -> TraceEvent:
        return TraceEvent({"orchestrationTrace": {member: value}})

    def _observation(self, trace_id: str, kind: str, body: Mapping[str, Any]) -> TraceEvent:
        return self._orch("observation", {"traceId": trace_id, "type": kind, **body})

    def _system(self, lang: Lang, question: str) -> str:
        return system_prompt(self.spec, self.session, self.ctx.memory, lang, question)

    def _known(self, messages: Sequence[Mapping[str, str]]) -> list[str]:
        """Where a call's values may come from: the conversation (its observations too), the session's
        attributes and the agent's instruction (tool descriptions are added per call)."""
        attrs = {**self.session.session_attributes, **self.session.prompt_session_attributes}
        return [
            *(m["content"] for m in messages if m["role"] == "user"),  # not the model's own steps
            *(t.answer for t in self.session.turns),
            *(f"{k}: {v}" for k, v in attrs.items()),
            self.spec.instruction,
        ]

    def _observed(self, p: Mapping[str, str], tool: str, result: str) -> str:
        return observation(self.spec, p, tool, result, result.startswith(p["error"].format(message="")))

    def _params(self) -> InferenceParams:
        ps = self.spec.prompt
        return InferenceParams(
            max_tokens=ps.max_tokens,
            temperature=ps.temperature,
            top_p=ps.top_p,
            top_k=ps.top_k,
            stop=ps.stop_sequences,
            seed=0,
        )

    async def _model(
        self,
        system: str,
        messages: list[dict[str, str]],
        step: int,
        schema: Mapping[str, Any] | None,
    ) -> AsyncIterator[TraceEvent | str]:
        """One model call; yields its two trace parts and, last, the raw text."""
        trace_id = self._trace_id(step)
        ps = self.spec.prompt
        yield self._orch(
            "modelInvocationInput",
            {
                "traceId": trace_id,
                "type": "ORCHESTRATION",
                "text": json.dumps({"system": system, "messages": messages}, ensure_ascii=False),
                "foundationModel": self.spec.model_id,
                "promptCreationMode": "OVERRIDDEN" if ps.template else "DEFAULT",
                "inferenceConfiguration": {
                    k: v
                    for k, v in {
                        "temperature": ps.temperature,
                        "topP": ps.top_p,
                        "topK": ps.top_k,
                        "maximumLength": ps.max_tokens,
                        "stopSequences": list(ps.stop_sequences),
                    }.items()
                    if v is not None
                },
            },
        )
        req = ChatRequest(
            messages=tuple(Message(m["role"], (TextBlock(m["content"]),)) for m in messages),  # type: ignore[arg-type]
            system=system,
            params=self._params(),
            response_schema=schema,
            system_reminder=False,  # the loop restates the instruction after each observation itself
        )
        started = time.monotonic()
        result = await self._bounded(self.ctx.backend.converse(req))
        u = result.usage
        self.usage = Usage(
            self.usage.input_tokens + u.input_tokens, self.usage.output_tokens + u.output_tokens
        )
        text = "".join(b.text for m in (result.message,) for b in m.content if isinstance(b, TextBlock))
        yield self._orch(
            "modelInvocationOutput",
            {
                "traceId": trace_id,
                "rawResponse": {"content": text},
                "metadata": {
                    "usage": {"inputTokens": u.input_tokens, "outputTokens": u.output_tokens},
                    "totalTimeMs": int((time.monotonic() - started) * 1000),
                },
            },
        )
        yield text

    def _schema(self, final_only: bool = False) -> dict[str, Any] | None:
        return step_schema(self.spec.tools, final_only) if self.ctx.constrained else None

    def _out_of_budget(self, steps: int) -> str | None:
        if steps >= self.ctx.max_steps:
            return f"the step limit ({self.ctx.max_steps}) was reached"
        if self._remaining() <= 0:
            return self._time_reason()
        return None

    def _remaining(self) -> float:
        return self.ctx.time_limit - (time.monotonic() - self._started)

    def _time_reason(self) -> str:
        return f"the time limit ({self.ctx.time_limit:g} s) was reached"

    async def _bounded(self, work: Awaitable[T]) -> T:
        """``work`` cut off when the invocation's time limit passes (then :class:`OutOfTime`): the limit
        holds inside a step, for one slow model or tool call, not only between steps."""
        timeout = asyncio.timeout(max(self._remaining(), 0.0))
        try:
            async with timeout:
                return await work
        except TimeoutError:
            if timeout.expired():
                raise OutOfTime(self._time_reason()) from None
            raise  # the work's own TimeoutError

    async def _loop(
        self,
        question: str,
        lang: Lang,
        messages: list[dict[str, str]],
        steps: int,
        hits: list[Hit],
        seen: dict[str, str],
        prefetch: bool = False,
    ) -> AsyncIterator[AgentEvent]:
        try:
            async for ev in self._steps(question, lang, messages, steps, hits, seen, prefetch):
                yield ev
        except OutOfTime as cut:
            # a model call ran into the limit: no time is left to ask the model for a summary
            trace_id = self._trace_id(self._step)
            yield TraceEvent({"failureTrace": {"traceId": trace_id, "failureReason": str(cut)}})
            async for ev in self._finish(question, prompts(lang)["time_answer"], hits, trace_id):
                yield ev

    async def _steps(
        self,
        question: str,
        lang: Lang,
        messages: list[dict[str, str]],
        steps: int,
        hits: list[Hit],
        seen: dict[str, str],
        prefetch: bool,
    ) -> AsyncIterator[AgentEvent]:
        p = prompts(lang)
        system = self._system(lang, question)
        repeats = 0
        checks = not self.spec.prompt.template  # an overridden template sets its own rules
        known = self._known(messages)  # where arguments may come from
        refusals: dict[str, int] = {}  # per tool: calls refused for a placeholder argument
        observed: list[str] = []  # what the knowledge bases returned in this run
        calls: list[dict[str, Any]] = []  # this run's action inputs, and those that returned a result
        results: list[tuple[dict[str, Any], str]] = []
        sent_back: set[str] = set()  # the answer checks made (each sends an answer back once)
        answer_only = False  # the step after an answer sent back for its wording may only answer
        if prefetch:  # the knowledge bases first: the answer may hang on what they hold
            for kb in (t for t in self.spec.tools if t.kind == "knowledge_base"):
                result = ""
                async for item in self._lookup(kb, question, self._trace_id(steps), hits, p):
                    if isinstance(item, str):
                        result = item
                    else:
                        yield item
                # in the user's turn, as RAG puts context: the model's first step reads the question with it
                last = messages[-1]
                messages[-1] = {
                    **last,
                    "content": last["content"] + "\n\n" + self._observed(p, kb.name, result),
                }
                known.append(result)
                observed.append(result)
                seen[call_key(kb.name, {"query": question})] = result
        while True:
            reason = self._out_of_budget(steps)
            if reason is not None:
                async for ev in self._forced_final(
                    question, lang, system, messages, steps, hits, reason, results=results
                ):
                    yield ev
                return
            trace_id = self._trace_id(steps)
            self._step = steps
            text = ""
            async for item in self._model(system, messages, steps, self._schema(answer_only)):
                if isinstance(item, str):
                    text = item
                else:
                    yield item
            steps += 1
            messages.append({"role": "assistant", "content": text})
            try:
                step = parse_step(text, p)
                if step.tool != FINAL and step.tool not in self.tools:
                    names = ", ".join(self.tools) or "(none)"
                    raise StepError(p["unknown_tool"].format(name=step.tool, names=names))
            except StepError as e:
                yield self._observation(
                    trace_id, "REPROMPT", {"repromptResponse": {"text": str(e), "source": "PARSER"}}
                )
                messages.append({"role": "user", "content": str(e)})
                continue
            if step.thought:
                yield self._orch("rationale", {"traceId": trace_id, "text": step.thought})
            if step.tool == FINAL:
                problem = None
                if checks and "items" not in sent_back:
                    asked, listed = (
                        unasked_siblings(question, calls),
                        listed_siblings(question, calls, observed),
                    )
                    if asked or listed:  # one of several things asked for was not looked up: tools stay open
                        sent_back.add("items")
                        problem = p["answer_unasked" if asked else "answer_listed"].format(
                            items=", ".join(asked or listed)
                        )
                if checks and not problem and "answer" not in sent_back:
                    problem = review_answer(step.answer, lang, results, p)
                    if problem:  # the results are in hand: the next step may only answer
                        sent_back.add("answer")
                        answer_only = True
                if problem:
                    # the rejected answer leaves the conversation: small models copy their last step
                    messages.pop()
                    yield self._observation(
                        trace_id, "REPROMPT", {"repromptResponse": {"text": problem, "source": "PARSER"}}
                    )
                    messages.append({"role": "user", "content": problem})
                    continue
                answer = complete_answer(step.answer, results) if "answer" in sent_back else step.answer
                async for ev in self._finish(question, answer, hits, trace_id):
                    yield ev
                return
            answer_only = False
            tool = self.tools[step.tool]
            try:
                args = ground_arguments(tool, check_arguments(tool, step.arguments), known)
            except ArgumentError as e:
                msg = p["bad_arguments"].format(name=tool.name, message=e, params=signature(tool))
                yield self._observation(
                    trace_id, "REPROMPT", {"repromptResponse": {"text": msg, "source": "PARSER"}}
                )
                messages.append({"role": "user", "content": msg})
                continue
            if tool.kind == "action":
                ph = find_placeholders(tool, args, [*known, tool_text(tool)])
                args = ph.arguments
                if ph.refused:  # never sent: asked to use the user's own value, or to ask for it
                    refusals[tool.name] = refusals.get(tool.name, 0) + 1
                    if refusals[tool.name] >= MAX_REPEATS:  # told once already: ask the user
                        async for ev in self._finish(question, ask_user(p, tool, ph.refused), hits, trace_id):
                            yield ev
                        return
                    msg = p["placeholder"].format(name=tool.name, params=", ".join(ph.refused))
                    yield self._observation(
                        trace_id, "REPROMPT", {"repromptResponse": {"text": msg, "source": "PARSER"}}
                    )
                    messages.append({"role": "user", "content": msg})
                    continue
            key = call_key(tool.name, args)
            if key in seen:  # small models loop: answer from memory and say so, without running it again
                repeats += 1
                if repeats >= MAX_REPEATS:  # told once already: stop the loop with what it has
                    reason = f"the model repeated {tool.name} with the same input {repeats} times"
                    async for ev in self._forced_final(
                        question, lang, system, messages, steps, hits, reason, p["enough"], results
                    ):
                        yield ev
                    return
                observation = p["repeated_call"].format(name=tool.name, result=seen[key])
                yield self._observation(
                    trace_id, "REPROMPT", {"repromptResponse": {"text": observation, "source": "PARSER"}}
                )
                messages.append({"role": "user", "content": observation})
                continue
            if tool.kind == "knowledge_base":
                text = ""
                async for found in self._lookup(tool, args["query"], trace_id, hits, p):
                    if isinstance(found, str):
                        text = found
                    else:
                        yield found
            elif tool.execution == "RETURN_CONTROL" or tool.require_confirmation:
                yield self._pause(question, lang, messages, steps, tool, args, hits, seen, trace_id)
                return
            else:
                yield self._invocation(tool, args, trace_id)
                text = await self._run_action(tool, args, question, p)
                yield self._observation(
                    trace_id, "ACTION_GROUP", {"actionGroupInvocationOutput": {"text": text}}
                )
                calls.append(args)
                if not text.startswith(p["error"].format(message="")):
                    results.append((args, text))
            seen[key] = text
            if tool.kind == "knowledge_base" and text in observed:
                # the same passages as an earlier search: say so instead of showing them again, so the
                # next step turns to the functions (or answers) rather than searching in circles
                messages.append({"role": "user", "content": p["nothing_new"].format(name=tool.name)})
                continue
            known.append(text)
            if tool.kind == "knowledge_base":
                observed.append(text)
            messages.append({"role": "user", "content": self._observed(p, tool.name, text)})

    async def _lookup(
        self, tool: Tool, query: str, trace_id: str, hits: list[Hit], p: Mapping[str, str]
    ) -> AsyncIterator[TraceEvent | str]:
        assert tool.kb_id is not None
        yield self._orch(
            "invocationInput",
            {
                "traceId": trace_id,
                "invocationType": "KNOWLEDGE_BASE",
                "knowledgeBaseLookupInput": {"knowledgeBaseId": tool.kb_id, "text": query},
            },
        )
        try:
            found = (await self._bounded(self.ctx.search(tool.kb_id, query)))[:KB_RESULTS]
        except OutOfTime as cut:
            yield p["error"].format(message=cut)
            return
        yield self._observation(
            trace_id,
            "KNOWLEDGE_BASE",
            {"knowledgeBaseLookupOutput": {"retrievedReferences": [reference(h) for h in found]}},
        )
        known = {h.chunk.id for h in hits}
        hits += [h for h in found if h.chunk.id not in known]
        yield "\n\n".join(f"[{i + 1}] {h.chunk.text}" for i, h in enumerate(found)) or p["no_results"]

    def _invocation(
        self, tool: Tool, args: Mapping[str, Any], trace_id: str, invocation_id: str | None = None
    ) -> TraceEvent:
        agi: dict[str, Any] = {
            "actionGroupName": tool.action_group,
            "executionType": tool.execution,
        }
        if invocation_id:
            agi["invocationId"] = invocation_id
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
        return self._orch(
            "invocationInput",
            {"traceId": trace_id, "invocationType": "ACTION_GROUP", "actionGroupInvocationInput": agi},
        )

    async def _run_action(
        self, tool: Tool, args: Mapping[str, Any], question: str, p: Mapping[str, str]
    ) -> str:
        assert tool.executor is not None
        call = ActionInvocation(
            tool=tool,
            arguments=args,
            agent=self.spec,
            session_id=self.ctx.session_id,
            input_text=question,
            session_attributes=self.session.session_attributes,
            prompt_session_attributes=self.session.prompt_session_attributes,
        )
        try:
            return await self._bounded(self.ctx.functions.executor(tool.executor)(call))
        except OutOfTime as cut:  # the function goes on in its thread; its result is not awaited
            return p["error"].format(message=cut)
        except Exception as e:  # the user's function failed: the model reads why and carries on
            return p["error"].format(
                message=f"{type(e).__name__}: {e}" if not isinstance(e, ActionError) else e
            )

    def _pause(
        self,
        question: str,
        lang: Lang,
        messages: list[dict[str, str]],
        steps: int,
        tool: Tool,
        args: dict[str, Any],
        hits: list[Hit],
        seen: dict[str, str],
        trace_id: str,
    ) -> ReturnControlEvent:
        invocation_id = str(uuid.uuid4())
        confirm = tool.require_confirmation
        self.session.pending = Pending(
            invocation_id=invocation_id,
            question=question,
            lang=lang,
            messages=messages,
            steps=steps,
            calls=[PendingCall(tool.name, args, confirm)],
            hits=[hit_record(h) for h in hits],
            seen=seen,
        )
        kind = (
            "USER_CONFIRMATION_AND_RESULT"
            if confirm and tool.execution == "RETURN_CONTROL"
            else "USER_CONFIRMATION"
            if confirm
            else "RESULT"
        )
        if tool.function is not None:
            member: dict[str, Any] = {
                "functionInvocationInput": {
                    "actionGroup": tool.action_group,
                    "function": tool.function,
                    "parameters": wire_parameters(tool, args),
                    "actionInvocationType": kind,
                    "agentId": self.spec.agent_id,
                }
            }
        else:
            body = wire_parameters(tool, args, body=True)
            api: dict[str, Any] = {
                "actionGroup": tool.action_group,
                "apiPath": tool.api_path,
                "httpMethod": tool.http_method,
                "parameters": wire_parameters(tool, args, body=False),
                "actionInvocationType": kind,
                "agentId": self.spec.agent_id,
            }
            if body:
                api["requestBody"] = {"content": {"application/json": {"properties": body}}}
            member = {"apiInvocationInput": api}
        return ReturnControlEvent(invocation_id, [member])

    async def _finish(
        self, question: str, answer: str, hits: list[Hit], trace_id: str
    ) -> AsyncIterator[AgentEvent]:
        clean, citations = cite(answer, hits) if hits else (answer, [])
        yield self._observation(trace_id, "FINISH", {"finalResponse": {"text": clean}})
        self.session.turns.append(Turn(question, clean))
        yield ChunkEvent(clean, tuple(c for c in citations if c.refs), tuple(hits))

    async def _forced_final(
        self,
        question: str,
        lang: Lang,
        system: str,
        messages: list[dict[str, str]],
        steps: int,
        hits: list[Hit],
        reason: str,
        nudge: str | None = None,
        results: Sequence[tuple[Mapping[str, Any], str]] = (),
    ) -> AsyncIterator[AgentEvent]:
        """End the run with an answer: the model's, asked for one now; when it cannot give one (out of time,
        or it asks for yet another call, as unconstrained small models do), the apology. Either way every
        result the functions returned and the answer leaves out is reported on a line of its own: what was
        found is never thrown away because the loop ran out of steps."""
        p = prompts(lang)
        trace_id = self._trace_id(steps)
        yield TraceEvent({"failureTrace": {"traceId": trace_id, "failureReason": reason}})
        answer = p["time_answer"]  # what is said when no time is left to ask the model
        if self._remaining() > 0:
            text = ""
            ask = {"role": "user", "content": nudge or p["limit"]}
            try:
                async for item in self._model(system, [*messages, ask], steps, self._schema(final_only=True)):
                    if isinstance(item, str):
                        text = item
                    else:
                        yield item
                step = parse_step(text, p)
                answer = step.answer if step.tool == FINAL and step.answer.strip() else p["limit_answer"]
            except StepError:
                answer = p["limit_answer"]
            except OutOfTime:
                pass
        if results and answer in (p["limit_answer"], p["time_answer"]):
            answer = p["limit_found"]
        answer = complete_answer(answer, results)
        async for ev in self._finish(question, answer, hits, trace_id):
            yield ev
