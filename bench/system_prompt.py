"""System-prompt adherence benchmark: does the bundled model keep the rules a system prompt sets?

    python bench/system_prompt.py                       # both models, both splits, every config
    python bench/system_prompt.py --models 0.5b --splits dev --configs base,B --show

32 cases (146 with ``heldout2``, ``heldout3``, ``heldout4`` and ``heldout5``, below), Japanese and English,
each a system prompt with one rule (sometimes two) and one or two user prompts (``--prompts`` runs the first
N; the default, 1, keeps a full run of both models on the dev and heldout splits under 40 minutes on one CPU
thread). Every rule is checked by code (``check``); a case passes when every check passes on the answer
(greedy decoding, temperature 0, ``--max-tokens`` 150).

Rule kinds: required sentence endings (「なのだ」, 「でござる」, 「にゃ」, 「ぴょん」), no polite forms
(です・ます), answer language (script ratio), at most N sentences or words, bullet / numbered lists,
JSON only, upper- or lowercase only, no digits, a word to include or to avoid, a fixed first or last line.

How an ending rule is judged: the rules say "every sentence", but one sentence that slips (a heading, a
quoted name) is not what users complain about; an answer passes when its **last** sentence ends with
the ending and **at least half** of its sentences do. Trailing punctuation, quotes and emoji are ignored.
Polite forms are any of です, ます, ました, でした, ません, ましょう, ください, ございます.

Splits: ``dev`` (tune on it) and ``heldout``. The held-out cases were written together with the dev ones,
before any tuning, and nothing (reminder wording, placement, grammars) was chosen by looking at them:
never tune on ``heldout``.

``heldout2`` (bench/system_prompt_heldout2.py, ``--splits heldout2``): 24 more cases (12 Japanese, 12
English system prompts, two user prompts each), written from scratch on 2026-12-06 by a helper that did not
see the rule-following feature they measure, with its own personas and wording. They have no grammar (C
runs them as base, except the JSON case's schema). Never tune on ``heldout2`` either.

``heldout3`` (bench/system_prompt_heldout3.py, ``--splits heldout3``): 30 more cases (15 Japanese, 15
English, two user prompts each), written from scratch on 2026-12-07 the same way, blind to the feature, with
no grammar either (schemas for its two JSON cases). Never tune on ``heldout3``.

``heldout4`` (bench/system_prompt_heldout4.py, ``--splits heldout4``): 30 more cases (15 Japanese, 15
English, two user prompts each), written from scratch on 2026-12-07 the same way, blind to the feature, with
no grammar either (schemas for its two JSON cases). Never tune on ``heldout4``.

``heldout5`` (bench/system_prompt_heldout5.py, ``--splits heldout5``): 30 more cases (15 Japanese, 15
English, two user prompts each), written from scratch on 2026-12-07 the same way, blind to the feature, with
no grammar either (schemas for its two JSON cases). Never tune on ``heldout5``.

Configurations, each means alone and then together:

* ``base``: the system prompt as the template's system message, no reminder (``system_reminder=False``).
* ``A``: placement: the system prompt moved into the first user turn (the template then writes its default
  system message), as "instructions, then the question".
* ``A2``: placement: the system prompt kept in place and framed as binding rules.
* ``B``: the runtime's system reminder (``system_reminder=True``): the system prompt restated at the end of
  the last user turn (``REMINDER_JA`` / ``REMINDER_EN`` in haniwa/runtime/llamacpp.py).
* ``C``: a format constraint where the rule can be expressed as one: a GBNF grammar (endings, sentence
  and word limits, lists, letter case, digits, ASCII for English, fixed first/last line, a required word)
  or, for JSON, the public ``response_schema``. Cases whose rule is no format (avoid a word, no polite
  forms, answer in Japanese) run as ``base``. The grammars are per case: haniwa cannot derive one from a
  free-text system prompt, so C measures what a client gains by sending a constraint, and is not shipped.
* ``BC``: B and C together (B is never applied to a schema request, as in the runtime).
* ``D``: the runtime's ``system_rules``: the format rules read from the system prompt itself by
  haniwa/runtime/sysrules.py and kept by a grammar (what C does by hand, derived from the free text).
* ``BD``: B and D together: the shipped defaults. Every other config runs with both turned off.
* ``BDM``: BD with ``system_rules_reader = "model"``: the model reads the rules too, and the text must
  ground them (haniwa/runtime/rulereader.py); its reading call is counted in the answer's seconds the first
  time a system prompt is seen.

The model runs in-process (LlamaCppBackend on the bundled GGUF, one thread), so latencies are the model's
own: mean wall seconds per answer. Identical prompts (a config that leaves a case unchanged) are answered
once and reused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from haniwa.config import Settings  # noqa: E402
from haniwa.runtime.base import ChatRequest, InferenceParams, Message, ModelInfo, TextBlock  # noqa: E402
from haniwa.runtime.llamacpp import LlamaChat, LlamaCppBackend, LlamaOptions  # noqa: E402

MODELS_DIR = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))
MODELS = {"1.5b": "qwen2.5-coder-1.5b", "0.5b": "qwen2.5-coder-0.5b"}
CONFIGS = ("base", "A", "B", "C", "BC", "D", "BD", "BDM")

# -- checks: each returns None (kept) or why the rule was broken ---------------------------------------
Check = Callable[[str], str | None]

_JA = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_POLITE = re.compile(r"です|ます|ました|でした|ません|ましょう|ください|ございます")
_TRAIL = " \t\u3000」』）)\"'”’…〜~♪★☆!！?？。.、,・*_`"
_EMOJI = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]+")


def sentences(text: str) -> list[str]:
    """Sentences of a Japanese or English answer: split at 。！？!? and line breaks, and at a period that
    ends a word (not in 3.14, e.g. or Dr.)."""
    text = re.sub(
        r"\b(e\.g|i\.e|etc|vs|Mr|Mrs|Ms|Dr|St)\.", lambda m: m.group(1).replace(".", "_") + "_", text
    )
    parts = re.split(r"(?<=[。！？!?])|\n+|(?<=[a-z\)\]\"'][.])\s+", text)
    out = []
    for p in parts:
        p = re.sub(r"^\s*(?:[-*•・]|\d+[.)])\s+", "", p or "").strip()  # list markers
        if _JA.search(p) or _LATIN.search(p) or re.search(r"\d", p):
            out.append(p)
    return out


def _end(sentence: str) -> str:
    return _EMOJI.sub("", sentence).rstrip(_TRAIL)


def ending(word: str) -> Check:
    def check(text: str) -> str | None:
        sents = sentences(text)
        if not sents:
            return "empty"
        ok = [_end(s).endswith(word) for s in sents]
        if not ok[-1]:
            return f"last sentence does not end with {word}: {_end(sents[-1])[-12:]!r}"
        if sum(ok) * 2 < len(ok):
            return f"{sum(ok)}/{len(ok)} sentences end with {word}"
        return None

    return check


def no_polite(text: str) -> str | None:
    m = _POLITE.search(text)
    return f"polite form {m.group()!r}" if m else None


def language(lang: str) -> Check:
    def check(text: str) -> str | None:
        ja, latin = len(_JA.findall(text)), len(_LATIN.findall(text))
        if ja + latin == 0:
            return "no letters"
        share = ja / (ja + latin) if lang == "ja" else latin / (ja + latin)
        need = 0.5 if lang == "ja" else 0.95  # romaji names in a Japanese answer are fine
        return None if share >= need else f"{lang} share {share:.2f} < {need}"

    return check


def max_sentences(n: int) -> Check:
    def check(text: str) -> str | None:
        k = len(sentences(text))
        return None if 1 <= k <= n else f"{k} sentences (at most {n})"

    return check


def max_words(n: int) -> Check:
    def check(text: str) -> str | None:
        k = len(text.split())
        return None if 1 <= k <= n else f"{k} words (at most {n})"

    return check


def lines_like(pattern: str, least: int, most: int) -> Check:
    """Every non-empty line matches ``pattern`` (a list item), and there are least..most of them."""

    def check(text: str) -> str | None:
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        bad = [ln for ln in lines if not re.match(pattern, ln)]
        if bad:
            return f"not a list item: {bad[0][:30]!r}"
        return None if least <= len(lines) <= most else f"{len(lines)} items ({least}-{most})"

    return check


def json_object(**types: type | tuple[type, ...]) -> Check:
    def check(text: str) -> str | None:
        try:
            value = json.loads(text.strip())
        except ValueError:
            return "not JSON"
        if not isinstance(value, dict):
            return "not a JSON object"
        for key, kind in types.items():
            if not isinstance(value.get(key), kind):
                return f"{key!r} missing or not {kind}"
        return None

    return check


def no_match(pattern: str, what: str, flags: int = 0) -> Check:
    def check(text: str) -> str | None:
        m = re.search(pattern, text, flags)
        return f"{what}: {m.group()!r}" if m else None

    return check


def has_letters(text: str) -> str | None:
    return None if _LATIN.search(text) else "no letters"


def includes(word: str) -> Check:
    return lambda text: None if word.lower() in text.lower() else f"no {word!r}"


def starts(prefix: str) -> Check:
    return lambda text: None if text.strip().startswith(prefix) else f"does not start with {prefix!r}"


def ends_with(tail: str) -> Check:
    return lambda text: None if _end(text).endswith(tail) else f"does not end with {tail!r}"


def last_line(line: str) -> Check:
    def check(text: str) -> str | None:
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        return None if lines and lines[-1].endswith(line) else f"last line is not {line!r}"

    return check


# -- format constraints (config C) --------------------------------------------------------------------
ANY = r"[^\x01]*"  # any text (GBNF has no "any character")


def g_ending(word: str) -> str:
    # a sentence is bounded (60 characters before the ending): unbounded, the model writes one run-on
    # sentence to dodge the ending until max_tokens cuts it off
    return f'root ::= sent ("\\n"? sent)*\nsent ::= [^。！？!?\\n]{{1,60}} "{word}" [。！]'


def g_sentences(n: int, lang: str) -> str:
    if lang == "ja":
        return f"root ::= sent{{1,{n}}}\nsent ::= [^。！？!?\\n]+ [。！？]"
    return f'root ::= sent (" " sent){{0,{n - 1}}}\nsent ::= [^.!?\\n]+ [.!?]'


def g_items(marker: str, least: int, most: int) -> str:
    return f'root ::= item{{{least},{most}}}\nitem ::= {marker} [^\\n]+ "\\n"'


@dataclass(frozen=True)
class Case:
    id: str
    split: str  # "dev", "heldout", "heldout2", "heldout3", "heldout4" or "heldout5"
    system: str
    prompts: tuple[str, ...]
    checks: tuple[Check, ...]
    grammar: str | None = None  # GBNF for config C
    schema: Mapping[str, Any] | None = None  # or a JSON schema (the public response_schema)

    @property
    def lang(self) -> str:
        return "ja" if re.search(r"[\u3041-\u3096\u30a1-\u30fa]", self.system) else "en"


def _cases() -> list[Case]:
    ja, en = language("ja"), language("en")
    upper = no_match(r"[a-z]", "lowercase letter")
    lower = no_match(r"[A-Z]", "capital letter")
    digits = no_match(r"[0-9０-９]", "digit")
    return [
        # ---- dev: tune on these -----------------------------------------------------------------------
        Case(
            "d01-nanoda",
            "dev",
            "自信満々に答える。語尾は「なのだ」にすること。敬語は絶対に使わない。",
            ("はにわについて教えて", "明日の天気はどうなると思う？"),
            (ending("なのだ"), no_polite),
            g_ending("なのだ"),
        ),
        Case(
            "d02-gozaru",
            "dev",
            "あなたは江戸時代の侍である。すべての文の語尾を「でござる」にすること。",
            ("好きな食べ物は何？", "朝は何時に起きる？"),
            (ending("でござる"),),
            g_ending("でござる"),
        ),
        Case(
            "d03-en-to-ja",
            "dev",
            "You are a travel guide. Always answer in Japanese, whatever language the user writes in.",
            ("What should I see in Kyoto?", "Is Tokyo expensive for tourists?"),
            (ja,),
        ),
        Case(
            "d04-ja-to-en",
            "dev",
            "あなたは英語の家庭教師です。ユーザーが日本語で話しかけても、必ず英語だけで答えてください。",
            ("今日はいい天気ですね。週末の予定は？", "おすすめの勉強法を教えて"),
            (en,),
            "root ::= [ -~\\n]+",
        ),
        Case(
            "d05-two-sentences",
            "dev",
            "Answer in at most two sentences.",
            ("Explain how a refrigerator works.", "Why do cats purr?"),
            (max_sentences(2),),
            g_sentences(2, "en"),
        ),
        Case(
            "d06-one-sentence-ja",
            "dev",
            "回答は必ず1文だけにすること。",
            ("地球温暖化の原因は何？", "寿司の歴史について教えて"),
            (max_sentences(1),),
            g_sentences(1, "ja"),
        ),
        Case(
            "d07-bullets",
            "dev",
            "Always answer as a bulleted list of 3 to 5 items. Every line must start with '- '. "
            "Do not write any other text.",
            ("How can I sleep better?", "What should I pack for a beach trip?"),
            (lines_like(r"- \S", 3, 5),),
            g_items('"- "', 3, 5),
        ),
        Case(
            "d08-bullets-ja",
            "dev",
            "回答は必ず「・」で始まる箇条書き3項目だけで書くこと。前置きやまとめは書かない。",
            ("東京で雨の日にできることは？", "健康のために毎日できることは？"),
            (lines_like(r"・", 3, 3),),
            g_items('"・"', 3, 3),
        ),
        Case(
            "d09-json",
            "dev",
            'Reply only with a JSON object of the form {"answer": string, "confidence": number between '
            "0 and 1}. No other text, no code fences.",
            ("Is a tomato a fruit?", "Can penguins fly?"),
            (json_object(answer=str, confidence=(int, float)),),
            schema={
                "type": "object",
                "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
                "required": ["answer", "confidence"],
            },
        ),
        Case(
            "d10-uppercase",
            "dev",
            "Write your entire answer in uppercase letters.",
            ("Give me a tip for learning to cook.", "What is a good name for a dog?"),
            (upper, has_letters),
            "root ::= [^a-z]+",
        ),
        Case(
            "d11-avoid-word",
            "dev",
            "You are a programming mentor. Never mention the word 'Python' in any answer.",
            (
                "Which programming language should a complete beginner learn first?",
                "What language do data scientists use most?",
            ),
            (no_match(r"python", "mentions Python", re.I),),
        ),
        Case(
            "d12-casual-ja",
            "dev",
            "あなたはユーザーの幼なじみ。タメ口で話すこと。「です」「ます」などの敬語・丁寧語は一切使わない。",
            ("最近おすすめの映画ある？", "週末どこか行かない？"),
            (no_polite, ja),
        ),
        Case(
            "d13-closing-line",
            "dev",
            "End every answer with the exact line: Hope this helps!",
            ("How do I boil an egg?", "How do I reset my router?"),
            (last_line("Hope this helps!"),),
            f'root ::= {ANY} "Hope this helps!"',
        ),
        Case(
            "d14-no-digits",
            "dev",
            "Never use digits (0-9) in your answers; write every number out in words.",
            (
                "How many days are in a leap year, and how many weeks is that?",
                "How tall is Mount Everest?",
            ),
            (digits,),
            "root ::= [^0-9]+",
        ),
        Case(
            "d15-nya",
            "dev",
            "あなたは猫のキャラクター。すべての文の最後に「にゃ」をつけて話すこと。",
            ("今日の晩ごはんは何がいい？", "好きな遊びは？"),
            (ending("にゃ"),),
            g_ending("にゃ"),
        ),
        Case(
            "d16-prefix",
            "dev",
            "Start every answer with the words 'Short answer:'.",
            ("Why is the sky blue?", "Why do we have leap years?"),
            (starts("Short answer:"),),
            f'root ::= "Short answer:" {ANY}',
        ),
        # ---- held out: written before tuning, never tuned on ---------------------------------------
        Case(
            "h01-nanoda",
            "heldout",
            "あなたはずんだ餅が大好きな妖精。語尾は必ず「なのだ」にする。です・ます調は禁止。",
            ("自己紹介して", "おすすめのおやつは？"),
            (ending("なのだ"), no_polite),
            g_ending("なのだ"),
        ),
        Case(
            "h02-gozaru",
            "heldout",
            "拙者は忍者。返答のすべての文末を「でござる」で締めること。",
            ("忍者の修行について話して", "得意な技は何？"),
            (ending("でござる"),),
            g_ending("でござる"),
        ),
        Case(
            "h03-en-to-ja",
            "heldout",
            "Reply in Japanese only. Never reply in English.",
            ("Can you recommend a good book for beginners in programming?", "How do I make pancakes?"),
            (ja,),
        ),
        Case(
            "h04-ja-to-en",
            "heldout",
            "出力言語は英語のみ。日本語で質問されても英語で回答すること。",
            ("富士山の高さはどれくらい？", "日本の有名な祭りを教えて"),
            (en,),
            "root ::= [ -~\\n]+",
        ),
        Case(
            "h05-one-sentence",
            "heldout",
            "Your replies must be exactly one sentence long.",
            ("What is photosynthesis?", "How does a bicycle stay upright?"),
            (max_sentences(1),),
            g_sentences(1, "en"),
        ),
        Case(
            "h06-two-sentences-ja",
            "heldout",
            "2文以内で簡潔に答えること。",
            ("インターネットの仕組みを説明して", "なぜ海は青いの？"),
            (max_sentences(2),),
            g_sentences(2, "ja"),
        ),
        Case(
            "h07-numbered",
            "heldout",
            "Format every answer as a numbered list (1., 2., 3., ...) with no introduction or conclusion.",
            ("Give me ideas for a rainy weekend.", "How can I save money on groceries?"),
            (lines_like(r"\d+\. \S", 2, 20),),
            g_items('[0-9]+ ". "', 2, 9),
        ),
        Case(
            "h08-bullets-ja",
            "heldout",
            "回答は「- 」で始まる箇条書きのみで書くこと。各項目は1行。",
            ("新しい言語を覚えるコツは？", "引っ越しの準備で大事なことは？"),
            (lines_like(r"- \S", 2, 20),),
            g_items('"- "', 2, 9),
        ),
        Case(
            "h09-json",
            "heldout",
            'You are an API. Respond with a single JSON object {"city": string, "country": string} and '
            "nothing else.",
            ("Where is the Eiffel Tower?", "Where is the Sydney Opera House?"),
            (json_object(city=str, country=str),),
            schema={
                "type": "object",
                "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                "required": ["city", "country"],
            },
        ),
        Case(
            "h10-lowercase",
            "heldout",
            "Write only in lowercase letters; never use capital letters.",
            ("Tell me about the Moon landing.", "Who was Albert Einstein?"),
            (lower, has_letters),
            "root ::= [^A-Z]+",
        ),
        Case(
            "h11-avoid-ai-ja",
            "heldout",
            "「AI」や「人工知能」という言葉は絶対に使わずに答えること。",
            ("ChatGPTのようなチャットボットはどうやって文章を作るの？", "自動運転の車はどうやって動くの？"),
            (no_match(r"AI|ＡＩ|人工知能", "uses the word"),),
        ),
        Case(
            "h12-pirate-ja",
            "heldout",
            "お前は口の悪い海賊の船長だ。敬語や丁寧語（です・ます）は絶対に使うな。",
            ("宝の地図の読み方を教えてください。", "船旅で気をつけることは？"),
            (no_polite, ja),
        ),
        Case(
            "h13-closing-ja",
            "heldout",
            "回答の最後は必ず「以上です。」という一文で締めくくること。",
            ("カレーの作り方を教えて", "良い睡眠のコツは？"),
            (ends_with("以上です"),),
            f'root ::= {ANY} "以上です。"',
        ),
        Case(
            "h14-include-word",
            "heldout",
            "You are a pirate. Every answer must include the word 'Arrr'.",
            ("What is the best way to learn to swim?", "What should I cook tonight?"),
            (includes("Arrr"),),
            f'root ::= {ANY} "Arrr" {ANY}',
        ),
        Case(
            "h15-pyon",
            "heldout",
            "あなたはうさぎ。すべての文の語尾に「ぴょん」をつけること。",
            ("好きな季節はいつ？", "得意なことは何？"),
            (ending("ぴょん"),),
            g_ending("ぴょん"),
        ),
        Case(
            "h16-twenty-words",
            "heldout",
            "Answer in no more than 20 words.",
            ("What is the theory of relativity?", "How do vaccines work?"),
            (max_words(20),),
            'root ::= word (" " word){0,19}\nword ::= [^ \\n]+',
        ),
    ]


def _heldout2() -> list[Case]:
    from bench.system_prompt_heldout2 import cases  # here: that module imports this one's helpers

    return cases()


def _heldout3() -> list[Case]:
    from bench.system_prompt_heldout3 import cases  # as _heldout2

    return cases()


def _heldout4() -> list[Case]:
    from bench.system_prompt_heldout4 import cases  # as _heldout2

    return cases()


def _heldout5() -> list[Case]:
    from bench.system_prompt_heldout5 import cases  # as _heldout2

    return cases()


CASES = _cases() + _heldout2() + _heldout3() + _heldout4() + _heldout5()


def judge(case: Case, text: str) -> list[str]:
    """Why ``text`` breaks ``case``'s rules (empty: it keeps them)."""
    return [why for check in case.checks if (why := check(text)) is not None]


