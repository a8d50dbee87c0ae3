"""Placeholder arguments: values a small model wrote without having them.

Given a tool and no value for a required parameter, a small model under a schema still fills the
parameter in: with the parameter's own name or description (``material_name = "材料名"``), with nothing,
or with something made up (``city = "Paris"`` for "What is the capital of France?", a date the user never
said). Such a call must not reach the function: its answer would be about something nobody asked.

A value is a **placeholder** when it

* is empty (or only punctuation/brackets around nothing),
* equals the parameter's name or description (after folding case, width and brackets), or
* appears neither in the conversation (the user's messages, earlier answers, session attributes) nor in
  an earlier result, nor in what the agent was told (its instruction, the tool descriptions, allowed
  values). "Appears" is loose: the folded value is found as it is, or at least half of its words (CJK:
  character pairs) and numbers are, or it is a date whose month and day the known text states in any
  common way (``2025-05-03`` for "May 3", 「5月3日」, "3 May", "5/3": the model rewrites dates in the form a
  date parameter expects, and may add a year).

A placeholder in an optional parameter is dropped from the call; one in a required parameter refuses the
call, and the loop tells the model to use the user's own value or to ask the user for it (Bedrock agents
elicit a missing parameter the same way: by asking, never by inventing it).

This looks at values only, never at which tool or task it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from haniwa.agents.base import Tool
from haniwa.agents.variants import fold

__all__ = ["Placeholders", "find_placeholders", "tool_text", "dates", "self_described"]

_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_WORD = re.compile(r"[a-z0-9]{3,}")
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]+")
_WRAP = " \t\n\"'`<>{}[]()「」『』【】（）＜＞"


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?\b"
_DATES = (  # (pattern, group of the month, group of the day); text is folded (lower case, narrow digits)
    (re.compile(r"\b\d{4}\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})"), 1, 2),
    (re.compile(r"(\d{1,2})\s*月\s*(\d{1,2})\s*日"), 1, 2),
    (re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?![\d/])"), 1, 2),
    (re.compile(r"\b" + _MONTH + r"\s+" + _DAY), 1, 2),
    (re.compile(r"\b" + _DAY + r"\s+(?:of\s+)?" + _MONTH), 2, 1),
)


def dates(text: str) -> set[tuple[int, int]]:
    """The (month, day) pairs ``text`` states, in ISO, Japanese, numeric or English form."""
    out: set[tuple[int, int]] = set()
    folded = fold(text)
    for pattern, mg, dg in _DATES:
        for m in pattern.finditer(folded):
            month = m.group(mg)
            mo = _MONTHS.index(month) + 1 if month.isalpha() else int(month)
            day = int(m.group(dg))
            if 1 <= mo <= 12 and 1 <= day <= 31:
                out.add((mo, day))
    return out


def _numbers(text: str) -> set[float]:
    return {float(n.replace(",", "")) for n in _NUMBER.findall(text)}


def _pieces(text: str) -> list[str]:
    """Words of three characters or more, and CJK character pairs (a lone CJK character counts whole)."""
    out = _WORD.findall(text)
    for run in _CJK_RUN.findall(text):
        out += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
    return out


def _bare(text: str) -> str:
    return " ".join(fold(text).strip(_WRAP).replace("_", " ").split())


def tool_text(tool: Tool) -> str:
    """What the agent was told about ``tool``: where allowed values ("ISO codes: USD, EUR") are written."""
    return "\n".join([tool.description, *(p.description for p in tool.parameters)])


@dataclass(frozen=True)
class Placeholders:
    refused: dict[str, Any]  # required parameters whose value is a placeholder
    arguments: dict[str, Any]  # the call's arguments less the optional placeholders


class _Known:
    def __init__(self, texts: Iterable[str]) -> None:
        self.text = fold("\n".join(texts))
        self.numbers = _numbers(self.text)
        self.dates = dates(self.text)

    def has(self, value: Any) -> bool | None:
        """Whether ``value`` appears (None: nothing in it to look for)."""
        if value is None or isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return float(value) in self.numbers
        if isinstance(value, list):
            found = [f for f in (self.has(v) for v in value) if f is not None]
            return all(found) if found else None
        if isinstance(value, Mapping):
            found = [f for f in (self.has(v) for v in value.values()) if f is not None]
            return all(found) if found else None
        text = fold(str(value)).strip()
        if text and text in self.text:
            return True
        said = dates(text)
        if said and said <= self.dates:
            return True
        nums, pieces = _numbers(text), _pieces(text)
        if not nums and not pieces:
            return None
        hits = sum(n in self.numbers for n in nums) + sum(p in self.text for p in pieces)
        return 2 * hits >= len(nums) + len(pieces)


def _placeholder(name: str, description: str, value: Any, known: _Known) -> bool:
    if isinstance(value, str):
        bare = _bare(value)
        if not bare:
            return True
        if bare in {_bare(name), _bare(description)}:
            return True
    return known.has(value) is False


def self_described(tool: Tool, args: Mapping[str, Any]) -> dict[str, Any]:
    """The string arguments that are empty or equal their parameter's own name or description: the one
    placeholder test that also holds for free text such as a knowledge-base query, whose words need not
    appear anywhere before."""
    params = {p.name: p for p in tool.parameters}
    return {
        name: value
        for name, value in args.items()
        if name in params
        and isinstance(value, str)
        and (not _bare(value) or _bare(value) in {_bare(name), _bare(params[name].description)})
    }


def find_placeholders(tool: Tool, args: Mapping[str, Any], known: Iterable[str]) -> Placeholders:
    """The placeholders among ``args`` of a call to ``tool``. ``known``: the conversation, the results so
    far and what the agent was told (see the module's docstring)."""
    k = _Known(known)
    params = {p.name: p for p in tool.parameters}
    refused: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    for name, value in args.items():
        p = params.get(name)
        if p is not None and _placeholder(name, p.description, value, k):
            if p.required:
                refused[name] = value
            continue
        kept[name] = value
    return Placeholders(refused, kept)
