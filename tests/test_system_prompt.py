"""The system reminder of the llamacpp backend: the system prompt restated next to the last user turn.

Prompt construction is tested on a LlamaChat without a model (its rendering and generation replaced by
recorders); one ``model`` test runs the bundled model on the persona that motivated the feature.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from haniwa.runtime.base import ChatRequest, InferenceParams, Message, TextBlock, ToolSpec
from haniwa.runtime.llamacpp import (
    REMINDER_MAX_CHARS,
    LlamaChat,
    LlamaOptions,
)
from haniwa.runtime.scheduler import Out
from tests.bundled import load_chat

MODELS_DIR = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))
NANODA = "自信満々に答える。語尾は「なのだ」にすること。敬語は絶対に使わない。"
TOOL = ToolSpec(
    "get_time",
    "The current time in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


def user(text: str) -> Message:
    return Message("user", (TextBlock(text),))


def chat(option: bool = True) -> tuple[LlamaChat, list[list[dict[str, str]]]]:
    """A LlamaChat with no model behind it: it records the template messages of every generation."""
    seen: list[list[dict[str, str]]] = []
    c = LlamaChat.__new__(LlamaChat)
    c.name = "fake"
    c._system_reminder = option
    c._system_rules = False  # tests/test_sysrules.py: the grammar the system prompt's rules give
    c._japanese_script = "off"

    def prompt(messages: list[dict[str, str]]) -> tuple[list[int], list[str]]:
        seen.append(messages)
        return [1, 2, 3], []

    def generate(*args: Any, **kwargs: Any) -> Out:
        return Out('{"city": "Tokyo"}', 3, 1, "end_turn")  # fits every step: route, arguments, answer

    c._prompt = prompt  # type: ignore[method-assign]
    c._generate = generate  # type: ignore[method-assign]
    return c, seen


def sent(c: LlamaChat, seen: list[list[dict[str, str]]], req: ChatRequest) -> list[dict[str, str]]:
    """The messages the model saw for ``req``'s answer."""
    seen.clear()
    c._run(req, lambda event: None, threading.Event())
    return seen[-1]


CONVERSATION = (
    user("What is a haniwa?"),
    Message("assistant", (TextBlock("A clay figure."),)),
    user("How old are they?"),
)


def test_reminder_follows_the_last_user_turn() -> None:
    c, seen = chat()
    msgs = sent(c, seen, ChatRequest(CONVERSATION, system="Answer in at most two sentences."))
    assert msgs[0] == {"role": "system", "content": "Answer in at most two sentences."}
    assert msgs[1]["content"] == "What is a haniwa?"  # earlier turns are left alone
    assert msgs[2] == {"role": "assistant", "content": "A clay figure."}
    assert msgs[3] == {
        "role": "user",
        "content": "How old are they?\n\n(Rules for your answer: Answer in at most two sentences.)",
    }


def test_japanese_system_prompt_gets_a_japanese_reminder() -> None:
    c, seen = chat()
    msgs = sent(c, seen, ChatRequest((user("はにわについて教えて"),), system=NANODA))
    assert msgs[-1]["content"] == f"はにわについて教えて\n\n（回答のルール：{NANODA}）"


def test_request_field_overrides_the_option() -> None:
    on, seen_on = chat(option=True)
    off, seen_off = chat(option=False)
    req = ChatRequest((user("Hi"),), system="Be brief.")
    assert sent(on, seen_on, req)[-1]["content"] != "Hi"
    assert sent(on, seen_on, ChatRequest(req.messages, system="Be brief.", system_reminder=False))[-1] == {
        "role": "user",
        "content": "Hi",
    }
    assert sent(off, seen_off, req)[-1]["content"] == "Hi"
    forced = ChatRequest(req.messages, system="Be brief.", system_reminder=True)
    assert "Be brief." in sent(off, seen_off, forced)[-1]["content"]


@pytest.mark.parametrize(
    "req",
    [
        ChatRequest((user("Time?"),), system="Be brief.", tools=(TOOL,), tool_choice="none"),
        ChatRequest((user("Time?"),), system="Be brief.", response_schema=SCHEMA),
        ChatRequest((user("Time?"),), system="Be brief.", response_schema=SCHEMA, system_reminder=True),
        ChatRequest((user("Time?"),)),
        ChatRequest((user("Time?"),), system="x" * (REMINDER_MAX_CHARS + 1)),
    ],
    ids=["tools", "schema", "schema-forced", "no-system", "long-system"],
)
def test_not_applied(req: ChatRequest) -> None:
    c, seen = chat()
    assert sent(c, seen, req)[-1] == {"role": "user", "content": "Time?"}


@pytest.mark.parametrize("choice", ["auto", "any", "get_time"])
def test_tool_steps_never_see_it(choice: str) -> None:
    c, seen = chat()
    req = ChatRequest((user("Time in Tokyo?"),), system="Be brief.", tools=(TOOL,), tool_choice=choice)
    seen.clear()
    c._run(req, lambda event: None, threading.Event())
    assert seen  # routing and/or arguments (and, under auto, the answer: the fake routes to no tool)
    assert all(m[-1] == {"role": "user", "content": "Time in Tokyo?"} for m in seen)


def test_count_tokens_counts_the_reminder() -> None:
    c, seen = chat()
    asyncio.run(c.count_tokens(ChatRequest((user("Hi"),), system="Be brief.")))
    assert seen[-1][-1]["content"] == "Hi\n\n(Rules for your answer: Be brief.)"


def test_option_default_is_on() -> None:
    assert LlamaOptions(bundled="qwen2.5-coder-0.5b").system_reminder is True
    assert LlamaOptions(bundled="qwen2.5-coder-0.5b", system_reminder=False).system_reminder is False


@pytest.mark.model
def test_nanoda_persona_keeps_its_ending(tmp_path: Path) -> None:
    # The system prompt on the 1.5B default model. Without the reminder it answers
    # 「週末は、お手伝いできることが好きです。」; with it (the default) 「…好きなのだ。」. The issue's own
    # question 「はにわについて教えて」 still fails under every general means measured in
    # bench/system_prompt.py: this coder model does not know what a haniwa is and echoes the question.
    # one thread: the thread count the greedy answer was checked with
    model = load_chat(tmp_path, "qwen2.5-coder-1.5b", threads=1)
    try:
        params = InferenceParams(max_tokens=80, temperature=0.0, seed=7)
        res = asyncio.run(model.converse(ChatRequest((user("週末は何をするのが好き？"),), NANODA, params)))
    finally:
        model.close()
    assert "なのだ" in res.message.text, res.message.text
