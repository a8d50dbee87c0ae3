"""What the rule readers read: the pattern reader (runtime/sysrules.py) and the model-based one
(runtime/rulereader.py), on the rule-free system prompts of tests/data/sysrules_negatives*.jsonl (a rule
read there is a false positive) and on the system prompts of bench/system_prompt.py's splits.

    python bench/rule_reader.py --model 1.5b --splits dev,heldout,heldout2,heldout3 [--negatives]

Prints, per system prompt, the rules each reader read, then the false positives on the rule-free prompts
and the seconds the model's reading call took (p50 / max; prompts with no evidence word make no call).
The adherence figures themselves come from bench/system_prompt.py (config ``BDM``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: bench.system_prompt
from bench.system_prompt import CASES, MODELS, load  # noqa: E402
from haniwa.runtime import rulereader  # noqa: E402
from haniwa.runtime.sysrules import MAX_CHARS, Rules, derive  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="1.5b", help=", ".join(MODELS))
    ap.add_argument("--splits", default="dev,heldout", help="bench/system_prompt.py splits ('' for none)")
    ap.add_argument("--negatives", action="store_true", help="also the 220 rule-free system prompts")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--home", type=Path, default=Path("/tmp/haniwa-bench-system-prompt"))
    args = ap.parse_args()
    splits = [s for s in args.splits.split(",") if s]
    chat = load(MODELS[args.model], args.home, args.threads)
    cancel, seconds = threading.Event(), []

    def read(system: str) -> tuple[str, str]:
        start = time.perf_counter()
        model = chat._read_rules(system, cancel) if len(system) <= MAX_CHARS else Rules()
        if rulereader.worth_asking(system) and len(system) <= MAX_CHARS:
            seconds.append(time.perf_counter() - start)
        patterns = derive(system)
        return patterns.describe(), rulereader.merge(patterns, model).describe()

    try:
        for case in (c for c in CASES if c.split in splits):
            patterns, both = read(case.system)
            print(
                f"{case.split:9} {case.id:26} patterns: {patterns:40.40} | with the model: {both}", flush=True
            )
        if args.negatives:
            wrong = {"patterns": 0, "model": 0}
            total = 0
            for n in ("", "2", "3"):
                for line in (DATA / f"sysrules_negatives{n}.jsonl").read_text().splitlines():
                    system = json.loads(line)["system"]
                    patterns, both = read(system)
                    total += 1
                    wrong["patterns"] += patterns != "none"
                    wrong["model"] += both != "none"
                    if both != "none":
                        print(f"rule-free, read as: {both} | {system[:100]!r}", flush=True)
            print(
                f"\nrule-free prompts read as rules: patterns {wrong['patterns']}/{total}, "
                f"with the model {wrong['model']}/{total}"
            )
    finally:
        chat.close()
    if seconds:
        print(
            f"reading call: {len(seconds)} calls, p50 {statistics.median(seconds):.1f} s, "
            f"max {max(seconds):.1f} s"
        )


if __name__ == "__main__":
    main()
