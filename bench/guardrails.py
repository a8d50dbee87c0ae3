"""Guardrail quality and speed on haniwa's own JA/EN evaluation set (``bench/guardrail_sets/``).

    python bench/guardrails.py                 # every split, in process + boto3 latency (~10 min)
    python bench/guardrails.py --no-server     # skip the boto3 latency part
    python bench/guardrails.py --judge llamacpp:qwen2.5-coder-1.5b   # with the topic judge (judge.py)

The guardrail is ``bench/guardrail_sets/config.json`` (all content filters and PROMPT_ATTACK at HIGH,
two denied topics, PHONE/ADDRESS/EMAIL/NAME and My Number). For each split (``dev.jsonl``: tuned on;
every ``heldout*.jsonl``: ``heldout`` is held-out v1, ``heldoutN`` is held-out vN; v1–v13 have been
seen (the content classifier trains on v1–v13, bench/guardrail_classifier.py; the mistakes of v1–v6 and
v8–v13 were read, and the topic matcher, bench/guardrail_topic_model.py, was compared with the
similarity score on v1–v7), v14 never) and
language it prints, per policy, precision, recall and false-positive rate (and the mistakes on dev and
v1; on later held-out splits only their count unless ``--show-mistakes``):

- positives of a policy are its rows labelled 1 (``pii`` counts the row's own type only);
- negatives are every row labelled 0 (benign look-alikes of any policy) in that language; a policy's
  false positive is any finding of that policy on one of them;
- ``all`` is the whole guardrail: intervened (blocked or masked) or not.

With ``--judge MODEL`` (default: ``$HANIWA_GUARDRAIL_JUDGE`` or off) the denied topics the embedding
detector is unsure of are ruled on by that chat model; the run reports how often it was asked (per
text) and what a call cost. Side by side, on the same rows: the offline peer
``securevector-guardian-model`` (``svguardian``, Apache-2.0, pure Python) for prompt attacks
(``is_threat``). Latency: ApplyGuardrail p50/p95 per text (a) in process with only the model-free
policies (words, PII, regexes), (b) in process with every policy (embedding model included), (c)
through boto3 against a server on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
# as `haniwa serve` does: idle OpenMP threads that spin make e5 10-20x slower on a busy machine (README)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from haniwa.api.app import create_app  # noqa: E402
from haniwa.api.bedrock_guardrails import policy_of  # noqa: E402
from haniwa.config import Settings  # noqa: E402
from haniwa.guardrails import semantic  # noqa: E402
from haniwa.guardrails.apply import apply  # noqa: E402
from haniwa.guardrails.base import Verdict  # noqa: E402
from haniwa.guardrails.judge import TopicJudge  # noqa: E402
from haniwa.plugins import make_plugin_manager  # noqa: E402
from haniwa.runtime.base import ChatRequest, ChatResult  # noqa: E402
from haniwa.runtime.registry import ModelRegistry  # noqa: E402
from haniwa.testing.server import serve_in_thread  # noqa: E402

__all__ = ["main", "load", "splits", "label", "predicted", "CONFIG"]

SETS = Path(__file__).resolve().parent / "guardrail_sets"
CONFIG: dict[str, Any] = json.loads((SETS / "config.json").read_text("utf-8"))
POLICIES = ("prompt_attack", "content", "topic", "pii", "all")


def splits() -> list[str]:
    """``dev`` then every held-out split present (``heldout``, ``heldout2``, …)."""
    held = sorted(p.stem for p in SETS.glob("heldout*.jsonl"))
    return ["dev", *sorted(held, key=lambda n: int(n[len("heldout") :] or 1))]


def label(split: str) -> str:
    """How a split is named in the table: held-out v1 has been seen (tuned on) since it was written."""
    if split == "heldout":
        return "v1 seen"
    return f"held-out v{split[len('heldout') :]}" if split.startswith("heldout") else split


def load(split: str) -> list[dict[str, Any]]:
    """The rows of a split (the first line is the header)."""
    lines = (SETS / f"{split}.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines[1:] if line.strip()]


def predicted(verdict: Verdict, policy: str, row: dict[str, Any]) -> bool:
    """Whether the guardrail's findings count as ``policy`` firing on ``row``."""
    fired = [f for f in verdict.findings if f.action != "NONE" or f.kind in ("pii", "regex")]
    if policy == "all":
        return verdict.intervened
    if policy == "prompt_attack":
        return any(f.kind == "content" and f.label == "PROMPT_ATTACK" for f in fired)
    if policy == "content":
        return any(f.kind == "content" and f.label != "PROMPT_ATTACK" for f in fired)
    if policy == "topic":
        return any(f.kind == "topic" for f in fired)
    found = {f.label for f in fired if f.kind in ("pii", "regex")}
    if row["label"] == 1 and row["policy"] == "pii":
        return row["category"] in found
    return bool(found)


