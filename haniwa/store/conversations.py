"""Conversations: chat history kept in SQLite, shared by ``haniwa chat`` and the web playground.

A conversation has a model id (kept as the user asked for it, so an alias stays an alias and follows
the profile), an optional system prompt, a title and an ordered list of user/assistant messages.
:meth:`ConversationStore.last_turns` is the usual memory window: the last *N* user turns and every
message after the first of them, so what is sent always starts with a user message.

Example::

    store = ConversationStore(Database(settings.db_path))
    conv_id = await store.create("echo:echo", system="be brief")
    await store.append(conv_id, "user", "こんにちは")
    req = await store.request(conv_id, turns=10)   # a ChatRequest to hand to registry.chat(...)
"""

from __future__ import annotations

import builtins
import math
import sqlite3
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from haniwa.errors import NotFoundError, ValidationError
from haniwa.runtime.base import ChatRequest, InferenceParams, Message, TextBlock
from haniwa.store.db import Database
from haniwa.store.values import check_storable, dumps, loads, repaired

__all__ = ["Role", "StoredMessage", "Conversation", "ConversationStore", "as_chat_messages", "TITLE_LENGTH"]

Role = Literal["user", "assistant"]

# A conversation without a title takes the start of its first user message.
TITLE_LENGTH = 60


@dataclass(frozen=True)
class StoredMessage:
    """One message of a conversation, with the usage measured when it was produced (assistant turns)."""

    id: int
    role: Role
    content: str
    created: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: int | None = None


@dataclass(frozen=True)
class Conversation:
    """A conversation; ``messages`` is filled by :meth:`ConversationStore.get` only."""

    id: str
    title: str
    model_id: str
    system: str | None
    created: float
    updated: float
    message_count: int = 0
    messages: tuple[StoredMessage, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)


def _title(text: str) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


def _int(value: Any) -> int | None:
    # a column of another type (a float, text) left by an older version reads as unknown
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0


def _message(raw: Mapping[str, Any]) -> StoredMessage:
    row = repaired(dict(raw))
    return StoredMessage(
        id=row["id"],
        role=cast(Role, row["role"]),
        content=str(row["content"]),
        created=_time(raw["created"]),
        input_tokens=_int(row["input_tokens"]),
        output_tokens=_int(row["output_tokens"]),
        latency_ms=_int(row["latency_ms"]),
    )


def _conversation(raw: Mapping[str, Any], messages: tuple[StoredMessage, ...] = ()) -> Conversation:
    # rows are repaired as they are read: one bad value must not make every later list fail
    row = repaired({k: v for k, v in raw.items() if k != "params"})
    return Conversation(
        id=str(row["id"]),
        title=str(row["title"] or ""),
        model_id=str(row["model_id"]),
        system=row["system"] if isinstance(row["system"], str) else None,
        created=_time(raw["created"]),
        updated=_time(raw["updated"]),
        message_count=len(messages) if messages else _int(row.get("message_count")) or 0,
        messages=messages,
        params=loads(raw.get("params"), {}),
    )


def as_chat_messages(messages: Iterable[StoredMessage]) -> tuple[Message, ...]:
    """Stored messages → runtime messages a model accepts.

    Leading assistant messages are dropped and consecutive messages of one role are joined with a blank
    line (a turn whose answer failed leaves two user messages in a row), so roles strictly alternate.
    """
    merged: list[tuple[Role, list[str]]] = []
    for m in messages:
        if not merged and m.role != "user":
            continue
        if merged and merged[-1][0] == m.role:
            merged[-1][1].append(m.content)
        else:
            merged.append((m.role, [m.content]))
    return tuple(Message(role, (TextBlock("\n\n".join(parts)),)) for role, parts in merged)


