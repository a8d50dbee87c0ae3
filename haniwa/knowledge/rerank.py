"""Reranking without a cross-encoder (none ships its weights on PyPI, see shared/MODELS.md): the
embedding model re-reads each whole candidate against the query, blended with how many of the query's
keywords the candidate contains, which rescues exact terms (product names, numbers) that dense
similarity blurs."""

from __future__ import annotations

from collections.abc import Sequence

from haniwa.knowledge.tokenize import keyword_tokens
from haniwa.runtime.registry import ModelRegistry

__all__ = ["EmbeddingReranker", "DENSE_WEIGHT"]

DENSE_WEIGHT = 0.7


def _cos(a: Sequence[float], b: Sequence[float]) -> float:
    num = sum(x * y for x, y in zip(a, b, strict=True))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(y * y for y in b) ** 0.5
    return num / (na * nb) if na and nb else 0.0


class EmbeddingReranker:
    """A :class:`haniwa.knowledge.retrieve.Reranker` over any embedding model in the registry."""

    def __init__(self, registry: ModelRegistry, model_id: str) -> None:
        self.registry = registry
        self.model_id = model_id

    async def rerank(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        _, qv = await self.registry.embed(self.model_id, [query], "query")
        _, pv = await self.registry.embed(self.model_id, list(passages), "document")
        terms = set(keyword_tokens(query))
        scores = []
        for text, vec in zip(passages, pv, strict=True):
            dense = max(0.0, _cos(qv[0], vec))
            found = set(keyword_tokens(text))
            lexical = len(terms & found) / len(terms) if terms else 0.0
            scores.append(round(DENSE_WEIGHT * dense + (1 - DENSE_WEIGHT) * lexical, 6))
        return scores
