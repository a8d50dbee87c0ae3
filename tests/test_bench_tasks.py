"""Structure of the agent benchmark's task sets (``bench/agent_tasks``): the dev set and the held-out set.

No model runs here: only the tasks' shape — categories, languages, domains, that every expected call
names a declared function and parameters, that the held-out functions' declared results are reachable,
and that each held-out category is built the way its name says (a chain's id comes only from the first
result, a kb+tool task's items only from the knowledge base, a failing task's tool does fail)."""

from __future__ import annotations

import importlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench is not a package on sys.path

from bench.agent_tasks.common import CATEGORIES, Domain, Task, key  # noqa: E402

dev = importlib.import_module("bench.agent_tasks.dev")
heldout = importlib.import_module("bench.agent_tasks.heldout")
SPLITS: dict[str, list[Task]] = {"dev": dev.TASKS, "heldout": heldout.TASKS}


def _domains(tasks: list[Task]) -> list[Domain]:
    seen: dict[int, Domain] = {}
    for t in tasks:
        seen.setdefault(id(t.domain), t.domain)
    return list(seen.values())


def _alts(value: Any) -> list[str]:
    return [a for a in str(value).split("|") if a]


def _first_args(fn: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Arguments for a call: the first alternative of each expected value, a filler for any other
    required parameter the result does not depend on."""
    out = {p: (_alts(v)[0] if isinstance(v, str) else v) for p, v in args.items()}
    for p in fn.required:
        out.setdefault(p, "x")
    return out


def _outcome(fn: Any, args: dict[str, Any]) -> tuple[bool, Any]:
    """(failed, result) of calling ``fn``: failed when it raised or returned an error result."""
    try:
        result = fn(**args)
    except Exception as exc:  # a declared failure raises
        return True, str(exc)
    return isinstance(result, dict) and "error" in result, result


@pytest.mark.parametrize("split", sorted(SPLITS))
def test_tasks_are_well_formed(split: str) -> None:
    tasks = SPLITS[split]
    assert tasks, split
    ids = [(key(t.domain.name), key(t.question)) for t in tasks]
    assert len(ids) == len(set(ids)), f"{split}: duplicate task"
    assert {t.lang for t in tasks} == {"en", "ja"}, f"{split}: both languages"
    for t in tasks:
        assert t.category in CATEGORIES
        declared = {f.name: f for f in t.domain.functions}
        assert len(declared) == len(t.domain.functions), f"{t.domain.name}: duplicate function name"
        for name, args in t.calls:
            assert name in declared, f"{t.question!r}: {name} is not a function of {t.domain.name}"
            unknown = set(args) - set(declared[name].params)
            assert not unknown, f"{t.question!r}: {name} has no parameter {unknown}"
        for name in t.forbid:
            assert name in declared, f"{t.question!r}: forbids undeclared {name}"
        if t.kb:
            assert t.domain.documents, f"{t.question!r}: needs a knowledge base its domain lacks"


def test_splits_are_distinct() -> None:
    dev_names = {key(d.name) for d in _domains(dev.TASKS)}
    held_names = {key(d.name) for d in _domains(heldout.TASKS)}
    assert not dev_names & held_names, "a held-out domain shares its name with a dev domain"
    dev_questions = {key(t.question) for t in dev.TASKS}
    assert not dev_questions & {key(t.question) for t in heldout.TASKS}


def test_heldout_coverage() -> None:
    tasks = heldout.TASKS
    assert len(tasks) >= 44
    domains = _domains(tasks)
    assert len(domains) >= 5
    assert sum(bool(d.documents) for d in domains) >= 3, "at least 3 domains with a knowledge base"
    per_category = Counter(t.category for t in tasks)
    assert all(per_category[c] >= 4 for c in CATEGORIES), per_category
    langs = Counter(t.lang for t in tasks)
    assert min(langs["en"], langs["ja"]) >= len(tasks) // 3, langs
    assert all(Counter(t.domain.name for t in tasks)[d.name] >= 4 for d in domains)


def test_heldout_declared_results_are_reachable() -> None:
    """Each declared row answers the call made with its own key values; an unknown value is an error."""
    for d in _domains(heldout.TASKS):
        for f in d.functions:
            table = f.fn
            assert isinstance(table, heldout.Table), f"{f.name}: behaviour not declared as a table"
            assert set(table.keys) <= set(f.params), f"{f.name}: keyed on an undeclared parameter"
            assert table.rows, f"{f.name}: no declared result"
            for spec, result in table.rows.items():
                values = (spec,) if isinstance(spec, str) else spec
                for i, alias in enumerate(zip(*[_alts(v) for v in values], strict=False)):
                    args = _first_args(table, dict(zip(table.keys, alias, strict=True)))
                    failed, got = _outcome(table, args)
                    if isinstance(result, heldout.Fails):
                        assert failed and result.message in json.dumps(got, ensure_ascii=False), (
                            f.name,
                            spec,
                        )
                    else:
                        assert not failed and got == result, (f.name, spec, i)
            failed, got = _outcome(table, _first_args(table, dict.fromkeys(table.keys, "zz-unknown-0000")))
            assert failed, f"{f.name}: an unknown argument must be an error, got {got!r}"
            if table.required:
                failed, _ = _outcome(table, {})
                assert failed, f"{f.name}: a missing required parameter must be an error"


def _row_results(fn: Any) -> list[Any]:
    return [r for r in fn.rows.values() if not isinstance(r, heldout.Fails)]


def test_heldout_categories_are_built_as_named() -> None:
    for t in heldout.TASKS:
        fns = {f.name: f.fn for f in t.domain.functions}
        where = f"{t.category}: {t.question!r}"
        if t.category in ("smalltalk", "kb"):
            assert not t.calls, where
        if t.category == "smalltalk":
            assert t.no_calls, where
        if t.category in ("kb", "kb+tool"):
            assert t.kb and t.domain.documents, where
        if t.category in ("one", "several", "chain", "kb+tool", "failing"):
            assert t.calls, where
        if t.category == "one":
            assert len(t.calls) == 1, where
        if t.category == "several":
            assert len(t.calls) >= 2 and len({n for n, _ in t.calls}) == 1, where
        if t.category == "missing":
            assert t.forbid and not t.calls, where
        if t.category in ("one", "several", "kb+tool"):
            for name, args in t.calls:
                failed, got = _outcome(fns[name], _first_args(fns[name], dict(args)))
                assert not failed, f"{where}: {name}({args}) -> {got}"
        if t.category == "failing":
            name, args = t.calls[-1]
            failed, _ = _outcome(fns[name], _first_args(fns[name], dict(args)))
            assert failed, f"{where}: {name} does not fail"
            assert t.facts, where
        if t.category == "chain":
            assert len(t.calls) >= 2, where
            first, *later = t.calls
            earlier = json.dumps(_row_results(fns[first[0]]), ensure_ascii=False)
            carried = [
                v
                for name, args in later
                for v in args.values()
                if isinstance(v, str) and v in earlier and key(v) not in key(t.question)
            ]
            assert carried, f"{where}: no argument comes from the first call's result only"
            name, args = later[-1]
            failed, got = _outcome(fns[name], _first_args(fns[name], dict(args)))
            assert not failed, f"{where}: {name}({args}) -> {got}"
        if t.category == "kb+tool":
            docs = key(" ".join(t.domain.documents))
            for _name, args in t.calls:
                for v in args.values():
                    alts = _alts(v)
                    assert any(key(a) in docs for a in alts), f"{where}: {v!r} is not in the knowledge base"
                    assert key(alts[0]) not in key(t.question), (
                        f"{where}: {alts[0]!r} is given in the question"
                    )
