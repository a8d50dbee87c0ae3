"""Agent benchmark: task success rate, steps and latency of the orchestration loop on the bundled model,
with and without schema-constrained decoding, in the same run.

32 small tool-use tasks (Japanese and English): one call, two calls, and "no tool needed". A task
succeeds when every expected call was made (tool and arguments, compared loosely: case, spaces, number
formatting), the final answer states every expected fact, and a no-tool task made no call. The same
engine as InvokeAgent runs them (``haniwa.agents.orchestrate``, action groups built by
``haniwa.agents.spec``), in-process, so the figures are the loop's and the model's, not HTTP's.

    python bench/agents.py                      # both modes, all tasks, the default (1.5B) model
    python bench/agents.py --limit 6 --modes constrained
    python bench/agents.py --only 19-24,29 --modes free     # some tasks, by number
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import operator
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from haniwa.agents.base import AgentFunction, AgentSnapshot, TraceEvent  # noqa: E402
from haniwa.agents.functions import FunctionRegistry  # noqa: E402
from haniwa.agents.orchestrate import Orchestration, RunContext, SessionState  # noqa: E402
from haniwa.agents.spec import build_spec  # noqa: E402
from haniwa.config import Settings  # noqa: E402
from haniwa.plugins import make_plugin_manager  # noqa: E402
from haniwa.runtime.registry import ModelRegistry  # noqa: E402

# -- the tools: small, deterministic business functions -------------------------------------------------
STOCK = {
    "アルミニウム": 120,
    "銅線": 45,
    "強化ガラス": 8,
    "aluminium": 120,
    "aluminum": 120,
    "copper wire": 45,
    "tempered glass": 8,
}
WEATHER = {
    "東京": "晴れ 18°C",
    "tokyo": "sunny 18°C",
    "大阪": "雨 15°C",
    "osaka": "rain 15°C",
    "london": "cloudy 9°C",
    "paris": "sunny 12°C",
}
RATES = {("USD", "JPY"): 150.0, ("EUR", "JPY"): 160.0, ("JPY", "USD"): 1 / 150, ("JPY", "EUR"): 1 / 160}
ORDERS = {"A-100": "shipped", "A-101": "processing", "B-200": "delivered"}


def _key(text: str) -> str:
    return " ".join(text.strip().lower().split())


def get_material_stock(material_name: str) -> dict[str, Any]:
    k = _key(material_name)
    if k not in STOCK:
        raise KeyError(f"unknown material {material_name!r}; known: {', '.join(STOCK)}")
    return {"material": material_name, "stock": STOCK[k]}


def get_weather(city: str) -> str:
    k = _key(city).removesuffix("市").removesuffix("都").removesuffix("府")
    if k not in WEATHER:
        raise KeyError(f"no forecast for {city!r}; known: {', '.join(WEATHER)}")
    return WEATHER[k]


def convert_currency(amount: float, from_currency: str, to_currency: str) -> dict[str, Any]:
    pair = (from_currency.strip().upper(), to_currency.strip().upper())
    if pair not in RATES:
        raise KeyError(f"no rate for {pair[0]}→{pair[1]}; use ISO codes such as USD, EUR, JPY")
    return {"amount": round(amount * RATES[pair], 2), "currency": pair[1]}


def get_order_status(order_id: str) -> dict[str, str]:
    k = order_id.strip().upper()
    if k not in ORDERS:
        raise KeyError(f"no order {order_id!r}")
    return {"order_id": k, "status": ORDERS[k]}


_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.BitXor: operator.pow,  # people write 2^10 for a power
}


def calculate(expression: str) -> str:
    """Arithmetic only (no eval): + - * / ** and parentheses."""

    def ev(n: ast.AST) -> Any:
        if isinstance(n, ast.Constant) and isinstance(n.value, int | float):
            return n.value
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.left), ev(n.right))
        if isinstance(n, ast.UnaryOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.operand))
        raise ValueError(f"not arithmetic: {expression!r}")

    value = ev(ast.parse(expression.replace("×", "*").replace("÷", "/"), mode="eval").body)
    return str(int(value) if float(value).is_integer() else round(value, 6))


FUNCTIONS = [
    (
        "get_material_stock",
        get_material_stock,
        "Stock of one material / 材料1つの在庫",
        {"material_name": "string"},
    ),
    ("get_weather", get_weather, "Today's weather in a city / 都市の今日の天気", {"city": "string"}),
    (
        "convert_currency",
        convert_currency,
        "Convert money between currencies (ISO codes: USD, EUR, JPY) / 通貨の換算",
        {"amount": "number", "from_currency": "string", "to_currency": "string"},
    ),
    ("get_order_status", get_order_status, "Status of an order by id / 注文の状況", {"order_id": "string"}),
    ("calculate", calculate, "Evaluate an arithmetic expression / 計算", {"expression": "string"}),
]
INSTRUCTION = (
    "You are the assistant of a robot factory. Use the tools for stock, weather, currency conversion, "
    "orders and arithmetic; answer other messages directly without tools. Answer briefly."
)


@dataclass(frozen=True)
class Task:
    question: str
    calls: tuple[tuple[str, dict[str, Any]], ...]  # expected (tool, argument subset)
    facts: tuple[tuple[str, ...], ...] = ()  # each entry: any one of these must be in the answer

    @property
    def lang(self) -> str:
        return "ja" if any(ord(c) > 0x3000 for c in self.question) else "en"


def T(q: str, *calls: tuple[str, dict[str, Any]], facts: tuple[tuple[str, ...], ...] = ()) -> Task:
    return Task(q, calls, facts)


STK, WX, CUR, ORD, CALC = (
    "get_material_stock",
    "get_weather",
    "convert_currency",
    "get_order_status",
    "calculate",
)
TASKS = [
    # one call
    T(
        "How much aluminium do we have in stock?",
        (STK, {"material_name": "aluminium|aluminum"}),
        facts=(("120",),),
    ),
    T("銅線の在庫はいくつですか？", (STK, {"material_name": "銅線"}), facts=(("45",),)),
    T("強化ガラスの在庫を教えて。", (STK, {"material_name": "強化ガラス"}), facts=(("8",),)),
    T(
        "How many units of tempered glass are left?",
        (STK, {"material_name": "tempered glass"}),
        facts=(("8",),),
    ),
    T("What's the weather in London?", (WX, {"city": "london"}), facts=(("cloud", "9"),)),
    T("東京の天気は？", (WX, {"city": "東京|tokyo"}), facts=(("晴", "sunny"),)),
    T("大阪の天気を教えてください。", (WX, {"city": "大阪|osaka"}), facts=(("雨", "rain"),)),
    T("Check the weather in Paris.", (WX, {"city": "paris"}), facts=(("sunny", "12"),)),
    T(
        "Convert 20 USD to JPY.",
        (CUR, {"amount": 20, "from_currency": "usd", "to_currency": "jpy"}),
        facts=(("3000", "3,000"),),
    ),
    T(
        "100ユーロは何円ですか？",
        (CUR, {"amount": 100, "from_currency": "eur", "to_currency": "jpy"}),
        facts=(("16000", "16,000", "1万6000", "16000円"),),
    ),
    T(
        "15000円は何ドルですか？",
        (CUR, {"amount": 15000, "from_currency": "jpy", "to_currency": "usd"}),
        facts=(("100",),),
    ),
    T("What is the status of order A-100?", (ORD, {"order_id": "a-100"}), facts=(("shipped",),)),
    T("Is order A-101 shipped yet?", (ORD, {"order_id": "a-101"}), facts=(("processing", "not"),)),
    T(
        "注文B-200の状況を教えて。",
        (ORD, {"order_id": "b-200"}),
        facts=(("delivered", "配達", "配送済", "届"),),
    ),
    T("注文A-100はどうなっていますか？", (ORD, {"order_id": "a-100"}), facts=(("shipped", "発送", "出荷"),)),
    T("What is 37 * 89?", (CALC, {}), facts=(("3293", "3,293"),)),
    T("1234足す5678は？", (CALC, {}), facts=(("6912", "6,912"),)),
    T("What is 2 to the power of 10?", (CALC, {}), facts=(("1024", "1,024"),)),
    # two calls
    T(
        "What is the stock of aluminium and of copper wire?",
        (STK, {"material_name": "aluminium|aluminum"}),
        (STK, {"material_name": "copper wire"}),
        facts=(("120",), ("45",)),
    ),
    T(
        "アルミニウムと強化ガラスの在庫は？",
        (STK, {"material_name": "アルミニウム"}),
        (STK, {"material_name": "強化ガラス"}),
        facts=(("120",), ("8",)),
    ),
    T(
        "東京と大阪の天気を比べて。",
        (WX, {"city": "東京|tokyo"}),
        (WX, {"city": "大阪|osaka"}),
        facts=(("晴", "sunny"), ("雨", "rain")),
    ),
    T(
        "Give me the status of orders A-100 and B-200.",
        (ORD, {"order_id": "a-100"}),
        (ORD, {"order_id": "b-200"}),
        facts=(("shipped",), ("delivered",)),
    ),
    T(
        "注文A-101の状況と、銅線の在庫を教えて。",
        (ORD, {"order_id": "a-101"}),
        (STK, {"material_name": "銅線"}),
        facts=(("processing", "処理中", "準備中", "手配中"), ("45",)),
    ),
    T(
        "Convert 10 USD to JPY, and tell me the weather in Tokyo.",
        (CUR, {"amount": 10, "from_currency": "usd", "to_currency": "jpy"}),
        (WX, {"city": "東京|tokyo"}),
        facts=(("1500", "1,500"), ("sunny", "晴")),
    ),
    # no tool needed
    T("Hello! Who are you?"),
    T("こんにちは。"),
    T("Thank you, that's all."),
    T("ありがとうございました。"),
    T("What is the capital of France?", facts=(("Paris",),)),
    T("日本の首都はどこですか？", facts=(("東京",),)),
    T("Say 'ok' if you can hear me.", facts=(("ok", "OK", "Ok"),)),
    T("自己紹介をしてください。"),
]


def _matches(expected: dict[str, Any], got: dict[str, Any]) -> bool:
    for name, want in expected.items():
        value = got.get(name)
        if isinstance(want, int | float):
            try:
                if float(value) != float(want):  # type: ignore[arg-type]
                    return False
            except (TypeError, ValueError):
                return False
        elif _key(str(value)) not in [_key(w) for w in str(want).split("|")]:
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


async def run_task(
    task: Task, spec: Any, backend: Any, functions: FunctionRegistry, constrained: bool, show: bool = False
) -> Outcome:
    ctx = RunContext(backend, functions, _no_kb, "bench-session", max_steps=8, constrained=constrained)
    orch = Orchestration(spec, ctx, SessionState())
    calls: list[tuple[str, dict[str, Any]]] = []
    steps, answer = 0, ""
    started = time.perf_counter()
    async for ev in orch.ask(task.question):
        if isinstance(ev, TraceEvent):
            o = ev.trace.get("orchestrationTrace", {})
            if "modelInvocationOutput" in o:
                steps += 1
                if show:
                    print(f"      step {steps}: {o['modelInvocationOutput']['rawResponse']['content']}")
            if show and "observation" in o:
                print(f"      observation: {json.dumps(o['observation'], ensure_ascii=False)[:200]}")
            agi = o.get("invocationInput", {}).get("actionGroupInvocationInput")
            if agi:
                calls.append((agi["function"], {p["name"]: p["value"] for p in agi["parameters"]}))
        else:
            answer = getattr(ev, "text", "")
    seconds = time.perf_counter() - started
    missing = [c for c in task.calls if not any(t == c[0] and _matches(c[1], a) for t, a in calls)]
    why = ""
    if missing:
        why = f"missing call {missing[0][0]}({missing[0][1]})"
    elif not task.calls and calls:
        why = f"called {calls[0][0]} though no tool was needed"
    elif not answer.strip():
        why = "empty answer"
    else:
        lost = [alts for alts in task.facts if not any(a in answer for a in alts)]
        if lost:
            why = f"answer lacks {lost[0][0]!r}"
    return Outcome(task, not why, steps, seconds, calls, answer, why)


async def _no_kb(kb_id: str, query: str) -> list[Any]:
    return []


def _numbers(spec: str) -> list[int]:
    """``"1,5-7"`` → ``[1, 5, 6, 7]``."""
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="anthropic.claude-3-haiku-20240307-v1:0", help="model id or alias")
    ap.add_argument("--profile", default="default", help="default (1.5B) or fast (0.5B)")
    ap.add_argument("--modes", default="constrained,free", help="constrained and/or free (unconstrained)")
    ap.add_argument("--limit", type=int, default=0, help="run only the first N tasks")
    ap.add_argument(
        "--only", default="", help="run only these tasks: 1-based numbers and ranges, e.g. 5,19-24"
    )
    ap.add_argument("--json", help="also write the outcomes to this file")
    ap.add_argument("--show", action="store_true", help="print each step's model output and observation")
    args = ap.parse_args()

    settings = Settings(profile=args.profile)
    registry = ModelRegistry.from_plugins(settings, make_plugin_manager(settings.load_plugins))
    resolved, backend = await registry.chat(args.model)
    functions = FunctionRegistry()

    # Each tool is its own function here; the executor name comes from the action group's Lambda ARN,
    # so one action group per function keeps the mapping explicit.
    groups = []
    for name, fn, desc, params in FUNCTIONS:
        functions.register(AgentFunction(name, fn))
        groups.append(
            {
                "actionGroupName": f"{name}-group",
                "actionGroupExecutor": {"lambda": f"arn:aws:lambda:us-east-1:000000000000:function:{name}"},
                "functionSchema": {
                    "functions": [
                        {
                            "name": name,
                            "description": desc,
                            "parameters": {p: {"type": t, "required": True} for p, t in params.items()},
                        }
                    ]
                },
            }
        )
    agent = {
        "agentId": "BENCH",
        "agentName": "bench",
        "instruction": INSTRUCTION,
        "foundationModel": args.model,
    }
    spec = build_spec(AgentSnapshot(agent, "DRAFT", tuple(groups)), "TSTALIASID", functions)
    tasks = TASKS[: args.limit] if args.limit else TASKS
    if args.only:
        tasks = [TASKS[i - 1] for i in _numbers(args.only)]
    print(f"model {resolved.info.id} · {len(tasks)} tasks · modes {args.modes}", flush=True)

    results: dict[str, list[Outcome]] = {}
    for mode in args.modes.split(","):
        outs = []
        for i, task in enumerate(tasks, 1):
            out = await run_task(task, spec, backend, functions, mode == "constrained", args.show)
            outs.append(out)
            mark = "ok " if out.ok else "FAIL"
            print(
                f"  [{mode:11}] {i:2}/{len(tasks)} #{TASKS.index(task) + 1:<2} {mark} {out.steps} steps"
                f" {out.seconds:5.1f}s"
                f"  {task.question[:40]}" + ("" if out.ok else f"  — {out.why}; answer: {out.answer[:60]!r}"),
                flush=True,
            )
        results[mode] = outs

    print("\n| mode | tasks | success | EN | JA | no-tool | mean steps | mean latency | p50 latency |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mode, outs in results.items():

        def rate(sel: list[Outcome]) -> str:
            return f"{sum(o.ok for o in sel)}/{len(sel)}" if sel else "–"

        lat = [o.seconds for o in outs]
        print(
            f"| {mode} | {len(outs)} | **{100 * sum(o.ok for o in outs) / len(outs):.0f}%** | "
            f"{rate([o for o in outs if o.task.lang == 'en'])} | "
            f"{rate([o for o in outs if o.task.lang == 'ja'])} | "
            f"{rate([o for o in outs if not o.task.calls])} | {statistics.mean(o.steps for o in outs):.2f} | "
            f"{statistics.mean(lat):.1f} s | {statistics.median(lat):.1f} s |"
        )
    if len(results) == 2 and all(results.values()):
        c, f = (sum(o.ok for o in results[m]) / len(results[m]) for m in ("constrained", "free"))
        print(
            f"\nconstrained vs free success: {100 * c:.0f}% vs {100 * f:.0f}% ({100 * (c - f):+.0f} points)"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    m: [
                        {
                            "question": o.task.question,
                            "ok": o.ok,
                            "why": o.why,
                            "steps": o.steps,
                            "seconds": o.seconds,
                            "calls": o.calls,
                            "answer": o.answer,
                        }
                        for o in outs
                    ]
                    for m, outs in results.items()
                },
                fh,
                ensure_ascii=False,
                indent=1,
            )


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
