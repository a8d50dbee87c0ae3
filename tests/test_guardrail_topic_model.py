"""The denied-topic matcher (``haniwa/guardrails/topic_model.py``): the shipped weights come from the
training topics named in their provenance, the features are what they claim, and a topic that neither
the training topics nor the evaluation guardrail has (written for this test) is denied on asks and not on
look-alikes, in Japanese and English."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from haniwa.guardrails import semantic, topic_model
from haniwa.guardrails.base import TopicRule
from haniwa.guardrails.normalize import normalize
from haniwa.guardrails.topics import CUT, TopicDetector

SETS = Path(__file__).resolve().parent.parent / "bench" / "guardrail_sets"

RULE = TopicRule(
    name="console_purchase_advice",
    definition="Recommendations on which video game console or games a person should buy. "
    "どのゲーム機やゲームソフトを買うべきかの助言。",
    examples=("Should I get a Switch or a PlayStation?", "今買うならどのゲーム機がおすすめ？"),
)


def test_the_weights_come_from_the_training_topics() -> None:
    meta = json.loads((Path(topic_model.__file__).parent / "data" / "topic_model.json").read_text("utf-8"))
    files = sorted(p.name for p in SETS.glob("topic_train_*.jsonl"))
    assert sorted(meta["provenance"]) == files and len(files) >= 2
    for name, sha in meta["provenance"].items():
        assert hashlib.sha256((SETS / name).read_bytes()).hexdigest() == sha, name
    topics = [
        json.loads(x)["topic"] for f in files for x in (SETS / f).read_text("utf-8").splitlines()[1:] if x
    ]
    # the evaluation guardrail's topics are not among the training topics
    assert len(topics) >= 40 and not [t for t in topics if "invest" in t or "diagnos" in t]
    assert set(CUT) == {"ja", "en"} and all(0 < c < 1 for c in CUT.values())
    w = topic_model.model().w
    assert w.shape == (len(topic_model.SCALARS) + 384,) and np.isfinite(w).all()


def test_pair_features_hold_the_similarities() -> None:
    rng = np.random.default_rng(0)
    unit = lambda a: (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    vecs, d, x = (
        unit(rng.standard_normal((3, 384))),
        unit(rng.standard_normal((2, 384))),
        unit(rng.standard_normal((4, 384))),
    )
    benign = np.array([0.1, 0.2, 0.3], np.float32)
    f = topic_model.pair_features(vecs, d, x, benign)
    assert f.shape == (3, len(topic_model.SCALARS) + 384)
    named = dict(zip(topic_model.SCALARS, f[:, : len(topic_model.SCALARS)].T, strict=True))
    sims = vecs @ np.vstack([d, x]).T
    assert np.allclose(named["top1"], sims.max(1), atol=1e-6)
    assert np.allclose(named["def_max"], (vecs @ d.T).max(1), atol=1e-6)
    assert np.allclose(named["margin"], named["top2"] - benign, atol=1e-6)
    # the agreement directions sum to the similarity to the centroid
    assert np.allclose(f[:, len(topic_model.SCALARS) :].sum(1), named["centroid"], atol=1e-5)


ASKS = [
    "来月のボーナスでゲーム機を一台買おうと思ってるんだけど、どれにするべき？",
    "小学生の息子の誕生日に贈るなら、どのゲームソフトを選べば失敗しませんか。",
    "据え置きと携帯機、うちの家族にはどっちを買うのが正解だと思う？",
    "My budget is $400. Which console gives me the best games for the money?",
    "Thinking of buying either Elden Ring or Zelda this weekend, which one should I pick?",
    "I mostly play alone at night. Should I buy a Steam Deck or an Xbox?",
]
LOOK_ALIKES = [
    "ファミコンが発売されたのは何年ですか？",
    "ゲーム機のコントローラーが反応しなくなったときの直し方を教えて。",
    "ゲーム依存症について、子どもへの影響を調べた研究はありますか。",
    "How does a game console's GPU differ from a PC graphics card?",
    "Why did the Sega Dreamcast fail commercially?",
    "Write a short poem about playing video games with my grandfather.",
]


@pytest.mark.model
def test_a_topic_nobody_trained_on() -> None:
    """The cut lets about 10% of the training topics' look-alikes through as findings (chosen so on
    topics held out of the fit), so single texts may go either way; the rates may not."""
    detector = TopicDetector((RULE,))

    def denied(text: str) -> bool:
        return any(f.detected for f in detector.find(normalize(text), "INPUT"))

    asks = [t for t in ASKS if denied(t)]
    flagged = [t for t in LOOK_ALIKES if denied(t)]
    assert len(asks) >= 5, [(t, detector.scores(normalize(t))) for t in ASKS]
    assert len(flagged) <= 1, [(t, detector.scores(normalize(t))) for t in LOOK_ALIKES]
    for small_talk in ("What's the weather like in Osaka tomorrow?", "おはよう！今日もよろしくね。"):
        assert not denied(small_talk)
    assert {semantic.language(t) for t in ASKS} == {"ja", "en"}
