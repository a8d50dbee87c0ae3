"""Guardrails on the wire: ``bedrock`` Create/Get/Update/List/DeleteGuardrail and CreateGuardrailVersion,
and ``bedrock-runtime`` ApplyGuardrail. Wire configuration ↔ ``haniwa.guardrails`` rules, nothing more.

Every policy configuration the service model allows is accepted and stored (GetGuardrail returns it in
the output shapes, which the service model names: ``wordsConfig`` → ``words``, ``tierConfig`` → ``tier``).
ApplyGuardrail enforces the word, sensitive-information, content (including PROMPT_ATTACK), denied-topic
and contextual-grounding policies; automated reasoning is stored and not enforced."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
import weakref
from collections.abc import Mapping
from typing import Any, cast

from botocore.model import ListShape, Shape, StructureShape

from haniwa.api.context import Call
from haniwa.api.pagination import paginate
from haniwa.errors import ValidationError
from haniwa.guardrails.apply import apply, detectors
from haniwa.guardrails.base import (
    ContentRule,
    Finding,
    Grounding,
    GroundingRule,
    PiiRule,
    Policy,
    RegexRule,
    Source,
    TopicRule,
    WordRule,
)
from haniwa.guardrails.judge import TopicJudge
from haniwa.guardrails.service import DRAFT, GuardrailRecord, GuardrailService
from haniwa.runtime.base import ChatRequest, ChatResult
from haniwa.runtime.offload import CPU

__all__ = ["OPERATIONS", "policy_of", "guardrail_arn", "SEMANTIC_MAX_CHARS"]

# the members of CreateGuardrail/UpdateGuardrail that make up a guardrail's configuration
_SPEC_MEMBERS = (
    "name",
    "description",
    "topicPolicyConfig",
    "contentPolicyConfig",
    "wordPolicyConfig",
    "sensitiveInformationPolicyConfig",
    "contextualGroundingPolicyConfig",
    "automatedReasoningPolicyConfig",
    "crossRegionConfig",
    "blockedInputMessaging",
    "blockedOutputsMessaging",
    "kmsKeyId",
    "tags",
)
_ASSESSED = {"BLOCK": "BLOCKED", "ANONYMIZE": "ANONYMIZED", "NONE": "NONE"}
_UNIT_CHARS = 1000  # Bedrock bills a text unit per 1,000 characters
# texts up to this size are checked on the event loop (about a millisecond); longer ones off it
_INLINE_CHARS = 20_000
# the embedding detectors cost one e5 call per 160 characters (~50 ms): a call that guards more than
# this with content filters, topics or grounding is refused instead of holding the CPU for minutes
SEMANTIC_MAX_CHARS = 50_000


def _service(call: Call) -> GuardrailService:
    return call.platform.guardrails


def guardrail_arn(call: Call, gid: str) -> str:
    return f"arn:aws:bedrock:{call.platform.settings.region}:000000000000:guardrail/{gid}"


def _gid(identifier: str) -> str:
    """An id, or the id in an ARN (``…:guardrail/<id>``)."""
    return identifier.rsplit("guardrail/", 1)[-1]


def _ts(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


# -- wire configuration → rules ----------------------------------------------------------------------
def _directed(cfg: Mapping[str, Any], default: str) -> dict[str, Any]:
    base = cfg.get("action", default)
    return {
        "input_action": cfg.get("inputAction", base),
        "output_action": cfg.get("outputAction", base),
        "input_enabled": cfg.get("inputEnabled", True),
        "output_enabled": cfg.get("outputEnabled", True),
    }


def _content(cfg: Mapping[str, Any]) -> tuple[ContentRule, ...]:
    return tuple(
        ContentRule(
            type=f["type"],
            input_strength=f.get("inputStrength", "NONE"),
            output_strength=f.get("outputStrength", "NONE"),
            **_directed(f, "BLOCK"),
        )
        for f in cfg.get("filtersConfig", ())
    )


def _topics(cfg: Mapping[str, Any]) -> tuple[TopicRule, ...]:
    return tuple(
        TopicRule(
            name=t["name"],
            definition=t.get("definition", ""),
            examples=tuple(t.get("examples") or ()),
            **_directed(t, "BLOCK"),
        )
        for t in cfg.get("topicsConfig", ())
    )


def _grounding(cfg: Mapping[str, Any]) -> tuple[GroundingRule, ...]:
    return tuple(
        GroundingRule(f["type"], float(f["threshold"]), f.get("action", "BLOCK"), f.get("enabled", True))
        for f in cfg.get("filtersConfig", ())
    )


def policy_of(spec: Mapping[str, Any]) -> Policy:
    """The enforced part of a stored configuration (everything but automated reasoning)."""
    words_cfg = spec.get("wordPolicyConfig") or {}
    sens_cfg = spec.get("sensitiveInformationPolicyConfig") or {}
    words = tuple(WordRule(text=w["text"], **_directed(w, "BLOCK")) for w in words_cfg.get("wordsConfig", ()))
    profanity = next(
        (
            WordRule(**_directed(m, "BLOCK"))
            for m in words_cfg.get("managedWordListsConfig", ())
            if m["type"] == "PROFANITY"
        ),
        None,
    )
    pii = tuple(
        PiiRule(type=p["type"], **_directed(p, p["action"])) for p in sens_cfg.get("piiEntitiesConfig", ())
    )
    regexes = tuple(
        RegexRule(name=r["name"], pattern=r["pattern"], **_directed(r, r["action"]))
        for r in sens_cfg.get("regexesConfig", ())
    )
    return Policy(
        words,
        profanity,
        pii,
        regexes,
        spec.get("blockedInputMessaging", ""),
        spec.get("blockedOutputsMessaging", ""),
        _content(spec.get("contentPolicyConfig") or {}),
        _topics(spec.get("topicPolicyConfig") or {}),
        _grounding(spec.get("contextualGroundingPolicyConfig") or {}),
    )


def _spec(p: Mapping[str, Any]) -> dict[str, Any]:
    spec = {k: p[k] for k in _SPEC_MEMBERS if k in p}
    detectors(policy_of(spec))  # compiles every regex now: a bad one is a ValidationException here
    return spec


# -- stored configuration → GetGuardrail's output shapes ---------------------------------------------
def _shaped(value: Any, shape: Shape) -> Any:
    """``value`` (an input ``…Config`` structure) fitted to an output ``shape``: each member is taken
    from the same name or the name + ``Config`` (the service model's convention), the rest dropped."""
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        out = {}
        for name, member in shape.members.items():
            got = value.get(name, value.get(name + "Config"))
            if got is not None:
                out[name] = _shaped(got, member)
        return out
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_shaped(v, shape.member) for v in value]
    return value


