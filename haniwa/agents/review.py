"""Checks that tie a small model's calls and answers to the conversation.

* :func:`grounded` — a tool's inputs come from somewhere: the user's messages or earlier results. A call
  none of whose inputs appears there (``get_weather(city="Paris")`` for "What is the capital of France?")
  was made up from the model's own associations; the loop asks the model once whether the user asked
  for it before running it.
* :func:`unasked_siblings` — the question names items side by side ("A と B", "A and of B") and the
  calls took only some of them as input: the model is told which ones are left (once).
* :func:`review_answer` — a final answer reports what the tools returned and is written in the user's
  language: it must mention every observed result (a number from it when it has numbers, else one of its
  values) and, for a Japanese question, be Japanese (kana, no character forms Japanese does not use).
  The loop sends such an answer back once; if the next one still leaves a result out,
  :func:`complete_answer` adds it in a line of its own (the user asked for it, and the tool returned it).

Both look at values only, never at which tool or task it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from haniwa.agents.variants import fold

__all__ = ["grounded", "review_answer", "unasked_siblings", "complete_answer"]

_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_WORD = re.compile(r"[a-z]{3,}")
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]+")
_KANA = re.compile(r"[\u3040-\u30ff]")
_IDEOGRAPH = re.compile(r"[\u3400-\u9fff]")
SALIENT_MAX = 60  # characters: a longer string result is prose, not a value to quote


def _numbers(text: str) -> set[float]:
    return {float(n.replace(",", "")) for n in _NUMBER.findall(text)}


def _tokens(text: str) -> list[str]:
    """Words of three letters or more, and CJK bigrams (a lone CJK character counts whole)."""
    out = _WORD.findall(text)
    for run in _CJK_RUN.findall(text):
        out += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
    return out


def _found(value: Any, known: str, numbers: set[float]) -> bool | None:
    """Whether ``value`` is in the known text; None when it has nothing to look for."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) in numbers
    if isinstance(value, list):
        found = [f for f in (_found(v, known, numbers) for v in value) if f is not None]
        return any(found) if found else None
    text = fold(str(value))
    nums, tokens = _numbers(text), _tokens(text)
    if not nums and not tokens:
        return None
    return any(n in numbers for n in nums) or any(t in known for t in tokens)


def grounded(args: Mapping[str, Any], known: Iterable[str]) -> bool:
    """True unless every input that can be looked for is missing from ``known`` (the user's messages and
    the results so far): one input the conversation holds is enough."""
    text = fold("\n".join(known))
    numbers = _numbers(text)
    found = [f for f in (_found(v, text, numbers) for v in args.values()) if f is not None]
    return not found or any(found)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _salient(result: str, args: Mapping[str, Any]) -> tuple[set[float], list[str]]:
    """The numbers and short string values of a result, less the inputs it echoes back."""
    try:
        leaves = _leaves(json.loads(result))
    except ValueError:
        leaves = [result]
    echoed = {fold(str(a)) for a in args.values()}
    numbers: set[float] = set()
    strings: list[str] = []
    for leaf in leaves:
        if isinstance(leaf, bool) or leaf is None:
            continue
        if isinstance(leaf, int | float):
            numbers.add(float(leaf))
        elif isinstance(leaf, str) and fold(leaf) not in echoed:
            numbers |= _numbers(leaf)
            if len(leaf) <= SALIENT_MAX:
                strings.append(fold(leaf))
    return numbers, strings


def _reported(answer: str, result: str, args: Mapping[str, Any]) -> bool:
    numbers, strings = _salient(result, args)
    if numbers:
        return bool(numbers & _numbers(answer))
    text = fold(answer)
    return not strings or any(s in text for s in strings)


def _unreported(answer: str, results: Sequence[tuple[Mapping[str, Any], str]]) -> list[str]:
    return [text for args, text in results if not _reported(answer, text, args)]


def _render(result: str) -> str:
    try:
        value = json.loads(result)
    except ValueError:
        return result
    if isinstance(value, Mapping):
        return ", ".join(
            f"{k}: {v if not isinstance(v, dict | list) else json.dumps(v)}" for k, v in value.items()
        )
    return result


def complete_answer(answer: str, results: Sequence[tuple[Mapping[str, Any], str]]) -> str:
    """``answer`` with each result it does not report added on a line of its own."""
    missing = _unreported(answer, results)
    return "\n".join([answer.rstrip(), *(_render(m) for m in missing)]) if missing else answer


def _not_japanese(answer: str) -> list[str]:
    """Characters that show a Japanese answer is not Japanese: Chinese-only forms; or, for an answer of
    some length without any kana, the answer itself (English or Chinese)."""
    odd = []
    for c in _IDEOGRAPH.findall(answer):
        try:
            c.encode("cp932")
        except UnicodeEncodeError:
            odd.append(c)
    if odd:
        return sorted(set(odd))
    if not _KANA.search(answer) and len(answer.strip()) >= 8:
        return [answer.strip()[:20]]
    return []


def review_answer(
    answer: str,
    lang: str,
    results: Sequence[tuple[Mapping[str, Any], str]],
    p: Mapping[str, str],
) -> str | None:
    """What to tell the model about its final answer (None: it is fine). ``results`` are the successful
    action calls of the run: (arguments, result text)."""
    problems = []
    missing = _unreported(answer, results)
    if missing:
        problems.append(p["answer_missing"].format(results="\n".join(f"- {m}" for m in missing)))
    if lang == "ja" and _not_japanese(answer):
        problems.append(p["answer_language"])
    return "\n".join(problems) if problems else None


_COORD = r"(?:\s*(?:,|、|と|や|及び|および|and|&)\s*)+(?:of\s+|the\s+)?"
_ITEM_END = r"[?？!！。,、:;()（）「」]|\.(?:\s|$)|\s(?:and|or)\s|[のはをがにでへ]"


def unasked_siblings(question: str, calls: Sequence[Mapping[str, Any]]) -> list[str]:
    """Items the question names side by side with a call's input ("A と B", "A and of B", "A, B") that
    no call took as input: the model looked up one of several things it was asked for."""
    text = fold(question)
    inputs = [fold(str(v)) for args in calls for v in args.values() if isinstance(v, str) and v.strip()]
    missing: list[str] = []
    for value in inputs:
        at = text.find(value)
        if at < 0 or len(value) < 2:
            continue
        after = re.match(_COORD + r"(.+?)(?=" + _ITEM_END + r"|$)", text[at + len(value) :])
        before = re.match(
            r"(?:.*(?:" + _ITEM_END + r"|\s(?:of|for|in|about)\s))?(.+?)" + _COORD + "$", text[:at]
        )
        for m in (after, before):
            item = m.group(1).strip() if m else ""
            if 2 <= len(item) <= 30 and not any(item in v or v in item for v in inputs):
                span = question[text.find(item) : text.find(item) + len(item)]
                if span not in missing:
                    missing.append(span)
    return missing
