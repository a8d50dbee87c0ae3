"""The long fuzz run: the CI suite's generator (``tests/fuzzing.py``) for tens of thousands of cases.

Starts a haniwa on 127.0.0.1 with the deterministic echo/hash catalog in a temporary home, creates a
knowledge base and an agent to aim at, sends the cases one at a time as raw HTTP, and prints cases/s,
status counts, ``/health`` latency, and every 5xx, untyped or cut answer grouped by operation and
mutation, with the request, the answer and the traceback location from the server's log.

    python bench/fuzz.py                          # 20,000 cases, seed 0
    python bench/fuzz.py --cases 50000 --seed 7
    python bench/fuzz.py --only 1234 --seed 11    # one case again (the numbers test_fuzz.py reports)
    python bench/fuzz.py --cases 6000 --seed 11 --matrix    # what tests/test_fuzz.py sends
    python bench/fuzz.py --operation Converse --mutation deep-nesting --cases 200

The exit status is 1 when any case found a problem or ``/health`` stalled, so the run can gate a release.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the generator lives with the tests

from haniwa.api.app import create_app  # noqa: E402
from haniwa.config import Settings  # noqa: E402
from haniwa.testing.server import serve_in_thread  # noqa: E402
from tests.conftest import ECHO_CATALOG  # noqa: E402
from tests.fuzz_run import HealthPoller, make_resources, report, run  # noqa: E402
from tests.fuzzing import MUTATIONS, Generator  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="first case number")
    ap.add_argument("--only", type=int, nargs="*", help="just these case numbers")
    ap.add_argument(
        "--matrix", action="store_true", help="also every mutation of every served operation once (as CI)"
    )
    ap.add_argument("--operation", help="only this operation (e.g. Converse)")
    ap.add_argument("--mutation", choices=[*MUTATIONS, "baseline", "variant"], help="only this mutation")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds without an answer before a stall")
    ap.add_argument("--examples", type=int, default=3, help="examples printed per problem group")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="haniwa-fuzz-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "models.toml").write_text(ECHO_CATALOG, encoding="utf-8")
        settings = Settings(home=home, profile="fast")
        app = create_app(settings)
        with serve_in_thread(app) as url:
            ids = make_resources(url, settings.s3_folder)
            gen = Generator(set(app.state.platform.handlers), ids, seed=args.seed)
            if args.only:
                cases = [gen.case(i) for i in args.only]
            elif args.operation or args.mutation:
                ops = [o for o in gen.router.ops if args.operation in (None, o.name)]
                if not ops:
                    ap.error(f"no operation named {args.operation}")
                cases = [
                    gen.case(i, ops[i % len(ops)], args.mutation)
                    for i in range(args.start, args.start + args.cases)
                ]
            else:
                cases = list(gen.cases(args.cases, args.start, matrix=args.matrix))
            print(
                f"haniwa at {url}; {len(cases)} cases, seed {args.seed}; "
                f"{len(gen.served_ops)} served and {len(gen.unserved_ops)} unserved operations",
                flush=True,
            )
            t0 = time.perf_counter()
            with HealthPoller(url) as health:
                outcomes = run(url, cases, timeout=args.timeout, forbidden=(str(home), str(ROOT)))
            elapsed = time.perf_counter() - t0

    print(f"{len(outcomes)} cases in {elapsed:.1f} s: {len(outcomes) / elapsed:.0f} cases/s")
    print(health.summary())
    kinds = Counter(o.case.mutation for o in outcomes)
    print("mutations: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    served = [o for o in outcomes if o.case.served]
    print(
        f"served operations: {len(served)} cases, {sum(o.status < 300 for o in served)} answered 2xx; "
        f"unserved: {len(outcomes) - len(served)} cases"
    )
    slowest = sorted(outcomes, key=lambda o: -o.seconds)[:5]
    print("slowest: " + "; ".join(f"{o.seconds:.2f} s {o.case.label}" for o in slowest))
    print(report(outcomes, examples=args.examples))
    # the CI suite's limits for /health (tests/test_fuzz.py)
    stalled = health.failures or max(health.latencies, default=0) >= 1.0 or health.p99() >= 0.2
    if stalled:
        print(f"/health stalled: {health.summary()} (limits: max 1 s, p99 200 ms); see the slowest cases")
    return 1 if stalled or any(o.problem for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
