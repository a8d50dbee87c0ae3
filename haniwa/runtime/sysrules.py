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
* letter case (only capital letters / all lowercase), no digits (数字を使わない, no digits), no
  exclamation marks or emoji;
* English only (answer in English: printable ASCII), Japanese only (the answer starts in Japanese), JSON
  only (reply only with a JSON object);
* a fixed first or last line (quoted, or given after a colon), a question at the end;
* phrases the answer may not hold: polite forms (敬語は使わない, タメ口で) and a word to avoid (never
  mention the word 'Python', 「絶対」という言葉は使わない), banned token by token (runtime/phrases.py).

A rule counts only when it is stated as one: a clause that makes it optional (may, can, if helpful,
てもよい, 場合は, usually), negates it (do not use bullet points, 箇条書きにしない) or describes something
else (documents, data, users, a tool's output: 番号付きの条項で構成されています) is skipped, judged on the
part of the sentence that holds the rule, with quoted examples and asides left out; and a system prompt
longer than ``MAX_CHARS`` (a document, an agent's instructions) is not read at all. Rules that are
no form (a tone, a topic to stay on) are left to the prompt and the system reminder.

Written by hand: no library reads instructions into grammars; the patterns are small and tested one by one
(tests/test_sysrules.py), and the grammars are checked by llama.cpp's own GBNF parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from haniwa.runtime.phrases import POLITE_JA

__all__ = ["EMOJI", "EXCLAMATION", "MAX_CHARS", "Rules", "derive", "grammar", "stated_clauses", "variants"]

MAX_CHARS = 1000  # as the system reminder: longer system prompts are documents or agent instructions
SENTENCE_CHARS = 80  # a sentence under an ending rule is bounded, or the model dodges the ending with
# one run-on sentence until max_tokens cuts it off
LINE_CHARS = 100  # a list item, bounded: one item that never ends spends max_tokens before the others
DEFAULT_ITEMS = (2, 8)  # a list rule without a count

_NUM = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "a single": 1, "a": 1, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
    "八": 8, "九": 9, "十": 10, "ひとつ": 1, "ふたつ": 2, "みっつ": 3, "よっつ": 4, "いつつ": 5,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "a hundred": 100, "one hundred": 100,
}  # fmt: skip
_N = (
    r"(\d+|(?:a|one) hundred|eleven|twelve|(?:thir|four|fif|six|seven|eigh|nine)teen"
    r"|(?:twen|thir|for|fif|six|seven|eigh|nine)ty|one|two|three|four|five|six|seven|eight|nine|ten|a single"
    r"|[一二三四五六七八九十])"
)
# full-width digits and Latin letters read as ASCII (same length, so quoted words keep the user's form)
_WIDE = str.maketrans(
    {c: chr(c - 0xFEE0) for c in [*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B)]}
)
_OPEN, _CLOSE = "「『\"'“‘", "」』\"'”’"
_Q = rf"[{_OPEN}]([^{_CLOSE}\n]{{1,40}})[{_CLOSE}]"  # a quoted word

