"""A PEFT LoRA adapter → a llama.cpp LoRA GGUF (``Llama(lora_path=...)`` serves it on its base GGUF).

This writes what llama.cpp's ``convert_lora_to_gguf.py`` writes for the Qwen2 architecture of the
bundled models, with the ``gguf`` package: ``general.type = adapter``, ``adapter.type = lora``,
``adapter.lora.alpha``, and for each adapted weight ``blk.N.attn_q.weight.lora_a`` / ``.lora_b`` (A is
``r × in``, B is ``out × r``, float32). PEFT's ``lora_B`` is scaled by ``alpha / r`` at run time, and so
is llama.cpp's, from the ``alpha`` key: the numbers are copied as they are.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["convert", "TENSOR_NAMES"]

TENSOR_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_KEY = re.compile(r"(?:.*\.)?layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])\.weight$")


def convert(adapter_dir: Path, out: Path, architecture: str = "qwen2") -> Path:
    """Write ``out`` (atomically) from the PEFT folder ``adapter_dir``; returns ``out``."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    cfg = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    writer_path = out.with_suffix(".tmp")
    writer = gguf.GGUFWriter(str(writer_path), architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(cfg["lora_alpha"]))
    count = 0
    for key in sorted(tensors):
        m = _KEY.match(key)
        if m is None:
            raise ValueError(f"unexpected tensor {key} in the adapter")
        layer, module, ab = m.groups()
        if module not in TENSOR_NAMES:
            raise ValueError(f"llama.cpp has no tensor for {module}")
        name = f"blk.{layer}.{TENSOR_NAMES[module]}.weight.lora_{ab.lower()}"
        writer.add_tensor(name, np.ascontiguousarray(tensors[key].astype(np.float32)))
        count += 1
    if not count:
        raise ValueError("the adapter has no LoRA tensors")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    writer_path.replace(out)
    return out
