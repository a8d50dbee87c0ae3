"""Agent benchmark: task success rate, steps and latency of the orchestration loop on the bundled model,
with and without schema-constrained decoding, in the same run, on two splits reported side by side:

* **dev** (``bench/agent_tasks/dev.py``): the loop, its prompts and its checks may be tuned on these;
* **held-out** (``bench/agent_tasks/heldout.py``): written separately by someone who had not seen the
  loop, never tuned on. Its figure is the agent's quality.

Each task is checked by code (``bench/agent_tasks/common.py``): every expected call was made (tool and
arguments, compared loosely), no forbidden call, the knowledge base was looked up when the task needs it,
the final answer states every expected fact and none of the absent ones, and a small-talk task made no
call. The same engine as InvokeAgent runs them (``haniwa.agents.orchestrate``, action groups built by
``haniwa.api.bedrock_agent_spec``), in-process, so the figures are the loop's and the model's, not
HTTP's. A domain with documents gets a knowledge base; its search here ranks whole documents by the
bundled embedder and keyword overlap, in-process (retrieval quality has its own benchmark,
``bench/retrieval.py``).

    python bench/agents.py                               # both splits, both modes, the 1.5B model
    python bench/agents.py --splits heldout --modes constrained
    python bench/agents.py --splits dev --only 33-46 --show   # some tasks, by number within the split
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: bench.agent_tasks

from bench.agent_tasks.common import CATEGORIES, Domain, Task, key  # noqa: E402
from haniwa.agents.base import AgentFunction, AgentSnapshot, AgentSpec  # noqa: E402
from haniwa.agents.functions import FunctionRegistry, wire_parameters  # noqa: E402
from haniwa.agents.orchestrate import Orchestration, RunContext  # noqa: E402
from haniwa.agents.state import SessionState, Turn  # noqa: E402
from haniwa.agents.trace import (  # noqa: E402
    ActionInvoked,
    ActionObserved,
    Finished,
    KnowledgeFound,
    KnowledgeLookup,
    ModelOutput,
    Reprompt,
)
from haniwa.api.bedrock_agent_spec import build_spec  # noqa: E402
from haniwa.config import Settings  # noqa: E402
from haniwa.knowledge.base import Chunk, Hit  # noqa: E402
from haniwa.knowledge.tokenize import keyword_tokens  # noqa: E402
from haniwa.plugins import make_plugin_manager  # noqa: E402
from haniwa.runtime.registry import ModelRegistry  # noqa: E402

EMBEDDER = "amazon.titan-embed-text-v2:0"  # the bundled multilingual-e5-small
SPLITS = {"dev": "bench.agent_tasks.dev", "heldout": "bench.agent_tasks.heldout"}


def _matches(expected: Mapping[str, Any], got: Mapping[str, Any]) -> bool:
    for name, want in expected.items():
        value = got.get(name)
        if isinstance(want, int | float) and not isinstance(want, bool):
            try:
                if float(value) != float(want):  # type: ignore[arg-type]
                    return False
            except (TypeError, ValueError):
                return False
        elif key(str(value)) not in [key(w) for w in str(want).split("|")]:
            return False
    return True


@dataclass
class Outcome:
    task: Task
    ok: bool
    steps: int
    seconds: float
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    answer: str = ""
    why: str = ""
    kb_lookups: int = 0


class Bench:
    """One agent spec, function registry and knowledge base per domain, built once."""

    def __init__(self, model: str, embedder: Any) -> None:
        self.model = model
        self.embedder = embedder
        self.functions = FunctionRegistry()
        self.specs: dict[int, tuple[AgentSpec, str]] = {}
        self.docs: dict[str, tuple[str, ...]] = {}
        self.vectors: dict[str, list[list[float]]] = {}

    def spec(self, domain: Domain) -> AgentSpec:
        if id(domain) in self.specs:
            return self.specs[id(domain)][0]
        n = len(self.specs)
        groups = []
        for f in domain.functions:
            executor = f"d{n}_{f.name}"  # one registered function per domain's tool
            fn = f.fn
            self.functions.register(AgentFunction(executor, lambda fn=fn, **kw: fn(**kw)))
            groups.append(
                {
                    "actionGroupName": f"{f.name}-group",
                    "actionGroupExecutor": {
                        "lambda": f"arn:aws:lambda:us-east-1:000000000000:function:{executor}"
                    },
                    "functionSchema": {
                        "functions": [
                            {
                                "name": f.name,
                                "description": f.description,
                                "parameters": {
                                    p: {
                                        "type": spec.type,
                                        "description": spec.description,
                                        "required": spec.required,
                                    }
                                    for p, spec in f.params.items()
                                },
                            }
                        ]
                    },
                }
            )
        kbs = []
        if domain.documents:
            kb_id = f"KB{n:08d}"
            self.docs[kb_id] = domain.documents
            kbs.append({"knowledgeBaseId": kb_id, "description": domain.kb_description or domain.name})
        agent = {
            "agentId": f"BENCH{n}",
            "agentName": f"bench-{n}",
            "instruction": domain.instruction,
            "foundationModel": self.model,
        }
        spec = build_spec(
            AgentSnapshot(agent, "DRAFT", tuple(groups), tuple(kbs)), "TSTALIASID", self.functions
        )
        self.specs[id(domain)] = (spec, domain.name)
        return spec

    async def search(self, kb_id: str, query: str) -> list[Hit]:
        """Whole documents ranked by the bundled embedder's cosine (e5's ``query:``/``passage:`` prefixes)
        plus keyword overlap, as the knowledge bases' hybrid search does; the top 3."""
        docs = self.docs.get(kb_id, ())
        if kb_id not in self.vectors:
            self.vectors[kb_id] = await self.embedder.embed([f"passage: {d}" for d in docs])
        (q,) = await self.embedder.embed([f"query: {query}"])
        words = {w.lower() for w in keyword_tokens(query)}
        hits = []
        for i, (text, v) in enumerate(zip(docs, self.vectors[kb_id], strict=True)):
            dense = sum(a * b for a, b in zip(q, v, strict=True))
            overlap = len(words & {w.lower() for w in keyword_tokens(text)}) / max(len(words), 1)
            hits.append(Hit(Chunk(f"{kb_id}-{i}", f"doc-{i}", text, (), {}), (dense + overlap) / 2))
        return sorted(hits, key=lambda h: -h.score)[:3]


