"""PII ``NAME``, offline and precision first:

- Japanese: MeCab (``fugashi`` with ``unidic-lite``) proper-noun tags: a surname (固有名詞・人名・姓)
  followed by a given name (人名・名), or by an honorific (さん, 様, 氏, 君, 先生); a surname alone
  ("佐藤という名字") is not a person.
- English: two or three capitalised words after a title (Mr, Ms, Mrs, Dr, Miss) or after "my name is",
  "I am", "I'm", "this is", "Dear"; after a person "named" / "called" (a man named Robert Okafor, not
  a boat named Sea Breeze); one to three after a person's role ("my landlord, Robert", "our manager
  Jane Doe") — a pattern on the original text (capitals matter), so a company name ("Johnson &
  Johnson") or a surname in a sentence passes; and a common given name followed by one or two
  capitalised words ("Michael Thompson", "Sarah J. Jennings", "Hiroshi Nakamura", "Priya Raman"), with
  the given names and surnames of ``faker``'s person lists (English-speaking, European and Indian
  locales, romanised Japanese), or any capitalised word before a romanised Japanese or Indian surname
  ("Kenji Watanabe"). A given name that is also a common English word (Will, May, Bill, Hope:
  ``faker``'s word list) needs a listed surname after it; a common word, a US state or a country
  (``faker``'s address lists) or a place or organisation word (Street, University, Hospital, River …)
  as the last word makes it not a person.
- Either way, a widely known historical, public or fictional person (``data/public_figures.txt``, ~900
  names written for haniwa from general knowledge: 織田信長, Abraham Lincoln, Sherlock Holmes) is not
  reported: such a name in a question is no private person's data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

# the head noun of a place, an organisation, an event or a period: "Jordan River", "Roman Empire"
_PLACE_WORDS = (
    "street st avenue ave road rd boulevard blvd lane drive way court place square station river lake beach "
    "park bay island valley mountain mountains falls springs heights county city town village airport bridge "
    "tower hall center centre museum library church cathedral hotel hospital clinic university college "
    "school academy institute bank inc corp co ltd llc company group foundation post times tech day press "
    "studios records airlines motors empire kingdom republic dynasty war era revolution cup prize award "
    "festival series league club team project act law theorem effect syndrome"
)
_PLACE = frozenset(_PLACE_WORDS.split())

__all__ = ["names"]

Span = tuple[int, int]

_STREET_SUFFIX = ("通", "通り", "筋")
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


# a lookahead, so every capitalised word is tried as a given name ("Ask Mark Taylor")
_CAPITAL = re.compile(
    r"\b(?=([A-Z][a-z]+)((?:\s+[A-Z]\.)?(?:\s+(?:Mc|Mac|O')?[A-Z][a-z]+(?:-[A-Z][a-z]+)?){1,2})\b)"
)


# Latin-script given names and surnames: English-speaking locales, romanised Japanese, and the European
# and Indian names English text often carries
_LOCALES = ("en_US", "en_GB", "en_IE", "en_IN", "en_NZ", "es_ES", "fr_FR", "de_DE", "it_IT", "pt_BR")


@cache
def _people() -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """Given names, surnames, surnames no English word or given name looks like (romanised Japanese and
    Indian: Watanabe, Iyer), and common English words (``faker``'s person lists of ``_LOCALES`` and
    ja_JP's romanised names; its en_US word list, US states and countries)."""
    from importlib import import_module

    from faker.providers.address.en_US import Provider as Places
    from faker.providers.lorem.en_US import Provider as Words
    from faker.providers.person.en_IN import Provider as Indian
    from faker.providers.person.ja_JP import Provider as Japanese

    given: set[str] = set(Japanese.first_romanized_names)
    family: set[str] = set(Japanese.last_romanized_names)
    for locale in _LOCALES:
        people = import_module(f"faker.providers.person.{locale}").Provider
        given.update(n for n in people.first_names if n.isalpha() and n.istitle())
        family.update(n for n in people.last_names if n.isalpha() and n.istitle())
    places = [w for name in (*Places.states, *Places.countries) for w in name.split()]
    words = frozenset([*Words.word_list, *(w.lower() for w in places)])
    distinct = {*Japanese.last_romanized_names, *Indian.last_names} - given
    return (
        frozenset(given),
        frozenset(family),
        frozenset(n for n in distinct if n.lower() not in words),
        words,
    )


def _full_names(text: str) -> Iterator[Span]:
    given, family, distinct, words = _people()
    end = 0
    for m in _CAPITAL.finditer(text):
        first, rest = m.group(1), m.group(2).split()
        if m.start() < end or rest[-1].lower() in _PLACE or rest[-1].lower() in words:
            continue
        if first not in given and (first.lower() in words or rest[-1] not in distinct):
            continue  # an unlisted given name counts before a surname that is only a surname: Kenji Watanabe
        if first.lower() in words and not any(w in family for w in rest):
            continue
        end = m.start() + len(m.group(1)) + len(m.group(2))
        yield m.start(), end


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
            # a street, not a person: MeCab reads 烏丸通 / 堺筋 as a surname and a given name 通 / 筋
            street = j == i + 2 and text[spans[i + 1][0] : end] in _STREET_SUFFIX
            if (j > i + 1 and not street) or after.startswith(_HONORIFIC):
                yield s, end
            i = j
        else:
            i += 1


@cache
def _public() -> frozenset[str]:
    """Names of widely known historical, public and fictional people (``data/public_figures.txt``):
    asking when Abraham Lincoln died or where 織田信長 fell carries no private person's data."""
    text = resources.files("haniwa.guardrails").joinpath("data/public_figures.txt").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def _private(original: str) -> Iterator[Span]:
    yield from _japanese(original)
    seen: list[Span] = []
    for m in _EN.finditer(original):
        # "I am Sarah" is a name; "I am Happy" is rare enough in requests to accept the risk
        seen.append(m.span(next(i for i in (1, 2, 3) if m.group(i))))
        yield seen[-1]
    for s, e in _full_names(original):
        if not any(a <= s and e <= b for a, b in seen):
            yield s, e


def names(original: str) -> Iterator[Span]:
    """Spans of the original text that are a person's name, a widely known public figure's left out."""
    public = _public()
    for s, e in _private(original):
        if " ".join(original[s:e].split()) not in public:
            yield s, e
