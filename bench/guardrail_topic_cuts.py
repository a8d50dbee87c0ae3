"""Calibrate the denied-topic cuts (``haniwa/guardrails/topics.py`` ``CUT``) per language on the seen
splits of ``bench/guardrail_sets/``: the cut with the fewest errors among those that keep recall ≥ 0.9.

    python bench/guardrail_topic_cuts.py                       # dev, v1–v6 (never the newest, v7)
    python bench/guardrail_topic_cuts.py --splits dev,heldout  # the calibration of 2026-12-06

Positives are rows labelled 1 for a topic (scored on that topic); negatives are every row labelled 0
(any policy's look-alikes) in that language, scored on its best topic. Prints, per language, the cut,
recall and false-positive rate there, and the shipped cut's figures on the same rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from haniwa.api.bedrock_guardrails import policy_of  # noqa: E402
from haniwa.guardrails import topics  # noqa: E402
from haniwa.guardrails.normalize import normalize  # noqa: E402

SETS = Path(__file__).resolve().parent / "guardrail_sets"


def rows(splits: list[str]) -> list[dict[str, object]]:
    out = []
    for split in splits:
        lines = (SETS / f"{split}.jsonl").read_text("utf-8").splitlines()
        out += [r for r in (json.loads(x) for x in lines if x.strip()) if "text" in r]
    return out


def figures(pos: list[float], neg: list[float], cut: float) -> tuple[float, float, int]:
    """Recall, false-positive rate and errors at ``cut``."""
    tp, fp = sum(s >= cut for s in pos), sum(s >= cut for s in neg)
    return tp / len(pos), fp / len(neg), (len(pos) - tp) + fp


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--splits", default="dev,heldout,heldout2,heldout3,heldout4,heldout5,heldout6")
    parser.add_argument("--recall", type=float, default=0.9)
    args = parser.parse_args()
    config = json.loads((SETS / "config.json").read_text("utf-8"))
    detector = topics.TopicDetector(policy_of(config).topics)
    names = [r.name for r in detector.rules]
    for lang in ("ja", "en"):
        pos, neg = [], []
        for row in rows(args.splits.split(",")):
            if row["lang"] != lang or not (row["label"] == 0 or row["policy"] == "topic"):
                continue
            scores = [s for s, _ in detector.scores(normalize(str(row["text"])))]
            if row["label"] == 1:
                pos.append(scores[names.index(str(row["category"]))])
            else:
                neg.append(max(scores))

        cands = sorted({round(s, 4) for s in pos + neg})
        ok = [c for c in cands if figures(pos, neg, c)[0] >= args.recall]
        best = min(ok, key=lambda c: (figures(pos, neg, c)[2], -c))
        r, f, e = figures(pos, neg, best)
        r0, f0, e0 = figures(pos, neg, topics.CUT[lang])
        print(
            f"{lang}: {len(pos)} positives, {len(neg)} negatives; cut {best:.4f}: recall {r:.2f} FPR {f:.2f} "
            f"errors {e}; shipped {topics.CUT[lang]}: recall {r0:.2f} FPR {f0:.2f} errors {e0}"
        )


if __name__ == "__main__":
    main()
