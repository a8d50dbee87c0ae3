"""Retrieval: dense and keyword search fused into one score, hierarchical parents, optional reranking,
scores in [0, 1].

Why a convex combination of min-max normalised scores (``fuse_scores``) for HYBRID: each list's scores
are scaled so its best hit is 1 and its last 0, which leaves BM25's unbounded, corpus-dependent scale behind
as rank fusion does, yet keeps how far apart the hits are, which rank fusion (RRF) throws away. With
equal weights it beat both single methods on both benchmark sets, which RRF did not (nDCG@10, bench/
retrieval.py, e5-small: jsquad-ja BM25 0.942, dense 0.887, RRF 0.925, this 0.950; cranfield-en BM25
0.342, dense 0.365, RRF 0.381, this 0.385), in line with what Bruch et al. (2023, "An Analysis of Fusion
Functions for Hybrid Retrieval") report against RRF on BEIR. RRF (:func:`fuse`) remains for merging the
results of several queries.
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
    "fuse_scores",
    "cosine_to_unit",
    "RRF_K",
    "HYBRID_DENSE_WEIGHT",
    "RERANK_WEIGHT",
]

SearchType = Literal["HYBRID", "SEMANTIC"]
RRF_K = 60
# the share of the dense list in a hybrid score; the keyword list has the rest
HYBRID_DENSE_WEIGHT = 0.5
# the share of the reranker in a reranked score: one signal next to the two the fused score already holds
# (replacing the fused score cost cranfield-en 0.07 nDCG@10, this keeps it; jsquad-ja gains 0.006)
RERANK_WEIGHT = 1 / 3


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


def _min_max(hits: Sequence[Hit]) -> dict[str, float]:
    """Scores scaled to the list: its best hit 1, its last 0 (a list of one, or of equal scores: all 1)."""
    if not hits:
        return {}
    top, bottom = max(h.score for h in hits), min(h.score for h in hits)
    span = top - bottom
    return {h.chunk.id: (h.score - bottom) / span if span > 0 else 1.0 for h in hits}


def fuse_scores(
    dense: Sequence[Hit], keyword: Sequence[Hit], dense_weight: float = HYBRID_DENSE_WEIGHT
) -> list[Hit]:
    """``dense_weight`` × the dense score + the rest × the keyword score, each min-max normalised over its
    own list (a chunk missing from a list scores 0 there, as its last hit does), best first. Scores lie in
    [0, 1]; 1.0 means first in both lists."""
    chunks: dict[str, Chunk] = {}
    for hit in (*dense, *keyword):
        chunks.setdefault(hit.chunk.id, hit.chunk)
    d, kw = _min_max(dense), _min_max(keyword)
    scores = {cid: dense_weight * d.get(cid, 0.0) + (1 - dense_weight) * kw.get(cid, 0.0) for cid in chunks}
    ranked = sorted(scores, key=lambda cid: -scores[cid])  # stable: ties keep dense order, then keyword
    return [Hit(chunks[cid], min(1.0, max(0.0, scores[cid]))) for cid in ranked]


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
    de-duplication have room) fused with :func:`fuse_scores`. A reranker then re-scores the top
    candidates; its score is blended with the retrieval score (:data:`RERANK_WEIGHT`) rather than
    replacing it."""
    depth = max(query.k * 4, query.rerank_candidates if query.reranker else 0, 20)
    vector = await embed_query(query.text)
    if query.search_type == "SEMANTIC":
        dense = await store.query(vector, depth, query.where)
        hits = [Hit(h.chunk, cosine_to_unit(h.score)) for h in dense]
    else:
        dense, keyword = await asyncio.gather(
            store.query(vector, depth, query.where), store.keyword_query(query.text, depth, query.where)
        )
        hits = fuse_scores(dense, keyword)
    hits = _parents(hits)
    if query.reranker is not None and hits:
        head = hits[: query.rerank_candidates]
        scores = await query.reranker.rerank(query.text, [h.chunk.text for h in head])
        w = RERANK_WEIGHT
        blended = [Hit(h.chunk, (1 - w) * h.score + w * s) for h, s in zip(head, scores, strict=True)]
        hits = sorted(blended, key=lambda h: -h.score)
    return hits[: query.k]
