"""Reference-based metrics, Japanese-aware, each a plain function of (candidate, reference) → [0, 1].

* :func:`token_f1`, :func:`exact_match`: SQuAD v1.1's answer metrics on :func:`~haniwa.evaluation.text.
  squad_tokens` (SQuAD normalisation for English, MeCab words for Japanese).
* :func:`rouge_n`, :func:`rouge_l`: ROUGE-N and ROUGE-L F-measure as ``rouge-score`` computes them, on
  :func:`~haniwa.evaluation.text.rouge_tokens` (equal to rouge-score on English; bench/evaluation.py).
* :func:`bleu`: sentence BLEU from sacrebleu: ``13a`` for English; for Japanese ``char`` (each character
  a token) or ``mecab`` (MeCab words joined by spaces, then sacrebleu's ``none``, which is what
  ``ja-mecab`` does without needing ``sacrebleu[ja]``'s IPADIC).
* :func:`embedding_similarity`: the **BERTScore-like** score: cosine similarity of the two texts'
  sentence embeddings from the embedding model haniwa serves (multilingual-e5-small by default). It is
  not BERTScore (no token alignment, no baseline rescaling), so its values are not comparable with
  published BERTScore figures, only with each other.
* :func:`classification_scores`: accuracy and macro precision/recall/F1 over the labels seen.
* :func:`reference_recall`: the share of the reference's tokens found in the answer (the "real-world
  knowledge" score of a General task: does the answer state the known fact?).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Literal

import numpy as np
import sacrebleu

from haniwa.evaluation.text import is_japanese, mecab_words, normalize_answer, rouge_tokens, squad_tokens
from haniwa.runtime.base import Embedder

__all__ = [
    "token_f1",
    "exact_match",
    "reference_recall",
    "rouge_n",
    "rouge_l",
    "bleu",
    "embedding_similarity",
    "classification_scores",
    "label_match",
]

BleuTokenize = Literal["auto", "13a", "char", "mecab"]


def _f1(overlap: int, n_cand: int, n_ref: int) -> float:
    if n_cand == 0 or n_ref == 0 or overlap == 0:
        return 0.0
    p, r = overlap / n_cand, overlap / n_ref
    return 2 * p * r / (p + r)


def token_f1(candidate: str, reference: str) -> float:
    """SQuAD token F1: the harmonic mean of token precision and recall (bag of tokens). Two empty texts
    score 1 (SQuAD v2's rule for no-answer questions)."""
    c, r = squad_tokens(candidate), squad_tokens(reference)
    if not c and not r:
        return 1.0
    overlap = sum((Counter(c) & Counter(r)).values())
    return _f1(overlap, len(c), len(r))


def exact_match(candidate: str, reference: str) -> float:
    """1.0 when the normalised texts are equal (SQuAD normalisation; MeCab words for Japanese)."""
    return float(squad_tokens(candidate) == squad_tokens(reference))


def reference_recall(candidate: str, reference: str) -> float:
    """The share of the reference's tokens that the candidate contains (bag of tokens)."""
    c, r = Counter(squad_tokens(candidate)), Counter(squad_tokens(reference))
    total = sum(r.values())
    return 1.0 if total == 0 else sum((c & r).values()) / total


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def rouge_n(candidate: str, reference: str, n: int = 1) -> float:
    """ROUGE-N F-measure (rouge-score's ``rougeN`` ``fmeasure``)."""
    c, r = _ngrams(rouge_tokens(candidate), n), _ngrams(rouge_tokens(reference), n)
    return _f1(sum((c & r).values()), sum(c.values()), sum(r.values()))


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    # one row of the dynamic programme at a time: O(len(a)·len(b)) time, O(len(b)) memory
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F-measure: longest common subsequence of tokens (rouge-score's ``rougeL``)."""
    c, r = rouge_tokens(candidate), rouge_tokens(reference)
    return _f1(_lcs(c, r), len(c), len(r))


def bleu(candidate: str, reference: str, tokenize: BleuTokenize = "auto") -> float:
    """Sentence BLEU in [0, 1] (sacrebleu, exponential smoothing). ``auto``: ``char`` when the reference
    is Japanese, else ``13a``."""
    if tokenize == "auto":
        tokenize = "char" if is_japanese(reference) else "13a"
    if tokenize == "mecab":
        hyp, ref = " ".join(mecab_words(candidate)), " ".join(mecab_words(reference))
        return float(sacrebleu.sentence_bleu(hyp, [ref], tokenize="none").score) / 100
    return float(sacrebleu.sentence_bleu(candidate, [reference], tokenize=tokenize).score) / 100


async def embedding_similarity(
    embedder: Embedder, candidates: Sequence[str], references: Sequence[str]
) -> list[float]:
    """The BERTScore-like score per pair: cosine similarity of sentence embeddings, clipped to [0, 1]."""
    if len(candidates) != len(references):
        raise ValueError("candidates and references differ in length")
    if not candidates:
        return []
    vectors = np.asarray(await embedder.embed([*candidates, *references], "document"), dtype=np.float64)
    n = len(candidates)
    a, b = vectors[:n], vectors[n:]
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.einsum("ij,ij->i", a, b) / np.where(norms == 0, 1.0, norms)
    return [float(min(1.0, max(0.0, x))) for x in cos]


def label_match(candidate: str, reference: str) -> float:
    """A classification answer is right when its normalised text is the label, or starts with it
    (``"positive."``, ``"ポジティブです"``)."""
    c, r = normalize_answer(candidate), normalize_answer(reference)
    if not r:
        return float(not c)
    return float(c == r or c.startswith(r))


def classification_scores(predicted: Sequence[str], gold: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-averaged precision, recall and F1 over the gold labels (normalised). A label
    never predicted has precision 0 (scikit-learn's ``zero_division=0``)."""
    if len(predicted) != len(gold):
        raise ValueError("predicted and gold differ in length")
    if not gold:
        return {"accuracy": math.nan, "precision": math.nan, "recall": math.nan, "f1": math.nan}
    g = [normalize_answer(x) for x in gold]
    # a prediction that starts with a gold label counts as that label
    labels = sorted(set(g), key=len, reverse=True)
    p = [
        next((lab for lab in labels if normalize_answer(x).startswith(lab)), normalize_answer(x))
        for x in predicted
    ]
    accuracy = sum(a == b for a, b in zip(p, g, strict=True)) / len(g)
    precisions, recalls, f1s = [], [], []
    for lab in sorted(set(g)):
        tp = sum(a == lab and b == lab for a, b in zip(p, g, strict=True))
        n_pred, n_gold = p.count(lab), g.count(lab)
        prec = tp / n_pred if n_pred else 0.0
        rec = tp / n_gold
        precisions.append(prec)
        recalls.append(rec)
        f1s.append(0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec))
    return {
        "accuracy": accuracy,
        "precision": float(np.mean(precisions)),
        "recall": float(np.mean(recalls)),
        "f1": float(np.mean(f1s)),
    }