def check(task: Task, calls: Sequence[tuple[str, Mapping[str, Any]]], answer: str, kb_lookups: int) -> str:
    """Why ``task`` failed ("" when it succeeded)."""
    missing = [c for c in task.calls if not any(t == c[0] and _matches(c[1], a) for t, a in calls)]
    if missing:
        return f"missing call {missing[0][0]}({dict(missing[0][1])})"
    if task.no_calls and calls:
        return f"called {calls[0][0]} though no tool was needed"
    bad = [t for t, _ in calls if t in task.forbid]
    if bad:
        return f"called {bad[0]} without the value the user never gave"
    if task.kb and not kb_lookups:
        return "never looked in the knowledge base"
    if not answer.strip():
        return "empty answer"
    lost = [alts for alts in task.facts if not any(a.lower() in answer.lower() for a in alts)]
    if lost:
        return f"answer lacks {lost[0][0]!r}"
    wrong = [a for a in task.absent if a.lower() in answer.lower()]
    if wrong:
        return f"answer has {wrong[0]!r}"
    return ""


async def run_task(
    task: Task, bench: Bench, backend: Any, constrained: bool, show: bool = False, time_limit: float = 300.0
) -> Outcome:
    ctx = RunContext(
        backend,
        bench.functions,
        bench.search,
        "bench-session",
        max_steps=8,
        constrained=constrained,
        time_limit=time_limit,
    )
    session = SessionState(turns=[Turn(q, a) for q, a in task.history])
    orch = Orchestration(bench.spec(task.domain), ctx, session)
    calls: list[tuple[str, dict[str, Any]]] = []
    steps, answer, lookups = 0, "", 0
    started = time.perf_counter()
    async for ev in orch.ask(task.question):
        if isinstance(ev, ModelOutput):
            steps += 1
            if show:
                print(f"      step {steps}: {ev.text}")
        elif isinstance(ev, KnowledgeLookup):
            lookups += 1
        elif isinstance(ev, ActionInvoked):
            # the values as the trace carries them (strings), as the checks were written against
            params = wire_parameters(ev.tool, ev.arguments)
            calls.append((ev.tool.function or ev.tool.name, {p["name"]: p["value"] for p in params}))
        elif isinstance(ev, Finished):
            answer = ev.text
        if show and isinstance(ev, KnowledgeFound | ActionObserved | Reprompt | Finished):
            seen = " | ".join(h.chunk.text for h in ev.hits) if isinstance(ev, KnowledgeFound) else ev.text
            print(f"      observation ({type(ev).__name__}): {seen[:200]}")
    seconds = time.perf_counter() - started
    why = check(task, calls, answer, lookups)
    return Outcome(task, not why, steps, seconds, calls, answer, why, lookups)


