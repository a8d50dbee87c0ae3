"""Offline retrieval evaluation sets (see ``bench/data/README.md``) and the metrics used on them.

>>> ds = load("jsquad-ja")
>>> title, text = ds.corpus["a1025052p0"]
>>> ndcg_at_k(["d2", "d1"], {"d1": 1}, k=10)  # doctest: +ELLIPSIS
0.63...
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"

# name -> language (BCP 47); each set is a folder under DATA_DIR: corpus.jsonl.gz, queries.jsonl, qrels.tsv
LANGUAGES: dict[str, str] = {
    "jsquad-ja": "ja",
    "cranfield-en": "en",
}


@dataclass(frozen=True)
class Dataset:
    """One retrieval test collection.

    corpus: passage id -> (title, text); queries: query id -> text;
    qrels: query id -> {passage id: graded relevance > 0} (non-relevant passages are simply absent).
    """

    name: str
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    language: str


def names() -> list[str]:
    """Names of the sets that are present under ``bench/data``."""
    return [n for n in LANGUAGES if (DATA_DIR / n / "qrels.tsv").is_file()]


def load(name: str, data_dir: Path | None = None) -> Dataset:
    """Load a set by name (``names()``) from ``data_dir`` (default ``bench/data``)."""
    if name not in LANGUAGES:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(LANGUAGES)}")
    root = (data_dir or DATA_DIR) / name
    corpus: dict[str, tuple[str, str]] = {}
    with gzip.open(root / "corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                corpus[str(row["id"])] = (str(row.get("title") or ""), str(row["text"]))
    queries: dict[str, str] = {}
    with (root / "queries.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                queries[str(row["id"])] = str(row["text"])
    qrels: dict[str, dict[str, int]] = {}
    with (root / "qrels.tsv").open(encoding="utf-8") as f:
        for lineno, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if lineno == 0 and parts[0] == "qid":
                continue
            if len(parts) != 3:
                continue
            qid, doc_id, rel = parts[0], parts[1], int(parts[2])
            if rel > 0:
                qrels.setdefault(qid, {})[doc_id] = rel
    missing = {d for rels in qrels.values() for d in rels} - corpus.keys()
    if missing:
        raise ValueError(f"{name}: qrels name {len(missing)} passages missing from the corpus")
    return Dataset(name=name, corpus=corpus, queries=queries, qrels=qrels, language=LANGUAGES[name])


def _top_k(ranked_ids: Sequence[str], k: int) -> list[str]:
    """The first k distinct ids (a repeated id counts once, at its first rank)."""
    seen: set[str] = set()
    out: list[str] = []
    for doc_id in ranked_ids:
        if doc_id not in seen:
            seen.add(doc_id)
            out.append(doc_id)
            if len(out) == k:
                break
    return out


def ndcg_at_k(ranked_ids: Sequence[str], rels: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gain (the graded relevance) and a log2(rank + 1) discount, as trec_eval.

    The ideal DCG ranks all relevant passages of the qrels by relevance; 0.0 when there are none.
    """
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    if idcg == 0:
        return 0.0
    dcg = sum(max(rels.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(_top_k(ranked_ids, k)))
    return dcg / idcg


def recall_at_k(ranked_ids: Sequence[str], rels: Mapping[str, int], k: int = 10) -> float:
    """Relevant passages (relevance > 0) found in the top k / all relevant passages; 0.0 when none."""
    relevant = {d for d, r in rels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(_top_k(ranked_ids, k))) / len(relevant)


def evaluate(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], k: int = 10
) -> dict[str, float]:
    """Mean nDCG@k and recall@k over the queries of ``qrels`` (a query missing from ``run`` scores 0)."""
    qids = [q for q, rels in qrels.items() if any(r > 0 for r in rels.values())]
    if not qids:
        return {f"ndcg@{k}": 0.0, f"recall@{k}": 0.0}
    ndcg = sum(ndcg_at_k(run.get(q, []), qrels[q], k) for q in qids) / len(qids)
    recall = sum(recall_at_k(run.get(q, []), qrels[q], k) for q in qids) / len(qids)
    return {f"ndcg@{k}": ndcg, f"recall@{k}": recall}