# a clause that makes its rule optional or says not to do it
_OPTIONAL = re.compile(
    # "even if / even when" concedes: the rule holds either way
    r"\b(?:(?:may|can|could|might)(?! only)|feel free|optionally|prefer|ideally"
    r"|(?<!even )(?:if|when|whenever)|unless|upon request|on request|in that case|otherwise)\b"
    r"|[てで]も(?:よい|いい|良い|構わ|構い|OK)|可能なら|できれば|なるべく"
    r"|必要に応じ|必要なら|適宜|お好みで|場合によ|(?:場合|とき|時)(?:は|だけ|のみ|に限り|には)|たら|れば|なら[、,]"
    r"|その場合|その際|こともある|ことがある|と親切|とよい|と良い|といい|がおすすめ|を推奨|望ましい"
    r"|かどうか|次第|構いません|構わない|自由に"
    # a habit, not a rule: "a good letter usually stays under 400 words", 通常は3文程度
    r"|\b(?:usually|typically|normally|generally|often|sometimes|tends? to)\b"
    r"|通常|普段|ふだん|たいてい|基本的に",
    re.IGNORECASE,
)
# the assistant's own speaking or answering is no condition: 話すときは, 答えるときは, "when you reply"
_ALWAYS = re.compile(
    r"(?:話す|答える|回答する|返答する|返事をする|しゃべる|喋る|書く)(?:とき|時)(?:は|には)"
    r"|\bwhen(?:ever)? you (?:answer|reply|respond|speak|talk|write)\b",
    re.IGNORECASE,
)
# a contrast between two parts of one sentence
_BUT = re.compile(
    r",?\s+but\s+|,?\s+however,?\s+|;\s*|,\s+even (?:if|when|though)\s+"
    r"|(?:です|ます)?が、|けれど(?:も)?、|けど、|しかし、"
)
# a clause that describes (documents, data, users), not one that instructs: 番号付きの条項で構成されています,
# "runbooks, which are organized as numbered steps"; the answer as subject still instructs
_DESCRIBES = re.compile(
    r"(?:ています|ている|ていました|てきます|てくる|てあります|てある|あります|(?<!で)ある|います|いる|されます"
    r"|できます|できる|でしょう)[」』）)\]]*[。.!！]?\s*$"
    r"|\b(?:is|are|was|were)\s+(?:\w+ly\s+)?(?:organi[sz]ed|structured|written|styled|stored|formatted|arranged"
    r"|laid out|presented|kept|listed|returned|sent|encoded|capitali[sz]ed|spelled|numbered)\b",
    re.IGNORECASE,
)
_ANSWER_IS = re.compile(
    r"\b(?:your|all|every|each|the)\s+(?:answers?|repl(?:y|ies)|responses?|output|messages?)\s+(?:is|are)\b",
    re.IGNORECASE,
)
_ASIDE = re.compile(r"「[^」]*」|『[^』]*』|“[^”]*”|\"[^\"]*\"|（[^（）]*）|\([^()]*\)")
# a tool's description in an agent prompt ("- get_policy(): returns a bulleted list"): what the tool does
_TOOL_LINE = re.compile(r"^(?:[-*•・]\s*)?`?[A-Za-z_][\w.]*`?\s*\([^)]*\)\s*[:：\-–]")
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
        rf"[^.\n]{{0,24}}?\bwith\s+(?:the (?:[\w-]+ ){{0,2}}?(?:word|phrase) )?{_Q}",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\b(?:every|each|all) (?:single )?(?:sentence|sentences)\b[^.\n]{{0,30}}?\bend(?:s|ing)? "
        rf"(?:with|in)\s+"
        rf"(?:the (?:[\w-]+ ){{0,2}}?(?:word|phrase) )?{_Q}",
        re.IGNORECASE,
    ),
)
_SENTENCES = (
    re.compile(
        rf"{_N}\s*文(?:以内|まで|以下|だけ|のみ|で(?:答|回答|返|説明|まとめ|述べ|書)|を(?:超え|こえ))"
    ),
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
    re.compile(
        rf"\b{_N}\s+words (?:or (?:fewer|less)|max(?:imum)?|at most|per (?:reply|answer|response|message))\b",
        re.IGNORECASE,
    ),
)
_CHARS = (
    re.compile(r"(\d+)\s*(?:文字|字)(?:以内|まで|以下|程度で|で(?:答|回答|返|まとめ|書))"),
    re.compile(  # tied to the answer: "a summary line of at most 50 characters" is no limit on it
        r"\b(?:reply|replies|response|responses|answer|answers)\b[^.\n]{0,24}?\b(?:to|under|within|at most|"
        r"no more than|max(?:imum)?(?: of)?)\s+(\d+)\s+characters\b",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:reply|replies|response|responses|answer|answers|message)\b[^.\n]{0,40}?\b(\d+)\s+"
        r"characters or (?:fewer|less)\b",
        re.IGNORECASE,
    ),
)
# a Japanese limit whose topic is something else (「概要」欄は全角100文字まで), read just before the number
_OTHER_TOPIC = re.compile(
    r"(?<!回答|返答|答え|出力|返信|応答|返事|文章|説明|全体)(?<!あなた)(?<!文|答)は[^、。はが]{0,6}$"
)
_BULLETS = re.compile(
    rf"箇条書き|bullet(?:ed)?(?: list| points?)?|\bbullets\b"
    rf"|\blist of (?:{_N}(?: to | or |-){_N} |{_N} )?(?:items|lines|points)\b",
    re.IGNORECASE,
)
_NUMBERED = re.compile(
    r"番号付き|番号(?:を|で)?(?:つけ|付け|振|ふ)|連番|numbered (?:list|items|points|steps)", re.IGNORECASE
)
_MARKER = re.compile(
    # any one symbol in quotes: 「・」「■」'-' '•'
    rf"(?:[{_OPEN}]\s?([^\w\s{_CLOSE}])\s?[{_CLOSE}]\s*(?:で始|から始|を(?:行頭|先頭|つけ|付け))"
    rf"|(?:行頭|先頭)に\s*[{_OPEN}]\s?([^\w\s{_CLOSE}])\s?[{_CLOSE}]"
    rf"|(?:start|begin)(?:s|ing)? with\s+(?:the\s+)?[{_OPEN}]([^\w\s{_CLOSE}])\s?[{_CLOSE}]"
    r"|(?:start|begin)(?:s|ing|ning)? with (?:an? |the )?(asterisk|dash|hyphen|bullet)\b)",
    re.IGNORECASE,
)
_ITEMS = re.compile(
    rf"(?:{_N}\s*(?:〜|~|から|-|–|to|or)\s*)?{_N}\s*(?:つ|個|項目|点|行|items?|bullets?|points?|lines?|steps?)"
    r"(?![a-z])(?!\s*(?:に|ずつ|per |each |a line|an item))",  # 1行に1手順, one item per line: no count
    re.IGNORECASE,
)
# an imperative, not a description: "write ... in all caps", not "the system stores subjects in ALL CAPS"
_IMP = (
    r"(?:^|[:\-•*]\s*|\b(?:always|only|must|should|please|shall|you|and|so|then|to)\s+)(?:always\s+|only\s+)?"
)
_VERB = r"(?:answer|reply|respond|write|speak|talk|type|shout|communicate|output)"
_NOUN = r"(?:replies|responses|answers|output|messages|reply|response|answer|everything you write)"
_MUST = r"(?:must|should|shall|will|is to|are to)"