def _rates(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    tp = sum(1 for y, p in pairs if y and p)
    fp = sum(1 for y, p in pairs if not y and p)
    pos = sum(1 for y, _ in pairs if y)
    neg = len(pairs) - pos
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / pos if pos else None,
        "fpr": fp / neg if neg else None,
        "pos": pos,
        "neg": neg,
    }


def score(rows: list[dict[str, Any]], judge: Callable[[dict[str, Any], str], bool]) -> dict[str, Any]:
    """Per language and policy: precision, recall, FPR."""
    out: dict[str, Any] = {}
    for lang in ("ja", "en"):
        mine = [r for r in rows if r["lang"] == lang]
        for policy in POLICIES:
            pairs = [
                (r["label"] == 1, judge(r, policy))
                for r in mine
                if r["label"] == 0 or policy == "all" or r["policy"] == policy
            ]
            out[f"{lang}/{policy}"] = _rates(pairs)
    return out


def _peer() -> Callable[[str], bool] | None:
    try:
        from svguardian import resolve_runtime
        from svguardian.model.pure_infer import PureGuardian
        from svguardian.serve import analyze
    except ImportError:
        return None
    guardian = PureGuardian.load(resolve_runtime())
    return lambda text: bool(analyze(text, guardian)["is_threat"])


def _judge(model: str) -> TopicJudge | None:
    """A topic judge on its own event loop thread (the models run on it, as on a server's loop)."""
    if model.lower() in ("", "off", "none"):
        return None
    settings = Settings()
    registry = ModelRegistry.from_plugins(settings, make_plugin_manager(settings.load_plugins))
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True, name="judge-loop").start()

    async def converse(req: ChatRequest) -> ChatResult:
        _, chat = await registry.chat(model)
        return await chat.converse(req)

    judge = TopicJudge(model, converse, loop, timeout_s=300.0)
    judge.rule("warm up", policy_of(CONFIG).topics[0])  # loads the model
    judge.calls, judge.ms = 0, 0.0
    return judge


def _fmt(v: float | None) -> str:
    return "  -  " if v is None else f"{v:.2f}"


def _pct(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=20)
    return f"p50 {statistics.median(ms):.1f} ms, p95 {q[18]:.1f} ms (n={len(ms)})"


