"""The fuzz suite, bounded for CI: every fuzzed request gets a 2xx or a typed 4xx, never a 5xx, a cut
stream or a stalled ``/health``.

* Bedrock (all four services): :mod:`tests.fuzzing` builds requests from botocore's service models and
  mutates them (``HANIWA_FUZZ_CASES`` seeded cases, default 6,000, seed ``HANIWA_FUZZ_SEED``, plus every
  mutation of every served operation once); ``bench/fuzz.py`` runs the same generator for tens of
  thousands of cases.
* OpenAI and ``/haniwa/v1``: schemathesis generates valid and invalid requests from ``/openapi.json``.

A failure lists each broken (operation, mutation) with the request, the answer and where the server's
log says it raised, so it can be reproduced with ``python bench/fuzz.py --only <case> --seed <seed>``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from haniwa.api.app import create_app
from haniwa.api.wire import SERVICES, Router
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread
from tests.conftest import ECHO_CATALOG
from tests.fuzz_run import HealthPoller, Outcome, make_resources, report, run
from tests.fuzzing import MUTATIONS, Generator

CASES = int(os.environ.get("HANIWA_FUZZ_CASES", "6000"))
SEED = int(os.environ.get("HANIWA_FUZZ_SEED", "11"))
REPO = str(Path(__file__).resolve().parent.parent)
HEALTH_MAX_S = 1.0
HEALTH_P99_S = 0.2


@dataclass
class Target:
    url: str
    home: Path
    served: set[tuple[str, str]]
    ids: dict[str, str]

    @property
    def forbidden(self) -> tuple[str, ...]:
        return (str(self.home), REPO)


# per test: the baselines delete the resources the fuzz run aims at
@pytest.fixture
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    home = tmp_path_factory.mktemp("fuzz-home")
    (home / "models.toml").write_text(ECHO_CATALOG, encoding="utf-8")
    settings = Settings(home=home, profile="fast")
    app = create_app(settings)
    with serve_in_thread(app) as url, _settled_heap():
        ids = make_resources(url, settings.s3_folder)
        yield Target(url, home, set(app.state.platform.handlers), ids)


@contextlib.contextmanager
def _settled_heap() -> Iterator[None]:
    """The server shares the pytest process, whose heap holds every earlier test's objects: a full
    collection of it stops all threads for ~0.5-1.2 s on CI (measured with gc.callbacks), which /health
    would report as the server's stall. Freezing what exists before the run leaves the collector what
    the fuzz run itself allocates, as in a server process of its own."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _problems(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.problem]


def test_the_generator_covers_every_mutation() -> None:
    """What the CI run claims to send, it sends: every mutation kind, deep nesting of 2,000+ levels, lone
    surrogates both escaped and raw, 10**30, 1e400 and NaN; and the same seed gives the same requests."""
    served = {(o.service, o.name) for o in Router().ops if o.name in ("Converse", "CreateAgent", "Retrieve")}
    cases = list(Generator(served, seed=SEED).cases(CASES))
    kinds = Counter(c.mutation for c in cases)
    assert set(MUTATIONS) | {"baseline", "variant"} <= set(kinds), set(MUTATIONS) - set(kinds)
    bodies = [c.body for c in cases]
    assert any(b"[" * 2000 in b or b'{"a":' * 2000 in b for b in bodies)
    assert any(b"\\ud800" in b for b in bodies) and any(b"\xed\xa0\x80" in b for b in bodies)
    assert any(b"1000000000000000000000000000000" in b for b in bodies)
    assert any(b"1e400" in b for b in bodies) and any(b"NaN" in b for b in bodies)
    assert {c.service for c in cases} == set(SERVICES)
    again = Generator(served, seed=SEED).case(cases[7].index)
    assert (again.path, again.body, again.mutation) == (cases[7].path, cases[7].body, cases[7].mutation)


def test_every_operation_has_a_served_or_typed_501_answer(target: Target) -> None:
    """Baselines: served operations reach their handlers (most answer 2xx), every other operation of the
    four services answers a typed 501 NotImplementedException."""
    router = Router()
    gen = Generator(target.served, target.ids, seed=SEED, router=router)
    outcomes = run(target.url, gen.baselines(), forbidden=target.forbidden)
    failures = [report(outcomes)] if _problems(outcomes) else []
    served = [o for o in outcomes if o.case.served]
    ok = [o for o in served if o.status < 300]
    # the generator's baselines must go deep, or the fuzz only exercises validation
    if len(ok) < 0.6 * len(served):
        failures.append(
            f"only {len(ok)} of {len(served)} served baselines succeed:\n"
            + "\n".join(f"{o.case.label}: {o.status} {o.body[:200]!r}" for o in served if o.status >= 300)
        )
    wrong = []
    for o in outcomes:
        op = router.find(o.case.service, o.case.operation)
        found = router.match(o.case.method, o.case.path.partition("?")[0])
        # two services share a few routes (/tags/{resourceArn}); the first in the router answers them
        shadowed = found is None or (found[0].service, found[0].name) != (op.service, op.name)
        if o.case.served:
            if shadowed:
                wrong.append(f"{o.case.label}: served, but {o.case.path} routes to {found and found[0].name}")
            continue
        takes_stream = any(m.serialization.get("eventstream") for m in op.model.input_shape.members.values())
        if shadowed or takes_stream:
            continue
        if (o.status, o.error_type) != (501, "NotImplementedException"):
            wrong.append(f"{o.case.label}: {o.status} {o.error_type} {o.body[:200]!r}")
    if wrong:
        failures.append("operations without their own answer:\n" + "\n".join(wrong))
    assert not failures, "\n\n".join(failures)