def _get_wire(call: Call, g: GuardrailRecord) -> dict[str, Any]:
    out_shape = cast(StructureShape, call.op.model.output_shape)
    out: dict[str, Any] = {
        "name": g.name,
        "description": g.description,
        "guardrailId": g.id,
        "guardrailArn": guardrail_arn(call, g.id),
        "version": g.version,
        "status": "READY",
        "createdAt": _ts(g.created),
        "updatedAt": _ts(g.updated),
        "blockedInputMessaging": g.spec.get("blockedInputMessaging", ""),
        "blockedOutputsMessaging": g.spec.get("blockedOutputsMessaging", ""),
    }
    for name in (
        "topicPolicy",
        "contentPolicy",
        "wordPolicy",
        "sensitiveInformationPolicy",
        "contextualGroundingPolicy",
        "automatedReasoningPolicy",
    ):
        if name + "Config" in g.spec:
            out[name] = _shaped(g.spec[name + "Config"], out_shape.members[name])
    return out


# -- bedrock -------------------------------------------------------------------------------------------
async def create_guardrail(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    g = await _service(call).create(_spec(p), p.get("clientRequestToken"))
    return {
        "guardrailId": g.id,
        "guardrailArn": guardrail_arn(call, g.id),
        "version": DRAFT,
        "createdAt": _ts(g.created),
    }


async def get_guardrail(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    g = await _service(call).get(_gid(p["guardrailIdentifier"]), p.get("guardrailVersion") or DRAFT)
    return _get_wire(call, g)


async def update_guardrail(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    g = await _service(call).update(_gid(p["guardrailIdentifier"]), _spec(p))
    return {
        "guardrailId": g.id,
        "guardrailArn": guardrail_arn(call, g.id),
        "version": DRAFT,
        "updatedAt": _ts(g.updated),
    }


async def create_guardrail_version(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    gid = _gid(p["guardrailIdentifier"])
    version = await _service(call).create_version(gid, p.get("description"), p.get("clientRequestToken"))
    return {"guardrailId": gid, "version": version}


async def list_guardrails(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    ident = p.get("guardrailIdentifier")
    items = await _service(call).list(_gid(ident) if ident else None)
    page = paginate(call, p, items, key=lambda g: f"{g.id}:{g.version}")
    summaries = [
        {
            "id": g.id,
            "arn": guardrail_arn(call, g.id),
            "status": "READY",
            "name": g.name,
            "description": g.description,
            "version": g.version,
            "createdAt": _ts(g.created),
            "updatedAt": _ts(g.updated),
        }
        for g in page.items
    ]
    return page.wire("guardrails", summaries)


async def delete_guardrail(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    await _service(call).delete(_gid(p["guardrailIdentifier"]), p.get("guardrailVersion"))
    return {}


# -- bedrock-runtime: ApplyGuardrail -------------------------------------------------------------------
def _guarded(block: Mapping[str, Any]) -> bool:
    """Text blocks qualified only as grounding source or query feed contextual grounding; unqualified
    blocks and ``guard_content`` are guarded."""
    qualifiers = set(block.get("qualifiers") or ())
    return not qualifiers or "guard_content" in qualifiers


def _assessment(policy: Policy, findings: list[Finding], full: bool) -> dict[str, Any]:
    patterns = {r.name: r.pattern for r in policy.regexes}
    shown = [f for f in findings if full or f.action != "NONE"]

    def entry(f: Finding, **extra: Any) -> dict[str, Any]:
        return {"match": f.match, **extra, "action": _ASSESSED[f.action], "detected": True}

    out: dict[str, Any] = {}
    words = [entry(f) for f in shown if f.kind == "word"]
    managed = [entry(f, type="PROFANITY") for f in shown if f.kind == "managed_word"]
    if words or managed:
        out["wordPolicy"] = {"customWords": words, "managedWordLists": managed}
    pii = [entry(f, type=f.label) for f in shown if f.kind == "pii"]
    regexes = [
        {
            "name": f.label,
            "match": f.match,
            "regex": patterns.get(f.label),
            "action": _ASSESSED[f.action],
            "detected": True,
        }
        for f in shown
        if f.kind == "regex"
    ]
    if pii or regexes:
        out["sensitiveInformationPolicy"] = {"piiEntities": pii, "regexes": regexes}
    filters = [
        {
            "type": f.label,
            "confidence": f.confidence,
            "filterStrength": f.strength,
            "action": _ASSESSED[f.action],
            "detected": f.detected,
        }
        for f in findings
        if f.kind == "content" and (full or f.detected)
    ]
    if filters:
        out["contentPolicy"] = {"filters": filters}
    topics = [
        {"name": f.label, "type": "DENY", "action": _ASSESSED[f.action], "detected": f.detected}
        | ({"judge": {"model": f.judge, "latencyMs": round(f.judge_ms or 0.0)}} if f.judge else {})
        for f in shown
        if f.kind == "topic"
    ]
    if topics:
        out["topicPolicy"] = {"topics": topics}
    grounding = [
        {
            "type": f.label,
            "threshold": f.threshold,
            "score": f.score,
            "action": _ASSESSED[f.action],
            "detected": f.detected,
        }
        for f in findings
        if f.kind == "grounding" and (full or f.detected)
    ]
    if grounding:
        out["contextualGroundingPolicy"] = {"filters": grounding}
    return out


def _context(blocks: list[Mapping[str, Any]]) -> Grounding:
    def having(q: str) -> tuple[str, ...]:
        return tuple(b["text"] for b in blocks if q in (b.get("qualifiers") or ()))

    return Grounding(having("grounding_source"), having("query"))


def _units(chars: int, on: bool) -> int:
    return math.ceil(chars / _UNIT_CHARS) if on and chars else 0


# per registry (by id; dropped when the registry goes): its judge, whose rulings are cached across calls
_JUDGES: dict[int, TopicJudge] = {}


def topic_judge(call: Call) -> TopicJudge | None:
    """The platform's topic judge (``HANIWA_GUARDRAIL_JUDGE``), None when it is off. One per registry, so
    its rulings are cached across calls; it runs its model calls on the server's event loop."""
    model = call.platform.settings.guardrail_judge
    if model.lower() in ("", "off", "none"):
        return None
    registry = call.platform.registry
    judge = _JUDGES.get(id(registry))
    if judge is None or judge.model != model:
        if id(registry) not in _JUDGES:
            weakref.finalize(registry, _JUDGES.pop, id(registry), None)

        async def converse(req: ChatRequest) -> ChatResult:
            _, chat = await registry.chat(model)
            return await chat.converse(req)

        judge = _JUDGES[id(registry)] = TopicJudge(model, converse, asyncio.get_running_loop())
    return judge


async def apply_guardrail(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    g = await _service(call).get(_gid(p["guardrailIdentifier"]), p["guardrailVersion"])
    policy = policy_of(g.spec)
    blocks = [c["text"] for c in p["content"] if "text" in c]
    if len(blocks) != len(p["content"]):
        raise ValidationError("haniwa's guardrails check text blocks; image blocks are not served yet")
    texts = [b["text"] for b in blocks if _guarded(b)]
    source = cast(Source, p["source"])
    guarded = sum(len(t) for t in texts)
    context = _context(blocks)
    if policy.semantic and guarded + sum(map(len, context.sources + context.queries)) > SEMANTIC_MAX_CHARS:
        raise ValidationError(
            f"a guardrail with content filters, denied topics or contextual grounding checks at most "
            f"{SEMANTIC_MAX_CHARS} characters per ApplyGuardrail call; split the text"
        )
    if guarded > _INLINE_CHARS or policy.semantic:
        # embedding detectors take tens of milliseconds: off the event loop
        judge = topic_judge(call) if policy.topics else None
        verdict = await CPU.run(apply, policy, texts, source, context, judge)
    else:
        verdict = apply(policy, texts, source, context)
    words_on = bool(policy.words or policy.profanity)
    grounded = bool(policy.grounding and (context.sources or context.queries))
    usage = {
        "topicPolicyUnits": _units(guarded, bool(policy.topics)),
        "contentPolicyUnits": _units(guarded, bool(policy.content)),
        "wordPolicyUnits": _units(guarded, words_on),
        # Bedrock charges PII detection; regexes (and words) are free units
        "sensitiveInformationPolicyUnits": _units(guarded, bool(policy.pii)),
        "sensitiveInformationPolicyFreeUnits": _units(guarded, bool(policy.regexes)),
        "contextualGroundingPolicyUnits": _units(guarded, grounded),
    }
    coverage = {"textCharacters": {"guarded": guarded, "total": sum(len(b["text"]) for b in blocks)}}
    assessment = _assessment(policy, list(verdict.findings), p.get("outputScope") == "FULL")
    assessment["invocationMetrics"] = {
        "guardrailProcessingLatency": int((time.perf_counter() - started) * 1000),
        "usage": usage,
        "guardrailCoverage": coverage,
    }
    reason = "Guardrail blocked." if verdict.blocked else "Guardrail masked." if verdict.intervened else None
    return {
        "usage": usage,
        "action": "GUARDRAIL_INTERVENED" if verdict.intervened else "NONE",
        "actionReason": reason,
        "outputs": [{"text": t} for t in verdict.outputs],
        "assessments": [assessment],
        "guardrailCoverage": coverage,
    }


OPERATIONS = {
    ("bedrock", "CreateGuardrail"): create_guardrail,
    ("bedrock", "GetGuardrail"): get_guardrail,
    ("bedrock", "UpdateGuardrail"): update_guardrail,
    ("bedrock", "CreateGuardrailVersion"): create_guardrail_version,
    ("bedrock", "ListGuardrails"): list_guardrails,
    ("bedrock", "DeleteGuardrail"): delete_guardrail,
    ("bedrock-runtime", "ApplyGuardrail"): apply_guardrail,
}
