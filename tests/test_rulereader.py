"""The model-based rule reader (runtime/rulereader.py): what the text lets a proposal through, and how the
model's rules fill the pattern reader's. The model call itself is in test_sysrules' model tests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from haniwa.runtime import rulereader
from haniwa.runtime.phrases import POLITE_JA
from haniwa.runtime.sysrules import DEFAULT_ITEMS, EXCLAMATION, Rules, derive


def proposal(*rules: tuple[str, str]) -> dict[str, Any]:
    return {"rules": [{"kind": k, "value": v} for k, v in rules]}


def fields(rules: Rules) -> dict[str, Any]:
    return {k: v for k, v in vars(rules).items() if v and k != "japanese"}


@pytest.mark.parametrize(
    ("system", "rules", "expected"),
    [
        (
            "あなたはカエル。どの文も「ケロ」でしめくくること。",
            [("sentence_ending", "ケロ")],
            {"ending": "ケロ"},
        ),
        ("Keep it to three sentences or fewer, always.", [("max_sentences", "3")], {"max_sentences": 3}),
        ("返事は三文を上限とする。", [("max_sentences", "3")], {"max_sentences": 3}),
        (
            "Every line of your reply opens with '> ', and you write 4 lines.",
            [("bullet_list", ">"), ("item_count", "4")],
            {"items": (4, 4), "marker": "> "},
        ),
        ("Use a numbered list.", [("numbered_list", "")], {"items": DEFAULT_ITEMS, "marker": "1."}),
        ("Shout everything in capital letters.", [("uppercase", "")], {"case": "upper"}),
        ("数字は一切書かないこと。", [("no_digits", "")], {"no_digits": True}),
        ("Exclamation marks are not allowed.", [("no_exclamation", "")], {"marks": EXCLAMATION}),
        ("丁寧語はNG、友達口調で。", [("no_polite_japanese", "")], {"banned": POLITE_JA}),
        (
            "Your reply's final sentence is always a question.",
            [("end_with_question", "")],
            {"question": True},
        ),
        ("The output is a JSON object and nothing else.", [("json_only", "")], {"json": True}),
        ("Whatever language they use, you reply in English.", [("answer_in_english", "")], {"english": True}),
        (
            "Open with 'Greetings, traveler.' every time.",
            [("first_line", "Greetings, traveler.")],
            {"prefix": "Greetings, traveler."},
        ),
        (
            "The word 'cheap' is off limits; never use it.",
            [("banned_word", "cheap")],
            {"banned": ("cheap", "Cheap", "CHEAP")},
        ),
    ],
)
def test_grounded_proposals_are_kept(
    system: str, rules: list[tuple[str, str]], expected: dict[str, Any]
) -> None:
    assert fields(rulereader.ground(proposal(*rules), system)) == expected


@pytest.mark.parametrize(
    ("system", "rules"),
    [
        ("語尾は「ケロ」にすること。", [("sentence_ending", "ピョン")]),  # the value is not in the text
        ("Answer in at most three sentences.", [("max_sentences", "5")]),  # another number
        ("You are a helpful assistant.", [("max_words", "50")]),  # no evidence at all
        ("If the user asks, answer in English.", [("answer_in_english", "")]),  # conditional
        ("Our manuals are organized in numbered chapters.", [("numbered_list", "")]),  # a description
        ("Do not use bullet points.", [("bullet_list", "-")]),  # negated
        ("Keep answers under 1000 words.", [("max_words", "1000")]),  # beyond the sane bounds
        ("Be concise.", [("max_sentences", "2")]),  # soft style: no number to ground it
    ],
)
def test_ungrounded_proposals_are_dropped(system: str, rules: list[tuple[str, str]]) -> None:
    assert not rulereader.ground(proposal(*rules), system)


@pytest.mark.parametrize(
    "data", [None, [], {"rules": "x"}, {"rules": [1, {"kind": "nope", "value": "x"}]}, {}]
)
def test_malformed_output_reads_as_no_rule(data: Any) -> None:
    assert not rulereader.ground(data, "語尾は「ケロ」にすること。")
    assert rulereader.parse("not json") == {}


def test_merge_fills_only_what_the_patterns_left_empty() -> None:
    patterns = derive("Answer as a bulleted list. Answer in English.")
    model = Rules(items=(3, 3), marker="* ", english=False, japanese_only=True, no_digits=True)
    merged = rulereader.merge(patterns, model)
    assert merged.marker == patterns.marker and merged.items == (
        3,
        3,
    )  # the model's count, the patterns' list
    assert merged.english and not merged.japanese_only  # one answer language: the patterns'
    assert merged.no_digits
    assert rulereader.merge(Rules(), Rules(json=True)) == Rules(json=True)
    assert rulereader.merge(derive("語尾は「ケロ」。"), Rules(banned=("x",))).banned == ("x",)


def test_no_call_without_any_evidence_word() -> None:
    assert not rulereader.worth_asking("You are a helpful assistant for a bakery.")
    assert rulereader.worth_asking("Sentences: two at most.")
    assert rulereader.worth_asking("語尾は「ケロ」。")


def test_the_reading_call_shows_examples_then_the_prompt() -> None:
    turns = rulereader.turns("語尾は「ケロ」。")
    assert turns[0]["role"] == "system" and turns[-1] == {
        "role": "user",
        "content": rulereader.question("語尾は「ケロ」。"),
    }
    answers = [json.loads(t["content"]) for t in turns if t["role"] == "assistant"]
    assert answers and all(set(a) == {"rules"} for a in answers) and any(not a["rules"] for a in answers)
    kinds = {r["kind"] for a in answers for r in a["rules"]}
    assert kinds <= set(rulereader.KINDS)
