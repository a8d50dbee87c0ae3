"""Checks that tie a small model's answers to the calls it made (its arguments: ``placeholders.py``).

* :func:`unasked_siblings` — the question names items side by side ("A と B", "A and of B") and the
  calls took only some of them as input: the model is told which ones are left (once).
* :func:`review_answer` — a final answer reports what the tools returned and is written in the user's
  language: it must mention every observed result (a number from it when it has numbers, else one of its
  values) and, for a Japanese question, be Japanese (kana, no character forms Japanese does not use).
  The loop sends such an answer back once; if the next one still leaves a result out,
  :func:`complete_answer` adds it in a line of its own (the user asked for it, and the tool returned it).

* :func:`chain_openings` — a result holds a value under the name of another tool's required parameter
  (``hotel_id`` from a search, which a reservation takes) and that tool was not called: a final answer
  right after such a result is pointed at the next call once (search → id → reserve), the model deciding
  whether the user's request needs it.

* :class:`AnswerReview` — one run's use of them: each kind of check sends an answer back at most once.

All look at values only, never at which tool or task it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from haniwa.agents.variants import fold

__all__ = [
    "review_answer",
    "unasked_siblings",
    "listed_siblings",
    "complete_answer",
    "AnswerReview",
    "SendBack",
    "readable",
    "chain_openings",
    "group_members",
]

_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_KANA = re.compile(r"[\u3040-\u30ff]")
_IDEOGRAPH = re.compile(r"[\u3400-\u9fff]")
SALIENT_MAX = 60  # characters: a longer string result is prose, not a value to quote


def _numbers(text: str) -> set[float]:
    return {float(n.replace(",", "")) for n in _NUMBER.findall(text)}


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


def _fed(args: Mapping[str, Any], result: str, later: Sequence[tuple[Mapping[str, Any], str]]) -> bool:
    """Whether a later call took one of ``result``'s new values (not an echo of the call's own ``args``)
    as its input: a step of a chain (the id a search found, which a reservation then took), not something
    the answer must restate. A reservation that echoes the hotel id it was given is not fed to a later
    call on the same hotel."""
    try:
        leaves = _leaves(json.loads(result))
    except ValueError:
        return False
    given = {fold(str(a)).strip() for a in args.values()}
    values = {fold(str(v)).strip() for v in leaves if isinstance(v, str | int) and not isinstance(v, bool)}
    return any(fold(str(a)).strip() in values - given for later_args, _ in later for a in later_args.values())


def _unreported(answer: str, results: Sequence[tuple[Mapping[str, Any], str]]) -> list[str]:
    """The results ``answer`` does not report, less those a later call took its input from."""
    return [
        text
        for i, (args, text) in enumerate(results)
        if not _reported(answer, text, args) and not _fed(args, text, results[i + 1 :])
    ]


def _render_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(
            f"{k}: {v if not isinstance(v, dict | list) else json.dumps(v, ensure_ascii=False)}"
            for k, v in value.items()
        )
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return "; ".join(_render_value(v) for v in value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list) else str(value)


def readable(result: str) -> str:
    """A JSON result (an object, or a list of objects) as ``key: value`` text; other text as it is. A small
    model shown JSON copies it, braces and all, into its answer."""
    text = result.strip()
    if not text.startswith(("{", "[")):
        return result
    try:
        value = json.loads(text)
    except ValueError:
        return result
    return _render_value(value) if isinstance(value, dict | list) else result


_render = readable


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
        problems.append(p["answer_missing"].format(results="\n".join(f"- {readable(m)}" for m in missing)))
    if lang == "ja" and _not_japanese(answer):
        problems.append(p["answer_language"])
    return "\n".join(problems) if problems else None


_COORD = r"(?:\s*(?:,|、|と|や|及び|および|and|&)\s*)+(?:of\s+|the\s+)?"
# where an item's name ends: punctuation, a conjunction, a particle, or an English verb or preposition
_ITEM_END = (
    r"[?？!！。,、:;()（）「」]|\.(?:\s|$)|\s(?:and|or)\s|[のはをがにでへ]"
    r"|\s(?:do|does|did|are|is|was|were|have|has|can|could|will|would|in|at|on|for)\s"
)


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
        end = at + len(value)
        if value[-1:].isascii() and value[-1:].isalpha():  # the word the value is in ("laptop" → laptops)
            end += len(re.match(r"[a-z]*", text[end:]).group(0))  # type: ignore[union-attr]
        after = re.match(_COORD + r"(.+?)(?=" + _ITEM_END + r"|$)", text[end:])
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


_LIST_SEP = re.compile(r"\s*(?:、|,|，|/|／|・|;|；|\band\b|及び|および|と|や)\s*")
_QUANTITY = re.compile(r"\s*(?:[x×]?\s*\d[\d.,]*\s*[^\s\d、,，/;；()（）]{0,4}|[(（][^)）]*[)）])$")
_COPULA = re.compile(r"\s*(?:です|でした|だ|である|があります|あります)?[。.]?$")
_PARTICLE_END = re.compile(r"[はがをにでのへとも]$")


def _item(piece: str) -> tuple[str, bool]:
    """A list piece as an item name, and whether a quantity followed it ("銅線 3 m です" → 銅線, True)."""
    piece = _COPULA.sub("", piece.strip())
    if _PARTICLE_END.search(piece):
        return "", False  # "…の材料は": the start of a sentence, not an item
    name = _QUANTITY.sub("", piece).strip()
    return name, name != piece


def listed_siblings(question: str, calls: Sequence[Mapping[str, Any]], results: Sequence[str]) -> list[str]:
    """Items a knowledge-base result lists side by side with a call's input, when that input came from the
    result and not from the question: the user asked about a group ("the robot's materials"), a result
    (the knowledge base) listed its members ("材料: 粘土 2kg、銅線 5m"), and the model looked up only some
    of them. The value must end its piece of the list (a lead-in and a quantity aside), and a sibling has
    its shape: a quantity after it when the value had one, and it is a name (a piece ending in a particle,
    as "…の材料は" does, is the start of a sentence)."""
    asked = fold(question)
    inputs = [
        fold(str(v)).strip() for args in calls for v in args.values() if isinstance(v, str) and v.strip()
    ]
    missing: list[str] = []
    for value in inputs:
        if len(value) < 2 or value in asked:
            continue
        for result in results:
            for sentence in re.split(r"[。\n]|\.(?:\s|$)", result):
                folded = fold(sentence)
                at = folded.find(value)
                if at < 0:
                    continue
                start = max(folded.rfind(":", 0, at), folded.rfind("：", 0, at)) + 1
                pieces = [_item(x) for x in _LIST_SEP.split(sentence[start:])]
                own = next(((fold(n), q) for n, q in pieces if value in fold(n)), None)
                if own is None or not own[0].endswith(value):
                    continue  # the value inside a phrase ("粘土を成形して…"): not a list of items
                for name, quantity in pieces:
                    f = fold(name)
                    if (
                        2 <= len(name) <= 30
                        and quantity == own[1]
                        and not any(f in v or v in f for v in inputs)
                        and name not in missing
                    ):
                        missing.append(name)
    return missing


def _fields(value: Any) -> dict[str, Any]:
    """The scalar fields of a JSON object, or of the objects of a list, by folded name."""
    out: dict[str, Any] = {}
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, Mapping):
            for k, v in item.items():
                if isinstance(v, str | int | float) and not isinstance(v, bool) and str(v).strip():
                    out.setdefault(fold(str(k)).strip(), v)
    return out


def chain_openings(
    results: Sequence[tuple[str, Mapping[str, Any], str]],
    params: Mapping[str, Sequence[str]],
    called: Sequence[str],
) -> dict[str, list[str]]:
    """Tools not called yet that take, as a required parameter, a value an earlier result named the same
    way: ``{tool: [parameter, …]}``. ``results``: (tool, arguments, result text) of the successful calls;
    a field that echoes the call's own input is not new (a vacancy check returns the id it was given);
    ``params``: each action tool's required parameters; ``called``: the tools called so far."""
    names: set[str] = set()
    for _, args, text in results:
        given = {fold(str(a)).strip() for a in args.values()}
        try:
            fields = _fields(json.loads(text))
        except ValueError:
            continue
        names |= {k for k, v in fields.items() if fold(str(v)).strip() not in given}
    out: dict[str, list[str]] = {}
    for tool, required in params.items():
        if tool in called:
            continue
        taken = [p for p in required if fold(p).strip() in names]
        if taken:
            out[tool] = taken
    return out


