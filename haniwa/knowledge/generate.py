"""RetrieveAndGenerate: the RAG prompt, query rewriting for follow-ups, query decomposition, and
citations that map spans of the answer to the references they came from.

Citations are computed, not trusted to the model: a small local model rarely writes reliable ``[n]``
markers, so each answer sentence is attributed to the retrieved passages that share the most of its
keywords (Japanese-aware tokens). Markers the model did write (``[1]``, ``【2】``) are honoured and
removed from the text first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from haniwa.knowledge.base import SOURCE_URI, Hit
from haniwa.knowledge.tokenize import keyword_tokens

__all__ = [
    "DEFAULT_PROMPT",
    "Citation",
    "render_prompt",
    "format_results",
    "cite",
    "sentence_spans",
    "reference",
]

DEFAULT_PROMPT = (
    "You are a question answering agent. Answer the user's question using only the information in the "
    "search results below. If the search results do not contain the answer, say that you could not find "
    "it in the documents. Quote names, materials, numbers and quantities exactly as they are written. "
    "Answer in the same language as the question (日本語の質問には日本語で答えてください).\n\n"
    "Search results:\n$search_results$"
)

_MARKER = re.compile(r"\s?(?:\[(\d{1,2})\]|【(\d{1,2})】|\[source\s*(\d{1,2})\])", re.IGNORECASE)
_SENTENCE = re.compile(r"[^。！？!?\n]*(?:[。！？]+|[.!?]+(?=\s|$)|\n+|$)")


@dataclass(frozen=True)
class Citation:
    """A part of the answer (``start``/``end`` are character offsets into it) and the indices of the
    retrieved passages that support it."""

    start: int
    end: int
    text: str
    refs: tuple[int, ...]


def format_results(hits: Sequence[Hit]) -> str:
    """Numbered search results for the prompt."""
    return "\n\n".join(f"[{i + 1}] {h.chunk.text.strip()}" for i, h in enumerate(hits)) or "(no results)"


def render_prompt(template: str | None, hits: Sequence[Hit], query: str) -> tuple[str, bool]:
    """The system prompt with ``$search_results$`` (and ``$query$``) filled in; the flag says whether
    the question was placed in the template (then it is not sent again as a user message)."""
    text = template or DEFAULT_PROMPT
    if "$search_results$" not in text:
        text = f"{text}\n\nSearch results:\n$search_results$"
    has_query = "$query$" in text
    text = text.replace("$search_results$", format_results(hits)).replace("$query$", query)
    text = text.replace("$output_format_instructions$", "")
    return text, has_query


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of sentences (Japanese 。！？ and English .!? ends, and line breaks), trimmed."""
    spans = []
    for m in _SENTENCE.finditer(text):
        start, end = m.start(), m.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def _strip_markers(answer: str) -> tuple[str, list[tuple[int, int]]]:
    """Remove ``[n]`` markers; returns the clean text and (offset in clean text, n) pairs."""
    out: list[str] = []
    marks: list[tuple[int, int]] = []
    pos = 0
    length = 0
    for m in _MARKER.finditer(answer):
        out.append(answer[pos : m.start()])
        length += m.start() - pos
        n = int(next(g for g in m.groups() if g))
        marks.append((length, n))
        pos = m.end()
    out.append(answer[pos:])
    return "".join(out), marks


def cite(answer: str, hits: Sequence[Hit], min_overlap: float = 0.34) -> tuple[str, list[Citation]]:
    """The answer without citation markers, and its citations.

    A sentence is supported by the passages its markers name, else by the passages sharing at least
    ``min_overlap`` of its keywords (the best one, plus any within 80% of it). Consecutive sentences
    with the same support are merged into one citation, as Bedrock groups them."""
    clean, marks = _strip_markers(answer)
    passages = [set(keyword_tokens(h.chunk.text)) for h in hits]
    parts: list[Citation] = []
    for start, end in sentence_spans(clean):
        named = {n - 1 for off, n in marks if start <= off <= end + 1 and 0 < n <= len(hits)}
        refs: tuple[int, ...]
        if named:
            refs = tuple(sorted(named))
        else:
            words = set(keyword_tokens(clean[start:end]))
            refs = ()
            if words:
                scores = [len(words & p) / len(words) for p in passages]
                best = max(scores, default=0.0)
                if best >= min_overlap:
                    refs = tuple(i for i, s in enumerate(scores) if s >= best * 0.8 and s >= min_overlap)
        if parts and parts[-1].refs == refs:
            prev = parts[-1]
            parts[-1] = Citation(prev.start, end, clean[prev.start : end], refs)
        else:
            parts.append(Citation(start, end, clean[start:end], refs))
    return clean, parts


def reference(hit: Hit) -> dict[str, Any]:
    """A Bedrock ``RetrievedReference`` (citations, agent traces); a retrieval result is this plus its
    score. Documents read from S3 are located by URI, directly ingested ones by document id."""
    uri = str(hit.chunk.metadata.get(SOURCE_URI, ""))
    location: dict[str, Any] = (
        {"type": "S3", "s3Location": {"uri": uri}}
        if uri.startswith("s3://")
        else {"type": "CUSTOM", "customDocumentLocation": {"id": hit.chunk.document_id}}
    )
    return {
        "content": {"type": "TEXT", "text": hit.chunk.text},
        "location": location,
        "metadata": dict(hit.chunk.metadata),
    }
