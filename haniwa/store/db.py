"""SQLite in WAL mode: committed rows survive kill -9; readers run beside one writer.

One connection per process, serialised by a lock and used from worker threads so the event loop never
blocks on disk. The async methods run on the database's own thread, not in asyncio's default pool: work
that waits there (an embedding burst, a blocking agent function) cannot delay a query, and queries queue
in arrival order instead of each holding a pool thread while it waits for the lock.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from haniwa.store import migrations

__all__ = ["Database"]

T = TypeVar("T")


class Database:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        # a TEXT value that is not UTF-8 (written by another tool) would make every read of its row fail
        self._conn.text_factory = lambda b: b.decode("utf-8", "replace")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._lock = threading.Lock()
        # one thread: the connection serves one statement at a time anyway
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="haniwa-db")
        with self._lock:
            migrations.apply(self._conn)

    def execute_sync(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock, self._conn:
            return int(self._conn.execute(sql, params).lastrowid or 0)

    def query_sync(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, params).fetchall()]

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the database's thread (for work that calls the ``*_sync`` methods)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self.run(self.execute_sync, sql, params)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await self.run(self.query_sync, sql, params)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            self._conn.close()