def _case(words: str) -> str:
    return (
        rf"{_IMP}(?:{_VERB}\b[^.\n]{{0,40}}?\b(?:in|using|with)|use)\s+(?:all\s+|only\s+)?{words}"
        rf"|\b{_NOUN}\b[^.\n]{{0,24}}?\b{_MUST} be (?:written )?(?:entirely |only |all )?in (?:all )?{words}"
    )


_UNIT = r"(?:items?|bullets?|bullet points|points|steps|lines)"
_CAP = re.compile(
    rf"\b(?:at most|max(?:imum)?(?: of)?|up to|no more than)\s+{_N}\s+{_UNIT}\b"
    rf"|\b{_N}\s+{_UNIT}\s+(?:max(?:imum)?|at most|or fewer)\b",
    re.IGNORECASE,
)
_UPPER = re.compile(
    _case(r"(?:upper ?case|capital letters|capitals|all caps)\b")
    + r"|\bonly (?:upper ?case|capital) letters\b|\b(?:capital letters|all caps) only\b|大文字(?:だけ|のみ)",
    re.IGNORECASE,
)
_LOWER = re.compile(
    _case(r"(?:lower ?case|small letters)\b")
    + r"|\bonly lower ?case\b|\blower ?case (?:letters )?only\b|\bnever (?:use )?(?:capital|upper ?case) "
    r"letters\b|\bno (?:capital|upper ?case) letters\b|小文字(?:だけ|のみ)"
    r"|\b(?:house style|style|everything you write|all (?:text|output|replies)) "
    r"(?:is|are|must be|should be|stays?) "
    r"(?:all |entirely |always )?(?:in )?lower ?case\b",
    re.IGNORECASE,
)
_NO_DIGITS = re.compile(
    r"\b(?:no|never use|never write|do not use|don't use|without|avoid)(?: any)? (?:digits|numerals|arabic "
    r"numerals)\b|\bspell out (?:all |every |each )?numbers?\b|(?:算用)?数字を(?:使わ|書か|用いな)|"
    r"アラビア数字を(?:使わ|書か)|数字は(?:使わ|書か)",
    re.IGNORECASE,
)


