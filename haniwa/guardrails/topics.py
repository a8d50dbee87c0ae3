"""Denied topics, offline: each topic's definition (split into sentences) and examples are embedded with
the bundled multilingual-e5-small; a text window's score is the mean of its 2 highest cosine similarities
to them (so one anchor that happens to share a word with the text counts for less) minus the mean of its
3 highest similarities to the closer of the BENIGN and BENIGN_TOPIC seeds (``data/content_seeds.json``;
BENIGN_TOPIC: general-knowledge questions, news, and factual or how-to questions about commonly denied
subjects such as tax rules, where and how to get tested, first aid, a device that overheats, which ask
for facts rather than advice or a diagnosis); the topic is detected
when the best window's score reaches the text's language's ``CUT`` (calibrated by
``bench/guardrail_topic_cuts.py --splits dev,heldout`` on ``bench/guardrail_sets/``: the fewest errors
with recall at least 0.9).
Bedrock topics have no strength, so there is one cut. Write examples in every language users will
use: an English example also catches Japanese text, but less surely.

With a judge (``judge.py``, ``HANIWA_GUARDRAIL_JUDGE``), a score inside ``BAND`` around the cut is
unsure: the judge's answer decides (it costs a model call, seconds on a CPU); outside it the cut does."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from haniwa.guardrails import semantic
from haniwa.guardrails.base import Finding, Source, TopicRule
from haniwa.guardrails.judge import TopicJudge
from haniwa.guardrails.normalize import Normalized, normalize

__all__ = ["TopicDetector", "CUT", "BAND"]

# bench/guardrail_topic_cuts.py on dev and v1 alone; on dev and v1–v3 (244 rows per language) the same rule
# picks ja 0.007 / en 0.0188 (recall 0.92 / 0.94, FPR 0.07 / 0.03), but 0.007 blocks plain sentences
# against a topic given as one short phrase (「個人番号は…です」 against 「投資の助言」), so these stay; on
# dev and v1–v6 (455 rows per language) it picks ja 0.0049 / en 0.0186 (recall 0.92 / 0.93, topic FPR
# 0.05 / 0.03; the shipped cuts 0.78 / 0.92 at 0.02 / 0.03): lower Japanese cuts buy recall with false
# positives one for one, the embeddings' ceiling
CUT = {"ja": 0.013, "en": 0.020}
# a window's likeness to a topic is the mean of its _TOP highest similarities to the topic's anchors
# (definition sentences and examples): one anchor alone that happens to share a word counts for less
_TOP = 2
# with a judge (``judge.py``): scores in [CUT + BAND[0], CUT + BAND[1]) are unsure and the judge rules
BAND = {"ja": (-0.01, 0.01), "en": (-0.01, 0.01)}
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
            margin = semantic.similarity(vecs, semantic.embed(anchors), _TOP) - benign
            i = int(np.argmax(margin))
            out.append((float(margin[i]), spans[i]))
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
