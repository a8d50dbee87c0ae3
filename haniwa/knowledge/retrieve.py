"""Retrieval: dense and keyword search fused with reciprocal rank fusion, hierarchical parents,
optional reranking, scores in [0, 1].

Why RRF: BM25 and cosine scores live on unrelated scales (BM25 is unbounded and corpus-dependent), so
fusing ranks rather than scores needs no per-corpus tuning and is what hybrid engines default to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from haniwa.knowledge.base import Chunk, Filter, Hit, VectorStore

__all__ = [
    "SearchType",
    "Reranker",
    "RetrievalQuery",
    "retrieve",
    "fuse",
    "cosine_to_unit",
    "RRF_K",
]

SearchType = Literal["HYBRID", "SEMANTIC"]
RRF_K = 60


class Reranker(Protocol):
    """Re-scores candidate passages against a query; scores in [0, 1], higher is more relevant."""

    async def rerank(self, query: str, passages: Sequence[str]) -> list[float]:
        """One score per passage, in the order given."""
        ...


@dataclass(frozen=True)
class RetrievalQuery:
    """What to look for. ``rerank_candidates``: how many fused results the reranker re-scores."""

    text: str
    k: int = 5
    search_type: SearchType = "HYBRID"
    where: Filter | None = None
    reranker: Reranker | None = None
    rerank_candidates: int = 25


def cosine_to_unit(score: float) -> float:
    """Cosine similarity in [-1, 1] → [0, 1]."""
    return min(1.0, max(0.0, (score + 1.0) / 2.0))


def fuse(lists: Sequence[Sequence[Hit]], k: int = RRF_K) -> list[Hit]:
    """Reciprocal rank fusion of ranked lists; the score is divided by the best attainable (rank 1 in
    every list), so it lies in [0, 1] and 1.0 means "first everywhere"."""
    scores: dict[str, float] = {}
    chunks: dict[str, Chunk] = {}
    for hits in lists:
        for rank, hit in enumerate(hits):
            scores[hit.chunk.id] = scores.get(hit.chunk.id, 0.0) + 1.0 / (k + rank + 1)
            chunks.setdefault(hit.chunk.id, hit.chunk)
    best = len(lists) / (k + 1)
    ranked = sorted(scores, key=lambda cid: -scores[cid])
    return [Hit(chunks[cid], scores[cid] / best) for cid in ranked]


def _parents(hits: Sequence[Hit]) -> list[Hit]:
    """Hierarchical chunking: children were searched, parents are returned (once, at the best child)."""
    out: list[Hit] = []
    seen: set[str] = set()
    for hit in hits:
        parent = hit.chunk.parent
        if parent is None:
            out.append(hit)
            continue
        key = f"{hit.chunk.document_id}\x00{parent}"
        if key in seen:
            continue
        seen.add(key)
        out.append(Hit(replace(hit.chunk, text=parent, parent=None), hit.score))
    return out


async def retrieve(
    store: VectorStore,
    embed_query: Callable[[str], Awaitable[Sequence[float]]],
    query: RetrievalQuery,
) -> list[Hit]:
    """The ``query.k`` best chunks, best first, scores in [0, 1].

    SEMANTIC: cosine only. HYBRID: cosine and BM25 lists (each over-fetched so fusion and parent
    de-duplication have room) fused with RRF. A reranker then re-orders the top candidates."""
    depth = max(query.k * 4, query.rerank_candidates if query.reranker else 0, 20)
    vector = await embed_query(query.text)
    if query.search_type == "SEMANTIC":
        dense = await store.query(vector, depth, query.where)
        hits = [Hit(h.chunk, cosine_to_unit(h.score)) for h in dense]
    else:
        dense, keyword = await asyncio.gather(
            store.query(vector, depth, query.where), store.keyword_query(query.text, depth, query.where)
        )
        hits = fuse([dense, keyword])
    hits = _parents(hits)
    if query.reranker is not None and hits:
        head = hits[: query.rerank_candidates]
        scores = await query.reranker.rerank(query.text, [h.chunk.text for h in head])
        head = sorted((Hit(h.chunk, s) for h, s in zip(head, scores, strict=True)), key=lambda h: -h.score)
        hits = head
    return hits[: query.k]
