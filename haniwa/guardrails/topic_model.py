"""The trained matcher behind denied topics: does a text window fall under a topic given only as a
definition and examples? One logistic regression over features of the pair (window, topic), the same for
every topic, so it applies to topics nobody trained on.

Features of a window's e5 vector ``t`` against the topic's anchors (its definition's sentences ``D`` and
its examples ``X``, embedded as ``semantic.embed`` does) and the benign seeds:

- the mean of ``t``'s 1 and 2 highest similarities to all anchors, the highest to ``D`` and to ``X``,
  the mean similarity to ``X``, the similarity to the anchors' centroid;
- how benign ``t`` looks (``semantic.benign(t, "TOPIC", 3)``) and the anchors' top-2 minus it (the score
  the detector used alone before this model);
- ``t ⊙ ĉ`` (384 values, ĉ the unit centroid of the anchors): which directions of agreement count. Their
  sum is the similarity to the centroid; the weights learn, across many topics, that agreeing on "asks what
  to do" matters more than agreeing on vocabulary.

The weights, the feature scaling and the per-language cut are in ``data/topic_model.npz`` and ``.json``,
written by ``bench/guardrail_topic_model.py`` from the topics named in the JSON's ``provenance``: topics
written for training, none of them the evaluation set's (that script reproduces them; nothing here
trains)."""

from __future__ import annotations

import io
import json
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from haniwa.guardrails import semantic

__all__ = ["SCALARS", "Model", "model", "cuts", "pair_features", "topic_anchors"]

SCALARS = ("top1", "top2", "def_max", "ex_max", "ex_mean", "centroid", "benign", "margin")


def topic_anchors(
    definition_parts: list[str], examples: list[str]
) -> tuple[semantic.Vectors, semantic.Vectors]:
    """Vectors of a topic's definition sentences and of its examples (either may be empty)."""
    empty = np.zeros((0, 384), dtype=np.float32)
    return (
        semantic.embed(definition_parts) if definition_parts else empty,
        semantic.embed(examples) if examples else empty,
    )


def pair_features(
    vecs: semantic.Vectors, definition: semantic.Vectors, examples: semantic.Vectors, benign: npt.NDArray[Any]
) -> npt.NDArray[np.float32]:
    """Rows of ``vecs`` (windows) × (len(SCALARS) + 384) features against one topic's anchors;
    ``benign``: ``semantic.benign(vecs, "TOPIC", 3)``."""
    anchors = np.vstack([definition, examples])
    n = len(vecs)
    top2 = semantic.similarity(vecs, anchors, 2)

    def best(b: semantic.Vectors) -> npt.NDArray[np.float32]:
        return semantic.similarity(vecs, b, 1) if len(b) else np.zeros(n, dtype=np.float32)

    ex_mean = (vecs @ examples.T).mean(axis=1) if len(examples) else np.zeros(n, dtype=np.float32)
    centre = anchors.mean(axis=0)
    centre = centre / max(float(np.linalg.norm(centre)), 1e-6)
    scalars = np.stack(
        [
            semantic.similarity(vecs, anchors, 1),
            top2,
            best(definition),
            best(examples),
            ex_mean,
            vecs @ centre,
            benign,
            top2 - benign,
        ],
        axis=1,
    )
    out: npt.NDArray[np.float32] = np.hstack([scalars, vecs * centre]).astype(np.float32)
    return out


class Model:
    """Weights ``w``, bias ``b``, feature ``mean``/``std`` and per-language probability cuts."""

    def __init__(self, arrays: dict[str, Any], meta: dict[str, Any]) -> None:
        self.w = np.asarray(arrays["w"], dtype=np.float32)
        self.b = float(arrays["b"])
        self.mean = np.asarray(arrays["mean"], dtype=np.float32)
        self.std = np.asarray(arrays["std"], dtype=np.float32)
        self.cuts: dict[str, float] = meta["cuts"]
        self.meta = meta

    def probabilities(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        z = ((features - self.mean) / self.std) @ self.w + self.b
        out: npt.NDArray[np.float32] = (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)
        return out


def _data(name: str) -> bytes:
    return resources.files("haniwa.guardrails").joinpath(f"data/{name}").read_bytes()


@cache
def _meta() -> dict[str, Any]:
    meta: dict[str, Any] = json.loads(_data("topic_model.json").decode("utf-8"))
    return meta


def cuts() -> dict[str, float]:
    """The probability cut per language."""
    return dict(_meta()["cuts"])


@cache
def model() -> Model:
    """The shipped model (``data/topic_model.npz`` + ``.json``)."""
    meta = _meta()
    with np.load(io.BytesIO(_data("topic_model.npz"))) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return Model(arrays, meta)