def _language(en: str, ja: str) -> re.Pattern[str]:
    """An answer language stated as a rule: an imperative (answer/reply/write ... in English, 英語で答える,
    返答はすべて英語で), not a description of the user (customers write in English, 英語で話しかけられた)."""
    return re.compile(
        rf"{_IMP}{_VERB}\b[^.\n]{{0,40}}?\bin {en}\b"
        rf"|\b{_NOUN}\b[^.\n]{{0,24}}?\b{_MUST} be (?:written )?(?:only )?in {en}\b"
        rf"|\bin {en} only\b|\bonly (?:in )?{en}\b|\b{en} only\b"
        rf"|{ja}(?:だけ|のみ)?で(?:答|回答|返|応答|応対|対応|出力|書(?!いて[きく])|話(?!しかけ))|{ja}(?:だけ|のみ)を使"
        rf"|(?:返答|回答|応答|出力|返事|答え|返信|出力言語|使用言語|言語)は[、,]?(?:必ず|常に|すべて|全て)?{ja}",
        re.IGNORECASE,
    )


def _only(en: str) -> re.Pattern[str]:
    """The answer language stated as a ban on every other one (checked without the negation test)."""
    return re.compile(
        rf"\b(?:never|under no circumstances|do not|don't|must not)\s+(?:ever\s+)?"
        rf"(?:reply|respond|answer|write|speak)\b[^.\n]{{0,20}}?\bin (?:a|any) language other than {en}\b",
        re.IGNORECASE,
    )


_ENGLISH = _language("english", "英語")
_JAPANESE = _language("japanese", "日本語")
_OTHER_LANGUAGE = re.compile(
    r"(?:english|japanese),? (?:or|and) (?:in )?(?:english|japanese)"
    r"|(?:英語|日本語)(?:か|または|や|と)(?:英語|日本語)"
    # the language follows the user's: 日本語の質問には日本語で, "in the same language as the question"
    r"|(?:英語|日本語)の(?:質問|問い合わせ|メッセージ|入力)|same language|同じ言語",
    re.I,
)

