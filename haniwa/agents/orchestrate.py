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

The step format (schema, parsing, argument checks) lives in ``steps.py``, the wording the model reads in
``prompting.py`` and ``prompts/<lang>.toml``.

What holds on any task, whatever the model does:

* **the knowledge bases first**: a new question is looked up in each attached knowledge base before the
  model's first step (a :class:`~haniwa.agents.trace.KnowledgeLookup` event), and the results sit in the
  user's turn, as RAG puts its context, since the answer may hang on facts only they hold; passages far
  below the best one (:data:`KB_RELEVANCE_SHARE`) are left out, so an unrelated note is not taken for an item;
* **no placeholder reaches a function** (``placeholders.py``): a value that is a parameter's own name or
  description, empty, or found neither in the conversation nor in an earlier result is refused as an
  observation; the same again ends the run with an answer that asks the user for the value (Bedrock
  agents elicit a missing parameter the same way). A value from an earlier result is fine: that is how a
  chained call (search → id → reserve) gets its input;
* **answers are checked** (``review.py``): one that leaves out items the question named side by side, or
  items a knowledge-base result listed next to the one looked up, goes back (again after each call that
  follows, while items are left); one given right after a result that holds a required input of a tool
  not called yet (search → id → reserve) goes back once, pointed at that call; one that leaves out an
  observed result, or that is not in the user's language, goes back once. String arguments written with
  Chinese character forms or full-width letters are **grounded** in what the user wrote
  (``variants.ground``: ``铜线`` → ``銅線``).

The loop emits domain events as it goes (``trace.py``: the model's input and output, its rationale, each
call and what it returned, reprompts, failures, the answer), so a client sees each step live; the API
renders them in Bedrock's trace shapes. A call's result is an :class:`Outcome`, which says whether it
failed: the loop never reads that from the text the model is shown.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from haniwa.agents.base import ActionInvocation, AgentSpec, Tool
from haniwa.agents.functions import ActionError, FunctionRegistry
from haniwa.agents.placeholders import find_placeholders, self_described, tool_text
from haniwa.agents.prompting import ask_user, language, observation, prompts, system_prompt
from haniwa.agents.review import AnswerReview, complete_answer, group_members, listed_siblings
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
    Step,
    StepError,
    call_key,
    check_arguments,
    parse_step,
    signature,
    step_schema,
)
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
from haniwa.agents.variants import ground_arguments
from haniwa.errors import ValidationError
from haniwa.knowledge.base import Hit
from haniwa.knowledge.generate import cite
from haniwa.runtime.base import ChatBackend, ChatRequest, InferenceParams, Message, TextBlock, Usage

__all__ = ["RunContext", "Orchestration", "OutOfTime", "Outcome"]

KB_RESULTS = 5
# A passage scoring under this share of the best one is left out of what the model reads: retrieval
# always fills its k results, and a small model takes any name in an unrelated passage for one more item
# to act on (a tea note in a robot factory's knowledge base became a stock lookup for "Green tea").
# Scores are in [0, 1]; a fused HYBRID score puts the unrelated tail near 0, a SEMANTIC one keeps it close.
KB_RELEVANCE_SHARE = 0.3
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


class OutOfTime(Exception):
    """The invocation's time limit passed during a model, tool or knowledge-base call."""


@dataclass(frozen=True)
class Outcome:
    """What a call gave the model to observe: its result, or (``failed``) what went wrong, worded for the
    model. ``hits``: the passages a knowledge-base search found."""

    text: str
    failed: bool = False
    hits: Sequence[Hit] = ()

    @classmethod
    def failure(cls, p: Mapping[str, str], message: object) -> Outcome:
        return cls(p["error"].format(message=message), failed=True)


@dataclass(frozen=True)
class _Retry:
    """A step not carried out: ``text`` tells the model why (a reprompt); ``drop``: the step leaves the
    conversation (small models copy their last step)."""

    text: str
    drop: bool = False


@dataclass(frozen=True)
class _Stop:
    """A step that ends the run: with ``answer``, or with a forced final answer for ``reason``."""

    answer: str | None = None
    reason: str = ""
    nudge: str | None = None


