"""SQLite in WAL mode: committed rows survive kill -9; readers run beside one writer.

One connection per process, serialised by a lock and used from worker threads so the event loop never
blocks on disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from haniwa.store import migrations

__all__ = ["Database"]


class Database:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._lock = threading.Lock()
        with self._lock:
            migrations.apply(self._conn)

    def execute_sync(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock, self._conn:
            return int(self._conn.execute(sql, params).lastrowid or 0)

    def query_sync(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, params).fetchall()]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await asyncio.to_thread(self.execute_sync, sql, params)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.query_sync, sql, params)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
