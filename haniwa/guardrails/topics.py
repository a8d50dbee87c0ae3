"""Denied topics, offline: each topic's definition (split into sentences) and examples are embedded with
the bundled multilingual-e5-small; a text window's score is its highest cosine similarity to them minus
the mean of its 3 highest similarities to the closer of the BENIGN and BENIGN_TOPIC seeds
(``data/content_seeds.json``; BENIGN_TOPIC: general-knowledge questions and news about finance, health
and other commonly denied subjects); the topic is detected when the best window's score reaches the
text's language's ``CUT`` (calibrated on ``bench/guardrail_sets/dev.jsonl``: fewest errors).
Bedrock topics have no strength, so there is one cut. Write examples in every language users will
use: an English example also catches Japanese text, but less surely."""

from __future__ import annotations

import re

import numpy as np

from haniwa.guardrails import semantic
from haniwa.guardrails.base import Finding, Source, TopicRule
from haniwa.guardrails.normalize import Normalized, normalize

__all__ = ["TopicDetector", "CUT"]

CUT = {"ja": 0.018, "en": 0.048}
_SPLIT = re.compile(r"(?<=[。！？!?.])\s*")


def _anchors(rule: TopicRule) -> list[str]:
    parts = [p.strip() for p in _SPLIT.split(rule.definition) if p.strip()]
    return [normalize(t).text for t in [*parts, *rule.examples] if t.strip()]


class TopicDetector:
    def __init__(self, rules: tuple[TopicRule, ...]) -> None:
        self.rules = rules
        self._anchors = [_anchors(r) for r in rules]

    def scores(self, text: Normalized) -> list[tuple[float, tuple[int, int]]]:
        spans = semantic.windows(text.text)
        if not spans:
            return [(-1.0, (0, 0)) for _ in self.rules]
        vecs = semantic.embed([text.text[s:e] for s, e in spans])
        benign = semantic.benign(vecs, "TOPIC", 3)
        out = []
        for anchors in self._anchors:
            if not anchors:
                out.append((-1.0, (0, 0)))
                continue
            margin = semantic.similarity(vecs, semantic.embed(anchors), 1) - benign
            i = int(np.argmax(margin))
            out.append((float(margin[i]), spans[i]))
        return out

    def find(self, text: Normalized, source: Source) -> list[Finding]:
        live = [(i, r, a) for i, r in enumerate(self.rules) if (a := r.action_for(source)) is not None]
        if not live or not text.text.strip():
            return []
        scores = self.scores(text)
        cut = CUT[semantic.language(text.text)]
        out = []
        for i, rule, action in live:
            score, (s, e) = scores[i]
            if score >= cut:
                start, end = text.span(s, e)
                out.append(
                    Finding("topic", rule.name, text.original[start:end], start, end, action, score=score)
                )
        return out
