"""Schema migrations: ordered functions, each applied once and recorded in ``_migrations``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

__all__ = ["MIGRATIONS", "migration", "apply"]

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_invocations(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE invocations (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL,
            ts REAL NOT NULL,
            surface TEXT NOT NULL,
            operation TEXT NOT NULL,
            model_requested TEXT,
            model_id TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            latency_ms INTEGER,
            first_token_ms INTEGER,
            status TEXT NOT NULL,
            error_code TEXT
        )"""
    )
    db.execute("CREATE INDEX invocations_ts ON invocations (ts)")


@migration
def m002_conversations(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            model_id TEXT NOT NULL,
            system TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            input_tokens INTEGER,
            output_tokens INTEGER,
            latency_ms INTEGER,
            created REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX messages_conv ON messages (conversation_id, id)")


def apply(db: sqlite3.Connection) -> list[str]:
    """Apply pending migrations in order; returns the names applied."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    done = {r[0] for r in db.execute("SELECT name FROM _migrations")}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        with db:
            fn(db)
            db.execute("INSERT INTO _migrations VALUES (?, julianday('now'))", (fn.__name__,))
        applied.append(fn.__name__)
    return applied
