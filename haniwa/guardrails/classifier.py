"""The trained classifier behind the content filters (HATE, INSULTS, SEXUAL, VIOLENCE, MISCONDUCT) and
PROMPT_ATTACK: one logistic regression per category (one-vs-rest, class-weighted, L2) on the e5 vector
of a text unit (``semantic.embed``: the same vectors the other semantic policies use).

A text's units are the whole text when it is one sentence, else each of its sentences and the whole text; a
category's probability for the text is its best unit's, and that unit is the span reported, so an
instruction injected into one sentence of a long document stands out. The weights, the feature
scaling and the confidence cuts are in ``data/content_classifier.npz`` and ``.json``, written by
``bench/guardrail_classifier.py`` from the JSONL files named in the JSON's ``provenance`` (that script
reproduces them; nothing here trains).

Confidence follows Bedrock's four levels with cuts on the probability chosen on held-out folds: below
the language's LOW cut NONE, then LOW, MEDIUM, HIGH."""

from __future__ import annotations

import io
import json
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from haniwa.guardrails import semantic

__all__ = ["CATEGORIES", "Model", "model", "units", "in_context", "features", "confidence"]

CATEGORIES = ("HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT", "PROMPT_ATTACK")
_LEVELS = ("LOW", "MEDIUM", "HIGH")


def units(text: str) -> list[tuple[int, int]]:
    """The spans of ``text`` that are classified: the whole text when it is one sentence (split into
    windows when it is longer than one, ``semantic.windows``); otherwise each sentence on its own and the
    whole text (a document's overall intent). Even a short text is split: a harmful ask appended to an
    ordinary one (a trip to plan, then a receipt to forge) is diluted when the two are read together."""
    sentences = semantic.sentences(text)
    if len(sentences) <= 1:
        return semantic.windows(text)
    return [*sentences, (0, len(text))]


def in_context(vecs: semantic.Vectors) -> semantic.Vectors:
    """Each unit's vector beside the mean of the text's units (its context): a sentence is read with the
    text it sits in, so "I hate cilantro." in a recipe question or "Summarize this memo:" over an ordinary
    memo is not scored as if it stood alone, while an injected order still stands out from its page."""
    out: semantic.Vectors = np.hstack([vecs, np.repeat(vecs.mean(axis=0, keepdims=True), len(vecs), axis=0)])
    return out


def features(vecs: semantic.Vectors, mean: npt.NDArray[np.float32], scale: float) -> semantic.Vectors:
    """The classifier's input: e5 vectors centred on the training mean and scaled to unit variance
    overall (e5 vectors sit in a narrow cone; centring lets the L2 penalty treat dimensions alike)."""
    out: semantic.Vectors = ((vecs - mean) / scale).astype(np.float32)
    return out


class Model:
    """Weights ``w`` (categories × 384, or × 768 when ``context``: each unit read ``in_context``), biases
    ``b``, feature ``mean``/``scale`` and per-language cuts."""

    def __init__(self, arrays: dict[str, Any], meta: dict[str, Any]) -> None:
        self.w = np.asarray(arrays["w"], dtype=np.float32)
        self.b = np.asarray(arrays["b"], dtype=np.float32)
        self.mean = np.asarray(arrays["mean"], dtype=np.float32)
        self.scale = float(arrays["scale"])
        self.categories: tuple[str, ...] = tuple(meta["categories"])
        self.cuts: dict[str, dict[str, list[float]]] = meta["cuts"]
        self.context = bool(meta.get("context", False))
        self.meta = meta

    def probabilities(self, vecs: semantic.Vectors) -> npt.NDArray[np.float32]:
        """Rows of ``vecs`` (the e5 vectors of one text's units) × categories: each category's probability."""
        if self.context:
            vecs = in_context(vecs)
        z = features(vecs, self.mean, self.scale) @ self.w.T + self.b
        out: npt.NDArray[np.float32] = (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)
        return out

    def confidence(self, p: float, category: str, lang: str) -> str:
        """Bedrock's confidence level of probability ``p`` for ``category`` in language ``lang``."""
        level = "NONE"
        for name, cut in zip(_LEVELS, self.cuts[lang][category], strict=True):
            if p >= cut:
                level = name
        return level


def _data(name: str) -> bytes:
    return resources.files("haniwa.guardrails").joinpath(f"data/{name}").read_bytes()


@cache
def model() -> Model:
    """The shipped model (``data/content_classifier.npz`` + ``.json``)."""
    meta = json.loads(_data("content_classifier.json").decode("utf-8"))
    with np.load(io.BytesIO(_data("content_classifier.npz"))) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return Model(arrays, meta)


def confidence(p: float, category: str, lang: str) -> str:
    return model().confidence(p, category, lang)
