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
    "ContentRule",
    "TopicRule",
    "GroundingRule",
    "Grounding",
    "Level",
    "Policy",
    "Verdict",
    "MY_NUMBER_PATTERN",
]

Source = Literal["INPUT", "OUTPUT"]
# what a rule does with a finding: refuse the whole text, mask the finding, or only report it
Action = Literal["BLOCK", "ANONYMIZE", "NONE"]
# which assessment list a finding belongs to
Kind = Literal["word", "managed_word", "pii", "regex", "content", "topic", "grounding"]
# Bedrock's content-filter strengths and confidences (both NONE < LOW < MEDIUM < HIGH)
Level = Literal["NONE", "LOW", "MEDIUM", "HIGH"]

# A regexesConfig pattern that names haniwa's My Number detector instead of a regular expression:
# Bedrock has no PII type for the Japanese Individual Number and the wire's enum refuses new ones, so a
# regex entry carries it. "(?haniwa:" is not valid Python regex syntax, so it never collides with one.
MY_NUMBER_PATTERN = "(?haniwa:JP_MY_NUMBER)"


@dataclass(frozen=True)
class Finding:
    """One thing a detector saw: ``start``/``end`` index the *original* text; ``label`` is the word, the
        PII type, the regex's name, the content filter type, the topic's name or the grounding filter type;
        ``match`` the original characters. Content filters add the ``confidence`` found and the filter's
        ``strength``; contextual grounding the ``score`` and ``threshold``; ``detected`` is False for a
        filter that saw something below what it acts on (reported only with ``outputScope=FULL``); ``judge``
    names the chat model that ruled on an unsure topic (a topic it ruled out is kept, ``detected`` False)."""

    kind: Kind
    label: str
    match: str
    start: int
    end: int
    action: Action
    confidence: str | None = None
    strength: str | None = None
    score: float | None = None
    threshold: float | None = None
    detected: bool = True
    # the chat model asked when a topic's score was unsure (``judge.py``) and what asking cost
    judge: str | None = None
    judge_ms: float | None = None


class Detector(Protocol):
    """One policy's detector. ``find`` gets the normalised text and returns what it saw (spans of the
    original), with actions resolved for ``source``; offline and quick (rules: a few ms; embedding
    detectors: tens of ms)."""

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
class ContentRule(_Directed):
    """A content filter (``HATE`` … ``MISCONDUCT``, ``PROMPT_ATTACK``) with its strength per direction."""

    type: str = ""
    input_strength: str = "NONE"
    output_strength: str = "NONE"

    def strength_for(self, source: Source) -> str:
        if self.action_for(source) is None:
            return "NONE"
        return self.input_strength if source == "INPUT" else self.output_strength


@dataclass(frozen=True)
class TopicRule(_Directed):
    """A denied topic: its definition and examples are what a text is compared with."""

    name: str = ""
    definition: str = ""
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroundingRule:
    """A contextual-grounding filter: ``GROUNDING`` or ``RELEVANCE``, blocking below ``threshold``."""

    type: str = "GROUNDING"
    threshold: float = 0.0
    action: Action = "BLOCK"
    enabled: bool = True


@dataclass(frozen=True)
class Grounding:
    """The texts an ApplyGuardrail call qualified as ``grounding_source`` and ``query``."""

    sources: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """The enforced part of one guardrail version."""

    words: tuple[WordRule, ...] = ()
    profanity: WordRule | None = None
    pii: tuple[PiiRule, ...] = ()
    regexes: tuple[RegexRule, ...] = ()
    blocked_input: str = ""
    blocked_output: str = ""
    content: tuple[ContentRule, ...] = ()
    topics: tuple[TopicRule, ...] = ()
    grounding: tuple[GroundingRule, ...] = ()

    @property
    def semantic(self) -> bool:
        """Whether applying it embeds text (content filters or topics: tens of ms, off the event loop)."""
        return bool(self.content or self.topics or self.grounding)


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