class ConversationStore:
    """Async CRUD over the ``conversations`` and ``messages`` tables (migration ``m002``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _row(self, conv_id: str) -> dict[str, Any]:
        rows = await self._db.query("SELECT * FROM conversations WHERE id = ?", (conv_id,))
        if not rows:
            raise NotFoundError(f"conversation {conv_id!r} does not exist; `haniwa chat --list` lists them")
        return rows[0]

    async def create(
        self,
        model_id: str,
        system: str | None = None,
        title: str = "",
        params: Mapping[str, Any] | None = None,
    ) -> str:
        """Start a conversation and return its id (32 hex characters).

        ``params`` are the inference settings the client chose (kept as given, returned by :meth:`get`)."""
        check_storable([model_id, system, title], "the conversation")
        stored_params = dumps(dict(params or {}), "params")
        conv_id = uuid.uuid4().hex
        now = time.time()
        await self._db.execute(
            "INSERT INTO conversations (id, title, model_id, system, created, updated, params)"
            " VALUES (?,?,?,?,?,?,?)",
            (conv_id, title, model_id, system or None, now, now, stored_params),
        )
        return conv_id

    async def append(
        self,
        conv_id: str,
        role: Role,
        content: str,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        latency_ms: int | None = None,
    ) -> int:
        """Add a message and return its id; the first user message titles an untitled conversation."""
        if role not in ("user", "assistant"):
            raise ValidationError(f"role must be 'user' or 'assistant', not {role!r}")
        check_storable([content, input_tokens, output_tokens, latency_ms], "the message")
        now = time.time()
        try:
            msg_id = await self._db.execute(
                "INSERT INTO messages (conversation_id, role, content, input_tokens, output_tokens,"
                " latency_ms, created) VALUES (?,?,?,?,?,?,?)",
                (conv_id, role, content, input_tokens, output_tokens, latency_ms, now),
            )
        except sqlite3.IntegrityError as exc:  # the foreign key: no such conversation
            raise NotFoundError(f"conversation {conv_id!r} does not exist") from exc
        await self._db.execute(
            "UPDATE conversations SET updated = ?,"
            " title = CASE WHEN title = '' AND ? = 'user' THEN ? ELSE title END WHERE id = ?",
            (now, role, _title(content), conv_id),
        )
        return msg_id

    async def list(self, limit: int = 50, model_id: str | None = None) -> builtins.list[Conversation]:
        """Conversations, most recently active first (without their messages)."""
        where, params = ("WHERE c.model_id = ?", [model_id]) if model_id is not None else ("", [])
        rows = await self._db.query(
            "SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count"
            f" FROM conversations c {where} ORDER BY c.updated DESC, c.rowid DESC LIMIT ?",
            (*params, limit),
        )
        return [_conversation(r) for r in rows]

    async def latest(self, model_id: str | None = None) -> Conversation | None:
        """The most recently active conversation (of ``model_id`` when given), or None."""
        found = await self.list(limit=1, model_id=model_id)
        return found[0] if found else None

    async def get(self, conv_id: str) -> Conversation:
        """The conversation with all its messages, oldest first."""
        row = await self._row(conv_id)
        rows = await self._db.query(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conv_id,)
        )
        return _conversation(row, tuple(_message(r) for r in rows))

    async def _last_turns(self, conv_id: str, n: int) -> builtins.list[StoredMessage]:
        if n <= 0:
            return []
        # every message from the n-th last user message on (none when there is no user message)
        rows = await self._db.query(
            "SELECT * FROM messages WHERE conversation_id = ? AND id >= ("
            " SELECT MIN(id) FROM (SELECT id FROM messages WHERE conversation_id = ? AND role = 'user'"
            " ORDER BY id DESC LIMIT ?)) ORDER BY id",
            (conv_id, conv_id, n),
        )
        return [_message(r) for r in rows]

    async def last_turns(self, conv_id: str, n: int) -> builtins.list[StoredMessage]:
        """The last ``n`` turns: the ``n``-th last user message and everything after it, oldest first."""
        await self._row(conv_id)
        return await self._last_turns(conv_id, n)

    async def request(self, conv_id: str, turns: int, params: InferenceParams | None = None) -> ChatRequest:
        """The request for the next answer: the stored system prompt plus the last ``turns`` turns."""
        row = await self._row(conv_id)
        history = await self._last_turns(conv_id, turns)
        return ChatRequest(
            as_chat_messages(history), system=row["system"], params=params or InferenceParams()
        )

    async def rename(self, conv_id: str, title: str) -> None:
        """Set the title."""
        check_storable(title, "the title")
        await self._row(conv_id)
        await self._db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conv_id))

    async def update(
        self,
        conv_id: str,
        *,
        title: str | None = None,
        system: str | None = None,
        model_id: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """Change what is given; an empty ``system`` clears the system prompt."""
        check_storable([title, system, model_id], "the conversation")
        await self._row(conv_id)
        sets: builtins.list[str] = []
        values: builtins.list[Any] = []
        for column, value in (("title", title), ("model_id", model_id)):
            if value is not None:
                sets.append(f"{column} = ?")
                values.append(value)
        if system is not None:
            sets.append("system = ?")
            values.append(system or None)
        if params is not None:
            sets.append("params = ?")
            values.append(dumps(dict(params), "params"))
        if sets:
            await self._db.execute(
                f"UPDATE conversations SET {', '.join(sets)}, updated = ? WHERE id = ?",
                (*values, time.time(), conv_id),
            )

    async def delete(self, conv_id: str) -> None:
        """Delete the conversation and (by cascade) its messages."""
        await self._row(conv_id)
        await self._db.execute("DELETE FROM conversations WHERE id = ?", (conv_id,))
