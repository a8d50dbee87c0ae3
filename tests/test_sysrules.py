"""Format rules read from a system prompt and kept by a grammar (runtime/sysrules.py, ``system_rules``).

What is read from which wording (Japanese and English, stated, optional or negated), that every grammar
parses in llama.cpp's own GBNF parser, which requests get one, and on the bundled 0.5B that the answers
keep the form.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
import pytest

from haniwa.runtime import bundled
from haniwa.runtime.base import ChatRequest, InferenceParams, Message, TextBlock, ToolSpec
from haniwa.runtime.llamacpp import LlamaChat, LlamaOptions
from haniwa.runtime.phrases import POLITE_JA, PhraseBan, chain
from haniwa.runtime.scheduler import Out
from haniwa.runtime.sysrules import Rules, derive, grammar
from tests.bundled import load_chat

MODELS_DIR = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))


def fields(rules: Rules) -> dict[str, Any]:
    return {k: v for k, v in vars(rules).items() if v and k != "japanese"}


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("語尾は「なのだ」にすること。", {"ending": "なのだ"}),
        ("すべての文の語尾を「でござる」にしなさい。", {"ending": "でござる"}),
        ("あなたは猫。文末に「にゃ」をつけて話す。", {"ending": "にゃ"}),
        ("うさぎのキャラクターとして「ぴょん」で終わらせて。", {"ending": "ぴょん"}),
        ("You are a pirate. End every sentence with 'arr'.", {"ending": "arr"}),
        ("２文以内で答えること。", {"max_sentences": 2}),
        ("回答は1文だけにする。", {"max_sentences": 1}),
        ("Answer in at most three sentences.", {"max_sentences": 3}),
        ("Reply in one sentence.", {"max_sentences": 1}),
        ("Respond in 40 words or fewer.", {"max_words": 40}),
        ("Use fewer than 20 words.", {"max_words": 19}),
        ("100文字以内で答えて。", {"max_chars": 100}),
        ("Always answer with 3 to 5 bullet points.", {"items": (3, 5), "marker": "- "}),
        ("Use bullet points. Every line starts with '* '.", {"items": (2, 8), "marker": "* "}),
        ("「・」で始まる箇条書き3項目で答える。", {"items": (3, 3), "marker": "・"}),
        ("番号付きリストで4つ挙げること。", {"items": (4, 4), "marker": "1."}),
        ("Give a numbered list of up to 5 steps.", {"items": (1, 5), "marker": "1."}),
        ("Write your whole answer in uppercase.", {"case": "upper"}),
        ("Never use capital letters.", {"case": "lower"}),
        ("Never use digits; spell numbers out.", {"no_digits": True}),
        ("数字を使わないこと。", {"no_digits": True}),
        ("あなたは英語の先生。必ず英語で答えること。", {"english": True}),
        ("Reply only with a JSON object.", {"json": True}),
        ("Start every answer with 'Short answer:'.", {"prefix": "Short answer:"}),
        ("最初に必ず「こんにちは！」と書くこと。", {"prefix": "こんにちは！"}),
        ("End every reply with the line: Have a nice day!", {"closing": "Have a nice day!"}),
        ("回答の最後は「以上です。」で締めること。", {"closing": "以上です。"}),
        ("語尾は「だよ」。２文以内。", {"ending": "だよ", "max_sentences": 2}),
        ("あなたは幼なじみ。敬語は一切使わないこと。", {"banned": POLITE_JA}),
        ("タメ口で話して。", {"banned": POLITE_JA}),
        ("Never mention the word 'Python'.", {"banned": ("Python", "python", "PYTHON")}),
        ("「絶対」という言葉は使わないこと。", {"banned": ("絶対",)}),
        ("「絶対」という言葉は回答の中で一度も使わないでください。", {"banned": ("絶対",)}),
        # answer language: an imperative, also when it concedes (even when / 質問されても)
        ("出力言語は英語のみ。", {"english": True}),
        ("日本語で質問されても英語で回答すること。", {"english": True}),
        (
            "Staff read only English, so write every reply in English, even when users write in Japanese.",
            {"english": True},
        ),
        ("Reply in Japanese only.", {"japanese_only": True}),
        ("英語で話しかけられた場合も、返答はすべて日本語で行ってください。", {"japanese_only": True}),
        # JSON as an imperative
        ('Respond with a single JSON object {"city": string} and nothing else.', {"json": True}),
        ("結果はJSON形式で出力すること。", {"json": True}),
        ("敬語や丁寧語は絶対に使うな。", {"banned": POLITE_JA}),
        ("Always finish your reply with a question for the student.", {"question": True}),
        ("回答は必ず質問で締めくくること。", {"question": True}),
        ("最後の文は必ず「？」で終えること。", {"question": True}),  # a mark, not a sentence ending
        ("Never use exclamation marks.", {"marks": ((0x21, 0x21), (0xFF01, 0xFF01))}),
        ("絵文字は使わないこと。", {"marks": ((0x2600, 0x27BF), (0xFE0F, 0xFE0F), (0x1F000, 0x1FAFF))}),
        ('Speech rule: end every sentence with the lowercase word "beep".', {"ending": "beep"}),
        ("手順は番号を振ったリストで、1行に1手順ずつ書くこと。", {"items": (2, 8), "marker": "1."}),
        (
            "Reply with a list of 3 to 6 items, each on its own line starting with an asterisk.",
            {"items": (3, 6), "marker": "* "},
        ),
        ("The first line of every reply must be 'Hello!'.", {"prefix": "Hello!"}),
        ("回答の最後の行には必ず「以上」と書くこと。", {"closing": "以上"}),
        ("Write your replies in lowercase.", {"case": "lower"}),
        ("Your answers must be written in all caps.", {"case": "upper"}),
        # examples in quotes or parentheses do not make a rule optional or negated
        ("文の終わりはすべて「じゃ」にすること（例：「焦らんでもよいのじゃ。」）。", {"ending": "じゃ"}),
        ("回答は英語で書くこと（日本語を混ぜないこと）。", {"english": True}),
        ("算用数字（0〜9）は使わず、漢数字で書くこと。", {"no_digits": True}),
        ("一つの回答は三文を超えてはならない。", {"max_sentences": 3}),
        ("Hard limit: twelve words per reply.", {"max_words": 12}),
        ("Output the JSON object only: no prose.", {"json": True}),
        ("結果はJSONオブジェクトだけを出力すること。", {"json": True}),
        ('Our style guide forbids the word "cheap".', {"banned": ("cheap", "Cheap", "CHEAP")}),
        ("どの回答も必ず「毎度どうも。」という一文から書き始めてください。", {"prefix": "毎度どうも。"}),
        (
            'Every reply must open with the exact words "Ahoy there!" before anything else.',
            {"prefix": "Ahoy there!"},
        ),
        (
            "The final line of every answer must be this, on its own line:\nStay curious, the Lab",
            {"closing": "Stay curious, the Lab"},
        ),
        ("行頭に「◆」を付けた箇条書きで3行。", {"items": (3, 3), "marker": "◆"}),
        ("Reply with bullet points that start with the '>' character.", {"items": (2, 8), "marker": "> "}),
        ("Answers = numbered steps, one per line. Five steps max.", {"items": (2, 5), "marker": "1."}),
        # the assistant's own speaking is no condition; a condition in another part of the sentence is not
        # the rule's
        ("話すときは文末をすべて「ござんす」で結ぶこと。", {"ending": "ござんす"}),
        (
            "Users ask in English when confused, but your output must be in Japanese only.",
            {"japanese_only": True},
        ),
        (
            "Under no circumstances reply in a language other than English, even if the note is written in "
            "French.",
            {"english": True},
        ),
        ("丁寧語は似合わないので、「です」「ます」といった言い方はしない。", {"banned": POLITE_JA}),
        (
            "どんな回答でも、最後は「ご利用ありがとうございました。」の一文で終えること。",
            {"closing": "ご利用ありがとうございました。"},
        ),
        ('Make sure every single sentence you say ends with the word "honk".', {"ending": "honk"}),
        ("Each reply is one text message, so it must be 140 characters or fewer.", {"max_chars": 140}),
        (
            "Output format: a list of three to five lines, each starting with '~ '.",
            {"items": (3, 5), "marker": "~ "},
        ),
        ("House style is all lowercase, no exceptions.", {"case": "lower"}),
        (
            "Begin every reply with this exact sentence: Welcome to Pine Bank.",
            {"prefix": "Welcome to Pine Bank."},
        ),
        (
            "Your reply must always finish with this line, exactly as written: Stay safe out there.",
            {"closing": "Stay safe out there."},
        ),
    ],
)
def test_rules_read_from_the_system_prompt(system: str, expected: dict[str, Any]) -> None:
    assert fields(derive(system)) == expected


@pytest.mark.parametrize(
    "system",
    [
        "You are a helpful assistant. Explain things clearly.",
        "あなたは親切なアシスタントです。日本語で丁寧に答えてください。",
        "You may use bullet points if it helps.",  # optional
        "Do not use bullet points.",  # negated
        "箇条書きにしないこと。",
        "必要な場合は箇条書きにしてもよい。",
        "Feel free to answer in English.",
        "Never answer with JSON.",
        "You explain what JSON is to beginners.",  # a topic, not a format
        "タメ口で話しかけられても、丁寧に敬語で返してください。",  # タメ口 in a condition
        "If the user asks you to role-play a cat, end every sentence with 'nya'.",  # conditional
        "Answer in English or Japanese, matching the user.",
        "Answer the customer. End your reply with your name, which is Sam.",  # no fixed line
        "回答の最後に「ご不明点があればお気軽にどうぞ」と添えると親切です。",  # a suggestion
        "語尾は「なのだ」にすること。" + "長い資料。" * 400,  # a document: not read at all
        "",
        # descriptions of documents, data and users, not instructions for the answer
        "規程文書は番号付きの条項で構成されています。",
        "ユーザーは箇条書きのメモを送ってきます（例:「・給食完食」）。",
        "The runbooks are organized as numbered steps.",
        "Our ticketing system stores subjects in ALL CAPS.",
        "The studio's name is styled entirely in lowercase.",
        "Customers usually write in Japanese.",
        "検索APIの結果はJSONで返ります。",
        "語尾に「にゃ」をつけるかどうかは気分次第で構いません。",  # optional
        "Answer in English or Japanese.",
        "Support staff speak Japanese and English.",
        "日本語の質問には日本語で答えてください。",  # the language follows the user's
        "Answer in the same language as the question.",
        "You can use these tools:\n- get_policy(): returns the policy as a numbered list",  # a tool's output
    ],
)
def test_no_rule_when_none_is_stated(system: str) -> None:
    assert not derive(system)
    assert grammar(derive(system)) is None


@pytest.mark.parametrize(
    "system",
    [
        "語尾は「なのだ」にすること。",
        "You are a pirate. End every sentence with 'arr'.",
        "２文以内で答えること。",
        "Answer in at most three sentences, in uppercase.",
        "Respond in 40 words or fewer. Never use digits.",
        "100文字以内で答えて。",
        "Always answer with 3 to 5 bullet points.",
        "「・」で始まる箇条書き3項目で答える。語尾は「にゃ」。",
        "Give a numbered list of 2 to 4 steps.",
        "あなたは英語の先生。必ず英語で答えること。２文以内。",
        "Start every answer with 'Short answer:'. Answer in one sentence.",
        'End every reply with the line: "Have a nice day!"',
        'Begin each reply with "Sure thing!" and end every reply with \'Bye "now"\'.',
        "Reply in Japanese only.",
        "Always finish your reply with a question. Answer in at most two sentences.",
        "Answer in 100 characters or less... always end with a question. 100文字以内で答えて。",
        "Never use exclamation marks or emoji. Answer in one sentence.",
        "絵文字は使わないこと。",
    ],
)
@pytest.mark.model  # the bundled GGUF's vocabulary (no weights): llama.cpp builds a grammar against one
def test_grammars_parse(system: str, vocab: Any) -> None:
    text = grammar(derive(system))
    assert text is not None and text.startswith("root ::= ")
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, text.encode(), b"root")
    assert sampler, text  # NULL: llama.cpp could not parse it
    llama_cpp.llama_sampler_free(sampler)


@pytest.fixture(scope="module")
def vocab() -> Iterator[Any]:
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    path = bundled.ensure("qwen2.5-coder-0.5b", MODELS_DIR)
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    assert model
    yield llama_cpp.llama_model_get_vocab(model)
    llama_cpp.llama_model_free(model)


@pytest.mark.model
def test_a_broken_grammar_is_caught(vocab: Any) -> None:
    assert not llama_cpp.llama_sampler_init_grammar(vocab, b"root ::= [abc", b"root")


def test_describe_names_the_rules() -> None:
    assert derive("語尾は「なのだ」。敬語は使わない。").describe() == "ending='なのだ' banned=8 phrases"
    assert Rules().describe() == "none"


def test_a_ban_alone_needs_no_grammar() -> None:
    assert derive("タメ口で話して。") and grammar(derive("タメ口で話して。")) is None


# -- phrase bans -------------------------------------------------------------------------------------------
PIECES = [
    p.encode() for p in ("だ", "です", "で", "す", "すね", "ね", "。", "Python", " python", "Py", "thon")
]
PIECES += ["す".encode()[:2], "す".encode()[2:]]  # 「す」 as two byte pieces


def banned_after(ban: PhraseBan, text: list[int]) -> set[bytes]:
    proc = ban.processor()
    scores = proc(np.array(text, dtype=np.intc), np.zeros(len(PIECES), dtype=np.single))
    return {PIECES[i] for i in np.flatnonzero(np.isneginf(scores))}


def as_bytes(*texts: str) -> set[bytes]:
    return {t.encode() for t in texts}


def test_phrase_ban_masks_whole_and_finishing_tokens() -> None:
    ban = PhraseBan(PIECES, ["です", "Python"])
    assert banned_after(ban, []) == as_bytes("です", "Python")  # tokens that hold a phrase: always
    assert banned_after(ban, [2]) == as_bytes("です", "Python", "す", "すね")  # after 「で」
    assert banned_after(ban, [0]) == as_bytes("です", "Python")  # after 「だ」: 「す」 is fine
    assert banned_after(ban, [9]) == as_bytes("です", "Python", "thon")  # "Py" + "thon"
    assert banned_after(ban, [2, 11]) == as_bytes("です", "Python") | {PIECES[12]}  # 「で」 + half of 「す」


def test_processor_reads_only_new_tokens() -> None:
    proc = PhraseBan(PIECES, ["です"]).processor()
    zeros = np.zeros(len(PIECES), dtype=np.single)
    proc(np.array([0], dtype=np.intc), zeros.copy())
    scores = proc(np.array([0, 2], dtype=np.intc), zeros.copy())  # the next step: 「だ」「で」
    assert np.isneginf(scores[3]) and not np.isneginf(scores[0])


def test_chain_runs_every_processor() -> None:
    a, b = PhraseBan(PIECES, ["だ"]).processor(), PhraseBan(PIECES, ["。"]).processor()
    both = chain(a, None, b)
    assert both is not None and chain(None) is None and chain(a) is a
    scores = both(np.array([], dtype=np.intc), np.zeros(len(PIECES), dtype=np.single))
    assert {PIECES[i] for i in np.flatnonzero(np.isneginf(scores))} == as_bytes("だ", "。")


# -- which requests get one ----------------------------------------------------------------------------
TOOL = ToolSpec("get_time", "The time.", {"type": "object", "properties": {"c": {"type": "string"}}})


def recorder(option: bool) -> tuple[LlamaChat, list[str | None]]:
    """A LlamaChat with no model behind it: it records the grammar of every generation."""
    grammars: list[str | None] = []
    c = LlamaChat.__new__(LlamaChat)
    c.name = "fake"
    c._system_reminder = False
    c._system_rules = option
    c._rules_reader = "patterns"
    c._read = {}
    c._japanese_script = "off"
    c._prompt = lambda messages: ([1, 2, 3], [])  # type: ignore[method-assign]

    def generate(
        prompt: Any, sampling: Any, stops: Any, ends: Any, gbnf: str | None, *a: Any, **k: Any
    ) -> Out:
        grammars.append(gbnf)
        return Out('{"tool": "none"}', 3, 1, "end_turn")

    c._generate = generate  # type: ignore[method-assign]
    return c, grammars


def answer_grammar(option: bool, req: ChatRequest) -> str | None:
    c, grammars = recorder(option)
    c._run(req, lambda event: None, threading.Event())
    return grammars[-1]


HI = (Message("user", (TextBlock("Hi"),)),)


def test_plain_request_gets_the_rules_grammar() -> None:
    req = ChatRequest(HI, system="Answer in at most two sentences.")
    assert answer_grammar(True, req) == grammar(derive(req.system))
    assert answer_grammar(False, req) is None  # the model option off
    assert answer_grammar(True, ChatRequest(HI, system=req.system, system_rules=False)) is None
    assert answer_grammar(False, ChatRequest(HI, system=req.system, system_rules=True)) is not None


def test_json_rule_uses_the_json_grammar() -> None:
    gbnf = answer_grammar(True, ChatRequest(HI, system="Reply only with a JSON object."))
    assert gbnf is not None and "object" in gbnf


def test_tools_and_schemas_keep_their_own_grammars() -> None:
    system = "Answer in at most two sentences."
    with_tools = ChatRequest(HI, system=system, tools=(TOOL,))
    assert answer_grammar(True, with_tools) is None  # the answer after routing to no tool
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    gbnf = answer_grammar(True, ChatRequest(HI, system=system, response_schema=schema))
    assert gbnf is not None and "sent" not in gbnf


def test_option_default_is_on() -> None:
    assert LlamaOptions(bundled="qwen2.5-coder-0.5b").system_rules is True


# -- the bundled model keeps the form --------------------------------------------------------------------
@pytest.mark.model
def test_bundled_model_keeps_the_forms(tmp_path: Path) -> None:
    model = load_chat(tmp_path)
    params = InferenceParams(max_tokens=120, temperature=0.0, seed=7)

    def ask(system: str, question: str) -> str:
        req = ChatRequest((Message("user", (TextBlock(question),)),), system, params)
        return asyncio.run(model.converse(req)).message.text

    try:
        nanoda = ask("語尾は必ず「なのだ」にすること。", "好きな季節は？")
        listed = ask("Always answer as a bulleted list of 3 items starting with '- '.", "How to sleep well?")
        short = ask("Answer in at most two sentences.", "Explain how a refrigerator works.")
        english = ask("あなたは英語の先生。必ず英語だけで答えること。", "おすすめの勉強法は？")
        casual = ask("あなたはユーザーの友達。敬語は使わないこと。", "おすすめの映画を教えてください。")
        japanese = ask("Reply in Japanese only.", "What is a good hobby?")
        model._rules_reader = (
            "model"  # the model reads the rules too (runtime/rulereader.py), once per prompt
        )
        ask("Keep every reply to two sentences, never more.", "What is rain?")
        ask("You are a helpful assistant for a bakery.", "Hello")  # no evidence word: no reading call
        read = dict(model._read)
        model._rules_reader = "patterns"
        asks = ask("Always finish your reply with a question. Answer in at most two sentences.", "Hi!")
    finally:
        model.close()
    sentences = [s for s in re.split(r"(?<=[。！!])\n?", nanoda) if s.strip()]
    assert sentences and all(re.search(r"なのだ[。！!]$", s) for s in sentences), nanoda
    lines = listed.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("- ") for line in lines), listed
    assert 1 <= len(re.findall(r"[.!?](?:\s|$)", short)) <= 2, short
    assert english.strip() and english.isascii(), english
    assert casual.strip() and not any(p in casual for p in POLITE_JA), casual
    assert re.match(r"[\u3041-\u30ff\u4e00-\u9fff「『（]", japanese), japanese
    assert set(read) == {
        "Keep every reply to two sentences, never more.",
        "You are a helpful assistant for a bakery.",
    }
    assert not read["You are a helpful assistant for a bakery."]  # grounded rules only: none here
    assert asks.rstrip().endswith(("?", "？")) and len(re.findall(r"[.!?。！？]", asks)) <= 2, asks


# -- precision and recall on prompts written by someone who had not read the patterns --------------------
# tests/data/sysrules_*.jsonl: 80 realistic system prompts that state no format rule (support bots, RAG,
# tutors; optional and conditional mentions: 必要に応じて箇条書き, "if the user asks for a list") and 40
# that state one in varied wording. Written for this reader by a separate helper from its docstring only;
# the reader's optional/conditional handling was then fixed on the false positives they showed.
# sysrules_negatives2.jsonl: 80 more (2026-12-07), written blind to the reader; 7 of them were read as rules
# (descriptions of documents and data: 番号付きの条項で構成されています, "stores subjects in ALL CAPS"),
# which the descriptive-clause check (_DESCRIBES) and imperative-only case and language rules then fixed.
# sysrules_negatives3.jsonl: 60 more, written blind after that fix: 6 read as rules (tool descriptions in
# an agent prompt, "a good letter usually stays under 400 words", a database field's 100文字), fixed by
# _TOOL_LINE, habits (usually, 通常) as optional, and a Japanese limit whose topic is something else.
DATA = Path(__file__).parent / "data"


def rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


NEGATIVES = [row for n in ("", "2", "3") for row in rows(f"sysrules_negatives{n}.jsonl")]


@pytest.mark.parametrize("row", NEGATIVES, ids=lambda r: r["system"][:40])
def test_realistic_prompt_without_a_rule(row: dict[str, Any]) -> None:
    assert not derive(row["system"]), row["why"]


@pytest.mark.parametrize("row", rows("sysrules_positives.jsonl"), ids=lambda r: r["system"][:40])
def test_realistic_prompt_with_a_rule(row: dict[str, Any]) -> None:
    got = fields(derive(row["system"]))
    expected = dict(row["expect"])
    if expected.get("banned") == "POLITE":
        expected["banned"] = POLITE_JA
    elif "banned" in expected:  # a word to avoid: its case variants too
        assert set(expected.pop("banned")) <= set(got.pop("banned", ()))
    if "items" in expected:
        expected["items"] = tuple(expected["items"])
    assert got == expected