_ANSWER = r"(?:every|each|all|your|all of your)\s+(?:answers?|replies|reply|responses?|messages?)"
_UNQUOTED = r"\s*:\s*([^\n\"'“‘:]{2,80})$"  # a line given after a colon, to the end of the clause
_PREFIX = (
    re.compile(
        rf"\b(?:start|begin|open)\s+{_ANSWER}\b[^\n]{{0,30}}?\bwith\s+"
        rf"(?:the (?:exact )?(?:words?|phrase|line))?"
        rf"\s*:?\s*{_Q}",
        re.IGNORECASE,
    ),
    re.compile(  # "Every reply you write must open with the exact words ..."
        rf"\b{_ANSWER}\b[^.\n]{{0,30}}?\b{_MUST}\s+(?:always\s+)?(?:start|begin|open)\s+with\s+"
        rf"(?:the (?:exact )?(?:words?|phrase|line|greeting))?\s*:?\s*{_Q}",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\bfirst (?:line|words?|sentence) of {_ANSWER}\b"
        rf"(?:[^\n]{{0,20}}?\b{_MUST} be\s*:?|[^\n]{{0,80}}?:)\s*{_Q}",
        re.IGNORECASE,
    ),
    re.compile(
        rf"(?:最初|冒頭|書き出し|はじめ|初め|(?:1|一)行目|最初の(?:行|一文|一行))(?:は|に|には)[、,]?(?:必ず|常に)?{_Q}"
    ),
    re.compile(
        rf"{_Q}\s*(?:という(?:一文|文|言葉|フレーズ|挨拶|一言|一行))?(?:から|で)(?:書き)?(?:始め|はじめ)"
    ),
    re.compile(  # "Begin every reply with this exact sentence: Thank you for ..."
        rf"\b(?:start|begin|open)\w*\s+(?:{_ANSWER}\s+)?with\s+(?:this|the following)\s+(?:exact\s+)?"
        rf"(?:line|sentence|words?|phrase|greeting)[^:\n]{{0,50}}{_UNQUOTED}",
        re.IGNORECASE,
    ),
)
_LINE = r"the (?:exact )?(?:words?|phrase|line|sentence|sign-off)"
_CLOSING = (
    re.compile(
        rf"\b(?:end|finish|close|conclude|sign off)\s+(?:{_ANSWER}\b[^\n]{{0,30}}?)?\bwith\s+"
        rf"(?:(?:{_LINE})?\s*:?\s*{_Q}|"
        rf"{_LINE}\s*:?\s*([^\n\"'“‘]{{2,40}})$)",  # unquoted only as "the exact line: ..."
        re.IGNORECASE,
    ),
    re.compile(  # "Your reply must always finish with this line, exactly as written: This is ..."
        rf"\b(?:end|finish|close|conclude)\w*\s+(?:{_ANSWER}\s+)?with\s+(?:this|the following)\s+"
        rf"(?:exact\s+)?(?:line|sentence|words?|phrase|sign-off)[^:\n]{{0,50}}{_UNQUOTED}",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\b(?:last|final) (?:line|sentence) of {_ANSWER}\b"
        rf"(?:[^\n]{{0,20}}?\b{_MUST} be\s*:?|[^\n]{{0,80}}?:)"
        rf"\s*{_Q}",
        re.IGNORECASE,
    ),
    re.compile(
        rf"(?<!文の)(?<!文)(?:最後|末尾|締め|結び|最後の(?:行|一文|一行)|最終行)(?:は|に|には)[、,]?(?:必ず|常に)?{_Q}"
        r"\s*(?:(?:の|という)(?:一文|文|一言|一行))?\s*(?:と|を|で)"
    ),
)
_POLITE = re.compile(
    r"(?:敬語|丁寧語|丁寧な言葉|です・?ます調?|ですます調?)[^。\n]{0,12}?(?:使わ|使用しな|使うな|使っては|禁止|なし|無し|NG|やめ|不要|避け)"
    # the polite forms listed in quotes: 「です」「ます」といった言い方はしない
    r"|「(?:です|ます)」[^。\n]{0,24}?(?:使わ|使用しな|使うな|言わ|しない|禁止|NG|避け)"
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
    re.compile(  # "our guidelines forbid the word 'cheap'"
        r"\b(?:forbids?|bans?|prohibits?)\s+(?:the\s+)?(?:use of\s+)?(?:the\s+)?"
        rf"(?:(?:word|term|phrase|name)s?\s+)?{_Q}",
        re.IGNORECASE,
    ),
    re.compile(
        rf"{_Q}\s*(?:という(?:言葉|単語|表現|語|フレーズ))?\s*(?:は|を)?[^。\n「」]{{0,12}}?(?:絶対に|一切|決して)?\s*"
        r"(?:(?:使わ|言わ|書か|用い)(?:ない|ず|な[いくけ]?)|使用しな|禁止|避け|NG)"
    ),
)
_QUESTION = re.compile(
    rf"\b(?:end|finish|close|conclude|wrap up)\s+(?:{_ANSWER}\s+|(?:each|every) time\s+)?(?:with|on)\s+"
    r"(?:a |one )?(?:\w+[ -])?question\b|\bask (?:a |one )?(?:\w+[ -])?question at the end\b"
    r"|(?:最後|末尾|終わり|締め|結び)(?:は|に)[、,]?(?:必ず|常に)?[^。\n]{0,12}?(?:質問|問いかけ)"
    r"(?:で|を(?:する|して|入れ|つけ|付け|添え|投げ))"
    r"|(?:質問|問いかけ|疑問文)で(?:終わ|終え|締め|結|しめ)",
    re.IGNORECASE,
)
EXCLAMATION = ((0x21, 0x21), (0xFF01, 0xFF01))
EMOJI = ((0x2600, 0x27BF), (0xFE0F, 0xFE0F), (0x1F000, 0x1FAFF))
_NO_USE = r"\b(?:no|never use|never write|never include|do not use|don't use|without|avoid)\b"
_MARKS = (  # marks the answer may not hold: (pattern, characters)
    (
        re.compile(
            rf"{_NO_USE}[^.\n]{{0,30}}?\bexclamation (?:marks?|points?)\b"
            r"|(?:感嘆符|ビックリマーク|びっくりマーク|エクスクラメーションマーク|「[!！]」)"
            r"[^。\n]{0,8}?(?:使わ|使用しな|使うな|禁止|なし|NG|避け)",
            re.IGNORECASE,
        ),
        EXCLAMATION,
    ),
    (
        re.compile(
            rf"{_NO_USE}[^.\n]{{0,30}}?\b(?:emojis?|emoticons?)\b"
            r"|(?:絵文字|顔文字)[^。\n]{0,8}?(?:使わ|使用しな|使うな|禁止|なし|NG|避け)",
            re.IGNORECASE,
        ),
        EMOJI,
    ),
)
_JSON = re.compile(
    r"\b(?:reply|respond|answer|output|return|write)\b[^.\n]{0,24}\bonly\b[^.\n]{0,16}\bjson\b|"
    r"\bonly (?:output |return |reply with |respond with )?(?:a |one )?(?:valid )?json\b|"
    r"\bjson only\b|JSON(?:形式|オブジェクト)?(?:だけ|のみ)(?:で|を(?:出力|返))|"
    r"\b(?:output|return|reply with|respond with|send)\s+(?:the |a |one )?(?:valid )?json(?: object)? only\b|"
    # an imperative: "Respond with a single JSON object", JSON形式で出力すること (not "the tool returns JSON")
    r"(?:^|[:\-•*]\s*|\b(?:always|must|should|please|you|and|so|then)\s+)(?:reply|respond|answer|output|return)\s+"
    r"(?:with|in|as)?\s*(?:a |one |a single |only |valid |only a |strictly )*json\b|"
    r"JSON(?:形式|オブジェクト)?(?:だけ|のみ)?で(?:出力|返(?:す|して|答|信)|回答|答え)",
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
    japanese_only: bool = False  # answer in Japanese: the answer starts with a Japanese character
    question: bool = False  # the answer ends with a question mark
    marks: tuple[tuple[int, int], ...] = ()  # code-point ranges the answer may not hold (!, emoji)

    def __bool__(self) -> bool:
        return (
            any((self.ending, self.max_sentences, self.max_words, self.max_chars, self.items, self.case))
            or any((self.no_digits, self.english, self.json, self.prefix, self.closing, self.banned))
            or any((self.japanese_only, self.question, self.marks))
        )

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
    "Sure thing!", 'Hello!') stays whole."""
    out, start, depth = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "「『“":
            depth += 1
        elif ch in "」』”" and depth:
            depth -= 1
        elif ch == '"':
            depth = 0 if depth else 1
        elif ch == "'" and not depth and text[i - 1 : i] in ("", " ", "(", ":", "\n"):
            depth = 1  # an opening single quote ('Hello!'), not an apostrophe (don't)
        elif ch == "'" and depth and not text[i + 1 : i + 2].isalnum():
            depth = 0
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
    if _TOOL_LINE.match(clause):
        return False
    own = _ASIDE.sub("", _part(clause, m))  # quotes and parentheses are examples and asides
    if _OPTIONAL.search(_ALWAYS.sub("", own)):
        return False
    if _DESCRIBES.search(own) and not _ANSWER_IS.search(own):
        return False
    if not negation:
        return True
    after = re.split(r"[,:;、：。]", clause[m.end() : m.end() + 16])[
        0
    ]  # this phrase only: "JSON only: no prose"
    around = _ASIDE.sub("", clause[max(0, m.start() - 24) : m.end()] + after)
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


def stated_clauses(text: str, evidence: re.Pattern[str], negation: bool) -> list[str]:
    """The clauses of ``text`` that hold ``evidence`` and state it as a rule (as ``_stated`` decides):
    what the model-based reader (runtime/rulereader.py) grounds a proposed rule in."""
    out = []
    for clause in _clauses(text.translate(_WIDE)):
        m = evidence.search(clause)
        if m and _stated(clause, m, negation):
            out.append(clause)
    return out


def _part(clause: str, m: re.Match[str]) -> str:
    """The part of ``clause`` that holds ``m``, between contrasting conjunctions: in "they write in English
    when stuck, but your output must be in Japanese", the condition belongs to the other part."""
    cuts = [0, *(b.end() for b in _BUT.finditer(clause) if b.end() <= m.start()), len(clause)]
    start = max(c for c in cuts if c <= m.start())
    after = [b.start() for b in _BUT.finditer(clause) if b.start() >= m.end()]
    return clause[start : min(after) if after else len(clause)]


