"""System-prompt format rules read by the model itself (``system_rules_reader = "model"``).

runtime/sysrules.py reads rules with patterns: precise, but blind to wording it has not seen (the blind
held-out split of bench/system_prompt.py). Here the chat model reads the system prompt once, under a JSON
grammar, and proposes the rules it states; the text then decides. A proposal is kept only when

* the system prompt holds evidence of that kind of rule (a sentence limit needs 文/sentence and its
  number; an ending, a first or last line or a banned word must appear in it verbatim), and
* the clause holding that evidence states a rule: the same checks the pattern reader applies (not
  optional or conditional, not a description of documents, data, users or tools, not negated for a rule
  that is no negation itself).

So the model can only add rules the text grounds, never invent one; a system prompt with no evidence word
of any kind costs no model call at all (``worth_asking``). The result fills what the pattern reader left
empty (``merge``). Written by hand: the schema and the grounding are this product's own rule kinds.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from haniwa.runtime.phrases import POLITE_JA
from haniwa.runtime.sysrules import DEFAULT_ITEMS, EMOJI, EXCLAMATION, Rules, stated_clauses, variants

__all__ = ["SCHEMA", "ground", "merge", "parse", "turns", "worth_asking"]

KINDS = (
    "sentence_ending", "max_sentences", "max_words", "max_characters", "bullet_list", "numbered_list",
    "item_count", "uppercase", "lowercase", "no_digits", "no_exclamation", "no_emoji", "no_polite_japanese",
    "end_with_question", "json_only", "answer_in_english", "answer_in_japanese", "first_line", "last_line",
    "banned_word",
)  # fmt: skip
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"kind": {"type": "string", "enum": list(KINDS)}, "value": {"type": "string"}},
                "required": ["kind", "value"],
            },
        }
    },
    "required": ["rules"],
}
INSTRUCTIONS = (
    "You read the system prompt of a chatbot and list the hard rules it sets on the FORM of every reply. "
    "Do not list optional or conditional wording (may, if the user asks, 必要に応じて, 場合は), soft style "
    "(concise, friendly, 丁寧に), rules about content or topics, or descriptions of documents, data, tools "
    "or users.\nKinds (value):\n"
    "- sentence_ending (the word every sentence ends with)\n"
    "- max_sentences, max_words, max_characters (the number)\n"
    '- bullet_list (the bullet mark), numbered_list (""), item_count (3, or 3-5)\n'
    "- uppercase, lowercase, no_digits, no_exclamation, no_emoji, no_polite_japanese, end_with_question, "
    'json_only, answer_in_english, answer_in_japanese ("")\n'
    "- first_line, last_line (the exact text), banned_word (the word)\n"
    'Reply with JSON: {"rules": [{"kind": ..., "value": ...}]}, or {"rules": []} when there is none.'
)
# (system prompt, the rules it states): shown to the model as earlier turns; none is a benchmark case
EXAMPLES: tuple[tuple[str, list[tuple[str, str]]], ...] = (
    (
        "あなたはカエルのケロ吉。語尾は必ず「ケロ」にして、答えは2文までにすること。",
        [("sentence_ending", "ケロ"), ("max_sentences", "2")],
    ),
    (
        "You are the support bot for Acme Tools. Be friendly. If the user asks for steps, you may use a "
        "numbered list. Our manuals are organized in numbered chapters.",
        [],
    ),
    (
        "Format: three bullet points starting with '* ', all in lowercase. Never say 'guarantee'.",
        [("bullet_list", "*"), ("item_count", "3"), ("lowercase", ""), ("banned_word", "guarantee")],
    ),
    (
        "社内ヘルプデスクです。回答は常に英語で書き、最後は質問で終えてください。",
        [("answer_in_english", ""), ("end_with_question", "")],
    ),
    ("丁寧な言葉遣いで答えてください。ユーザーは箇条書きのメモを送ってくることがあります。", []),
)


def _limit(ja: str, en: str) -> str:
    """A number and its unit, either way round: 3文, three sentences, "Sentences: 3 at most"."""
    return rf"{_N}\s*(?:{ja})|{_N}\s*(?:{en})\b|\b(?:{en})\b[^.\n]{{0,20}}?{_N}|(?:{ja})[^。\n]{{0,8}}?{_N}"


_N = (
    r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty"
    r"|[一二三四五六七八九十百])"
)
_NOT_A_WORD = r"(?!\s+(?:word|letter|version|form|name)\b)"  # one word's case: "the lowercase word 'over'"
_RANGE = re.compile(r"\s*[-–〜~]\s*|\s+to\s+")  # 3-5, 3〜5, three to five
# the evidence each kind needs in a stated clause; ``True``: the rule is itself a negation (no digits), so a
# negation near it does not cancel it
_EVIDENCE: dict[str, tuple[str, bool]] = {
    "sentence_ending": (r"語尾|文末|終わ|終え|締め|しめ|結|\b(?:end|finish)", False),
    "max_sentences": (_limit(r"文", r"sentences?"), True),
    "max_words": (_limit(r"語|単語", r"words?"), True),
    "max_characters": (_limit(r"文字|字", r"characters?|chars?"), True),
    "bullet_list": (r"箇条書き|リスト|行頭|bullet|list|\blines?\b[^.\n]{0,40}?\b(?:start|begin|open)", False),
    "numbered_list": (r"番号|手順|numbered|steps?|1\.|１．", False),
    "item_count": (rf"{_N}\s*(?:つ|個|項目|点|行|items?|bullets?|points?|lines?|steps?)", False),
    "uppercase": (rf"大文字|\b(?:upper ?case|capital|caps)\b{_NOT_A_WORD}", False),
    "lowercase": (rf"小文字|\b(?:lower ?case|capital|small letters)\b{_NOT_A_WORD}", True),
    "no_digits": (r"数字|digit|numeral", True),
    "no_exclamation": (r"感嘆符|ビックリ|びっくり|exclamation|[!！]", True),
    "no_emoji": (r"絵文字|顔文字|emoji|emoticon", True),
    "no_polite_japanese": (r"敬語|丁寧語|です・?ます|タメ口|ため口|polite|keigo|honorific", True),
    "end_with_question": (r"質問|問いかけ|疑問|question|[?？]", False),
    "json_only": (r"json", False),
    "answer_in_english": (r"英語|english", False),
    "answer_in_japanese": (r"日本語|japanese", False),
    "first_line": (r"最初|冒頭|書き出し|始め|はじめ|1行目|一行目|\b(?:first|start|begin|open)", False),
    "last_line": (r"最後|末尾|締め|結び|最終|\b(?:last|end|close|sign)", False),
    "banned_word": (
        r"使わ|使用|言わ|書か|禁止|避け|NG|\b(?:never|avoid|not|don't|ban|forbid|prohibited|off[- ]limits)",
        True,
    ),
}
_ASK = re.compile("|".join(p for p, _ in _EVIDENCE.values()), re.IGNORECASE)
_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "hundred": 100, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
    "九": 9, "十": 10, "百": 100,
}  # fmt: skip
_LIMITS = {"max_sentences": (1, 10), "max_words": (3, 300), "max_characters": (10, 400)}


def worth_asking(system: str) -> bool:
    """Whether the model could find a rule the text grounds: no evidence word of any kind, no call."""
    return bool(_ASK.search(unicodedata.normalize("NFKC", system)))


def question(system: str) -> str:
    return f"System prompt:\n<<<\n{system}\n>>>"


def turns(system: str) -> list[dict[str, str]]:
    """The chat-template messages of the reading call: the instructions, the examples, ``system``."""
    out = [{"role": "system", "content": INSTRUCTIONS}]
    for text, rules in EXAMPLES:
        answer = {"rules": [{"kind": k, "value": v} for k, v in rules]}
        out += [
            {"role": "user", "content": question(text)},
            {"role": "assistant", "content": json.dumps(answer, ensure_ascii=False)},
        ]
    return [*out, {"role": "user", "content": question(system)}]


def _number(value: str) -> int | None:
    value = unicodedata.normalize("NFKC", value).strip().lower()
    if value.isdigit():
        return int(value)
    return _WORDS.get(value)


def _in(value: str, clauses: list[str]) -> bool:
    """``value`` is written in one of ``clauses`` (as digits, a word or a kanji numeral for a number)."""
    n = _number(value)
    forms = {value} if n is None else {str(n), *(w for w, k in _WORDS.items() if k == n)}
    return any(f and f.lower() in c.lower() for f in forms for c in clauses)


def ground(data: Any, system: str) -> Rules:
    """The rules in the model's ``data`` (the SCHEMA's shape) that ``system`` grounds (see the module doc)."""
    text = unicodedata.normalize("NFKC", system)
    found: dict[str, str] = {}
    for rule in data.get("rules", []) if isinstance(data, dict) else []:
        if not isinstance(rule, dict) or rule.get("kind") not in _EVIDENCE or rule["kind"] in found:
            continue
        kind, value = rule["kind"], unicodedata.normalize("NFKC", str(rule.get("value", ""))).strip()
        pattern, negative = _EVIDENCE[kind]
        clauses = stated_clauses(text, re.compile(pattern, re.IGNORECASE), negation=not negative)
        if not clauses:
            continue
        if kind in _LIMITS or kind == "item_count":
            grounded = all(_in(p, clauses) for p in _RANGE.split(value) if p)
        elif kind in ("sentence_ending", "first_line", "last_line", "banned_word"):
            grounded = bool(re.sub(r"[\W_]", "", value)) and len(value) <= 60 and _in(value, clauses)
        else:
            grounded = True
        if grounded:
            found[kind] = value
    return _rules(found, text)


def _rules(found: dict[str, str], text: str) -> Rules:
    japanese = bool(re.search(r"[\u3041-\u3096\u30a1-\u30fa]", text))
    limits = {k: _number(found[k]) for k in _LIMITS if k in found}
    limits = {k: n for k, n in limits.items() if n is not None and _LIMITS[k][0] <= n <= _LIMITS[k][1]}
    items, marker = None, None
    if "numbered_list" in found or "bullet_list" in found:
        bounds = [_number(p) for p in _RANGE.split(found.get("item_count", "")) if p]
        counts = [n for n in bounds if n is not None and 2 <= n <= 20]  # one item is no list count (1行に1つ)
        items = (min(counts), max(counts)) if counts else DEFAULT_ITEMS
        sign = found.get("bullet_list", "").strip()[:1]
        sign = sign or ("・" if japanese else "-")
        marker = "1." if "numbered_list" in found else f"{sign} " if sign.isascii() else sign
    banned: list[str] = list(POLITE_JA) if "no_polite_japanese" in found else []
    if "banned_word" in found:
        banned += variants(found["banned_word"])
    english, japanese_only = "answer_in_english" in found, "answer_in_japanese" in found
    return Rules(
        ending=found.get("sentence_ending", "").rstrip("。.!！") or None,
        max_sentences=limits.get("max_sentences"),
        max_words=limits.get("max_words"),
        max_chars=limits.get("max_characters"),
        items=items,
        marker=marker,
        case="upper" if "uppercase" in found else "lower" if "lowercase" in found else None,
        no_digits="no_digits" in found,
        english=english and not japanese_only,
        json="json_only" in found,
        prefix=found.get("first_line") or None,
        closing=found.get("last_line") or None,
        banned=tuple(dict.fromkeys(banned)),
        japanese=japanese,
        japanese_only=japanese_only and not english,
        question="end_with_question" in found,
        marks=(EXCLAMATION if "no_exclamation" in found else ()) + (EMOJI if "no_emoji" in found else ()),
    )


def merge(patterns: Rules, model: Rules) -> Rules:
    """The pattern reader's rules, with what it left empty filled from the model's (bans and marks: both)."""
    if patterns.json or model.json:
        return Rules(json=True, japanese=patterns.japanese)
    values = {k: v or getattr(model, k) for k, v in vars(patterns).items()}
    if patterns.marker:  # the pattern reader's list, with the model's count where it found none
        counted = model.items if model.items not in (None, DEFAULT_ITEMS) else patterns.items
        values["items"] = counted if patterns.items == DEFAULT_ITEMS else patterns.items
    if patterns.english or patterns.japanese_only:  # one answer language: the pattern reader's
        values["english"], values["japanese_only"] = patterns.english, patterns.japanese_only
    values["banned"] = tuple(dict.fromkeys(patterns.banned + model.banned))
    values["marks"] = tuple(dict.fromkeys(patterns.marks + model.marks))
    values["japanese"] = patterns.japanese
    return Rules(**values)


def parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {}
