"""PII ``NAME``, offline and precision first:

- Japanese: MeCab (``fugashi`` with ``unidic-lite``) proper-noun tags: a surname (固有名詞・人名・姓)
  followed by a given name (人名・名), or by an honorific (さん, 様, 氏, 君, 先生); a surname alone
  ("佐藤という名字") is not a person.
- English: two or three capitalised words after a title (Mr, Ms, Mrs, Dr, Miss) or after "my name is",
  "I am", "I'm", "this is", "Dear"; after a person "named" / "called" (a man named Robert Okafor, not
  a boat named Sea Breeze); one to three after a person's role ("my landlord, Robert", "our manager
  Jane Doe") — a pattern on the original text (capitals matter), so a company name ("Johnson &
  Johnson") or a surname in a sentence passes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

__all__ = ["names"]

Span = tuple[int, int]

_HONORIFIC = ("さん", "様", "さま", "氏", "君", "くん", "ちゃん", "先生")
_WORD = r"[A-Z][a-z]+(?:-[A-Z][a-z]+)?"
_ROLE = (
    r"landlord|landlady|boss|manager|supervisor|coworker|co-worker|colleague|neighbou?r|roommate|tenant|"
    r"friend|doctor|dentist|lawyer|teacher|tutor|coach|client|customer|patient|wife|husband|partner|"
    r"girlfriend|boyfriend|son|daughter|mother|father|mom|dad|sister|brother|aunt|uncle|cousin|ex"
)
_EN = re.compile(
    rf"(?:\b(?:Mr|Ms|Mrs|Dr|Miss|Prof)\.?\s+|\b(?:[Mm]y name is|I am|I'm|[Tt]his is|[Ss]igned,?|Dear)\s+)"
    rf"({_WORD}(?:\s+{_WORD}){{0,2}})"
    rf"|\b(?:man|woman|guy|girl|boy|person|someone|somebody|lady|gentleman|kid|child|student|employee|worker"
    rf"|officer|nurse|{_ROLE})\s+(?:named|called)\s+({_WORD}(?:\s+{_WORD}){{0,2}})"
    rf"|\b(?:[Mm]y|[Oo]ur|[Hh]is|[Hh]er|[Tt]heir)\s+(?:new\s+|old\s+|former\s+)?(?:{_ROLE})(?:,\s*(?:a\s+\w+\s+named\s+)?|\s+)"
    rf"({_WORD}(?:\s+{_WORD}){{0,2}})"
)


@cache
def _tagger() -> Any:
    import fugashi

    return fugashi.Tagger()


def _japanese(text: str) -> Iterator[Span]:
    if all(ord(c) < 0x3000 for c in text):
        return
    words = list(_tagger()(text))
    at, spans = 0, []
    for w in words:
        start = text.find(w.surface, at)
        at = start + len(w.surface)
        spans.append((start, at, w.feature.pos2, w.feature.pos3, w.feature.pos4))
    i = 0
    while i < len(spans):
        s, e, pos2, pos3, pos4 = spans[i]
        if pos2 == "固有名詞" and pos3 == "人名" and pos4 == "姓":
            j = i + 1
            while j < len(spans) and spans[j][3] == "人名" and spans[j][4] == "名":
                j += 1
            end = spans[j - 1][1]
            after = text[end : end + 3]
            if j > i + 1 or after.startswith(_HONORIFIC):
                yield s, end
            i = j
        else:
            i += 1


def names(original: str) -> Iterator[Span]:
    """Spans of the original text that are a person's name."""
    yield from _japanese(original)
    for m in _EN.finditer(original):
        # "I am Sarah" is a name; "I am Happy" is rare enough in requests to accept the risk
        yield m.span(next(i for i in (1, 2, 3) if m.group(i)))