def _server_latency(texts: list[str]) -> list[float]:
    semantic.forget()  # the in-process runs embedded these texts already: measure them afresh
    with tempfile.TemporaryDirectory() as home, serve_in_thread(create_app(Settings(home=Path(home)))) as url:
        kw: dict[str, Any] = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": "AKIDEXAMPLE",
            "aws_secret_access_key": "secret-example",
            "config": Config(retries={"max_attempts": 1}, read_timeout=120),
        }
        gid = boto3.client("bedrock", **kw).create_guardrail(**CONFIG)["guardrailId"]
        runtime = boto3.client("bedrock-runtime", **kw)
        out = []
        for i, text in enumerate([texts[0], *texts]):
            t = time.perf_counter()
            runtime.apply_guardrail(
                guardrailIdentifier=gid,
                guardrailVersion="DRAFT",
                source="INPUT",
                content=[{"text": {"text": text}}],
            )
            if i:  # the first call loads the model
                out.append((time.perf_counter() - t) * 1000)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-server", action="store_true")
    parser.add_argument("--split", choices=splits(), action="append", help="only these splits")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--show-mistakes", action="store_true", help="also print the mistakes on held-out v2 and later"
    )
    parser.add_argument(
        "--judge",
        default=os.environ.get("HANIWA_GUARDRAIL_JUDGE", "off"),
        help="chat model that rules on unsure topics (off: none)",
    )
    args = parser.parse_args()
    judge = _judge(args.judge)
    policy = policy_of(CONFIG)
    rules_only = replace(policy, content=(), topics=(), grounding=())
    peer = _peer()
    figures: dict[str, Any] = {}
    timing: dict[str, list[float]] = {"rules": [], "all": [], "peer": [], "judged": []}
    apply(policy, ["warm up"], "INPUT")  # loads the embedding model and the seed vectors
    chosen = tuple(args.split or splits())
    # every split without the judge; with --judge, every split again with it (embeddings are cached)
    runs = [(split, None) for split in chosen] + [(split, judge) for split in chosen if judge is not None]
    asked: dict[str, list[float]] = {}
    for split, judging in runs:
        rows = load(split)
        key = split + ("+judge" if judging else "")
        verdicts: dict[str, Verdict] = {}
        asked[key] = []
        for r in rows:
            t = time.perf_counter()
            verdicts[r["text"]] = apply(policy, [r["text"]], "INPUT", judge=judging)
            timing["judged" if judging else "all"].append((time.perf_counter() - t) * 1000)
            asked[key] += [f.judge_ms for f in verdicts[r["text"]].findings if f.judge_ms is not None]
            if judging:
                continue
            t = time.perf_counter()
            apply(rules_only, [r["text"]], "INPUT")
            timing["rules"].append((time.perf_counter() - t) * 1000)
        figures[key] = score(rows, lambda r, p, v=verdicts: predicted(v[r["text"]], p, r))
        if peer is not None and not judging:
            verdict_peer = {}
            for r in rows:
                t = time.perf_counter()
                verdict_peer[r["text"]] = peer(r["text"])
                timing["peer"].append((time.perf_counter() - t) * 1000)
            peer_fig = score(rows, lambda r, p, v=verdict_peer: v[r["text"]])
            figures[key + "/peer"] = {k: v for k, v in peer_fig.items() if k.endswith("prompt_attack")}
        misses = [
            f"  {r['lang']} {r['policy']}/{r['category']} label={r['label']}: {r['text']}"
            for r in rows
            if (r["label"] == 1) != predicted(verdicts[r["text"]], r["policy"] if r["label"] else "all", r)
        ]
        figures[key + "/misses"] = (
            misses if split in ("dev", "heldout") or args.show_mistakes else len(misses)
        )
    keys = [split + ("+judge" if judging else "") for split, judging in runs]
    print(f"{'split':18} lang policy         precision recall  FPR   (pos/neg)   | peer svguardian P/R/FPR")
    for key in keys:
        name = label(key.removesuffix("+judge")) + (" +judge" if key.endswith("+judge") else "")
        for k, m in figures[key].items():
            lang, pol = k.split("/")
            line = (
                f"{name:18} {lang:4} {pol:14} {_fmt(m['precision']):>9} {_fmt(m['recall']):>6} "
                f"{_fmt(m['fpr']):>5}  ({m['pos']}/{m['neg']})"
            )
            pm = figures.get(key + "/peer", {}).get(k)
            if pm:
                line += f"   | {_fmt(pm['precision'])} / {_fmt(pm['recall'])} / {_fmt(pm['fpr'])}"
            print(line)
    for key in keys:
        shown = figures[key + "/misses"]
        print(f"{key} mistakes ({shown if isinstance(shown, int) else len(shown)}):")
        if key.removesuffix("+judge") in ("dev", "heldout") or args.show_mistakes:
            print("\n".join(shown))
        else:  # printing them would make the split seen: only the count unless asked
            print("  (not printed: a held-out split stays unseen; --show-mistakes prints them)")
    if judge is not None:
        for split in chosen:
            ms, n = asked[split + "+judge"], len(load(split))
            cost = f", {_pct(ms)} a call" if len(ms) > 1 else ""
            print(f"judge {judge.model} on {label(split)}: asked for {len(ms)} of {n} texts{cost}")
        figures["judge"] = {"model": judge.model, "asked": {k: len(v) for k, v in asked.items()}}
        figures["judge"]["failures"] = judge.failures
        print(f"(b') in process, every policy + the judge: {_pct(timing['judged'])}")
    print(f"(a) in process, model-free policies (words, PII, regexes): {_pct(timing['rules'])}")
    print(f"(b) in process, every policy (embedding model, 2 threads): {_pct(timing['all'])}")
    if timing["peer"]:
        print(f"peer svguardian analyze(), in process: {_pct(timing['peer'])}")
    print(f"load average while measuring (1/5/15 min): {os.getloadavg()}")
    if not args.no_server:
        texts = [r["text"] for r in load(splits()[-1])]
        print(f"(c) boto3 apply_guardrail, every policy, server on 127.0.0.1: {_pct(_server_latency(texts))}")
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=1), "utf-8")


if __name__ == "__main__":
    main()