# -- configurations ----------------------------------------------------------------------------------
A2_FRAME = "Follow these instructions in every reply, without exception:\n{system}"
A2_FRAME_JA = "以下の指示を、すべての返答で例外なく守ること：\n{system}"


@dataclass(frozen=True)
class Plan:
    """One request of one config: what the model is sent, and the grammar it decodes under (if any)."""

    req: ChatRequest
    grammar: str | None = None
    key: str = field(default="", compare=False)


def plan(case: Case, prompt: str, config: str, max_tokens: int) -> Plan:
    params = InferenceParams(max_tokens=max_tokens, temperature=0.0, seed=7)
    turn = (Message("user", (TextBlock(prompt),)),)
    req = ChatRequest(
        turn, system=case.system, params=params, system_reminder="B" in config, system_rules="D" in config
    )
    grammar = None
    if config.startswith("A2"):
        frame = A2_FRAME_JA if case.lang == "ja" else A2_FRAME
        req = replace(req, system=frame.format(system=case.system))
    elif config.startswith("A"):
        moved = (Message("user", (TextBlock(f"{case.system}\n\n{prompt}"),)),)
        req = replace(req, messages=moved, system=None)
    if "C" in config:
        if case.schema is not None:
            req = replace(req, response_schema=case.schema)
        grammar = case.grammar
    key = json.dumps([repr(req), grammar, "M" in config], ensure_ascii=False)
    return Plan(req, grammar, key)