def _numbers(spec: str) -> list[int]:
    """``"1,5-7"`` → ``[1, 5, 6, 7]``."""
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


def _rate(sel: Sequence[Outcome]) -> str:
    return f"{sum(o.ok for o in sel)}/{len(sel)}" if sel else "–"


def report(results: Mapping[tuple[str, str], list[Outcome]]) -> None:
    print("\n| split | mode | tasks | success | EN | JA | mean steps | mean latency | p50 latency |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (split, mode), outs in results.items():
        lat = [o.seconds for o in outs]
        print(
            f"| {split} | {mode} | {len(outs)} | **{100 * sum(o.ok for o in outs) / len(outs):.0f}%** | "
            f"{_rate([o for o in outs if o.task.lang == 'en'])} | "
            f"{_rate([o for o in outs if o.task.lang == 'ja'])} | "
            f"{statistics.mean(o.steps for o in outs):.2f} | "
            f"{statistics.mean(lat):.1f} s | {statistics.median(lat):.1f} s |"
        )
    print("\n| split | mode | " + " | ".join(CATEGORIES) + " |")
    print("|---|---|" + "---|" * len(CATEGORIES))
    for (split, mode), outs in results.items():
        cells = [_rate([o for o in outs if o.task.category == c]) for c in CATEGORIES]
        print(f"| {split} | {mode} | " + " | ".join(cells) + " |")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="anthropic.claude-3-haiku-20240307-v1:0", help="model id or alias")
    ap.add_argument("--profile", default="default", help="default (1.5B) or fast (0.5B)")
    ap.add_argument("--splits", default="dev,heldout", help="dev and/or heldout")
    ap.add_argument("--modes", default="constrained,free", help="constrained and/or free (unconstrained)")
    ap.add_argument("--limit", type=int, default=0, help="run only the first N tasks of each split")
    ap.add_argument("--only", default="", help="only these tasks: 1-based numbers and ranges, e.g. 5,19-24")
    ap.add_argument(
        "--time-limit",
        type=float,
        default=300.0,
        help="each task's time limit in seconds (InvokeAgent's default: 300); raise it on a loaded machine "
        "so the figures measure the loop, not the machine's contention",
    )
    ap.add_argument("--json", help="also write the outcomes to this file")
    ap.add_argument("--show", action="store_true", help="print each step's model output and observation")
    args = ap.parse_args()

    settings = Settings(profile=args.profile)
    registry = ModelRegistry.from_plugins(settings, make_plugin_manager(settings.load_plugins))
    resolved, backend = await registry.chat(args.model)
    _, embedder = await registry.embedder(EMBEDDER)
    bench = Bench(args.model, embedder)
    results: dict[tuple[str, str], list[Outcome]] = {}
    for split in args.splits.split(","):
        all_tasks: list[Task] = importlib.import_module(SPLITS[split]).TASKS
        tasks = all_tasks[: args.limit] if args.limit else all_tasks
        if args.only:
            tasks = [all_tasks[i - 1] for i in _numbers(args.only)]
        print(f"model {resolved.info.id} · {split}: {len(tasks)} tasks · modes {args.modes}", flush=True)
        for mode in args.modes.split(","):
            outs = []
            for i, task in enumerate(tasks, 1):
                out = await run_task(task, bench, backend, mode == "constrained", args.show, args.time_limit)
                outs.append(out)
                mark = "ok " if out.ok else "FAIL"
                print(
                    f"  [{split} {mode:11}] {i:2}/{len(tasks)} #{all_tasks.index(task) + 1:<2} {mark}"
                    f" {out.steps} steps {out.seconds:5.1f}s  {task.question[:40]}"
                    + ("" if out.ok else f"  — {out.why}; answer: {out.answer[:80]!r}"),
                    flush=True,
                )
            results[(split, mode)] = outs
    report(results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    f"{split}/{mode}": [
                        {
                            "question": o.task.question,
                            "category": o.task.category,
                            "ok": o.ok,
                            "why": o.why,
                            "steps": o.steps,
                            "seconds": o.seconds,
                            "calls": o.calls,
                            "answer": o.answer,
                        }
                        for o in outs
                    ]
                    for (split, mode), outs in results.items()
                },
                fh,
                ensure_ascii=False,
                indent=1,
            )


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