@dataclass
class _Run:
    """One run of the loop (a new question, or a paused one resumed) and all it has gathered."""

    question: str
    lang: Lang
    system: str
    messages: list[dict[str, str]]
    steps: int  # model steps so far in the session's run: the step under way has this number
    hits: list[Hit]  # every knowledge-base passage found, for the answer's citations
    seen: dict[str, str]  # call_key → what the call returned
    known: list[str]  # where argument values may come from (see Orchestration._known)
    review: AnswerReview
    observed: list[str] = field(default_factory=list)  # what the knowledge bases returned
    calls: list[dict[str, Any]] = field(default_factory=list)  # the actions' inputs
    call_tools: list[str] = field(default_factory=list)  # and their tools
    results: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # and what succeeded
    done: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)  # (tool, input, result)
    refusals: dict[str, int] = field(default_factory=dict)  # per tool: calls refused for a placeholder
    repeats: int = 0  # calls repeated with the same input
    # the tools the next step may call, after an answer sent back (None: any; empty: it may only answer)
    only: tuple[str, ...] | None = None

    @property
    def p(self) -> dict[str, str]:
        return prompts(self.lang)


class Orchestration:
    """One InvokeAgent call: a new question, or the results that resume a paused one.

    :meth:`ask` and :meth:`resume` yield :mod:`~haniwa.agents.trace` events as they happen, ending with
    :class:`~haniwa.agents.trace.Finished` or :class:`~haniwa.agents.trace.ReturnControl`; ``session``
    is updated in place and ``usage`` sums every model call."""

    def __init__(self, spec: AgentSpec, ctx: RunContext, session: SessionState) -> None:
        self.spec, self.ctx, self.session = spec, ctx, session
        self.usage = Usage(0, 0)
        self.tools = {t.name: t for t in spec.tools}
        self._started = time.monotonic()

    # public entry points ------------------------------------------------------------------------------
    async def ask(self, question: str) -> AsyncIterator[AgentEvent]:
        if not question.strip():
            raise ValidationError("inputText is empty")
        self.session.pending = None  # a new question abandons a paused one
        messages: list[dict[str, str]] = []
        turns = self.session.turns
        if self.ctx.history_turns is not None:
            turns = turns[-self.ctx.history_turns :] if self.ctx.history_turns else []
        for t in turns:
            messages += [{"role": "user", "content": t.question}, {"role": "assistant", "content": t.answer}]
        messages.append({"role": "user", "content": question})
        run = self._run(question, language(question), messages, 0, [], {})
        async for ev in self._loop(run, prefetch=True):
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
        messages, seen = list(pending.messages), dict(pending.seen)
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
            if res.confirmation == "DENY":
                outcome = Outcome(p["denied"].format(name=tool.name))
            elif call.confirm and tool.execution == "LAMBDA":
                outcome = await self._run_action(tool, call.arguments, pending.question, p)
            elif res.failed:
                outcome = Outcome.failure(p, res.body or "the caller reported a failure")
            else:
                outcome = Outcome(res.body if res.body is not None else "")
            yield ActionObserved(pending.steps, outcome.text, outcome.failed)
            seen[call_key(tool.name, call.arguments)] = outcome.text
            messages.append({"role": "user", "content": self._observed(p, tool.name, outcome)})
        hits = [record_hit(h) for h in pending.hits]
        run = self._run(pending.question, pending.lang, messages, pending.steps, hits, seen)
        async for ev in self._loop(run):
            yield ev

    # the loop --------------------------------------------------------------------------------------------
    def _run(
        self,
        question: str,
        lang: Lang,
        messages: list[dict[str, str]],
        steps: int,
        hits: list[Hit],
        seen: dict[str, str],
    ) -> _Run:
        # the system prompt and the known values are read once, before any call of this run
        system = system_prompt(self.spec, self.session, self.ctx.memory, lang, question)
        required = {
            t.name: tuple(p.name for p in t.parameters if p.required)
            for t in self.spec.tools
            if t.kind == "action"
        }
        review = AnswerReview(enabled=not self.spec.prompt.template, params=required)
        return _Run(question, lang, system, messages, steps, hits, seen, self._known(messages), review)

    async def _loop(self, run: _Run, prefetch: bool = False) -> AsyncIterator[AgentEvent]:
        try:
            if prefetch:
                async for ev in self._prefetch(run):
                    yield ev
            async for ev in self._steps(run):
                yield ev
        except OutOfTime as cut:
            # a model call ran into the limit: no time is left to ask the model for a summary, but what the
            # functions returned is not thrown away: each result on a line of its own, else the apology
            yield Failure(run.steps, str(cut))
            answer = (
                complete_answer(run.p["limit_found"], run.results) if run.results else run.p["time_answer"]
            )
            async for ev in self._finish(run, answer, run.steps):
                yield ev

    async def _prefetch(self, run: _Run) -> AsyncIterator[AgentEvent]:
        """The knowledge bases first: the answer may hang on what they hold. Their results go in the
        user's turn, as RAG puts context: the model's first step reads the question with them."""
        for kb in (t for t in self.spec.tools if t.kind == "knowledge_base"):
            yield KnowledgeLookup(run.steps, kb, run.question)
            outcome = await self._search(run, kb, run.question)
            if not outcome.failed:
                yield KnowledgeFound(run.steps, outcome.hits)
            last = run.messages[-1]
            observed = self._observed(run.p, kb.name, outcome)
            run.messages[-1] = {**last, "content": last["content"] + "\n\n" + observed}
            run.known.append(outcome.text)
            run.observed.append(outcome.text)
            run.seen[call_key(kb.name, {"query": run.question})] = outcome.text

    async def _steps(self, run: _Run) -> AsyncIterator[AgentEvent]:
        """Model step after model step, until an answer, a pause or the end of the budget. A step the model
        gets wrong is not carried out: the model is told why (a reprompt) and tries again."""
        while (reason := self._out_of_budget(run.steps)) is None:
            n = run.steps
            model_in = ModelInput(n, run.system, tuple(run.messages))
            yield model_in
            model_out = await self._converse(model_in, self._schema(run.only))
            yield model_out
            run.steps += 1
            run.messages.append({"role": "assistant", "content": model_out.text})
            step = self._parse(run, model_out.text)
            if isinstance(step, _Retry):
                yield self._retry(run, n, step)
                continue
            if step.thought:
                yield Rationale(n, step.thought)
            if step.tool == FINAL:
                sent_back = run.review.check(
                    step.answer,
                    run.question,
                    run.lang,
                    run.calls,
                    run.observed,
                    run.results,
                    run.p,
                    run.call_tools,
                    self._last_result(run),
                )
                if sent_back is not None:
                    run.only = () if run.only == () else sent_back.tools
                    yield self._retry(run, n, _Retry(sent_back.text, drop=True))
                    continue
                async for ev in self._finish(run, run.review.final(step.answer, run.results), n):
                    yield ev
                return
            run.only = None
            tool = self.tools[step.tool]
            args = self._check_call(run, tool, step.arguments)
            if isinstance(args, _Retry):
                yield self._retry(run, n, args)
                continue
            if isinstance(args, _Stop):
                if args.answer is not None:
                    events = self._finish(run, args.answer, n)
                else:
                    events = self._forced_final(run, args.reason, args.nudge)
                async for ev in events:
                    yield ev
                return
            if tool.kind == "knowledge_base":
                yield KnowledgeLookup(n, tool, args["query"])
                outcome = await self._search(run, tool, args["query"])
                if not outcome.failed:
                    yield KnowledgeFound(n, outcome.hits)
            elif tool.execution == "RETURN_CONTROL" or tool.require_confirmation:
                yield self._pause(run, tool, args)
                return
            else:
                yield ActionInvoked(n, tool, args)
                outcome = await self._run_action(tool, args, run.question, run.p)
                yield ActionObserved(n, outcome.text, outcome.failed)
                run.calls.append(args)
                run.call_tools.append(tool.name)
                if not outcome.failed:
                    run.results.append((args, outcome.text))
                    run.done.append((tool.name, args, outcome.text))
            self._observe(run, tool, args, outcome)
            if tool.kind == "action" and outcome.failed:
                self._expand_group(run, tool, args)
        async for ev in self._forced_final(run, reason):
            yield ev

    # one step's parts ----------------------------------------------------------------------------------
    def _parse(self, run: _Run, text: str) -> Step | _Retry:
        try:
            step = parse_step(text, run.p)
        except StepError as e:
            return _Retry(str(e))
        if step.tool != FINAL and step.tool not in self.tools:
            names = ", ".join(self.tools) or "(none)"
            return _Retry(run.p["unknown_tool"].format(name=step.tool, names=names))
        return step

    def _retry(self, run: _Run, step: int, retry: _Retry) -> Reprompt:
        if retry.drop:
            run.messages.pop()
        run.messages.append({"role": "user", "content": retry.text})
        return Reprompt(step, retry.text)

    def _check_call(
        self, run: _Run, tool: Tool, arguments: Mapping[str, Any]
    ) -> dict[str, Any] | _Retry | _Stop:
        """The call's arguments, checked, grounded in the conversation and free of placeholders; or why
        it is not made. A second refusal for a placeholder asks the user for the value; a second repeat of
        a call ends the run."""
        p = run.p
        try:
            args = ground_arguments(tool, check_arguments(tool, arguments), run.known)
        except ArgumentError as e:
            return _Retry(p["bad_arguments"].format(name=tool.name, message=e, params=signature(tool)))
        if tool.kind == "action":
            ph = find_placeholders(tool, args, [*run.known, tool_text(tool)])
            args = ph.arguments
            if ph.refused:  # never sent: asked to use the user's own value, or to ask for it
                run.refusals[tool.name] = run.refusals.get(tool.name, 0) + 1
                if run.refusals[tool.name] >= MAX_REPEATS:
                    return _Stop(answer=ask_user(p, tool, ph.refused))
                return _Retry(p["placeholder"].format(name=tool.name, params=", ".join(ph.refused)))
        elif self_described(tool, args):  # a search for "what to look for": not a search, not run
            # what is left to do instead: the items a result listed beside the ones looked up (the step
            # limit bounds a model that keeps trying). The step leaves the conversation, as small models
            # copy their last step; with items left, the next step may call the tools that took their
            # siblings, or answer
            text = p["placeholder_query"].format(name=tool.name)
            listed = listed_siblings(run.question, run.calls, run.observed)
            used = tuple(dict.fromkeys(t for t in run.call_tools if t in self.tools))
            if listed:
                names = ", ".join(used) or p["the_tool"]
                text += "\n" + p["answer_listed"].format(items=", ".join(listed), tools=names)
                run.only = used or None
            return _Retry(text, drop=True)
        key = call_key(tool.name, args)
        if key in run.seen:  # small models loop: answer from memory and say so, without running it again
            run.repeats += 1
            if run.repeats >= MAX_REPEATS:
                reason = f"the model repeated {tool.name} with the same input {run.repeats} times"
                return _Stop(reason=reason, nudge=p["enough"])
            return _Retry(p["repeated_call"].format(name=tool.name, result=run.seen[key]))
        return args

    def _observe(self, run: _Run, tool: Tool, args: Mapping[str, Any], outcome: Outcome) -> None:
        """What a call returned, into the conversation and what the run knows."""
        run.seen[call_key(tool.name, args)] = outcome.text
        if tool.kind == "knowledge_base" and outcome.text in run.observed:
            # the same passages as an earlier search: say so instead of showing them again, so the next
            # step turns to the functions (or answers) rather than searching in circles
            run.messages.append({"role": "user", "content": run.p["nothing_new"].format(name=tool.name)})
            return
        run.known.append(outcome.text)
        if tool.kind == "knowledge_base":
            run.observed.append(outcome.text)
        run.messages.append({"role": "user", "content": self._observed(run.p, tool.name, outcome)})

    def _expand_group(self, run: _Run, tool: Tool, args: Mapping[str, Any]) -> None:
        """After a call failed on a value the knowledge base lists the members of ("Office Bundle:
        monitor, keyboard"), the observation says so: the tool may take the members one by one."""
        for value in (v for v in args.values() if isinstance(v, str)):
            members = group_members(value, run.observed)
            if members:
                hint = run.p["group_members"].format(value=value, items=", ".join(members), name=tool.name)
                last = run.messages[-1]
                run.messages[-1] = {**last, "content": last["content"] + "\n" + hint}
                return

    def _last_result(self, run: _Run) -> list[tuple[str, dict[str, Any], str]]:
        """The last call's (tool, result) when it succeeded: what an answer given right now follows."""
        last_ok = bool(run.calls) and bool(run.results) and run.results[-1][0] is run.calls[-1]
        return run.done[-1:] if last_ok else []

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

    def _observed(self, p: Mapping[str, str], tool: str, outcome: Outcome) -> str:
        return observation(self.spec, p, tool, outcome.text, outcome.failed)

    # calls ---------------------------------------------------------------------------------------------
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

    def _schema(self, only: tuple[str, ...] | None = None) -> dict[str, Any] | None:
        return step_schema(self.spec.tools, only) if self.ctx.constrained else None

    async def _converse(self, model_in: ModelInput, schema: Mapping[str, Any] | None) -> ModelOutput:
        """One model call (within the time limit); adds its usage to the invocation's."""
        req = ChatRequest(
            messages=tuple(Message(m["role"], (TextBlock(m["content"]),)) for m in model_in.messages),  # type: ignore[arg-type]
            system=model_in.system,
            params=self._params(),
            response_schema=schema,
            system_reminder=False,  # the loop restates the instruction after each observation itself
            system_rules=False,  # the loop's own step format, not the instruction's, shapes each reply
        )
        started = time.monotonic()
        result = await self._bounded(self.ctx.backend.converse(req))
        u = result.usage
        self.usage = Usage(
            self.usage.input_tokens + u.input_tokens, self.usage.output_tokens + u.output_tokens
        )
        text = "".join(b.text for b in result.message.content if isinstance(b, TextBlock))
        return ModelOutput(model_in.step, text, u, int((time.monotonic() - started) * 1000))

    async def _search(self, run: _Run, tool: Tool, query: str) -> Outcome:
        assert tool.kb_id is not None
        try:
            found = (await self._bounded(self.ctx.search(tool.kb_id, query)))[:KB_RESULTS]
        except OutOfTime as cut:
            return Outcome.failure(run.p, cut)
        if found:
            floor = KB_RELEVANCE_SHARE * max(h.score for h in found)
            found = [h for h in found if h.score >= floor]
        known = {h.chunk.id for h in run.hits}
        run.hits += [h for h in found if h.chunk.id not in known]
        text = "\n\n".join(f"[{i + 1}] {h.chunk.text}" for i, h in enumerate(found)) or run.p["no_results"]
        return Outcome(text, hits=tuple(found))

    async def _run_action(
        self, tool: Tool, args: Mapping[str, Any], question: str, p: Mapping[str, str]
    ) -> Outcome:
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
            return Outcome(await self._bounded(self.ctx.functions.executor(tool.executor)(call)))
        except OutOfTime as cut:  # the function goes on in its thread; its result is not awaited
            return Outcome.failure(p, cut)
        except ActionError as e:
            return Outcome.failure(p, e)
        except Exception as e:  # the user's function failed: the model reads why and carries on
            return Outcome.failure(p, f"{type(e).__name__}: {e}")

    # budget --------------------------------------------------------------------------------------------
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

    # endings -------------------------------------------------------------------------------------------
    def _pause(self, run: _Run, tool: Tool, args: dict[str, Any]) -> ReturnControl:
        invocation_id = str(uuid.uuid4())
        confirm = tool.require_confirmation
        self.session.pending = Pending(
            invocation_id=invocation_id,
            question=run.question,
            lang=run.lang,
            messages=run.messages,
            steps=run.steps,
            calls=[PendingCall(tool.name, args, confirm)],
            hits=[hit_record(h) for h in run.hits],
            seen=run.seen,
        )
        return ReturnControl(invocation_id, (ControlCall(tool, args, confirm),))

    async def _finish(self, run: _Run, answer: str, step: int) -> AsyncIterator[AgentEvent]:
        clean, citations = cite(answer, run.hits) if run.hits else (answer, [])
        self.session.turns.append(Turn(run.question, clean))
        yield Finished(step, clean, tuple(c for c in citations if c.refs), tuple(run.hits))

    async def _forced_final(
        self, run: _Run, reason: str, nudge: str | None = None
    ) -> AsyncIterator[AgentEvent]:
        """End the run with an answer: the model's, asked for one now; when it cannot give one (out of time,
        or it asks for yet another call, as unconstrained small models do), the apology. Either way every
        result the functions returned and the answer leaves out is reported on a line of its own: what was
        found is never thrown away because the loop ran out of steps."""
        p, n = run.p, run.steps
        yield Failure(n, reason)
        answer: str | None = None  # the model's, when it gives one
        timed_out = self._remaining() <= 0
        if not timed_out:
            model_in = ModelInput(
                n, run.system, (*run.messages, {"role": "user", "content": nudge or p["limit"]})
            )
            yield model_in
            try:
                model_out = await self._converse(model_in, self._schema(only=()))
            except OutOfTime:
                timed_out = True
            else:
                yield model_out
                answer = _final_answer(model_out.text, p)
        if answer is None:  # what was found, else the apology
            answer = p["limit_found"] if run.results else p["time_answer" if timed_out else "limit_answer"]
        async for ev in self._finish(run, complete_answer(answer, run.results), n):
            yield ev


def _final_answer(text: str, p: Mapping[str, str]) -> str | None:
    """The answer in a model's step, if it is a final answer with some text."""
    try:
        step = parse_step(text, p)
    except StepError:
        return None
    return step.answer if step.tool == FINAL and step.answer.strip() else None
