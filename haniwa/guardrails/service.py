"""Guardrails' state in SQLite: the DRAFT (edited by UpdateGuardrail) and numbered versions 1, 2, …
(frozen copies made by CreateGuardrailVersion). ``spec`` is the wire configuration as the client sent it;
only the api layer reads it."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from haniwa.errors import ConflictError, NotFoundError, ValidationError
from haniwa.store.db import Database

__all__ = ["DRAFT", "GuardrailRecord", "GuardrailService"]

DRAFT = "DRAFT"
_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class GuardrailRecord:
    """One version of a guardrail (``version`` is ``"DRAFT"`` or ``"1"``, ``"2"``, …)."""

    id: str
    name: str
    version: str
    description: str | None
    spec: dict[str, Any]
    created: float
    updated: float


def _new_id() -> str:
    # Bedrock's guardrail ids are 12 lowercase letters and digits
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def _draft(row: Mapping[str, Any]) -> GuardrailRecord:
    spec = json.loads(row["spec"])
    return GuardrailRecord(
        row["id"], row["name"], DRAFT, spec.get("description"), spec, row["created"], row["updated"]
    )


class GuardrailService:
    """Create, read, edit, version and delete guardrails."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._versions = asyncio.Lock()

    async def _by_token(self, token: str | None) -> GuardrailRecord | None:
        if token is None:
            return None
        rows = await self.db.query("SELECT * FROM guardrails WHERE client_token = ?", (token,))
        return _draft(rows[0]) if rows else None

    async def create(self, spec: Mapping[str, Any], token: str | None = None) -> GuardrailRecord:
        """A new guardrail whose DRAFT is ``spec``; the same ``token`` again returns the first one."""
        if (same := await self._by_token(token)) is not None:
            return same
        now = time.time()
        gid = _new_id()
        try:
            await self.db.execute(
                "INSERT INTO guardrails (id, name, spec, client_token, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (gid, spec["name"], json.dumps(spec), token, now, now),
            )
        except sqlite3.IntegrityError:
            if (same := await self._by_token(token)) is not None:
                return same  # a concurrent retry of the same request won
            raise ConflictError(f"a guardrail named {spec['name']!r} already exists") from None
        return await self.get(gid)

    async def get(self, gid: str, version: str = DRAFT) -> GuardrailRecord:
        rows = await self.db.query("SELECT * FROM guardrails WHERE id = ?", (gid,))
        if not rows:
            raise NotFoundError(f"guardrail {gid!r} not found")
        draft = _draft(rows[0])
        if version == DRAFT:
            return draft
        if not version.isdigit():
            raise ValidationError(f"guardrail version must be DRAFT or a number, not {version!r}")
        vrows = await self.db.query(
            "SELECT * FROM guardrail_versions WHERE guardrail_id = ? AND version = ?", (gid, int(version))
        )
        if not vrows:
            raise NotFoundError(f"guardrail {gid!r} has no version {version}")
        v = vrows[0]
        spec = json.loads(v["spec"])
        return GuardrailRecord(gid, spec["name"], version, v["description"], spec, v["created"], v["created"])

    async def list(self, gid: str | None = None) -> list[GuardrailRecord]:
        """Every guardrail's DRAFT, or one guardrail's DRAFT and versions."""
        if gid is None:
            rows = await self.db.query("SELECT * FROM guardrails ORDER BY created, id")
            return [_draft(r) for r in rows]
        draft = await self.get(gid)
        vrows = await self.db.query(
            "SELECT version FROM guardrail_versions WHERE guardrail_id = ? ORDER BY version", (gid,)
        )
        return [draft] + [await self.get(gid, str(r["version"])) for r in vrows]

    async def update(self, gid: str, spec: Mapping[str, Any]) -> GuardrailRecord:
        await self.get(gid)
        try:
            await self.db.execute(
                "UPDATE guardrails SET name = ?, spec = ?, updated = ? WHERE id = ?",
                (spec["name"], json.dumps(spec), time.time(), gid),
            )
        except sqlite3.IntegrityError:
            raise ConflictError(f"a guardrail named {spec['name']!r} already exists") from None
        return await self.get(gid)

    async def create_version(self, gid: str, description: str | None, token: str | None) -> str:
        """Freeze the DRAFT as the next numbered version; returns its number (a retried ``token`` gets
        the number its first call made)."""
        # one at a time: two concurrent calls get two numbers
        async with self._versions:
            if token is not None:
                same = await self.db.query(
                    "SELECT version FROM guardrail_versions WHERE guardrail_id = ? AND client_token = ?",
                    (gid, token),
                )
                if same:
                    return str(same[0]["version"])
            rows = await self.db.query("SELECT spec, next_version FROM guardrails WHERE id = ?", (gid,))
            if not rows:
                raise NotFoundError(f"guardrail {gid!r} not found")
            number = int(rows[0]["next_version"])
            await self.db.execute(
                "INSERT INTO guardrail_versions VALUES (?, ?, ?, ?, ?, ?)",
                (gid, number, description, rows[0]["spec"], token, time.time()),
            )
            await self.db.execute("UPDATE guardrails SET next_version = ? WHERE id = ?", (number + 1, gid))
            return str(number)

    async def delete(self, gid: str, version: str | None = None) -> None:
        """Delete one numbered version, or (no version) the whole guardrail."""
        if version is None:
            await self.get(gid)
            await self.db.execute("DELETE FROM guardrails WHERE id = ?", (gid,))
            return
        if version == DRAFT:
            raise ValidationError("the DRAFT cannot be deleted alone: delete the guardrail (no version)")
        await self.get(gid, version)
        await self.db.execute(
            "DELETE FROM guardrail_versions WHERE guardrail_id = ? AND version = ?", (gid, int(version))
        )
