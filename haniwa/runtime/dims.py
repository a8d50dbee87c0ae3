"""Adapting a local embedding to the size a Bedrock embedding id promises.

User code sizes its vector indexes by the dimensions Bedrock documents (Titan G1 1536, Titan V2 1024,
Cohere v3 1024), so an alias must return exactly that many numbers. We do it honestly:

* larger: zero-padding. Dot products and cosine similarities between padded vectors are exactly those of
  the originals, so retrieval quality is unchanged.
* smaller: a fixed orthogonal projection (rows of a seeded random orthogonal matrix), then re-normalised.
  It is the same matrix on every run and machine, so stored vectors stay comparable; it keeps distances
  approximately (Johnson–Lindenstrauss), which is what truncated Titan V2 vectors promise too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["adapt", "normalize"]


@functools.lru_cache(maxsize=16)
def _projection(src: int, dst: int) -> np.ndarray:
    rng = np.random.default_rng(20240229 + src * 7919 + dst)
    q, _ = np.linalg.qr(rng.standard_normal((src, dst)))
    return q  # src × dst with orthonormal columns


def normalize(vec: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm else list(vec)


def adapt(vec: Sequence[float], size: int) -> list[float]:
    n = len(vec)
    if n == size:
        return list(vec)
    if n < size:
        return list(vec) + [0.0] * (size - n)
    projected = np.asarray(vec, dtype=np.float64) @ _projection(n, size)
    return normalize(projected.tolist())