def _after_colon(clauses: list[str]) -> list[str]:
    """A clause that ends in a colon, with the short next line quoted after it: "The last line must be
    exactly this:" + "Happy growing" reads as one clause, so a line given on its own line is read too."""
    return [
        f'{c} "{nxt}"'
        for c, nxt in zip(clauses, clauses[1:], strict=False)
        if c.endswith((":", "：")) and len(nxt) <= 60 and '"' not in nxt
    ]


def _first(
    patterns: tuple[re.Pattern[str], ...], clauses: list[str], negation: bool = True
) -> re.Match[str] | None:
    found = _find(patterns, clauses, negation)
    return found[1] if found else None


def variants(word: str) -> list[str]:
    """A word to avoid in the case forms a model writes it in (Python, python, PYTHON)."""
    return list(dict.fromkeys((word, word.lower(), word.capitalize(), word.upper())))


@lru_cache(maxsize=256)  # every turn of a conversation sends the same system prompt
def derive(system: str | None) -> Rules:
    """The format rules ``system`` states (see the module doc); ``Rules()`` when none, or when too long."""
    if not system or len(system) > MAX_CHARS:
        return Rules()
    text = system.translate(_WIDE)
    clauses = _clauses(text)
    aside = r"(?<![A-Za-z0-9_`])\s*[（(][^（）()]{1,60}[）)]"  # not a call's arguments: get_order(id)
    clauses += [bare for c in clauses if (bare := re.sub(aside, "", c)) != c]
    clauses += _after_colon(clauses)
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
    asks = bool(_first((_QUESTION,), clauses))
    if ending and not re.sub(r"[\W_]", "", ending):  # 「？」で終える: a mark, not a word ending a sentence
        asks, ending = asks or bool(set(ending) & set("?？")), None
    items, marker = None, None
    numbered = _find((_NUMBERED,), clauses)
    listed = numbered or _find((_BULLETS,), clauses) or _find((_MARKER,), clauses, negation=False)
    if listed:
        items = _count(listed[0])
        if items == DEFAULT_ITEMS:  # "Answers = numbered steps. Six steps max.": a cap stated on its own
            cap = _first((_CAP,), clauses, negation=False)
            if cap:
                most = _num(cap.group(1) or cap.group(2))
                items = (min(DEFAULT_ITEMS[0], most), most)
        mark = _first((_MARKER,), clauses, negation=False)
        if numbered:
            marker = "1."
        else:
            sign = next(g for g in mark.groups() if g) if mark else ("・" if japanese else "-")
            sign = {"asterisk": "*", "dash": "-", "hyphen": "-", "bullet": "•"}.get(sign.lower(), sign)
            marker = f"{sign} " if sign.isascii() else sign  # "- ", "* "; 「・」「■」 as written
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
    if m and not _OTHER_TOPIC.search(m.string[max(0, m.start() - 16) : m.start()]):
        chars = int(m.group(1))
    prefix = None
    m = _first(_PREFIX, clauses, negation=False)
    if m and len(m.group(1).strip()) >= 2:  # one character is a list marker (「・」で始める)
        prefix = m.group(1).strip()
    banned: list[str] = list(POLITE_JA) if _first((_POLITE,), clauses, negation=False) else []
    m = _first(_AVOID, clauses, negation=False)
    if m:
        banned += variants(m.group(1).strip())
    english, japanese_only = (
        bool((found := _find((p,), clauses)) and not _OTHER_LANGUAGE.search(found[0]))
        or bool(_first((_only(name),), clauses, negation=False))
        for p, name in ((_ENGLISH, "english"), (_JAPANESE, "japanese"))
    )
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
        english=english and not japanese_only,
        japanese_only=japanese_only and not english,
        question=asks,
        marks=tuple(r for p, ranges in _MARKS if _first((p,), clauses, negation=False) for r in ranges),
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
    if ch.isalnum() and ch.isascii():
        return ch
    return f"\\u{ord(ch):04X}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08X}"


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
    for lo, hi in rules.marks:
        banned |= set(range(lo, hi + 1))
    if rules.english:  # printable ASCII and line breaks, listed as ranges
        return f"[{_spans(c for c in [10, *range(0x20, 0x7F)] if c not in banned)}]"
    return f"[^{_spans(banned)}]"