def group_members(value: str, results: Sequence[str]) -> list[str]:
    """The items a knowledge-base result lists under ``value`` ("Office Bundle: monitor, keyboard, webcam"
    → monitor, keyboard, webcam; 「スターターセット: ノートPC、マウス」): ``value`` ends the text before a
    colon, and at least two names follow it."""
    want = fold(value).strip()
    if len(want) < 2:
        return []
    for result in results:
        for sentence in re.split(r"[。\n]|\.(?:\s|$)", result):
            parts = re.split(r"[:：]", sentence, maxsplit=1)
            if len(parts) < 2 or not fold(parts[0]).strip().endswith(want):
                continue
            tail = parts[1]
            names = [n for n, _ in (_item(x) for x in _LIST_SEP.split(tail)) if 2 <= len(n) <= 30]
            if len(names) >= 2:
                return names
    return []


@dataclass(frozen=True)
class SendBack:
    """A final answer sent back: ``text`` tells the model why; ``tools``: the tools its next step may
    call (None: any; empty: the results are in hand, so it may only answer)."""

    text: str
    tools: tuple[str, ...] | None


@dataclass
class AnswerReview:
    """The answer checks of one run (``enabled`` is off under an overridden prompt template, which sets
    its own rules). Items left out are sent back once, then an answer that leaves out a result or is not
    in the user's language, once; after that, :meth:`final` adds what the answer still leaves out. Items
    left out go back again after each call the last send-back led to, as a list may have several."""

    enabled: bool
    # each action tool's required parameters (for the chained call: a result names one of them)
    params: Mapping[str, Sequence[str]] = field(default_factory=dict)
    sent_back: set[str] = field(default_factory=set)  # the kinds of check that have sent one back
    # the number of calls when items left out last sent an answer back: it goes back again only after the
    # model made a call since (it is working through the items), so at most once per call
    items_at: int | None = None

    def check(
        self,
        answer: str,
        question: str,
        lang: str,
        calls: Sequence[Mapping[str, Any]],
        observed: Sequence[str],
        results: Sequence[tuple[Mapping[str, Any], str]],
        p: Mapping[str, str],
        tools: Sequence[str] = (),
        done: Sequence[tuple[str, Mapping[str, Any], str]] = (),
    ) -> SendBack | None:
        """Whether ``answer`` goes back to the model (None: it stands). ``calls``: the run's action inputs,
        made with ``tools`` (the same order); ``observed``: what its knowledge-base searches returned;
        ``results``: its successful actions; ``done``: the results the answer follows, as (tool, arguments,
        result text): the last call's when it succeeded (after a failure, a next call is not what is missing).

        Items listed side by side with a value that was looked up are the same kind of thing, so they are
        looked up the same way: the next step may call only the tools that took such values (or answer),
        and the send-back names them. Items the question itself names may need other tools: all stay
        open."""
        if not self.enabled:
            return None
        if self.items_at is None or len(calls) > self.items_at:  # again after each call it led to
            asked, listed = unasked_siblings(question, calls), listed_siblings(question, calls, observed)
            if asked or listed:  # one of several things asked for was not looked up: tools stay open
                self.sent_back.add("items")
                self.items_at = len(calls)
                used = tuple(dict.fromkeys(tools))
                names = ", ".join(used) or p["the_tool"]
                if asked:
                    return SendBack(p["answer_unasked"].format(items=", ".join(asked), tools=names), None)
                return SendBack(p["answer_listed"].format(items=", ".join(listed), tools=names), used or None)
        if "chain" not in self.sent_back and done:
            opened = chain_openings(done, self.params, tools)
            if opened:  # the results give the next call's input: that call, or the answer
                self.sent_back.add("chain")
                return SendBack(
                    p["answer_chain"].format(
                        params=", ".join(dict.fromkeys(x for ps in opened.values() for x in ps)),
                        tools=", ".join(opened),
                    ),
                    tuple(opened),
                )
        if "answer" not in self.sent_back:
            problem = review_answer(answer, lang, results, p)
            if problem:
                self.sent_back.add("answer")
                return SendBack(problem, ())
        return None

    def final(self, answer: str, results: Sequence[tuple[Mapping[str, Any], str]]) -> str:
        """The answer to give: written as text when the model copied a JSON result as its answer; once one
        was sent back for what it left out, with the results it still leaves out added."""
        answer = readable(answer)
        return complete_answer(answer, results) if "answer" in self.sent_back else answer
