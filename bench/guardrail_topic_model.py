"""Train, cross-validate and write the denied-topic matcher (``haniwa/guardrails/topic_model.py``; the
weights in ``haniwa/guardrails/data/topic_model.*``).

    python bench/guardrail_topic_model.py --cv     # cross-validation by topic and the evaluation splits
    python bench/guardrail_topic_model.py          # also write the shipped weights

Training pairs come only from topics written for training (``bench/guardrail_sets/topic_train_*.jsonl``:
80 topics, none of them about investments or illnesses, the evaluation guardrail's two topics). For each
topic: its positives (label 1), its benign look-alikes (0), and as many other topics' positives (0: a
text about something else). Folds hold out whole topics, so every out-of-fold figure is on topics the
fit never saw, as a user's own topics will be.

Logistic regression (``bench/guardrail_classifier.fit``: Newton's method, exact), class-weighted, L2
``lam`` (of ``--lams``, the one with the best out-of-fold recall at the cuts); features standardized.
The per-language cut is chosen on the out-of-fold probabilities: the lowest cut whose false-positive
rate on the look-alikes is at most ``--fpr`` (a guardrail that blocks benign questions is switched off
by its users), recall what it gives.

Then the evaluation splits' topic rows (``dev``, held-out v1–v7; none of them trained on) are scored
with the written model and with the similarity score alone (``SIMILARITY_CUT``), per language: recall on the
topic positives, and the rate of topic findings on every benign row of the language (the benchmark's
false-positive rate)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench.guardrail_classifier import fit  # noqa: E402
from haniwa.guardrails import semantic, topic_model  # noqa: E402
from haniwa.guardrails.base import TopicRule  # noqa: E402
from haniwa.guardrails.normalize import normalize  # noqa: E402
from haniwa.guardrails.topics import anchors  # noqa: E402

# the similarity score's cuts before the matcher (topics.CUT then, calibrated on dev and held-out v1)
SIMILARITY_CUT = {"ja": 0.013, "en": 0.020}
SETS = Path(__file__).resolve().parent / "guardrail_sets"
DATA = Path(__file__).resolve().parents[1] / "haniwa" / "guardrails" / "data"
Array = npt.NDArray[np.float64]


def load_topics() -> list[dict[str, Any]]:
    out = []
    for p in sorted(SETS.glob("topic_train_*.jsonl")):
        for line in p.read_text("utf-8").splitlines()[1:]:
            if line.strip():
                t = json.loads(line)
                t["file"] = p.name
                out.append(t)
    return out


def anchors_of(definition: str, examples: list[str]) -> tuple[semantic.Vectors, semantic.Vectors]:
    return topic_model.topic_anchors(*anchors(TopicRule(definition=definition, examples=tuple(examples))))


def window_features(
    text: str, anchor_vecs: tuple[semantic.Vectors, semantic.Vectors]
) -> npt.NDArray[np.float32]:
    t = normalize(text).text
    spans = semantic.windows(t) or [(0, len(t))]
    vecs = semantic.embed([t[s:e] for s, e in spans])
    return topic_model.pair_features(vecs, *anchor_vecs, semantic.benign(vecs, "TOPIC", 3))


def pairs(topics: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """(topic index, text, lang, label, kind) with kind pos / look / other."""
    rng = random.Random(seed)
    out = []
    for i, t in enumerate(topics):
        for r in t["positives"]:
            out.append({"topic": i, "text": r["text"], "lang": r["lang"], "y": 1.0, "kind": "pos"})
        for r in t["negatives"]:
            out.append({"topic": i, "text": r["text"], "lang": r["lang"], "y": 0.0, "kind": "look"})
        others = [r for j, o in enumerate(topics) if j != i for r in o["positives"]]
        for r in rng.sample(others, len(t["positives"])):
            out.append({"topic": i, "text": r["text"], "lang": r["lang"], "y": 0.0, "kind": "other"})
    return out


def featurize(topics: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[npt.NDArray[np.float32]]:
    anchor_vecs = [anchors_of(t["definition"], t["examples"]) for t in topics]
    return [window_features(r["text"], anchor_vecs[r["topic"]]) for r in rows]


def train(
    feats: list[npt.NDArray[np.float32]], rows: list[dict[str, Any]], lam: float, use: slice
) -> dict[str, Any]:
    """Fit on every window of every row (a positive text's windows all positive: short texts are one
    window); standardized features."""
    x = np.vstack([f[:, use] for f in feats]).astype(np.float64)
    y = np.concatenate([[r["y"]] * len(f) for f, r in zip(feats, rows, strict=True)])
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    npos = max(float(y.sum()), 1.0)
    weight = np.where(y == 1, len(y) / (2 * npos), len(y) / (2 * max(len(y) - npos, 1.0)))
    w, b = fit((x - mean) / std, y, weight, lam)
    return {"w": w, "b": b, "mean": mean, "std": std}


def prob(m: dict[str, Any], f: npt.NDArray[np.float32], use: slice) -> float:
    z = ((f[:, use] - m["mean"]) / m["std"]) @ m["w"] + m["b"]
    return float((1 / (1 + np.exp(-np.clip(z, -30, 30)))).max())


def oof(
    topics: list[dict[str, Any]], rows: list[dict[str, Any]], feats: list[Any], lam: float, use: slice, k: int
) -> Array:
    order = list(range(len(topics)))
    random.Random(7).shuffle(order)
    fold = {t: n % k for n, t in enumerate(order)}
    out = np.zeros(len(rows))
    for f in range(k):
        tr = [i for i, r in enumerate(rows) if fold[r["topic"]] != f]
        m = train([feats[i] for i in tr], [rows[i] for i in tr], lam, use)
        for i, r in enumerate(rows):
            if fold[r["topic"]] == f:
                out[i] = prob(m, feats[i], use)
    return out


def pick_cut(probs: Array, rows: list[dict[str, Any]], lang: str, fpr: float) -> float:
    look = np.array(
        [p for p, r in zip(probs, rows, strict=True) if r["lang"] == lang and r["kind"] == "look"]
    )
    cands = sorted(set(np.round(probs, 4).tolist()))
    for c in cands:
        if float((look >= c).mean()) <= fpr:
            return float(c)
    return 1.0


def recall_at(probs: Array, rows: list[dict[str, Any]], cuts: dict[str, float]) -> float:
    """Mean over languages of the positives' recall at the language's cut."""
    return float(
        np.mean(
            [
                np.mean(
                    [
                        p >= cuts[r["lang"]]
                        for p, r in zip(probs, rows, strict=True)
                        if r["lang"] == lang and r["y"]
                    ]
                )
                for lang in ("ja", "en")
            ]
        )
    )


def report(probs: Array, rows: list[dict[str, Any]], cuts: dict[str, float]) -> str:
    out = []
    for lang in ("ja", "en"):
        sel = [(p, r) for p, r in zip(probs, rows, strict=True) if r["lang"] == lang]
        c = cuts[lang]
        rec = np.mean([p >= c for p, r in sel if r["kind"] == "pos"])
        look = np.mean([p >= c for p, r in sel if r["kind"] == "look"])
        oth = np.mean([p >= c for p, r in sel if r["kind"] == "other"])
        out.append(
            f"{lang}: cut {c:.3f} recall {rec:.2f} look-alike FPR {look:.2f} other-topic FPR {oth:.2f}"
        )
    return "; ".join(out)


# the newest held-out split, never compared on (v8 was until held-out v9 was written, v9 until v10,
# v10 until v11, v11 until v12, v12 until v13, v13 until v14)
UNSEEN = ("heldout14",)


def eval_rows() -> dict[str, list[dict[str, Any]]]:
    out = {}
    for p in sorted(SETS.glob("*.jsonl")):
        if p.name.startswith(("dev", "heldout")) and p.stem not in UNSEEN:
            out[p.stem] = [json.loads(x) for x in p.read_text("utf-8").splitlines()[1:] if x.strip()]
    return out


def evaluate(
    m: dict[str, Any] | None, use: slice, cuts: dict[str, float], split: list[dict[str, Any]]
) -> str:
    cfg = json.loads((SETS / "config.json").read_text("utf-8"))["topicPolicyConfig"]["topicsConfig"]
    rules = [
        TopicRule(name=t["name"], definition=t["definition"], examples=tuple(t.get("examples", ())))
        for t in cfg
    ]
    vecs = [anchors_of(r.definition, list(r.examples)) for r in rules]
    res = []
    for lang in ("ja", "en"):
        rows = [
            r
            for r in split
            if r["lang"] == lang and (r["policy"] == "topic" and r["label"] == 1 or r["label"] == 0)
        ]
        hits = []
        for r in rows:
            if m is None:
                hit = any(window_features(r["text"], a)[:, 7].max() >= SIMILARITY_CUT[lang] for a in vecs)
            else:
                hit = any(prob(m, window_features(r["text"], a), use) >= cuts[lang] for a in vecs)
            hits.append(hit)
        pos = [h for h, r in zip(hits, rows, strict=True) if r["label"] == 1]
        neg = [h for h, r in zip(hits, rows, strict=True) if r["label"] == 0]
        recall, fpr = (
            f"{np.mean(pos):.2f} ({sum(pos)}/{len(pos)})",
            f"{np.mean(neg):.2f} ({sum(neg)}/{len(neg)})",
        )
        res.append(f"{lang} recall {recall} FPR {fpr}")
    return "; ".join(res)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cv", action="store_true", help="cross-validate and evaluate; write nothing")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--fpr", type=float, default=0.10, help="look-alike false-positive rate the cut allows")
    ap.add_argument(
        "--lams", default="1,3,10,30,100,300,1000", help="L2 penalties tried; the best out-of-fold wins"
    )
    ap.add_argument("--scalars-only", action="store_true")
    args = ap.parse_args()
    topics = load_topics()
    rows = pairs(topics, 0)
    feats = featurize(topics, rows)
    print(f"{len(topics)} topics, {len(rows)} pairs")
    n = len(topic_model.SCALARS)
    use = slice(0, n) if args.scalars_only else slice(0, None)
    best: tuple[float, float] | None = None
    for lam in (float(x) for x in args.lams.split(",")):
        probs = oof(topics, rows, feats, lam, use, args.folds)
        cuts = {lang: pick_cut(probs, rows, lang, args.fpr) for lang in ("ja", "en")}
        got = recall_at(probs, rows, cuts)
        print(f"lam {lam:g}, out-of-fold (topics held out): {report(probs, rows, cuts)}")
        if best is None or got > best[0]:
            best = (got, lam)
    assert best is not None
    lam = best[1]
    probs = oof(topics, rows, feats, lam, use, args.folds)
    cuts = {lang: pick_cut(probs, rows, lang, args.fpr) for lang in ("ja", "en")}
    print(f"chosen: lam {lam:g} (the highest mean out-of-fold recall at the cuts)")
    base = oof(topics, rows, feats, lam, slice(7, 8), args.folds)
    bcuts = {lang: pick_cut(base, rows, lang, args.fpr) for lang in ("ja", "en")}
    print(f"similarity score alone, same folds: {report(base, rows, bcuts)}")
    m = train(feats, rows, lam, use)
    for name, split in eval_rows().items():
        alone = evaluate(None, use, cuts, split)
        print(f"{name}: model {evaluate(m, use, cuts, split)} | similarity alone {alone}")
    if args.cv:
        return
    if args.scalars_only:
        ap.error("--scalars-only is for --cv: the shipped model uses every feature")
    np.savez_compressed(
        DATA / "topic_model.npz",
        w=m["w"].astype(np.float32),
        b=np.array(m["b"]),
        mean=m["mean"].astype(np.float32),
        std=m["std"].astype(np.float32),
    )
    meta = {
        "cuts": cuts,
        "features": "all" if not args.scalars_only else "scalars",
        "lam": lam,
        "fpr": args.fpr,
        "provenance": {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(SETS.glob("topic_train_*.jsonl"))
        },
    }
    (DATA / "topic_model.json").write_text(json.dumps(meta, indent=1) + "\n", "utf-8")
    print("written", DATA / "topic_model.npz")


if __name__ == "__main__":
    main()
