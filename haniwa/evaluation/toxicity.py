"""Toxicity through the guardrail word detectors: the managed PROFANITY list (English and Japanese
insults and slurs, ``guardrails/data/profanity.txt``) matched on normalised text, as ApplyGuardrail's
word policy does.

What it covers: profanity and direct insults (クソ, 死ね, バカヤロウ, fuck, ...), in any width or case.
What it does not: hate, threats, sexual content or harassment phrased without those words; Bedrock's
Detoxify classifier scores those and no classifier for them ships on PyPI for Japanese. A score is 1.0
when a listed word occurs and 0.0 otherwise (lower is better, as in Bedrock).
"""

from __future__ import annotations

from haniwa.guardrails.base import WordRule
from haniwa.guardrails.normalize import normalize
from haniwa.guardrails.words import WordDetector, profanity_words

__all__ = ["toxicity", "toxic_words"]

_DETECTOR: WordDetector | None = None


def _detector() -> WordDetector:
    global _DETECTOR
    if _DETECTOR is None:
        _DETECTOR = WordDetector(
            (WordRule(input_action="NONE", output_action="NONE"),), "managed_word", profanity_words()
        )
    return _DETECTOR


def toxic_words(text: str) -> list[str]:
    """The listed words found in ``text``, as written there."""
    return [f.match for f in _detector().find(normalize(text), "OUTPUT")]


def toxicity(text: str) -> float:
    """1.0 if ``text`` holds a word of the profanity list, else 0.0."""
    return 1.0 if toxic_words(text) else 0.0
