"""Chunking: a :class:`~haniwa.knowledge.base.ParsedDocument` → :class:`~haniwa.knowledge.base.ChunkDraft` s,
with Bedrock's four strategies (FIXED_SIZE, HIERARCHICAL, SEMANTIC, NONE).

A document is cut into *units* that are never split unless one alone is too big: sentences (Japanese and
English sentence ends, paragraph breaks) in text sections, rows in table sections. Chunks are runs of
whole units, so a chunk ends at a sentence end (or a table row end). A change of heading path always starts
a new chunk, and a chunk with headings begins with its path as one line (``ハニワ製品仕様 > 材料``) so the
heading words are embedded and keyword-searchable. A chunk that starts inside a table repeats its header.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from itertools import groupby

import numpy as np

from haniwa.knowledge.base import (
    ChunkDraft,
    ChunkingStrategy,
    FixedSize,
    Hierarchical,
    NoChunking,
    ParsedDocument,
    Section,
    Semantic,
)
from haniwa.runtime.tokens import rough_tokens

__all__ = ["count_tokens", "split_sentences", "chunk_document", "EmbedFn"]

EmbedFn = Callable[[list[str]], Awaitable[list[list[float]]]]
"""Embeds a batch of texts (the semantic strategy's only dependency on a model)."""


def count_tokens(text: str) -> int:
    """Approximate token count: one per CJK character, per letter/digit run, per punctuation mark.

    Real tokenizers differ per embedding model, and chunking must not load one; this rule is stable,
    instant, and close to subword counts for Japanese (roughly one token per character) while slightly
    under-counting long English words and Latin runs glued to kana (``12kgです`` is one token). It is the
    same rule the echo model reports usage with.
    """
    return len(rough_tokens(text))


# A sentence end: Japanese 。！？． (always), then any closing brackets/quotes; English .!? only when
# followed by whitespace or the end (so 3.5 and example.com stay whole); half-width !? directly before
# Japanese text; or a paragraph break (a blank line).
_SENTENCE_END = re.compile(
    r"[。！？．]+[」』）】〕)\]\"'”’]*"
    r"|[.!?]+[)\]\"'”’]*(?=\s|$)"
    r"|[!?]+(?=[\u3040-\u30ff\u4e00-\u9fff])"
    r"|\n[ \t]*\n"
)
# A period after these is not a sentence end: e.g., i.e., titles, and single initials (J. Smith).
_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|vs|cf|approx|mr|mrs|ms|dr|prof|fig|inc|ltd|jr|sr)|(?:^|[\s(])(?-i:[A-Z]))$",
    re.IGNORECASE,
)


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in ``text``, surrounding whitespace excluded."""
    spans: list[tuple[int, int]] = []
    start = 0

    def close(end: int) -> None:
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))

    for match in _SENTENCE_END.finditer(text):
        # look back a few characters only: searching from 0 would make long texts quadratic
        if match.group()[0] == "." and _ABBREVIATION.search(text, max(0, match.start() - 8), match.start()):
            continue
        close(match.end())
        start = match.end()
    close(len(text))
    return spans


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences, each keeping its end punctuation; blank lines also end a sentence.

    >>> split_sentences("ハニワは土製です。重さは3.5kgです！ E.g. this is English. Next?")
    ['ハニワは土製です。', '重さは3.5kgです！', 'E.g. this is English.', 'Next?']
    """
    return [text[a:b] for a, b in _sentence_spans(text)]


