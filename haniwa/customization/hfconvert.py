"""A Hugging Face folder (config.json, safetensors, tokenizer.json) written as a GGUF llama.cpp serves.

What llama.cpp's ``convert_hf_to_gguf.py`` does for the architectures here, with the ``gguf`` package:
tensor names from ``gguf.TensorNameMap`` for the architecture's ``MODEL_ARCH``, hyperparameters as
metadata, the byte-level BPE tokenizer from ``tokenizer.json`` (tokens, token types, merges, bos/eos/pad
ids through ``gguf.SpecialVocab``) and the chat template from ``tokenizer_config.json``. Matrices are
written as f16 (or f32 when asked), norms and biases as f32. Tensors are read lazily with ``safetensors``
and written one at a time after the header (``add_tensor_info`` then ``write_tensor_data``), so memory is
bounded by the largest tensor, not the model.

``Conversion(folder, out)`` checks everything it can before writing (architecture, tokenizer, tensor
names); then ``start()`` writes the header and ``write(i)`` tensor ``i``, so the caller reports progress
and can stop between tensors; ``finish()`` renames the file into place.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from haniwa.errors import ValidationError

__all__ = ["ARCHITECTURES", "Conversion", "check_architecture"]

# Hugging Face architecture → (gguf MODEL_ARCH name, tokenizer pre-tokenizer name llama.cpp knows,
# whether q/k projections are permuted from HF's rotary layout to llama.cpp's)
ARCHITECTURES: dict[str, tuple[str, str, bool]] = {
    "Qwen2ForCausalLM": ("QWEN2", "qwen2", False),
    "LlamaForCausalLM": ("LLAMA", "llama-bpe", True),
}


@dataclasses.dataclass(frozen=True)
class _Tensor:
    source: str  # the safetensors key
    file: Path
    name: str  # the GGUF name
    shape: tuple[int, ...]
    f16: bool


def check_architecture(config_path: Path) -> str:
    """The Hugging Face architecture ``config.json`` names, if it is one this module converts."""
    config = _json(config_path)
    archs = config.get("architectures") or []
    name = str(archs[0]) if archs else str(config.get("model_type") or "unknown")
    if name not in ARCHITECTURES:
        raise ValidationError(
            f"architecture {name} is not supported for import from a Hugging Face folder;"
            f" supported: {', '.join(sorted(ARCHITECTURES))} (or import a GGUF)"
        )
    return name


class Conversion:
    def __init__(self, folder: Path, out: Path, *, f16: bool = True) -> None:
        import gguf

        self.folder, self.out = folder, out
        self.tmp = out.with_name(out.name + ".part")
        config = _json(folder / "config.json")
        self.architecture = arch_name = check_architecture(folder / "config.json")
        arch_key, self.pre, self.permute = ARCHITECTURES[arch_name]
        self.arch = getattr(gguf.MODEL_ARCH, arch_key)
        self.config = config
        try:
            self.n_layers = int(config["num_hidden_layers"])
            self.n_head = int(config["num_attention_heads"])
            self.n_kv = int(config.get("num_key_value_heads") or self.n_head)
            self.vocab_size = int(config["vocab_size"])
            int(config["hidden_size"]), int(config["intermediate_size"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValidationError(f"config.json lacks a usable {e}") from None
        self.tensors = self._plan(gguf, f16)
        self.total_bytes = sum(math.prod(t.shape) * (2 if t.f16 else 4) for t in self.tensors)
        self.writer: Any = None

    # -- planning ------------------------------------------------------------------------------------
    def _plan(self, gguf: Any, f16: bool) -> list[_Tensor]:
        from safetensors import safe_open

        files = sorted(self.folder.glob("*.safetensors"))
        if not files:
            raise ValidationError("the Hugging Face folder has no .safetensors weights")
        names = gguf.TensorNameMap(self.arch, self.n_layers)
        out: list[_Tensor] = []
        for file in files:
            try:
                handle = safe_open(str(file), framework="pt")
            except Exception as e:  # safetensors' own error type: a truncated or foreign file
                raise ValidationError(f"{file.name} is not a readable safetensors file: {e}") from None
            with handle as f:
                for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                    if key.endswith("rotary_emb.inv_freq"):
                        continue
                    name = names.get_name(key, try_suffixes=(".weight", ".bias"))
                    if name is None:
                        raise ValidationError(
                            f"{file.name}: tensor {key} has no llama.cpp name for {self.architecture}"
                        )
                    shape = tuple(f.get_slice(key).get_shape())
                    out.append(_Tensor(key, file, name, shape, f16 and len(shape) > 1))
        if not any(t.name == "token_embd.weight" for t in out):
            raise ValidationError(
                "the Hugging Face folder has no token embedding (model.embed_tokens.weight)"
            )
        return out

    def _metadata(self, gguf: Any) -> Any:
        c = self.config
        writer = gguf.GGUFWriter(str(self.tmp), gguf.MODEL_ARCH_NAMES[self.arch])
        writer.add_name(str(c.get("_name_or_path") or self.folder.name))
        writer.add_context_length(int(c.get("max_position_embeddings", 4096)))
        writer.add_embedding_length(int(c["hidden_size"]))
        writer.add_block_count(self.n_layers)
        writer.add_feed_forward_length(int(c["intermediate_size"]))
        writer.add_head_count(self.n_head)
        writer.add_head_count_kv(self.n_kv)
        writer.add_layer_norm_rms_eps(float(c.get("rms_norm_eps", 1e-6)))
        rope = _rope(c)
        writer.add_rope_freq_base(float(rope.get("rope_theta", 10000.0)))
        if c.get("head_dim"):
            writer.add_key_length(int(c["head_dim"]))
            writer.add_value_length(int(c["head_dim"]))
        writer.add_vocab_size(self.vocab_size)
        writer.add_rope_dimension_count(self._head_dim())
        scaling = rope
        kind = rope.get("rope_type") or rope.get("type")
        if kind == "linear":
            writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            writer.add_rope_scaling_factor(float(scaling.get("factor", 1.0)))
        elif kind == "yarn":
            writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
            writer.add_rope_scaling_factor(float(scaling.get("factor", 1.0)))
            original = scaling.get("original_max_position_embeddings") or c.get("max_position_embeddings")
            writer.add_rope_scaling_orig_ctx_len(int(original or 4096))
        elif kind not in (None, "default", "llama3"):
            raise ValidationError(f"rope type {kind!r} is not supported for import")
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if any(t.f16 for t in self.tensors) else 0)
        self._vocab(gguf, writer)
        return writer

    def _head_dim(self) -> int:
        return int(self.config.get("head_dim") or int(self.config["hidden_size"]) // self.n_head)

    def _vocab(self, gguf: Any, writer: Any) -> None:
        """Byte-level BPE from tokenizer.json: tokens by id, control/user-defined types, gaps padded."""
        path = self.folder / "tokenizer.json"
        if not path.exists():
            raise ValidationError("the Hugging Face folder has no tokenizer.json")
        tok = _json(path)
        model = tok.get("model") or {}
        if model.get("type") != "BPE" or model.get("byte_fallback"):
            raise ValidationError(
                "only byte-level BPE tokenizers (tokenizer.json model.type BPE, as in Qwen2 and Llama 3)"
                " are supported for import; convert this one with llama.cpp's convert_hf_to_gguf.py"
            )
        by_id: dict[int, tuple[str, int]] = {
            int(i): (t, gguf.TokenType.NORMAL) for t, i in model["vocab"].items()
        }
        for added in tok.get("added_tokens") or []:
            kind = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
            by_id[int(added["id"])] = (added["content"], kind)
        size = max(self.vocab_size, max(by_id) + 1)
        tokens, types = [], []
        for i in range(size):
            text, kind = by_id.get(i, (f"[PAD{i}]", gguf.TokenType.UNUSED))
            tokens.append(text)
            types.append(kind)
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        gguf.SpecialVocab(self.folder, load_merges=True, n_vocab=size).add_to_gguf(writer, quiet=True)

    # -- writing -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Write the header, metadata and tensor table (no weights yet)."""
        import gguf
        import numpy as np

        self.writer = writer = self._metadata(gguf)
        for t in self.tensors:
            dtype = np.float16 if t.f16 else np.float32
            writer.add_tensor_info(
                t.name, t.shape, np.dtype(dtype), math.prod(t.shape) * np.dtype(dtype).itemsize
            )
        rope = self._rope_freqs()
        if rope is not None:
            writer.add_tensor_info("rope_freqs.weight", rope.shape, rope.dtype, rope.nbytes)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()

    def write(self, index: int) -> int:
        """Write tensor ``index`` (read from its safetensors file alone); returns the bytes written."""
        import numpy as np
        import torch
        from safetensors import safe_open

        t = self.tensors[index]
        with safe_open(str(t.file), framework="pt") as f:
            data = f.get_tensor(t.source).to(torch.float32)
        if self.permute and t.source.endswith(("q_proj.weight", "k_proj.weight")):
            heads = self.n_head if "q_proj" in t.source else self.n_kv
            data = data.reshape(heads, 2, data.shape[0] // heads // 2, *data.shape[1:])
            data = data.swapaxes(1, 2).reshape(t.shape)
        array = np.ascontiguousarray(data.numpy().astype(np.float16 if t.f16 else np.float32))
        del data
        self.writer.write_tensor_data(array)
        return int(array.nbytes)

    def finish(self) -> None:
        rope = self._rope_freqs()
        if rope is not None:
            self.writer.write_tensor_data(rope)
        self.writer.close()
        self.tmp.replace(self.out)

    def abandon(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.tmp.unlink(missing_ok=True)

    def _rope_freqs(self) -> Any:
        """Llama 3's frequency factors (``rope_scaling.rope_type = llama3``) as llama.cpp's rope_freqs."""
        import numpy as np

        scaling = _rope(self.config)
        if (scaling.get("rope_type") or scaling.get("type")) != "llama3":
            return None
        base, dim = float(scaling.get("rope_theta", 10000.0)), self._head_dim()
        factor = float(scaling.get("factor", 8.0))
        low, high = float(scaling.get("low_freq_factor", 1.0)), float(scaling.get("high_freq_factor", 4.0))
        old = float(scaling.get("original_max_position_embeddings", 8192))
        factors = []
        for i in range(0, dim, 2):
            wavelen = 2 * math.pi * base ** (i / dim)
            if wavelen < old / high:
                factors.append(1.0)
            elif wavelen > old / low:
                factors.append(factor)
            else:
                smooth = (old / wavelen - low) / (high - low)
                factors.append(1 / ((1 - smooth) / factor + smooth))
        return np.array(factors, dtype=np.float32)


def _rope(config: dict[str, Any]) -> dict[str, Any]:
    """The rotary settings, from transformers 5's ``rope_parameters`` or the older top-level
    ``rope_theta`` and ``rope_scaling`` (both read; the newer wins)."""
    rope: dict[str, Any] = {}
    if config.get("rope_theta") is not None:
        rope["rope_theta"] = config["rope_theta"]
    for key in ("rope_scaling", "rope_parameters"):
        if isinstance(config.get(key), dict):
            rope.update({k: v for k, v in config[key].items() if v is not None})
    return rope


def _json(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ValidationError(f"the Hugging Face folder has no {path.name}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValidationError(f"{path.name} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValidationError(f"{path.name} is not a JSON object")
    return data
