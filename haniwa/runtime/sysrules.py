"""Format rules read from a system prompt, enforced while decoding (``system_rules``).

Small models state a system prompt's rule back when asked, and then break it in the answer: an ending
such as 「なのだ」 dropped after the first sentence, five sentences where two were allowed, prose where a
list was asked for (bench/system_prompt.py). When a rule is a *format*, it can be kept by construction: a
grammar that only lets the answer take that form. This module recognises the common format rules users
write, in Japanese and English, and turns them into one GBNF grammar:

* an ending on every sentence (語尾は「なのだ」, 文末に「にゃ」をつける, 「ぴょん」で終える,
  end every sentence with "nya");
* at most N sentences (2文以内, 1文だけ, in at most two sentences, one sentence only);
* at most N words (English: in 50 words or fewer);
* at most N characters (100文字以内, keep your reply under 200 characters);
* a list: bullets (箇条書き, 「・」で始まる, bulleted list, bullet points, lines starting with "- ") or
  numbered (番号付き, numbered list), with an item count when one is given (3項目, 3 to 5 items);
* letter case (only capital letters / all lowercase), no digits (数字を使わない, no digits);
* English only (answer in English: printable ASCII), JSON only (reply only with a JSON object).
* phrases the answer may not hold: polite forms (敬語は使わない, タメ口で) and a word to avoid (never
  mention the word 'Python', 「絶対」という言葉は使わない), banned token by token (runtime/phrases.py).

A rule counts only when it is stated as one: a clause that makes it optional (may, can, if helpful,
てもよい, 場合は) or negates it (do not use bullet points, 箇条書きにしない) is skipped, and a system
prompt longer than ``MAX_CHARS`` (a document, an agent's instructions) is not read at all. Rules that are
no form (a tone, a topic to stay on) are left to the prompt and the system reminder.

Written by hand: no library reads instructions into grammars; the patterns are small and tested one by one
(tests/test_sysrules.py), and the grammars are checked by llama.cpp's own GBNF parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from haniwa.runtime.phrases import POLITE_JA

__all__ = ["MAX_CHARS", "Rules", "derive", "grammar"]

MAX_CHARS = 1000  # as the system reminder: longer system prompts are documents or agent instructions
SENTENCE_CHARS = 80  # a sentence under an ending rule is bounded, or the model dodges the ending with
# one run-on sentence until max_tokens cuts it off
LINE_CHARS = 100  # a list item, bounded: one item that never ends spends max_tokens before the others
DEFAULT_ITEMS = (2, 8)  # a list rule without a count

_NUM = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "a single": 1, "a": 1, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
    "八": 8, "九": 9, "十": 10, "ひとつ": 1, "ふたつ": 2, "みっつ": 3, "よっつ": 4, "いつつ": 5,
}  # fmt: skip
_N = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten|a single|[一二三四五六七八九十])"
# full-width digits and Latin letters read as ASCII (same length, so quoted words keep the user's form)
_WIDE = str.maketrans(
    {c: chr(c - 0xFEE0) for c in [*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B)]}
)
_OPEN, _CLOSE = "「『\"'“‘", "」』\"'”’"
_Q = rf"[{_OPEN}]([^{_CLOSE}\n]{{1,40}})[{_CLOSE}]"  # a quoted word

# a clause that makes its rule optional or says not to do it
_OPTIONAL = re.compile(
    r"\b(?:(?:may|can|could|might)(?! only)|feel free|optionally|prefer|ideally|if|when|whenever|unless|"
    r"upon request|on request|in that case|otherwise)\b"
    r"|[てで]も(?:よい|いい|良い|構わ|構い|OK)|可能なら|できれば|なるべく"
    r"|必要に応じ|必要なら|適宜|お好みで|場合によ|(?:場合|とき|時)(?:は|だけ|のみ|に限り|には)|たら|れば|なら[、,]"
    r"|(?:られ|され)ても|その場合|その際|こともある|ことがある|と親切|とよい|と良い|といい|がおすすめ|を推奨|望ましい",
    re.IGNORECASE,
)
_NOT = re.compile(
    r"\b(not|never|no|don't|avoid|without)\b|しない|しないで|しません|使わない|使わず|禁止|避け|不要|ないこと"
    r"|ないで|ません",
    re.IGNORECASE,
)

_ENDING = (
    re.compile(rf"(?:語尾|文末|文の終わり|文の最後|文尾)[^。\n]{{0,16}}?{_Q}"),
    re.compile(rf"{_Q}\s*(?:で|と)(?:終わ|終え|終る|しめ|締め|結)"),
    re.compile(
        rf"\bend (?:every|each|all(?: of)?(?: your)?) (?:sentence|sentences|line|lines|phrase|phrases)\b"
        rf"[^.\n]{{0,24}}?\bwith\s+(?:the (?:word|phrase) )?{_Q}",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\b(?:every|each|all) (?:sentence|sentences)\b[^.\n]{{0,30}}?\bend(?:s|ing)? (?:with|in)\s+"
        rf"(?:the (?:word|phrase) )?{_Q}",
        re.IGNORECASE,
    ),
)
_SENTENCES = (
    re.compile(rf"{_N}\s*文(?:以内|まで|以下|だけ|のみ|で(?:答|回答|返|説明|まとめ|述べ|書))"),
    re.compile(
        rf"\b(?:at most|no more than|not more than|up to|maximum of|max(?:imum)?|within|in|using|with|"
        rf"only|exactly|just)\s+{_N}\s+(?:short\s+|full\s+|complete\s+)?sentences?\b",
        re.IGNORECASE,
    ),
    re.compile(rf"\b{_N}\s+sentences? (?:or (?:fewer|less)|max(?:imum)?|at most|only)\b", re.IGNORECASE),
    re.compile(r"\b(?:a single|one) sentence\b", re.IGNORECASE),
)
_CAPS = (  # "never use more than three sentences": the negation is the rule
    re.compile(
        rf"\b(?:never|not|n't|no)\b[^.\n]{{0,24}}?\b(?:more than|exceed(?:ing)?|over)\s+{_N}\s+"
        r"(sentences?|words)\b",
        re.IGNORECASE,
    ),
)
_WORDS = (
    re.compile(
        rf"\b(?:at most|no more than|not more than|up to|maximum of|max(?:imum)?|within|under|fewer than|"
        rf"less than|in|using)\s+{_N}\s+words\b",
        re.IGNORECASE,
    ),
    re.compile(rf"\b{_N}\s+words (?:or (?:fewer|less)|max(?:imum)?|at most)\b", re.IGNORECASE),
)
_CHARS = (
    re.compile(r"(\d+)\s*(?:文字|字)(?:以内|まで|以下|程度で|で(?:答|回答|返|まとめ|書))"),
    re.compile(  # tied to the answer: "a summary line of at most 50 characters" is no limit on it
        r"\b(?:reply|replies|response|responses|answer|answers)\b[^.\n]{0,24}?\b(?:to|under|within|at most|"
        r"no more than|max(?:imum)?(?: of)?)\s+(\d+)\s+characters\b",
        re.IGNORECASE,
    ),
)
_BULLETS = re.compile(r"箇条書き|bullet(?:ed)?(?: list| points?)?|\bbullets\b|list of items", re.IGNORECASE)
_NUMBERED = re.compile(r"番号付き|番号をつけ|番号を付け|numbered (?:list|items|points|steps)", re.IGNORECASE)
_MARKER = re.compile(
    rf"(?:[{_OPEN}]\s?([・\-*•●])\s?[{_CLOSE}]\s*(?:で始|から始|を(?:行頭|先頭|つけ|付け))"
    rf"|(?:start|begin)s? with\s+[{_OPEN}]([\-*•・])\s?[{_CLOSE}])",
    re.IGNORECASE,
)
_ITEMS = re.compile(
    rf"(?:{_N}\s*(?:〜|~|から|-|–|to|or)\s*)?{_N}\s*(?:つ|個|項目|点|行|items?|bullets?|points?|lines?|steps?)"
    r"(?![a-z])",
    re.IGNORECASE,
)
_UPPER = re.compile(
    r"\b(?:in|using|with) (?:all )?(?:upper ?case|uppercase|capital letters|capitals|all caps)\b|"
    r"\ball caps\b|\bonly (?:upper ?case|capital) letters\b|\bcapital letters only\b|大文字(?:だけ|のみ)",
    re.IGNORECASE,
)
_LOWER = re.compile(
    r"\b(?:in|using|with) (?:all )?(?:lower ?case|lowercase|small letters)\b|\bonly lower ?case\b|"
    r"\blower ?case (?:letters )?only\b|\bnever (?:use )?(?:capital|upper ?case) letters\b|"
    r"\bno (?:capital|upper ?case) letters\b|小文字(?:だけ|のみ)",
    re.IGNORECASE,
)
_NO_DIGITS = re.compile(
    r"\b(?:no|never use|never write|do not use|don't use|without|avoid)(?: any)? (?:digits|numerals|arabic "
    r"numerals)\b|\bspell out (?:all |every |each )?numbers?\b|(?:算用)?数字を(?:使わ|書か|用いな)|"
    r"アラビア数字を(?:使わ|書か)|数字は(?:使わ|書か)",
    re.IGNORECASE,
)
_ENGLISH = re.compile(
    r"\b(?:answer|reply|respond|write|speak|talk)(?: only)? in english\b|\bin english only\b|"
    r"\bonly (?:in )?english\b|\benglish only\b|"
    r"英語(?:だけ|のみ)?で(?:答|回答|返|話|書)|英語(?:だけ|のみ)を使|"
    r"(?:返答|回答|応答|出力|返事|答え)は(?:必ず|常に)?英語(?:だけ|のみ)?で",
    re.IGNORECASE,
)
_OTHER_LANGUAGE = re.compile(r"english or|or english|英語か|か英語|英語または|または英語|英語や|や英語", re.I)
_ANSWER = r"(?:every|each|all|your|all of your)\s+(?:answers?|replies|reply|responses?|messages?)"
_PREFIX = (
    re.compile(
        rf"\b(?:start|begin)\s+{_ANSWER}\b[^\n]{{0,30}}?\bwith\s+(?:the (?:exact )?(?:words?|phrase|line))?"
        rf"\s*:?\s*{_Q}",
        re.IGNORECASE,
    ),
    re.compile(rf"(?:最初|冒頭|書き出し|はじめ|初め)(?:は|に)(?:必ず)?{_Q}"),
    re.compile(rf"{_Q}\s*(?:から|で)(?:書き)?(?:始め|はじめ)"),
)
_LINE = r"the (?:exact )?(?:words?|phrase|line|sentence|sign-off)"
_CLOSING = (
    re.compile(
        rf"\bend\s+{_ANSWER}\b[^\n]{{0,30}}?\bwith\s+(?:(?:{_LINE})?\s*:?\s*{_Q}|"
        rf"{_LINE}\s*:?\s*([^\n\"'“‘]{{2,40}})$)",  # unquoted only as "the exact line: ..."
        re.IGNORECASE,
    ),
    re.compile(rf"(?<!文の)(?<!文)(?:最後|末尾|締め|結び)(?:は|に)(?:必ず)?{_Q}\s*(?:と|を|で)"),
)
_POLITE = re.compile(
    r"(?:敬語|丁寧語|丁寧な言葉|です・?ます調?|ですます調?)[^。\n]{0,12}?(?:使わ|使用しな|禁止|なし|無し|NG|やめ|不要|避け)"
    # タメ口 as the manner asked for, not in a condition (タメ口で話しかけられても、… / タメ口なら)
    r"|(?:タメ口|ため口)(?:で|を使|に(?:して|する)|口調)(?![^、。]{0,10}(?:ても|でも|たら|なら|れば|場合))"
    r"|\b(?:no|never use|don't use|do not use|avoid|without)\b[^.\n]{0,20}?"
    r"\b(?:polite|keigo|desu/masu|honorific)",
    re.IGNORECASE,
)
_AVOID = (
    re.compile(
        r"\b(?:never|don't|do not|avoid|must not|mustn't)\s+(?:ever\s+)?(?:say|use|mention|write|include|"
        rf"saying|using|mentioning|writing)\s+(?:the\s+)?(?:(?:word|term|phrase|name)s?\s+)?{_Q}",
        re.IGNORECASE,
    ),
    re.compile(
        rf"{_Q}\s*(?:という(?:言葉|単語|表現|語|フレーズ))?\s*(?:は|を)?\s*(?:絶対に|一切|決して)?\s*"
        r"(?:使わ|使用しな|言わ|書か|用いな|禁止|避け|NG)"
    ),
)
_JSON = re.compile(
    r"\b(?:reply|respond|answer|output|return|write)\b[^.\n]{0,24}\bonly\b[^.\n]{0,16}\bjson\b|"
    r"\bonly (?:output |return |reply with |respond with )?(?:a |one )?(?:valid )?json\b|"
    r"\bjson only\b|JSON(?:形式)?(?:だけ|のみ)で|JSON(?:形式)?(?:だけ|のみ)を(?:出力|返)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Rules:
    """The format rules of one system prompt (all None/False: none found)."""

    ending: str | None = None
    max_sentences: int | None = None
    max_words: int | None = None
    max_chars: int | None = None
    items: tuple[int, int] | None = None  # a list: least..most items
    marker: str | None = None  # the bullet ("・", "- ", "* "); "1." for a numbered list
    case: str | None = None  # "upper" or "lower"
    no_digits: bool = False
    english: bool = False
    json: bool = False
    prefix: str | None = None  # the answer starts with this
    closing: str | None = None  # and ends with this line
    banned: tuple[str, ...] = ()  # phrases the answer may not hold (polite forms, a word to avoid)
    japanese: bool = False  # the system prompt is Japanese (sentence ends 。！？)

    def __bool__(self) -> bool:
        return any(
            (self.ending, self.max_sentences, self.max_words, self.max_chars, self.items, self.case)
        ) or any((self.no_digits, self.english, self.json, self.prefix, self.closing, self.banned))

    def describe(self) -> str:
        """The rules found, for logs: ``ending='なのだ' banned=8 phrases``."""
        parts = [
            f"{k}={v!r}" if k != "banned" else f"banned={len(v)} phrases"
            for k, v in vars(self).items()
            if v and k != "japanese"
        ]
        return " ".join(parts) or "none"


def _num(word: str) -> int:
    return int(word) if word.isdigit() else _NUM[word.lower()]


def _clauses(text: str) -> list[str]:
    """Sentences of the system prompt, each a clause a rule is read from; a quoted text (「こんにちは！」,
    "Sure thing!") stays whole."""
    out, start, depth = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "「『“":
            depth += 1
        elif ch in "」』”" and depth:
            depth -= 1
        elif ch == '"':
            depth = 0 if depth else 1
        end = ch in "。！？!?\n" or (ch in ".;" and text[i + 1 : i + 2] in (" ", "\n", ""))
        if end and (not depth or ch == "\n"):
            out.append(text[start : i + 1])
            start, depth = i + 1, 0
    out.append(text[start:])
    return [c.strip() for c in out if c.strip()]


def _stated(clause: str, m: re.Match[str], negation: bool) -> bool:
    """The rule matched in ``clause`` is required: not made optional or conditional (may, if, 必要に応じて,
    場合は) and, with ``negation``, not negated around the match (do not use bullet points). Rules whose
    wording is a negation (no digits, 敬語は使わない, never more than three sentences) skip that part."""
    if _OPTIONAL.search(clause):
        return False
    if not negation:
        return True
    around = clause[max(0, m.start() - 24) : m.end() + 16]
    return not _NOT.search(around)


def _find(
    patterns: tuple[re.Pattern[str], ...], clauses: list[str], negation: bool = True
) -> tuple[str, re.Match[str]] | None:
    """The first clause stating one of ``patterns`` as required (``negation``: and not negated there)."""
    for clause in clauses:
        for p in patterns:
            m = p.search(clause)
            if m and _stated(clause, m, negation):
                return clause, m
    return None


def _first(
    patterns: tuple[re.Pattern[str], ...], clauses: list[str], negation: bool = True
) -> re.Match[str] | None:
    found = _find(patterns, clauses, negation)
    return found[1] if found else None


def derive(system: str | None) -> Rules:
    """The format rules ``system`` states (see the module doc); ``Rules()`` when none, or when too long."""
    if not system or len(system) > MAX_CHARS:
        return Rules()
    text = system.translate(_WIDE)
    clauses = _clauses(text)
    japanese = bool(re.search(r"[\u3041-\u3096\u30a1-\u30fa]", text))
    if _first((_JSON,), clauses):
        return Rules(json=True, japanese=japanese)
    closing = None
    found = _find(_CLOSING, clauses, negation=False)
    if found:
        closing = next(g for g in found[1].groups() if g).strip()
    ending = None
    m = _first(_ENDING, clauses, negation=False)  # an ending rule is a requirement however it is worded
    if m and not (found and m.string == found[0]):  # 回答の最後は「以上です。」で締める: the closing line
        ending = m.group(1).strip().rstrip("。.!！")
    items, marker = None, None
    numbered = _find((_NUMBERED,), clauses)
    listed = numbered or _find((_BULLETS,), clauses) or _find((_MARKER,), clauses, negation=False)
    if listed:
        items = _count(listed[0])
        mark = _first((_MARKER,), clauses, negation=False)
        if numbered:
            marker = "1."
        else:
            sign = (mark.group(1) or mark.group(2)) if mark else ("・" if japanese else "-")
            marker = sign if sign in "・•●" else f"{sign} "
    sentences = None
    m = _first(_SENTENCES, clauses, negation=False)
    if m:
        sentences = 1 if m.lastindex is None else _num(m.group(1))
    words = None
    m = _first(_WORDS, clauses, negation=False)
    if m:
        words = _num(m.group(1)) - (1 if re.search(r"fewer than|less than|under", m.group(0), re.I) else 0)
    m = _first(_CAPS, clauses, negation=False)
    if m and m.group(2).lower().startswith("sentence"):
        sentences = sentences or _num(m.group(1))
    elif m:
        words = words or _num(m.group(1))
    chars = None
    m = _first(_CHARS, clauses, negation=False)
    if m:
        chars = int(m.group(1))
    prefix = None
    m = _first(_PREFIX, clauses, negation=False)
    if m and len(m.group(1).strip()) >= 2:  # one character is a list marker (「・」で始める)
        prefix = m.group(1).strip()
    banned: list[str] = list(POLITE_JA) if _first((_POLITE,), clauses, negation=False) else []
    m = _first(_AVOID, clauses, negation=False)
    if m:
        word = m.group(1).strip()
        banned += dict.fromkeys((word, word.lower(), word.capitalize(), word.upper()))
    case = "upper" if _first((_UPPER,), clauses, negation=False) else None
    if _first((_LOWER,), clauses, negation=False):
        case = "lower"
    return Rules(
        ending=ending or None,
        max_sentences=sentences if sentences and sentences > 0 else None,
        max_words=words if words and words > 0 else None,
        max_chars=chars if chars and 0 < chars <= 400 else None,
        items=items if marker else None,
        marker=marker,
        case=case,
        no_digits=bool(_first((_NO_DIGITS,), clauses, negation=False)),
        english=bool((en := _find((_ENGLISH,), clauses)) and not _OTHER_LANGUAGE.search(en[0])),
        prefix=prefix,
        closing=closing,
        banned=tuple(dict.fromkeys(banned)),
        japanese=japanese,
    )


def _count(clause: str) -> tuple[int, int]:
    m = _ITEMS.search(clause)
    if not m:
        return DEFAULT_ITEMS
    most = _num(m.group(2))
    least = _num(m.group(1)) if m.group(1) else most
    if re.search(r"まで|以内|以下|at most|up to|no more than", clause, re.I) and not m.group(1):
        least = 1
    return (min(least, most), max(least, most))


# -- grammar ------------------------------------------------------------------------------------------
def _escape(ch: str) -> str:
    return ch if ch.isalnum() and ch.isascii() else f"\\u{ord(ch):04X}"


# digits in every script a small model reaches for once ASCII digits are masked (full-width, Arabic-Indic,
# Devanagari, super/subscripts, circled and parenthesized numbers)
_DIGITS = {
    *range(0x30, 0x3A), *range(0xFF10, 0xFF1A), *range(0x660, 0x66A), *range(0x6F0, 0x6FA),
    *range(0x966, 0x970), 0xB2, 0xB3, 0xB9, *range(0x2070, 0x208A), *range(0x2460, 0x24A0),
}  # fmt: skip


def _cls(rules: Rules, stop: str = "") -> str:
    """A GBNF character class: any character but ``stop`` and what the rules forbid."""
    banned: set[int] = {ord(c) for c in stop} | {1}
    if rules.case == "upper":
        banned |= set(range(ord("a"), ord("z") + 1))
    elif rules.case == "lower":
        banned |= set(range(ord("A"), ord("Z") + 1))
    if rules.no_digits:
        banned |= _DIGITS
    if rules.english:  # printable ASCII and line breaks, listed as ranges
        allowed = [c for c in [10, *range(0x20, 0x7F)] if c not in banned]
        spans: list[tuple[int, int]] = []
        for c in allowed:
            if spans and spans[-1][1] == c - 1:
                spans[-1] = (spans[-1][0], c)
            else:
                spans.append((c, c))
        body = "".join(
            _escape(chr(a)) if a == b else f"{_escape(chr(a))}-{_escape(chr(b))}" for a, b in spans
        )
        return f"[{body}]"
    return "[^" + "".join(_escape(chr(c)) for c in sorted(banned)) + "]"


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def grammar(rules: Rules) -> str | None:
    """The GBNF text (root rule ``root``) that keeps an answer within ``rules``; None when there is
    nothing to constrain, or the rule is JSON (the caller constrains that with its JSON grammar)."""
    if not rules or rules.json or rules == Rules(banned=rules.banned, japanese=rules.japanese):
        return None
    body = _body(rules).replace("root ::=", "main ::=", 1)
    head = f'{_literal(rules.prefix)} (" " | "\\n")? ' if rules.prefix else ""
    if rules.closing:
        # the answer's own form, then the closing line; text before it stays free when nothing else is set
        main = "main" if _body(rules) != _free(rules) else "[^\\u0001]*"
        return f'root ::= {head}{main} "\\n"? {_literal(rules.closing)}\n{body}'
    return f"root ::= {head}main\n{body}"


def _free(rules: Rules) -> str:
    return f"root ::= {_cls(rules)}+\n"


def _body(rules: Rules) -> str:
    """The answer's form under ``rules``, as GBNF with its own ``root``."""
    ja = rules.japanese and not rules.english
    ends = "。！？!?" if ja else ".!?"
    if rules.ending:
        close = "[。！!]" if ja else "[.!]"
        sent = f"{_cls(rules, ends + chr(10))}{{1,{SENTENCE_CHARS}}} {_literal(rules.ending)} {close}"
    else:
        sent = f"{_cls(rules, ends + chr(10))}+ [{''.join(_escape(c) for c in ends)}]"
    sep = '"\\n"?' if ja else '(" " | "\\n")'
    if rules.items is not None and rules.marker is not None:
        least, most = rules.items
        # a one-character bullet (・) is kept out of an item, or the model lists every item on one line
        stop = chr(10) + (rules.marker if len(rules.marker) == 1 else "")
        line = sent if rules.ending else f"{_cls(rules, stop)}{{1,{LINE_CHARS}}}"
        if rules.marker == "1.":
            items = [f'"{i}. " line "\\n"' for i in range(1, most + 1)]
            tail = ""
            for item in reversed(items[least:]):
                tail = f"({item} {tail})?" if tail else f"({item})?"
            return f"root ::= {' '.join(items[:least])} {tail}\nline ::= {line}\n".replace("  ", " ")
        return f'root ::= item{{{least},{most}}}\nitem ::= "{rules.marker}" line "\\n"\nline ::= {line}\n'
    if rules.max_sentences is not None:
        n = rules.max_sentences
        return f"root ::= sent ({sep} sent){{0,{n - 1}}}\nsent ::= {sent}\n"
    if rules.ending:
        return f"root ::= sent ({sep} sent)*\nsent ::= {sent}\n"
    if rules.max_words is not None:
        word_cls = _cls(rules, " \n")
        return f'root ::= word ((" " | "\\n") word){{0,{rules.max_words - 1}}}\nword ::= {word_cls}+\n'
    if rules.max_chars is not None:
        return f"root ::= {_cls(rules)}{{1,{rules.max_chars}}}\n"
    return _free(rules)
