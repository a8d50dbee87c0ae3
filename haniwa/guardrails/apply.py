"""Applying a :class:`~haniwa.guardrails.base.Policy` to texts: normalise each text once, run every
detector, then block (any BLOCK finding), mask (ANONYMIZE findings become ``{TYPE}`` or ``{name}``, as
Bedrock writes them) or pass. Compiled detectors are cached per policy."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from haniwa.guardrails.base import Detector, Finding, Grounding, Policy, Source, Verdict
from haniwa.guardrails.content import ContentDetector
from haniwa.guardrails.grounding import ground
from haniwa.guardrails.judge import TopicJudge
from haniwa.guardrails.normalize import normalize
from haniwa.guardrails.pii import PiiDetector, RegexDetector
from haniwa.guardrails.topics import TopicDetector
from haniwa.guardrails.words import WordDetector, profanity_words

__all__ = ["detectors", "apply", "mask"]


@lru_cache(maxsize=256)
def detectors(policy: Policy) -> tuple[Detector, ...]:
    """The policy's detectors, compiled once per distinct policy (policies are frozen and hashable)."""
    out: list[Detector] = []
    if policy.words:
        out.append(WordDetector(policy.words, "word"))
    if policy.profanity is not None:
        out.append(WordDetector((policy.profanity,), "managed_word", profanity_words()))
    if policy.pii:
        out.append(PiiDetector(policy.pii))
    if policy.regexes:
        out.append(RegexDetector(policy.regexes))
    if policy.content:
        out.append(ContentDetector(policy.content))
    if policy.topics:
        out.append(TopicDetector(policy.topics))
    return tuple(out)


def mask(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with each ANONYMIZE finding replaced by ``{LABEL}``; where findings overlap, the one that
    starts first (then the longer) wins. Everything else is kept as sent."""
    chosen: list[Finding] = []
    for f in sorted((f for f in findings if f.action == "ANONYMIZE"), key=lambda f: (f.start, -f.end)):
        if not chosen or f.start >= chosen[-1].end:
            chosen.append(f)
    parts, at = [], 0
    for f in chosen:
        parts += [text[at : f.start], "{" + f.label + "}"]
        at = f.end
    parts.append(text[at:])
    return "".join(parts)


def apply(
    policy: Policy,
    texts: Sequence[str],
    source: Source,
    grounding: Grounding | None = None,
    judge: TopicJudge | None = None,
) -> Verdict:
    """Run the policy over ``texts`` (the guarded text blocks) as ``source``. ``grounding`` carries the
    blocks qualified as grounding source and query; contextual grounding runs when it is given and the
    policy has grounding filters (on the guarded texts taken together, as one answer). ``judge``: the
    chat model that rules on denied topics the embedding detector is unsure of (``judge.py``)."""
    found: list[Finding] = []
    masked: list[str] = []
    for text in texts:
        norm = normalize(text)
        here = [
            f
            for d in detectors(policy)
            for f in (d.find(norm, source, judge) if isinstance(d, TopicDetector) else d.find(norm, source))
        ]
        found += here
        masked.append(mask(text, here))
    if policy.grounding and grounding is not None and texts:
        found += ground(policy.grounding, "\n".join(texts), grounding)
    blocked = any(f.action == "BLOCK" for f in found)
    message = policy.blocked_input if source == "INPUT" else policy.blocked_output
    return Verdict.of(found, [message] if blocked else masked, blocked)