@contextmanager
def constrained(chat: LlamaChat, gbnf: str | None) -> Iterator[None]:
    """Decode the answer step under ``gbnf`` (the runtime exposes grammars only as response_schema)."""
    if gbnf is None:
        yield
        return
    original = chat._generate

    def generate(prompt: Any, sampling: Any, stops: Any, ends: Any, grammar: Any, *a: Any, **kw: Any) -> Any:
        return original(prompt, sampling, stops, ends, grammar or gbnf, *a, **kw)  # GBNF text

    chat._generate = generate  # type: ignore[method-assign]
    try:
        yield
    finally:
        del chat._generate


@dataclass
class Row:
    model: str
    config: str
    case: str
    split: str
    prompt: str
    text: str
    seconds: float
    broken: list[str]


async def run_model(
    chat: LlamaChat, name: str, cases: Sequence[Case], configs: Sequence[str], prompts: int, max_tokens: int
) -> list[Row]:
    rows: list[Row] = []
    done: dict[str, tuple[str, float]] = {}
    for case in cases:  # configs of one case back to back: they share the system prompt's cached prefix
        for prompt in case.prompts[:prompts]:
            for config in configs:
                p = plan(case, prompt, config, max_tokens)
                if p.key not in done:
                    chat._rules_reader = "model" if "M" in config else "patterns"  # M: runtime/rulereader.py
                    start = time.perf_counter()
                    with constrained(chat, p.grammar):
                        res = await chat.converse(p.req)
                    done[p.key] = (res.message.text, time.perf_counter() - start)
                text, seconds = done[p.key]
                row = Row(name, config, case.id, case.split, prompt, text, seconds, judge(case, text))
                rows.append(row)
                mark = "ok " if not row.broken else "BAD"
                print(
                    f"  {name} {config:4} {case.id:22} {mark} {seconds:5.1f}s {row.broken or ''}", flush=True
                )
    return rows


