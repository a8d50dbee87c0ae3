"""Guardrails where Bedrock applies them inside other calls: InvokeModel (+ stream), Converse (+ stream),
RetrieveAndGenerate (+ stream) and InvokeAgent. The wire modules ask this one to load the guardrail a
call names, check its input before the model runs, and check its output before it reaches the client;
the detectors themselves are ``haniwa.guardrails.apply`` (through :func:`_run_policy`, the one place that
calls them) and the assessments are rendered as ApplyGuardrail renders them.

Streams are checked in pieces, as Bedrock does: text is buffered up to a sentence end (。！？, a newline,
or ``.``/``!``/``?`` before a space) or 1,000 characters (one text unit), and each piece is checked
before it is sent (``sync``/``SYNCHRONOUS``, the default) or right after (``async``/``ASYNCHRONOUS``:
sent at once, never masked, the stream stops when a piece is blocked)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

from haniwa.api.bedrock_guardrails import _assessment, _gid, _units, policy_of, topic_judge
from haniwa.api.context import Call
from haniwa.errors import NotFoundError, ValidationError
from haniwa.guardrails.apply import apply
from haniwa.guardrails.base import Grounding, Policy, Source, Verdict
from haniwa.guardrails.judge import TopicJudge
from haniwa.runtime.base import ChatEvent, ChatRequest, StreamEnd, TextBlock, TextDelta, Usage
from haniwa.runtime.offload import CPU

__all__ = [
    "NOT_FOUND",
    "Guard",
    "Checked",
    "OutputGuard",
    "load_guard",
    "check",
    "blocked_events",
    "guard_tags",
    "converse_trace",
    "invoke_trace",
    "agent_trace",
    "acted",
    "check_converse_input",
    "check_request_input",
    "converse_grounding",
    "request_grounding",
]

# what Bedrock answers when a call names a guardrail (or version) that does not exist
NOT_FOUND = "The guardrail identifier or version provided in the request does not exist."
_INLINE_CHARS = 4_000  # longer texts are checked off the event loop (a few ms inline at most)
_PIECE_CHARS = 1000  # a stream is checked at least once per text unit
_SENTENCE_END = re.compile(r"[。！？\n]|[.!?](?=\s)")
Trace = Literal["enabled", "disabled", "enabled_full"]


@dataclass(frozen=True)
class Guard:
    """A guardrail version as one call applies it."""

    id: str
    version: str
    policy: Policy
    trace: Trace = "disabled"
    asynchronous: bool = False
    judge: TopicJudge | None = None  # HANIWA_GUARDRAIL_JUDGE, for denied topics the detector is unsure of

    @property
    def traced(self) -> bool:
        return self.trace != "disabled"


@dataclass(frozen=True)
class Checked:
    """One check: ``texts`` are what goes on (masked where the policy anonymizes, the originals
    otherwise; the blocked message alone when ``blocked``); ``assessment`` is the wire
    ``GuardrailAssessment`` with its ``invocationMetrics``."""

    verdict: Verdict
    texts: tuple[str, ...]
    assessment: dict[str, Any]
    latency_ms: float

    @property
    def blocked(self) -> bool:
        return self.verdict.blocked

    @property
    def intervened(self) -> bool:
        return self.verdict.intervened


async def load_guard(
    call: Call,
    identifier: str | None,
    version: str | None,
    trace: str | None = None,
    mode: str | None = None,
) -> Guard | None:
    """The guardrail a call names (None when it names none). A missing guardrail or version is the
    ValidationException Bedrock answers, not a 404."""
    if not identifier:
        return None
    if not isinstance(identifier, str) or not isinstance(version, str | None):
        raise ValidationError("a guardrail identifier and version are strings")
    if not version:
        raise ValidationError("guardrailVersion is required when a guardrail identifier is given")
    try:
        g = await call.platform.guardrails.get(_gid(identifier), version)
    except (NotFoundError, ValidationError) as exc:
        raise ValidationError(NOT_FOUND) from exc
    t = (trace or "disabled").lower()
    if t not in ("enabled", "disabled", "enabled_full"):
        raise ValidationError(f"guardrail trace must be enabled, disabled or enabled_full, not {trace!r}")
    asynchronous = (mode or "").lower() in ("async", "asynchronous")
    policy = policy_of(g.spec)
    judge = topic_judge(call) if policy.topics else None
    return Guard(g.id, g.version, policy, cast(Trace, t), asynchronous, judge)


def _run_policy(
    policy: Policy,
    texts: Sequence[str],
    source: Source,
    grounding: Grounding | None = None,
    judge: TopicJudge | None = None,
) -> Verdict:
    return apply(policy, texts, source, grounding, judge)


async def check(
    guard: Guard, texts: Sequence[str], source: Source, grounding: Grounding | None = None
) -> Checked:
    """Run ``guard`` over ``texts`` as ``source``; ``grounding`` (the grounding source and query of the
    call) feeds the contextual grounding filters, on output checks."""
    started = time.perf_counter()
    chars = sum(len(t) for t in texts)
    if grounding is not None and not (grounding.sources or grounding.queries):
        grounding = None
    if chars > _INLINE_CHARS or guard.policy.semantic:
        # long texts, and any embedding detector (content filters, topics, grounding): off the event loop
        verdict = await CPU.run(_run_policy, guard.policy, texts, source, grounding, guard.judge)
    else:
        verdict = _run_policy(guard.policy, texts, source, grounding)
    policy = guard.policy
    assessment = _assessment(policy, list(verdict.findings), guard.trace == "enabled_full")
    latency = (time.perf_counter() - started) * 1000
    assessment["invocationMetrics"] = {
        "guardrailProcessingLatency": int(latency),
        "usage": {
            "topicPolicyUnits": 0,
            "contentPolicyUnits": 0,
            "wordPolicyUnits": _units(chars, bool(policy.words or policy.profanity)),
            "sensitiveInformationPolicyUnits": _units(chars, bool(policy.pii)),
            "sensitiveInformationPolicyFreeUnits": _units(chars, bool(policy.regexes)),
            "contextualGroundingPolicyUnits": _units(chars, bool(policy.grounding and grounding)),
        },
        "guardrailCoverage": {"textCharacters": {"guarded": chars, "total": chars}},
    }
    out = verdict.outputs if verdict.intervened else tuple(texts)
    return Checked(verdict, out, assessment, latency)


def guard_tags(suffix: str, kind: str = "guardContent") -> re.Pattern[str]:
    """InvokeModel's input tags: ``<amazon-bedrock-guardrails-guardContent_{suffix}>…</…>`` (``kind``
    ``groundingSource`` and ``query`` tag the grounding source and the query)."""
    tag = f"amazon-bedrock-guardrails-{kind}_" + re.escape(suffix)
    return re.compile(f"<{tag}>(.*?)</{tag}>", re.DOTALL)


async def blocked_events(message: str) -> AsyncIterator[ChatEvent]:
    """What a stream answers in place of the model when the input is blocked: the message, no usage."""
    yield TextDelta(message)
    yield StreamEnd("end_turn", Usage(0, 0))


def _cut(buffer: str) -> int:
    """How much of ``buffer`` makes a piece to check now (0: keep buffering)."""
    ends = [m.end() for m in _SENTENCE_END.finditer(buffer)]
    if ends:
        return ends[-1]
    return _PIECE_CHARS if len(buffer) >= _PIECE_CHARS else 0


@dataclass
class OutputGuard:
    """Checks one model's output, whole (:meth:`text`) or streamed (:meth:`stream`), and keeps what the
    trace reports: every output assessment, the model's own text and whether the guardrail acted.
    ``grounding`` is the call's grounding source and query: each checked text (a stream's each piece,
    as Bedrock checks each chunk) is held to them by the contextual grounding filters."""

    guard: Guard
    grounding: Grounding | None = None
    assessments: list[dict[str, Any]] = field(default_factory=list)
    model_output: list[str] = field(default_factory=list)
    intervened: bool = False
    blocked: bool = False
    latency_ms: float = 0.0

    async def text(self, text: str) -> str:
        """``text`` as the client may see it (masked, or the blocked message)."""
        checked = await check(self.guard, [text], "OUTPUT", self.grounding)
        self._note(checked, text)
        return checked.texts[0] if checked.texts else ""

    def _note(self, checked: Checked, original: str) -> None:
        self.assessments.append(checked.assessment)
        self.model_output.append(original)
        self.latency_ms += checked.latency_ms
        self.intervened = self.intervened or checked.intervened
        self.blocked = self.blocked or checked.blocked

    async def stream(self, events: AsyncIterator[ChatEvent]) -> AsyncIterator[ChatEvent]:
        """``events`` with their text checked piece by piece; a blocked piece ends the stream (and the
        generation: the model's stream is closed) after the blocked message (sync mode)."""
        buffer, sent = "", 0
        async with aclosing(events) as source:  # type: ignore[type-var]
            async for ev in source:
                if isinstance(ev, TextDelta):
                    if self.guard.asynchronous:
                        sent += 1
                        yield ev
                    buffer += ev.text
                    cut = _cut(buffer)
                    if not cut:
                        continue
                    piece, buffer = buffer[:cut], buffer[cut:]
                    async for out in self._piece(piece):
                        sent += 1
                        yield out
                    if self.blocked:
                        yield StreamEnd("end_turn", Usage(0, sent))
                        return
                    continue
                if buffer:
                    piece, buffer = buffer, ""
                    async for out in self._piece(piece):
                        yield out
                    if self.blocked:
                        end = ev.usage if isinstance(ev, StreamEnd) else Usage(0, sent)
                        yield StreamEnd("end_turn", end)
                        return
                yield ev

    async def _piece(self, piece: str) -> AsyncIterator[TextDelta]:
        checked = await check(self.guard, [piece], "OUTPUT", self.grounding)
        self._note(checked, piece)
        if self.guard.asynchronous:
            return  # already sent; a block only stops what follows
        out = checked.texts[0] if checked.texts else ""
        if out:
            yield TextDelta(out)


def converse_trace(guard: Guard, inputs: Checked | None, outputs: OutputGuard | None) -> dict[str, Any]:
    """Converse's ``trace.guardrail`` (``GuardrailTraceAssessment``)."""
    out: dict[str, Any] = {}
    if outputs is not None and outputs.intervened:
        out["modelOutput"] = ["".join(outputs.model_output)]
    if inputs is not None:
        out["inputAssessment"] = {guard.id: inputs.assessment}
    if outputs is not None and outputs.assessments:
        out["outputAssessments"] = {guard.id: outputs.assessments}
    reason = _reason(inputs, outputs)
    if reason:
        out["actionReason"] = reason
    return out


def _reason(inputs: Checked | None, outputs: OutputGuard | None) -> str | None:
    if (inputs and inputs.blocked) or (outputs and outputs.blocked):
        return "Guardrail blocked."
    if (inputs and inputs.intervened) or (outputs and outputs.intervened):
        return "Guardrail masked."
    return None


def invoke_trace(guard: Guard, inputs: Checked | None, outputs: OutputGuard | None) -> dict[str, Any]:
    """InvokeModel's ``amazon-bedrock-trace`` member: ``{"guardrail": {"input": …, "outputs": […]}}``."""
    out: dict[str, Any] = {}
    if outputs is not None and outputs.intervened:
        out["modelOutput"] = ["".join(outputs.model_output)]
    if inputs is not None:
        out["input"] = {guard.id: inputs.assessment}
    if outputs is not None:
        out["outputs"] = [{guard.id: a} for a in outputs.assessments]
    return {"guardrail": out}


def acted(inputs: Checked | None, outputs: OutputGuard | None) -> bool:
    return bool((inputs and inputs.intervened) or (outputs and outputs.intervened))


def agent_trace(trace_id: str, checked: Checked, source: Source) -> dict[str, Any]:
    """InvokeAgent's ``guardrailTrace`` for one check (assessments without invocation metrics, which
    the agent-runtime shape does not carry)."""
    assessment = {k: v for k, v in checked.assessment.items() if k != "invocationMetrics"}
    key = "inputAssessments" if source == "INPUT" else "outputAssessments"
    return {
        "guardrailTrace": {
            "traceId": trace_id,
            "action": "INTERVENED" if checked.intervened else "NONE",
            key: [assessment],
        }
    }


# -- Converse: which texts the guardrail reads ------------------------------------------------------
Where = tuple[str, int, int]  # ("messages", message, block) or ("system", block, 0)


def _guarded_block(block: Any) -> bool:
    qualifiers = set(block.get("qualifiers") or ())
    return not qualifiers or "guard_content" in qualifiers


def _converse_targets(params: Any) -> list[tuple[Where, str]]:
    """The texts Bedrock guards in a Converse request: only the ``guardContent`` blocks (of the
    messages and the system prompt) when there are any, otherwise the text of every message."""
    messages = params.get("messages") or []
    system = params.get("system") or []
    tagged = any("guardContent" in c for m in messages for c in m.get("content", ())) or any(
        "guardContent" in s for s in system
    )
    out: list[tuple[Where, str]] = []
    for i, m in enumerate(messages):
        for j, c in enumerate(m.get("content", ())):
            if tagged:
                text = (c.get("guardContent") or {}).get("text") or {}
                if isinstance(text.get("text"), str) and _guarded_block(text):
                    out.append((("messages", i, j), text["text"]))
            elif isinstance(c.get("text"), str):
                out.append((("messages", i, j), c["text"]))
    if tagged:
        for j, s in enumerate(system):
            text = (s.get("guardContent") or {}).get("text") or {}
            if isinstance(text.get("text"), str) and _guarded_block(text):
                out.append((("system", j, 0), text["text"]))
    return out


def converse_grounding(params: Any) -> Grounding:
    """The grounding source and query of a Converse request: the text of its ``guardContent`` blocks
    (messages and system) qualified ``grounding_source`` / ``query`` (several are joined, as Bedrock
    joins them)."""
    blocks = [c for m in params.get("messages") or [] for c in m.get("content", ())]
    blocks += list(params.get("system") or [])
    texts = [(c.get("guardContent") or {}).get("text") or {} for c in blocks if "guardContent" in c]

    def having(q: str) -> tuple[str, ...]:
        return tuple(
            t["text"] for t in texts if isinstance(t.get("text"), str) and q in (t.get("qualifiers") or ())
        )

    return Grounding(having("grounding_source"), having("query"))


def _put(params: dict[str, Any], where: Where, text: str) -> None:
    part, i, j = where
    block = params["system"][i] if part == "system" else params["messages"][i]["content"][j]
    if "guardContent" in block:
        block["guardContent"] = {"text": {**block["guardContent"]["text"], "text": text}}
    else:
        block["text"] = text


async def check_converse_input(guard: Guard, params: dict[str, Any]) -> tuple[Checked, dict[str, Any] | None]:
    """Check a Converse request's guarded texts; the second value is the request with the masked texts in
    place (None when nothing was masked)."""
    targets = _converse_targets(params)
    checked = await check(guard, [t for _, t in targets], "INPUT")
    if checked.blocked or not checked.intervened:
        return checked, None
    masked = {
        **params,
        "messages": [{**m, "content": [dict(c) for c in m["content"]]} for m in params["messages"]],
        "system": [dict(s) for s in params.get("system") or []],
    }
    for (where, _), text in zip(targets, checked.texts, strict=True):
        _put(masked, where, text)
    return checked, masked


# -- InvokeModel: the prompt, or only its tagged parts -----------------------------------------------
def _request_texts(req: ChatRequest) -> list[str]:
    texts = [req.system] if req.system else []
    return texts + [b.text for m in req.messages for b in m.content if isinstance(b, TextBlock)]


def _with_texts(req: ChatRequest, texts: Sequence[str]) -> ChatRequest:
    it = iter(texts)
    system = next(it) if req.system else req.system
    messages = tuple(
        replace(m, content=tuple(TextBlock(next(it)) if isinstance(b, TextBlock) else b for b in m.content))
        for m in req.messages
    )
    return replace(req, system=system, messages=messages)


def request_grounding(req: ChatRequest, suffix: str | None) -> Grounding:
    """The grounding source and query of an InvokeModel prompt: the text inside its
    ``amazon-bedrock-guardrails-groundingSource_{suffix}`` and ``…-query_{suffix}`` tags."""
    if not suffix:
        return Grounding((), ())
    texts = _request_texts(req)
    source, query = guard_tags(suffix, "groundingSource"), guard_tags(suffix, "query")
    return Grounding(
        tuple(m.group(1) for t in texts for m in source.finditer(t)),
        tuple(m.group(1) for t in texts for m in query.finditer(t)),
    )


def _untag(req: ChatRequest, suffix: str) -> ChatRequest:
    """``req`` with the grounding-source and query tags taken out (their text stays)."""
    tags = [guard_tags(suffix, "groundingSource"), guard_tags(suffix, "query")]

    def plain(t: str) -> str:
        for tag in tags:
            t = tag.sub(lambda m: m.group(1), t)
        return t

    texts = _request_texts(req)
    out = [plain(t) for t in texts]
    return req if out == texts else _with_texts(req, out)


async def check_request_input(
    guard: Guard, req: ChatRequest, suffix: str | None
) -> tuple[Checked, ChatRequest]:
    """Check an InvokeModel prompt: only the text inside the guard-content tags named by ``suffix``
    when it has any, otherwise all of it. The request returned has the tags taken out (their text
    stays) and the masked texts in place; the model never sees a tag (grounding-source and query tags
    included: read them first with :func:`request_grounding`)."""
    if suffix:
        req = _untag(req, suffix)
    texts = _request_texts(req)
    pattern = guard_tags(suffix) if suffix else None
    tagged = pattern is not None and any(pattern.search(t) for t in texts)
    if not tagged or pattern is None:
        checked = await check(guard, texts, "INPUT")
        masked = checked.intervened and not checked.blocked
        return checked, _with_texts(req, checked.texts) if masked else req
    guarded = [m.group(1) for t in texts for m in pattern.finditer(t)]
    checked = await check(guard, guarded, "INPUT")
    outputs = iter(checked.texts if checked.intervened and not checked.blocked else guarded)
    return checked, _with_texts(req, [pattern.sub(lambda _m: next(outputs), t) for t in texts])
