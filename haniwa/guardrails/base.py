"""The guardrail domain: rules (what a guardrail is configured to look for), findings (what a detector
saw, with its span in the original text) and the :class:`Detector` seam every policy implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from haniwa.guardrails.normalize import Normalized

__all__ = [
    "Source",
    "Action",
    "Kind",
    "Finding",
    "Detector",
    "WordRule",
    "PiiRule",
    "RegexRule",
    "Policy",
    "Verdict",
    "MY_NUMBER_PATTERN",
]

Source = Literal["INPUT", "OUTPUT"]
# what a rule does with a finding: refuse the whole text, mask the finding, or only report it
Action = Literal["BLOCK", "ANONYMIZE", "NONE"]
# which assessment list a finding belongs to
Kind = Literal["word", "managed_word", "pii", "regex"]

# A regexesConfig pattern that names haniwa's My Number detector instead of a regular expression:
# Bedrock has no PII type for the Japanese Individual Number and the wire's enum refuses new ones, so a
# regex entry carries it. "(?haniwa:" is not valid Python regex syntax, so it never collides with one.
MY_NUMBER_PATTERN = "(?haniwa:JP_MY_NUMBER)"


@dataclass(frozen=True)
class Finding:
    """One thing a detector saw: ``start``/``end`` index the *original* text; ``label`` is the word, the
    PII type or the regex's name; ``match`` the original characters."""

    kind: Kind
    label: str
    match: str
    start: int
    end: int
    action: Action


class Detector(Protocol):
    """One policy's detector. ``find`` gets the normalised text and returns what it saw (spans of the
    original), with actions resolved for ``source``; it must be exact, offline and quick (a few ms)."""

    def find(self, text: Normalized, source: Source) -> list[Finding]: ...


@dataclass(frozen=True)
class _Directed:
    """A rule's action and switch for each direction (Bedrock's inputAction/outputAction/…Enabled)."""

    input_action: Action = "BLOCK"
    output_action: Action = "BLOCK"
    input_enabled: bool = True
    output_enabled: bool = True

    def action_for(self, source: Source) -> Action | None:
        """The action for ``source``, or None when the rule is off in that direction."""
        if source == "INPUT":
            return self.input_action if self.input_enabled else None
        return self.output_action if self.output_enabled else None


@dataclass(frozen=True)
class WordRule(_Directed):
    """A custom word or phrase; ``text`` as configured (matching normalises it)."""

    text: str = ""


@dataclass(frozen=True)
class PiiRule(_Directed):
    """A PII type (``EMAIL``, ``PHONE``, …) to look for."""

    type: str = ""


@dataclass(frozen=True)
class RegexRule(_Directed):
    """A named custom regular expression (or :data:`MY_NUMBER_PATTERN`)."""

    name: str = ""
    pattern: str = ""


@dataclass(frozen=True)
class Policy:
    """The enforced part of one guardrail version."""

    words: tuple[WordRule, ...] = ()
    profanity: WordRule | None = None
    pii: tuple[PiiRule, ...] = ()
    regexes: tuple[RegexRule, ...] = ()
    blocked_input: str = ""
    blocked_output: str = ""


@dataclass(frozen=True)
class Verdict:
    """The result of applying a policy to some texts: ``outputs`` is the blocked message, the masked
    texts, or empty when nothing was changed; ``findings`` every finding of every text."""

    intervened: bool
    blocked: bool
    outputs: tuple[str, ...]
    findings: tuple[Finding, ...] = field(default=())

    @staticmethod
    def of(findings: Sequence[Finding], outputs: Sequence[str], blocked: bool) -> Verdict:
        acted = blocked or any(f.action == "ANONYMIZE" for f in findings)
        return Verdict(acted, blocked, tuple(outputs) if acted else (), tuple(findings))