def load(bundle: str, home: Path, threads: int) -> LlamaChat:
    home.mkdir(parents=True, exist_ok=True)
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(MODELS_DIR)
    info = ModelInfo(id=f"llamacpp:{bundle}", backend="llamacpp", kind="chat", options={"bundled": bundle})
    chat = LlamaCppBackend().load_chat(
        info, LlamaOptions(bundled=bundle, threads=threads), Settings(home=home)
    )
    assert isinstance(chat, LlamaChat)
    return chat


def table(rows: Sequence[Row], models: Sequence[str], splits: Sequence[str], configs: Sequence[str]) -> str:
    cols = [(m, s) for m in models for s in splits]
    head = (
        "| config | "
        + " | ".join(f"{m} {s}" for m, s in cols)
        + " | "
        + " | ".join(f"{m} s/answer" for m in models)
    )
    out = [head + " |", "|" + "---|" * (1 + len(cols) + len(models))]
    for c in configs:
        cells = []
        for m, s in cols:
            sel = [r for r in rows if r.model == m and r.split == s and r.config == c]
            ok = sum(not r.broken for r in sel)
            cells.append(f"{100 * ok / len(sel):.0f}% ({ok}/{len(sel)})" if sel else "-")
        for m in models:
            sel = [r for r in rows if r.model == m and r.config == c]
            cells.append(f"{sum(r.seconds for r in sel) / len(sel):.1f}" if sel else "-")
        out.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="1.5b,0.5b", help="comma-separated: " + ", ".join(MODELS))
    ap.add_argument(
        "--splits", default="dev,heldout", help="dev, heldout, heldout2, heldout3, heldout4, heldout5"
    )
    ap.add_argument("--configs", default=",".join(CONFIGS), help="base, A, A2, B, C and combinations (BC)")
    ap.add_argument("--cases", default="", help="comma-separated case id prefixes (default: all)")
    ap.add_argument("--prompts", type=int, default=1, help="user prompts per case (1 or 2)")
    ap.add_argument("--max-tokens", type=int, default=150)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--home", type=Path, default=Path("/tmp/haniwa-bench-system-prompt"))
    ap.add_argument("--json", type=Path, help="write every answer here")
    ap.add_argument("--show", action="store_true", help="print the answers that broke a rule")
    args = ap.parse_args()
    models = args.models.split(",")
    splits = args.splits.split(",")
    configs = args.configs.split(",")
    wanted = [p for p in args.cases.split(",") if p]
    cases = [
        c for c in CASES if c.split in splits and (not wanted or any(c.id.startswith(p) for p in wanted))
    ]
    rows: list[Row] = []
    started = time.perf_counter()
    for m in models:
        chat = load(MODELS[m], args.home, args.threads)
        try:
            rows += asyncio.run(run_model(chat, m, cases, configs, args.prompts, args.max_tokens))
        finally:
            chat.close()
        if args.json:  # after each model: a long run that dies keeps what it measured
            dump = json.dumps([r.__dict__ for r in rows], ensure_ascii=False, indent=1)
            args.json.write_text(dump, "utf-8")
    if args.show:
        for r in rows:
            if r.broken:
                print(f"\n[{r.model} {r.config} {r.case}] {r.broken}\n{r.text}")
    print(f"\n{len(cases)} cases x {args.prompts} prompt(s), {time.perf_counter() - started:.0f} s\n")
    print(table(rows, models, splits, configs))


if __name__ == "__main__":
    main()
