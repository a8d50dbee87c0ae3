"""ConversationStore over a real SQLite file in a temporary directory."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from haniwa.errors import NotFoundError, ValidationError
from haniwa.runtime.base import InferenceParams, Message, TextBlock
from haniwa.store.conversations import ConversationStore, StoredMessage, as_chat_messages
from haniwa.store.db import Database

run = asyncio.run


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "haniwa.db")
    yield database
    database.close()


@pytest.fixture
def store(db: Database) -> ConversationStore:
    return ConversationStore(db)


def _chat(store: ConversationStore, conv: str, *turns: str) -> None:
    for text in turns:
        run(store.append(conv, "user", text))
        run(store.append(conv, "assistant", f"re: {text}", input_tokens=3, output_tokens=4, latency_ms=5))


def test_create_append_get(store: ConversationStore) -> None:
    conv = run(store.create("echo:echo", system="be brief"))
    assert len(conv) == 32
    before = run(store.get(conv))
    assert (before.title, before.model_id, before.system) == ("", "echo:echo", "be brief")
    assert before.messages == ()

    first = run(store.append(conv, "user", "hello there\nsecond line"))
    second = run(store.append(conv, "assistant", "hi", input_tokens=2, output_tokens=1, latency_ms=7))
    assert second > first

    got = run(store.get(conv))
    assert got.title == "hello there"  # the first user message titles an untitled conversation
    assert got.message_count == 2
    assert [(m.role, m.content) for m in got.messages] == [
        ("user", "hello there\nsecond line"),
        ("assistant", "hi"),
    ]
    answer = got.messages[1]
    assert (answer.input_tokens, answer.output_tokens, answer.latency_ms) == (2, 1, 7)
    assert got.messages[0].input_tokens is None
    assert got.updated >= got.created

    run(store.append(conv, "user", "later"))
    assert run(store.get(conv)).title == "hello there"  # only the first one titles


def test_explicit_title_kept_and_long_titles_shortened(store: ConversationStore) -> None:
    named = run(store.create("echo:echo", title="mine"))
    run(store.append(named, "user", "hello"))
    assert run(store.get(named)).title == "mine"
    long = run(store.create("echo:echo"))
    run(store.append(long, "user", "x" * 200))
    title = run(store.get(long)).title
    assert len(title) == 60 and title.endswith("…")


def test_append_checks_conversation_and_role(store: ConversationStore) -> None:
    with pytest.raises(NotFoundError):
        run(store.append("missing", "user", "hello"))
    conv = run(store.create("echo:echo"))
    with pytest.raises(ValidationError):
        run(store.append(conv, "system", "nope"))  # type: ignore[arg-type]


def test_last_turns(store: ConversationStore) -> None:
    conv = run(store.create("echo:echo"))
    assert run(store.last_turns(conv, 10)) == []
    _chat(store, conv, "one", "two", "three", "four")

    last2 = run(store.last_turns(conv, 2))
    assert [m.content for m in last2] == ["three", "re: three", "four", "re: four"]
    assert [m.content for m in run(store.last_turns(conv, 1))] == ["four", "re: four"]
    assert len(run(store.last_turns(conv, 100))) == 8
    assert run(store.last_turns(conv, 0)) == []

    # a user message still waiting for its answer is the newest turn
    run(store.append(conv, "user", "five"))
    assert [m.content for m in run(store.last_turns(conv, 2))] == ["four", "re: four", "five"]

    with pytest.raises(NotFoundError):
        run(store.last_turns("missing", 2))


def test_request_uses_system_and_window(store: ConversationStore) -> None:
    conv = run(store.create("echo:echo", system="be brief"))
    _chat(store, conv, "one", "two")
    run(store.append(conv, "user", "three"))
    req = run(store.request(conv, turns=2, params=InferenceParams(max_tokens=9)))
    assert req.system == "be brief"
    assert req.params.max_tokens == 9
    assert [(m.role, m.text) for m in req.messages] == [
        ("user", "two"),
        ("assistant", "re: two"),
        ("user", "three"),
    ]


def test_as_chat_messages_alternates() -> None:
    def m(i: int, role: str, text: str) -> StoredMessage:
        return StoredMessage(i, role, text, 0.0)  # type: ignore[arg-type]

    msgs = [m(1, "assistant", "orphan"), m(2, "user", "a"), m(3, "user", "b"), m(4, "assistant", "c")]
    assert as_chat_messages(msgs) == (
        Message("user", (TextBlock("a\n\nb"),)),
        Message("assistant", (TextBlock("c"),)),
    )


def test_list_newest_first(store: ConversationStore) -> None:
    a = run(store.create("echo:echo"))
    b = run(store.create("other:model"))
    assert [c.id for c in run(store.list())] == [b, a]
    _chat(store, a, "wake up")
    listed = run(store.list())
    assert [c.id for c in listed] == [a, b]
    assert [c.message_count for c in listed] == [2, 0]
    assert listed[0].messages == ()  # list does not load messages
    assert [c.id for c in run(store.list(model_id="other:model"))] == [b]
    assert [c.id for c in run(store.list(limit=1))] == [a]
    latest = run(store.latest())
    assert latest is not None and latest.id == a
    assert run(store.latest("nobody")) is None


def test_rename_and_delete(store: ConversationStore, db: Database) -> None:
    conv = run(store.create("echo:echo"))
    _chat(store, conv, "hello")
    run(store.rename(conv, "renamed"))
    assert run(store.get(conv)).title == "renamed"

    keep = run(store.create("echo:echo"))
    _chat(store, keep, "stay")
    run(store.delete(conv))
    with pytest.raises(NotFoundError):
        run(store.get(conv))
    remaining = run(db.query("SELECT conversation_id FROM messages"))
    assert {r["conversation_id"] for r in remaining} == {keep}  # messages went with their conversation
    with pytest.raises(NotFoundError):
        run(store.delete(conv))
    with pytest.raises(NotFoundError):
        run(store.rename(conv, "x"))


def test_durable_across_database_instances_with_japanese(tmp_path: Path) -> None:
    path = tmp_path / "haniwa.db"
    first = Database(path)
    store = ConversationStore(first)
    conv = run(store.create("echo:echo", system="日本語で答えてください"))
    run(store.append(conv, "user", "こんにちは、はにわ 🏺"))
    run(store.append(conv, "assistant", "はい、こんにちは。"))

    # a second connection (another process) sees committed rows while the first is still open
    second = Database(path)
    try:
        got = run(ConversationStore(second).get(conv))
        assert [m.content for m in got.messages] == ["こんにちは、はにわ 🏺", "はい、こんにちは。"]
    finally:
        second.close()
    first.close()

    reopened = Database(path)
    try:
        got = run(ConversationStore(reopened).get(conv))
        assert got.system == "日本語で答えてください"
        assert got.title == "こんにちは、はにわ 🏺"
        assert [(m.role, m.content) for m in got.messages] == [
            ("user", "こんにちは、はにわ 🏺"),
            ("assistant", "はい、こんにちは。"),
        ]
        req = run(ConversationStore(reopened).request(conv, turns=10))
        assert req.messages[0].text == "こんにちは、はにわ 🏺"
    finally:
        reopened.close()
