"""Agent sessions and memory in SQLite.

A session row holds the turns so far, the session attributes and a paused orchestration; it is written
at the end of every invocation, so a restart loses at most the invocation in flight. A session idle for
longer than the agent's ``idleSessionTTLInSeconds`` is gone: the next call starts afresh. With
SESSION_SUMMARY memory enabled, a session that ends (``endSession`` or expiry) leaves a summary under its
``memoryId``, which later sessions with that ``memoryId`` read; summaries older than ``storageDays`` are
dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from haniwa.agents.prompting import language, prompts
from haniwa.agents.state import SessionState, Turn
from haniwa.runtime.base import ChatBackend, ChatRequest, InferenceParams, Message, TextBlock
from haniwa.store.db import Database

__all__ = ["SessionStore", "StoredSession", "MemoryRecord", "summarize"]

DAY = 86400.0


@dataclass(frozen=True)
class StoredSession:
    state: SessionState
    created: float
    memory_id: str | None
    # The previous session under this id, when it had expired (its memory is still to be written).
    expired: SessionState | None = None
    expired_created: float | None = None


@dataclass(frozen=True)
class MemoryRecord:
    memory_id: str
    session_id: str
    summary: str
    started: float
    ended: float


async def summarize(backend: ChatBackend, turns: list[Turn]) -> str:
    """A short summary of a session's turns, by the agent's own model, in the conversation's language."""
    conversation = "\n".join(f"User: {t.question}\nAssistant: {t.answer}" for t in turns)
    p = prompts(language(conversation))
    req = ChatRequest(
        messages=(Message("user", (TextBlock(p["summarize"].format(conversation=conversation)),)),),
        params=InferenceParams(max_tokens=200, temperature=0.0, seed=0),
    )
    return (await backend.converse(req)).message.text.strip()


class SessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, agent_id: str, alias_id: str, session_id: str, ttl_s: int) -> StoredSession:
        rows = await self.db.query(
            "SELECT state, memory_id, created, updated FROM agent_sessions"
            " WHERE agent_id = ? AND alias_id = ? AND id = ?",
            (agent_id, alias_id, session_id),
        )
        now = time.time()
        if not rows:
            return StoredSession(SessionState(), now, None)
        row = rows[0]
        state = SessionState.from_json(row["state"])
        if now - row["updated"] > ttl_s:
            await self.end(agent_id, alias_id, session_id)
            return StoredSession(SessionState(), now, row["memory_id"], state, row["created"])
        return StoredSession(state, row["created"], row["memory_id"])

    async def save(
        self, agent_id: str, alias_id: str, session_id: str, s: StoredSession, memory_id: str | None
    ) -> None:
        await self.db.execute(
            "INSERT INTO agent_sessions (agent_id, alias_id, id, state, memory_id, created, updated)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT (agent_id, alias_id, id) DO UPDATE SET"
            " state = excluded.state, memory_id = excluded.memory_id, updated = excluded.updated",
            (agent_id, alias_id, session_id, s.state.to_json(), memory_id, s.created, time.time()),
        )

    async def end(self, agent_id: str, alias_id: str, session_id: str) -> None:
        await self.db.execute(
            "DELETE FROM agent_sessions WHERE agent_id = ? AND alias_id = ? AND id = ?",
            (agent_id, alias_id, session_id),
        )

    # memory ---------------------------------------------------------------------------------------------
    async def remember(
        self, agent_id: str, alias_id: str, memory_id: str, session_id: str, summary: str, started: float
    ) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO agent_memory"
            " (agent_id, alias_id, memory_id, session_id, summary, started, ended) VALUES (?,?,?,?,?,?,?)",
            (agent_id, alias_id, memory_id, session_id, summary, started, time.time()),
        )

    async def memories(
        self, agent_id: str, alias_id: str, memory_id: str, storage_days: int | None = None
    ) -> list[MemoryRecord]:
        if storage_days is not None:
            await self.db.execute(
                "DELETE FROM agent_memory WHERE agent_id = ? AND alias_id = ? AND ended < ?",
                (agent_id, alias_id, time.time() - storage_days * DAY),
            )
        rows = await self.db.query(
            "SELECT memory_id, session_id, summary, started, ended FROM agent_memory"
            " WHERE agent_id = ? AND alias_id = ? AND memory_id = ? ORDER BY ended",
            (agent_id, alias_id, memory_id),
        )
        return [MemoryRecord(**r) for r in rows]

    async def forget(
        self, agent_id: str, alias_id: str, memory_id: str | None, session_id: str | None
    ) -> None:
        sql, params = "DELETE FROM agent_memory WHERE agent_id = ? AND alias_id = ?", [agent_id, alias_id]
        if memory_id:
            sql, params = sql + " AND memory_id = ?", [*params, memory_id]
        if session_id:
            sql, params = sql + " AND session_id = ?", [*params, session_id]
        await self.db.execute(sql, params)
