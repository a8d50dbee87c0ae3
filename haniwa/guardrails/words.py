"""The word policy: custom words and the managed PROFANITY list (``data/profanity.txt``).

Matching is on normalised text (``normalize.py``). A word with any non-ASCII character (Japanese) matches
as a substring, since Japanese is written without spaces; an ASCII word matches on word boundaries only,
so "classic" and "Scunthorpe" never match "ass" or "cunt"."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from haniwa.guardrails.base import Finding, Kind, Source, WordRule
from haniwa.guardrails.normalize import Normalized, normalize

__all__ = ["WordDetector", "profanity_words"]


@cache
def profanity_words() -> tuple[str, ...]:
    """The managed PROFANITY list, read once."""
    text = resources.files("haniwa.guardrails").joinpath("data/profanity.txt").read_text("utf-8")
    return tuple(w for line in text.splitlines() if (w := line.strip()) and not w.startswith("#"))


def _pattern(words: list[str]) -> re.Pattern[str] | None:
    parts = []
    # longest first, so "motherfucker" wins over "fucker" at the same position
    for w in sorted({normalize(w).text.strip() for w in words if w.strip()}, key=len, reverse=True):
        body = r"\s+".join(re.escape(p) for p in w.split())
        parts.append(rf"(?<![a-z0-9]){body}(?![a-z0-9])" if w.isascii() else body)
    return re.compile("|".join(parts)) if parts else None


class WordDetector:
    """Finds custom words (kind ``word``) or managed-list words (kind ``managed_word``, label
    ``PROFANITY``); one compiled alternation per rule action so a text is scanned once per action."""

    def __init__(self, rules: tuple[WordRule, ...], kind: Kind, words: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.rules = rules
        # managed lists: one rule, many words; custom words: one rule per word
        self._patterns = {
            i: _pattern(list(words) if kind == "managed_word" else [r.text]) for i, r in enumerate(rules)
        }

    def find(self, text: Normalized, source: Source) -> list[Finding]:
        out: list[Finding] = []
        for i, rule in enumerate(self.rules):
            action = rule.action_for(source)
            pattern = self._patterns[i]
            if action is None or pattern is None:
                continue
            for m in pattern.finditer(text.text):
                start, end = text.span(m.start(), m.end())
                label = "PROFANITY" if self.kind == "managed_word" else rule.text
                out.append(Finding(self.kind, label, text.original[start:end], start, end, action))
        return out