def _spans(codes: Iterable[int]) -> str:
    """Code points as the inside of a GBNF character class, runs written as ranges."""
    spans: list[tuple[int, int]] = []
    for c in sorted(codes):
        if spans and spans[-1][1] == c - 1:
            spans[-1] = (spans[-1][0], c)
        else:
            spans.append((c, c))
    return "".join(_escape(chr(a)) if a == b else f"{_escape(chr(a))}-{_escape(chr(b))}" for a, b in spans)


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


def _keep(rules: Rules, marks: str) -> str:
    """The sentence marks in ``marks`` that ``rules`` allow (no "!" under "never use exclamation marks")."""
    return "".join(c for c in marks if not any(lo <= ord(c) <= hi for lo, hi in rules.marks))


# the first character of an answer in Japanese: kana, kanji, or an opening bracket
_JA_START = "[\\u3041-\\u3096\\u30A1-\\u30FC\\u4E00-\\u9FFF\\u3005\\u300C\\u300E\\uFF08]"


def _free(rules: Rules) -> str:
    return f"root ::= {_cls(rules)}+\n"


def _body(rules: Rules) -> str:
    """The answer's form under ``rules``, as GBNF with its own ``root``."""
    ja = (rules.japanese or rules.japanese_only) and not rules.english
    ends = _keep(rules, "。！？!?" if ja else ".!?")
    ask = "[?\\uFF1F]" if rules.question and not rules.ending else ""  # the last sentence asks
    if rules.ending:
        close = f"[{_keep(rules, '。！!' if ja else '.!')}]"
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
        if ask:
            last = f"{_cls(rules, ends + chr(10))}+ {ask}"
            return f"root ::= (sent {sep}){{0,{n - 1}}} last\nsent ::= {sent}\nlast ::= {last}\n"
        return f"root ::= sent ({sep} sent){{0,{n - 1}}}\nsent ::= {sent}\n"
    if rules.ending:
        return f"root ::= sent ({sep} sent)*\nsent ::= {sent}\n"
    if rules.max_words is not None:
        word_cls = _cls(rules, " \n")
        return f'root ::= word ((" " | "\\n") word){{0,{rules.max_words - 1}}}\nword ::= {word_cls}+\n'
    if rules.max_chars is not None:
        if ask:
            return f"root ::= {_cls(rules)}{{0,{rules.max_chars - 1}}} {ask}\n"
        return f"root ::= {_cls(rules)}{{1,{rules.max_chars}}}\n"
    if ask or rules.japanese_only:
        start = _JA_START if rules.japanese_only and not rules.english else ""
        return f"root ::= {start} {_cls(rules)}{'*' if start else '+'} {ask}\n".replace("  ", " ")
    return _free(rules)
