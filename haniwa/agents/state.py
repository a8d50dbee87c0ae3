"""An agent session's state, persisted as JSON by the session store: the turns so far, the attributes, and
an orchestration paused by return of control."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from haniwa.knowledge.base import Chunk, Hit

__all__ = [
    "Lang",
    "Turn",
    "PendingCall",
    "Pending",
    "SessionState",
    "ControlResult",
    "hit_record",
    "record_hit",
]

Lang = Literal["en", "ja"]  # the language of the prompts a run uses


@dataclass
class Turn:
    question: str
    answer: str


@dataclass
class PendingCall:
    """A call handed to the caller: ``confirm`` asks for a yes/no (requireConfirmation) before a LAMBDA
    action runs; a RETURN_CONTROL call asks for the result itself."""

    tool: str
    arguments: dict[str, Any]
    confirm: bool


@dataclass
class Pending:
    """An orchestration paused by return of control, resumed by ``returnControlInvocationResults``."""

    invocation_id: str
    question: str
    lang: Lang
    messages: list[dict[str, str]]
    steps: int
    calls: list[PendingCall]
    hits: list[dict[str, Any]] = field(default_factory=list)  # hit_record()s, for the answer's citations
    seen: dict[str, str] = field(default_factory=dict)


@dataclass
class SessionState:
    turns: list[Turn] = field(default_factory=list)
    session_attributes: dict[str, str] = field(default_factory=dict)
    prompt_session_attributes: dict[str, str] = field(default_factory=dict)
    pending: Pending | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> SessionState:
        d = json.loads(text)
        p = d.get("pending")
        pending = None
        if p:
            p["calls"] = [PendingCall(**c) for c in p["calls"]]
            pending = Pending(**p)
        return cls(
            turns=[Turn(**t) for t in d.get("turns", [])],
            session_attributes=d.get("session_attributes", {}),
            prompt_session_attributes=d.get("prompt_session_attributes", {}),
            pending=pending,
        )


@dataclass(frozen=True)
class ControlResult:
    """One ``returnControlInvocationResults`` entry: the tool it answers (function name or API path),
    the result body and/or the user's confirmation."""

    action_group: str
    target: str
    body: str | None = None
    confirmation: Literal["CONFIRM", "DENY"] | None = None
    failed: bool = False


def hit_record(h: Hit) -> dict[str, Any]:
    """A knowledge-base hit as JSON-able data, kept with a paused run for the answer's citations."""
    c = h.chunk
    return {"id": c.id, "doc": c.document_id, "text": c.text, "metadata": dict(c.metadata), "score": h.score}


def record_hit(d: Mapping[str, Any]) -> Hit:
    """The hit :func:`hit_record` wrote."""
    return Hit(Chunk(d["id"], d["doc"], d["text"], (), d["metadata"]), float(d["score"]))