def _token_spans(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for token in rough_tokens(text):
        start = text.index(token, pos)
        pos = start + len(token)
        spans.append((start, pos))
    return spans


def _split_long(text: str, limit: int) -> list[tuple[str, str]]:
    """(separator, piece) pairs of at most ``limit`` tokens each, cut at a line break where one falls in
    the window, else between two tokens."""
    spans, limit = _token_spans(text), max(limit, 1)
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(spans):
        j = min(i + limit, len(spans))
        if j < len(spans):
            # the latest line break inside the window, if any, keeps lines (list items, rows) whole
            j = next((k for k in range(j, i + 1, -1) if "\n" in text[spans[k - 1][1] : spans[k][0]]), j)
        sep = text[spans[i - 1][1] : spans[i][0]] if i else ""
        out.append((sep, text[spans[i][0] : spans[j - 1][1]]))
        i = j
    return out


@dataclass(frozen=True)
class _Unit:
    """A sentence (or table row): the smallest piece chunking keeps whole."""

    text: str
    tokens: int
    section: int  # index in the document's sections: gives the page and which table a row belongs to
    sep: str = ""  # what stood before it in its section ("" for a section's first unit)
    header: str = ""  # a table row's header (header line + separator line), repeated in every piece
    header_tokens: int = 0


_TABLE_RULE = re.compile(r"\|?[\s:|]*-{3,}[\s:|-]*")


def _section_units(section: Section, index: int) -> list[_Unit]:
    text = section.text.strip()
    if not text:
        return []
    if section.kind == "table":
        lines = text.split("\n")
        head = 2 if len(lines) > 1 and _TABLE_RULE.fullmatch(lines[1]) else 1
        if len(lines) <= head:
            return [_Unit(text, count_tokens(text), index)]
        header = "\n".join(lines[:head])
        n = count_tokens(header)
        return [
            _Unit(line, count_tokens(line), index, "\n" if k else "", header, n)
            for k, line in enumerate(lines[head:])
        ]
    units: list[_Unit] = []
    prev = 0
    for a, b in _sentence_spans(text):
        units.append(_Unit(text[a:b], count_tokens(text[a:b]), index, text[prev:a] if units else ""))
        prev = b
    return units


def _groups(doc: ParsedDocument) -> list[tuple[tuple[str, ...], list[_Unit]]]:
    """The units of each run of sections sharing one heading path."""
    out = []
    for headings, members in groupby(enumerate(doc.sections), key=lambda pair: pair[1].headings):
        units = [u for i, section in members for u in _section_units(section, i)]
        if units:
            out.append((headings, units))
    return out


def _heading_line(headings: tuple[str, ...], max_tokens: int) -> tuple[str, int]:
    """The heading path as one line, cut to half the budget so the body always has room."""
    line, limit = " > ".join(headings), max_tokens // 2
    if not line or limit < 1:
        return "", 0
    if count_tokens(line) > limit:
        line = _split_long(line, limit)[0][1]
    return line, count_tokens(line)


def _starts_table(units: Sequence[_Unit], k: int) -> bool:
    return bool(units[k].header) and (k == 0 or units[k - 1].section != units[k].section)


def _cost(units: Sequence[_Unit]) -> int:
    return sum(u.tokens + (u.header_tokens if _starts_table(units, k) else 0) for k, u in enumerate(units))


def _fit(units: list[_Unit], budget: int) -> list[_Unit]:
    """Units again, hard-split where one alone (with its table header) exceeds ``budget``."""
    out: list[_Unit] = []
    for k, unit in enumerate(units):
        if unit.header and unit.header_tokens > budget // 2:
            # a header this big cannot be repeated in every piece: keep it once, as a row of its own
            if k == 0 or units[k - 1].section != unit.section:
                out.extend(_fit([_Unit(unit.header, unit.header_tokens, unit.section, unit.sep)], budget))
                unit = replace(unit, sep="\n")
            unit = replace(unit, header="", header_tokens=0)
        limit = budget - unit.header_tokens
        if unit.tokens <= limit:
            out.append(unit)
            continue
        for i, (sep, piece) in enumerate(_split_long(unit.text, limit)):
            out.append(replace(unit, text=piece, tokens=count_tokens(piece), sep=sep if i else unit.sep))
    return out


def _pack(units: list[_Unit], budget: int, overlap: int) -> list[list[_Unit]]:
    """Greedy runs of whole units within ``budget``; each run after the first starts with the previous
    run's trailing units worth at most ``overlap`` tokens (never the whole previous run)."""
    runs: list[list[_Unit]] = []
    current: list[_Unit] = []
    for unit in units:
        if current and _cost([*current, unit]) > budget:
            runs.append(current)
            tail: list[_Unit] = []
            for prev in reversed(current[1:]):
                if sum(u.tokens for u in tail) + prev.tokens > overlap:
                    break
                tail.insert(0, prev)
            while tail and _cost([*tail, unit]) > budget:
                tail.pop(0)
            current = tail
        current.append(unit)
    if current:
        runs.append(current)
    return runs


def _render(units: Sequence[_Unit], heading_line: str) -> str:
    parts = [heading_line + "\n"] if heading_line else []
    for k, unit in enumerate(units):
        sep = "" if k == 0 else unit.sep if units[k - 1].section == unit.section else "\n\n"
        parts.append(sep + (unit.header + "\n" if _starts_table(units, k) else "") + unit.text)
    return "".join(parts)


def _check(name: str, value: int, minimum: int = 1) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


class _Drafts:
    """Turns runs of units into drafts for one document."""

    def __init__(self, doc: ParsedDocument) -> None:
        self.doc = doc
        self.groups = _groups(doc)

    def draft(self, units: Sequence[_Unit], headings: tuple[str, ...], line: str, **kw: str) -> ChunkDraft:
        page = self.doc.sections[units[0].section].page
        return ChunkDraft(_render(units, line), headings, page, **kw)

    def fixed(self, max_tokens: int, overlap: int, breaks: frozenset[int] = frozenset()) -> list[ChunkDraft]:
        """Each heading group (cut again before the units at flat positions ``breaks``) packed."""
        drafts, position = [], 0
        for headings, units in self.groups:
            line, used = _heading_line(headings, max_tokens)
            cuts = [k for k in range(1, len(units)) if position + k in breaks]
            position += len(units)
            for a, b in zip([0, *cuts], [*cuts, len(units)], strict=True):
                for run in _pack(_fit(units[a:b], max_tokens - used), max_tokens - used, overlap):
                    drafts.append(self.draft(run, headings, line))
        return drafts

    def hierarchical(self, spec: Hierarchical) -> list[ChunkDraft]:
        """Parents packed like fixed-size chunks without overlap; each parent's units packed again into
        overlapping children that carry the parent's text."""
        drafts = []
        for headings, units in self.groups:
            p_line, p_used = _heading_line(headings, spec.parent_max_tokens)
            c_line, c_used = _heading_line(headings, spec.child_max_tokens)
            p_budget, c_budget = spec.parent_max_tokens - p_used, spec.child_max_tokens - c_used
            for parent in _pack(_fit(units, p_budget), p_budget, 0):
                text = _render(parent, p_line)
                for child in _pack(_fit(parent, c_budget), c_budget, spec.overlap_tokens):
                    drafts.append(self.draft(child, headings, c_line, parent=text))
        return drafts

    async def semantic(self, spec: Semantic, embed: EmbedFn) -> list[ChunkDraft]:
        """Cut where the embedding distance between consecutive sentence windows is above the
        percentile threshold, then pack each piece within ``max_tokens``."""
        flat = [u for _, units in self.groups for u in units]
        if len(flat) < 2:
            return self.fixed(spec.max_tokens, 0)
        b = spec.buffer_size
        windows = [" ".join(u.text for u in flat[max(0, i - b) : i + b + 1]) for i in range(len(flat))]
        vectors = np.asarray(await embed(windows), dtype=float)
        if vectors.shape[0] != len(windows):
            raise ValueError(f"embed returned {vectors.shape[0]} vectors for {len(windows)} texts")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit_vectors = vectors / np.where(norms == 0, 1.0, norms)
        distances = 1.0 - np.sum(unit_vectors[:-1] * unit_vectors[1:], axis=1)
        threshold = float(np.percentile(distances, spec.breakpoint_percentile_threshold))
        breaks = frozenset(
            i + 1
            for i, distance in enumerate(distances.tolist())
            # rows of one table stay together; only sentences (or table edges) are cut
            if distance > threshold and not (flat[i].header and flat[i].section == flat[i + 1].section)
        )
        return self.fixed(spec.max_tokens, 0, breaks)


async def chunk_document(
    doc: ParsedDocument, strategy: ChunkingStrategy, embed: EmbedFn | None = None
) -> list[ChunkDraft]:
    """Cut ``doc`` into chunks with a Bedrock chunking strategy; ``embed`` is required by ``Semantic``.

    Token counts use :func:`count_tokens`; every chunk of ``FixedSize``/``Semantic`` (and every child of
    ``Hierarchical``) has at most ``max_tokens`` tokens, heading line and repeated table header included.
    An empty document gives no chunks.
    """
    if isinstance(strategy, Semantic) and embed is None:
        raise ValueError("semantic chunking needs an embed function")
    drafts = _Drafts(doc)
    if not drafts.groups:
        return []
    if isinstance(strategy, NoChunking):
        text = "\n\n".join(_render(units, " > ".join(headings)) for headings, units in drafts.groups)
        first = doc.sections[drafts.groups[0][1][0].section]
        return [ChunkDraft(text, first.headings, first.page)]
    if isinstance(strategy, FixedSize):
        _check("max_tokens", strategy.max_tokens)
        _check("overlap_percentage", strategy.overlap_percentage, 0)
        overlap = strategy.max_tokens * min(strategy.overlap_percentage, 99) // 100
        return drafts.fixed(strategy.max_tokens, overlap)
    if isinstance(strategy, Hierarchical):
        _check("parent_max_tokens", strategy.parent_max_tokens)
        _check("child_max_tokens", strategy.child_max_tokens)
        _check("overlap_tokens", strategy.overlap_tokens, 0)
        return drafts.hierarchical(strategy)
    _check("max_tokens", strategy.max_tokens)
    _check("buffer_size", strategy.buffer_size, 0)
    assert embed is not None
    return await drafts.semantic(strategy, embed)
