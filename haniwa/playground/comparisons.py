"""Compare-mode history: one prompt sent to several models, with each side's answer and measurements.

Example::

    store = ComparisonStore(db)
    cid = await store.create("日本の首都は？", system=None, params={"temperature": 0.2},
                             results=[{"model": "echo:echo", "text": "…", "latency_ms": 12}])
    (await store.get(cid))["results"][0]["model"]  # "echo:echo"
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from haniwa.errors import NotFoundError
from haniwa.store.db import Database
from haniwa.store.values import check_storable, dumps, loads, repaired

__all__ = ["ComparisonStore"]


def _comparison(row: Mapping[str, Any]) -> dict[str, Any]:
    # repaired as read: a bad row (NaN, broken JSON from an older version) must not break every list
    results: list[Any] = loads(row["results"], [])
    return {
        "id": repaired(row["id"]),
        "created": repaired(row["created"]),
        "prompt": repaired(row["prompt"]),
        "system": repaired(row["system"]),
        "params": loads(row["params"], {}),
        "results": [r for r in results if isinstance(r, dict)],
    }


class ComparisonStore:
    """CRUD over the ``comparisons`` table (migration ``m005``); results are kept as the client sent them."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        prompt: str,
        *,
        system: str | None,
        params: Mapping[str, Any],
        results: Sequence[Mapping[str, Any]],
    ) -> str:
        check_storable([prompt, system], "the comparison")
        stored = (dumps(dict(params), "params"), dumps([dict(r) for r in results], "results"))
        cid = uuid.uuid4().hex
        await self._db.execute(
            "INSERT INTO comparisons (id, created, prompt, system, params, results) VALUES (?,?,?,?,?,?)",
            (
                cid,
                time.time(),
                prompt,
                system or None,
                *stored,
            ),
        )
        return cid

    async def list(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = await self._db.query(
            "SELECT * FROM comparisons ORDER BY created DESC, rowid DESC LIMIT ?", (limit,)
        )
        return [_comparison(r) for r in rows]

    async def get(self, cid: str) -> dict[str, Any]:
        rows = await self._db.query("SELECT * FROM comparisons WHERE id = ?", (cid,))
        if not rows:
            raise NotFoundError(f"comparison {cid!r} does not exist")
        return _comparison(rows[0])

    async def delete(self, cid: str) -> None:
        await self.get(cid)
        await self._db.execute("DELETE FROM comparisons WHERE id = ?", (cid,))
