"""Contextual grounding, offline: GROUNDING and RELEVANCE scores in [0, 1] from embedding similarity
(bundled multilingual-e5-small), compared with each filter's threshold (below it: the filter acts).

- **GROUNDING**: the guarded text (the model's answer) is cut into claims (sentences); each claim's
  score is its best cosine similarity to a sentence of the grounding source, rescaled so that
  ``_FLOOR`` (unrelated text) maps to 0 and ``_CEIL`` (a paraphrase) to 1; a claim with a number that
  the source does not contain scores half. The text's score is its weakest claim (one unsupported
  claim makes an answer ungrounded).
- **RELEVANCE**: the whole answer's similarity to the query, rescaled the same way.

A similarity measure, not an entailment model: a claim that contradicts the source with the same
words ("opens at 9" vs "closes at 9") can still score high. The number check catches the commonest case."""

from __future__ import annotations

import re

from haniwa.guardrails import semantic
from haniwa.guardrails.base import Finding, Grounding, GroundingRule
from haniwa.guardrails.normalize import normalize

__all__ = ["ground", "scores"]

_FLOOR, _CEIL = 0.78, 0.93
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_SENTENCE = re.compile(r"[^。！？!?\n]+(?:[。！？!?]+|\.(?=\s|$)|$)")


def _sentences(text: str) -> list[str]:
    return [m.group().strip() for m in _SENTENCE.finditer(text) if len(m.group().strip()) > 1] or (
        [text.strip()] if text.strip() else []
    )


def _rescale(sim: float) -> float:
    return round(min(1.0, max(0.0, (sim - _FLOOR) / (_CEIL - _FLOOR))), 2)


def scores(answer: str, context: Grounding) -> dict[str, float]:
    """``GROUNDING`` (when there is a source) and ``RELEVANCE`` (when there is a query) for ``answer``."""
    out: dict[str, float] = {}
    answer = normalize(answer).text
    claims = _sentences(answer)
    if not claims:
        return out
    if context.sources:
        source = normalize("\n".join(context.sources)).text
        facts = _sentences(source)
        sims = semantic.similarity(semantic.embed(claims), semantic.embed(facts), 1)
        numbers = set(_NUMBER.findall(source))
        per_claim = [
            _rescale(float(s)) * (0.5 if set(_NUMBER.findall(c)) - numbers else 1.0)
            for c, s in zip(claims, sims, strict=True)
        ]
        out["GROUNDING"] = round(min(per_claim), 2)
    if context.queries:
        query = normalize(" ".join(context.queries)).text
        sim = semantic.similarity(semantic.embed([answer]), semantic.embed([query]), 1)
        out["RELEVANCE"] = _rescale(float(sim[0]))
    return out


def ground(rules: tuple[GroundingRule, ...], answer: str, context: Grounding) -> list[Finding]:
    """One finding per enabled filter that has what it needs (a source for GROUNDING, a query for
    RELEVANCE); ``detected`` when the score is below the threshold."""
    live = [r for r in rules if r.enabled]
    if not live:
        return []
    got = scores(answer, context)
    out = []
    for rule in live:
        if rule.type not in got:
            continue
        score = got[rule.type]
        hit = score < rule.threshold
        out.append(
            Finding(
                "grounding",
                rule.type,
                "",
                0,
                0,
                rule.action if hit else "NONE",
                score=score,
                threshold=rule.threshold,
                detected=hit,
            )
        )
    return out
