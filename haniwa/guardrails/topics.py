"""Denied topics, offline: each topic's definition (split into sentences) and examples are embedded with
the bundled multilingual-e5-small, and a text window is scored against them by the trained pair matcher
(``topic_model.py``: one logistic regression over the window's similarities to the anchors, how benign
it looks against the BENIGN and BENIGN_TOPIC seeds of ``data/content_seeds.json``, and the directions in
which the window agrees with the anchors' centroid). It was fitted on 80 topics written for training,
none of them the evaluation guardrail's, so it is the same for every topic a user defines. The topic is
detected when the best window's probability reaches the text's language's ``CUT`` (chosen by
``bench/guardrail_topic_model.py`` on training topics held out of the fit: at most 10% of their benign
look-alikes flagged).

Bedrock topics have no strength, so there is one cut. Write examples in every language users will
use: an English example also catches Japanese text, but less surely.

With a judge (``judge.py``, ``HANIWA_GUARDRAIL_JUDGE``), a probability inside ``BAND`` around the cut is
unsure: the judge's answer decides (it costs a model call, seconds on a CPU); outside it the cut does."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from haniwa.guardrails import semantic, topic_model
from haniwa.guardrails.base import Finding, Source, TopicRule
from haniwa.guardrails.judge import TopicJudge
from haniwa.guardrails.normalize import Normalized, normalize

__all__ = ["TopicDetector", "CUT", "BAND", "anchors"]

# the matcher's probability cut per language (``data/topic_model.json``)
CUT: dict[str, float] = topic_model.cuts()
# with a judge (``judge.py``): probabilities in [CUT + BAND[0], CUT + BAND[1]) are unsure and the judge rules
BAND = {"ja": (-0.2, 0.2), "en": (-0.2, 0.2)}
_SPLIT = re.compile(r"(?<=[。！？!?.])\s*")


def anchors(rule: TopicRule) -> tuple[list[str], list[str]]:
    """A topic's anchor texts, normalized: its definition's sentences and its examples."""
    parts = [p.strip() for p in _SPLIT.split(rule.definition) if p.strip()]
    return [normalize(t).text for t in parts], [normalize(t).text for t in rule.examples if t.strip()]


class TopicDetector:
    def __init__(self, rules: tuple[TopicRule, ...]) -> None:
        self.rules = rules
        self._anchors = [anchors(r) for r in rules]

    def scores(self, text: Normalized) -> list[tuple[float, tuple[int, int]]]:
        """Per rule: the best window's probability of falling under the topic, and that window."""
        spans = semantic.windows(text.text)
        if not spans:
            return [(-1.0, (0, 0)) for _ in self.rules]
        vecs = semantic.embed([text.text[s:e] for s, e in spans])
        benign = semantic.benign(vecs, "TOPIC", 3)
        matcher = topic_model.model()
        out = []
        for parts, examples in self._anchors:
            if not parts and not examples:
                out.append((-1.0, (0, 0)))
                continue
            features = topic_model.pair_features(vecs, *topic_model.topic_anchors(parts, examples), benign)
            p = matcher.probabilities(features)
            i = int(np.argmax(p))
            out.append((float(p[i]), spans[i]))
        return out

    def find(self, text: Normalized, source: Source, judge: TopicJudge | None = None) -> list[Finding]:
        live = [(i, r, a) for i, r in enumerate(self.rules) if (a := r.action_for(source)) is not None]
        if not live or not text.text.strip():
            return []
        scores = self.scores(text)
        lang = semantic.language(text.text)
        cut = CUT[lang]
        low, high = (cut + BAND[lang][0], cut + BAND[lang][1]) if judge is not None else (cut, cut)
        out = []
        for i, rule, action in live:
            score, (s, e) = scores[i]
            if score < low:
                continue
            start, end = text.span(s, e)
            found = Finding("topic", rule.name, text.original[start:end], start, end, action, score=score)
            if score < high and judge is not None:
                ruling = judge.rule(text.original, rule)
                if ruling is None:  # the model failed: the detector's own cut decides
                    if score < cut:
                        continue
                else:
                    found = replace(found, judge=ruling.model, judge_ms=ruling.ms)
                    if not ruling.matched:
                        found = replace(found, action="NONE", detected=False)
            out.append(found)
        return out
