"""Trying a guardrail change before shipping it: run the same texts through two policies (the DRAFT and
a version) and list every decision that flips, with the spans behind it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from haniwa.guardrails.apply import apply
from haniwa.guardrails.base import Finding, Policy, Source, Verdict

__all__ = ["Decision", "Flip", "decision", "compare"]

# what a finding contributes to a decision: (policy kind, label, action)
Key = tuple[str, str, str]


@dataclass(frozen=True)
class Decision:
    """``BLOCKED``, ``MASKED`` or ``PASSED``, and the findings that acted (or only detected)."""

    outcome: str
    findings: tuple[Finding, ...]

    def acted(self) -> set[Key]:
        return {(f.kind, f.label, f.action) for f in self.findings}


@dataclass(frozen=True)
class Flip:
    """One text whose decision differs: ``added`` are findings only ``new`` has, ``removed`` only ``old``."""

    index: int
    text: str
    old: Decision
    new: Decision
    added: tuple[Finding, ...]
    removed: tuple[Finding, ...]


def decision(verdict: Verdict) -> Decision:
    outcome = "BLOCKED" if verdict.blocked else "MASKED" if verdict.intervened else "PASSED"
    acted = tuple(f for f in verdict.findings if f.action != "NONE")
    return Decision(outcome, acted)


def compare(old: Policy, new: Policy, texts: Sequence[str], source: Source = "INPUT") -> list[Flip]:
    """Every text whose outcome or acting findings differ between ``old`` and ``new``."""
    out = []
    for i, text in enumerate(texts):
        a, b = decision(apply(old, [text], source)), decision(apply(new, [text], source))
        if a.outcome == b.outcome and a.acted() == b.acted():
            continue
        added = tuple(f for f in b.findings if (f.kind, f.label, f.action) not in a.acted())
        removed = tuple(f for f in a.findings if (f.kind, f.label, f.action) not in b.acted())
        out.append(Flip(i, text, a, b, added, removed))
    return out