def test_fuzzed_bedrock_requests_get_typed_answers(target: Target) -> None:
    """The bounded fuzz run: CASES seeded cases plus every mutation of every served operation once (≥ 2,000
    in all), no 5xx, no untyped 4xx, nothing invalid accepted, complete streams, /health responsive."""
    gen = Generator(target.served, target.ids, seed=SEED)
    with HealthPoller(target.url) as health:
        outcomes = run(target.url, gen.cases(CASES, matrix=True), forbidden=target.forbidden)
    expected = CASES + len(gen.served_ops) * len(MUTATIONS)
    failures = [report(outcomes)] if _problems(outcomes) else []
    if len(outcomes) < expected:
        failures.append(f"the run stopped after {len(outcomes)} of {expected} cases: the server hung")
    served = [o for o in outcomes if o.case.served]
    if sum(o.status < 300 for o in served) < 0.05 * len(served):
        failures.append("under 5% of the cases on served operations reached a 2xx: the fuzz stays shallow")
    if health.failures or max(health.latencies) >= HEALTH_MAX_S or health.p99() >= HEALTH_P99_S:
        slowest = sorted(outcomes, key=lambda o: -o.seconds)[:8]
        failures.append(
            f"{health.summary()} (limits: max {HEALTH_MAX_S} s, p99 {HEALTH_P99_S} s); {health.failures[:3]}"
            "\nslowest cases:\n" + "\n".join(f"  {o.seconds:.2f} s {o.case.label}" for o in slowest)
        )
    assert not failures, "\n\n".join(failures)


# -- the OpenAI and /haniwa/v1 routes: schemathesis over /openapi.json -----------------------------------
OPENAPI_EXAMPLES = int(os.environ.get("HANIWA_FUZZ_OPENAPI_EXAMPLES", "30"))


def _openai_problem(status: int, content_type: str, text: str) -> str | None:
    if status < 300:
        return None
    if status >= 500 and status != 501:
        return f"{status}"
    try:
        data = json.loads(text)
    except ValueError:
        return f"{status} with a body that is not JSON ({content_type})"
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str) or "type" not in error:
        return f"{status} not OpenAI-shaped (no error.message/error.type)"
    if any(f in error["message"] for f in (REPO, "Traceback (most recent call last)")):
        return f"{status} message reveals a server path or a traceback"
    return None


def _explore(operation: Any, mode: Any, url: str, note: Callable[[str, str], None]) -> int:
    """Send ``OPENAPI_EXAMPLES`` generated cases of one operation; report problems through ``note``."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.specs.openapi.checks import status_code_conformance

    label = f"{operation.method.upper()} {operation.path} [{mode.value}]"
    sent = 0

    # no shrinking and no example database: one deterministic pass that reports every problem it meets
    @settings(
        max_examples=OPENAPI_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy(generation_mode=mode))
    def probe(case: Any) -> None:
        nonlocal sent
        sent += 1
        curl = case.as_curl_command(base_url=url)[:600]
        try:
            response = case.call(base_url=url, timeout=30)
        except Exception as exc:  # noqa: BLE001 - a cut connection is the finding itself
            note(label, f"no answer: {type(exc).__name__}: {exc}\n    {curl}")
            return
        status = response.status_code
        problem = _openai_problem(status, response.headers.get("content-type", ""), response.text)
        if problem is None and status != 501:
            try:
                case.validate_response(response, checks=[status_code_conformance])
            except Exception as exc:  # noqa: BLE001 - schemathesis raises its own failure group
                problem = f"{status} is not documented in /openapi.json: {str(exc)[:200]}"
        if problem:
            note(label, f"{problem}\n    {curl}\n    answer: {response.text[:300]}")

    with contextlib.suppress(Unsatisfiable):  # nothing to make invalid: GET /v1/models takes no parameters
        probe()
    return sent


def test_schemathesis_openai_and_haniwa_routes(target: Target) -> None:
    """Valid and invalid requests generated from /openapi.json: no 5xx, errors shaped as OpenAI's."""
    import schemathesis
    from schemathesis.core.result import Ok

    schema = schemathesis.openapi.from_url(target.url + "/openapi.json")
    problems: dict[str, list[str]] = {}

    def note(label: str, text: str) -> None:
        problems.setdefault(label, [])
        if len(problems[label]) < 2:
            problems[label].append(text)

    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    assert {o.path for o in operations} >= {"/v1/chat/completions", "/v1/embeddings", "/haniwa/v1/usage"}
    with HealthPoller(target.url) as health:
        count = sum(
            _explore(op, mode, target.url, note) for op in operations for mode in schemathesis.GenerationMode
        )
    assert count >= 200
    assert not problems, f"{len(problems)} (operation, mode) groups failed:\n" + "\n".join(
        f"- {label}\n  " + "\n  ".join(texts) for label, texts in sorted(problems.items())
    )
    assert not health.failures and max(health.latencies) < HEALTH_MAX_S, health.summary()
