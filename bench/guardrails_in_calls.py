"""What a guardrail adds to a model call: boto3 Converse, ConverseStream and InvokeModel against a server on
127.0.0.1 whose model is the echo backend (so the model's own time is near zero and the difference is the
guardrail), each call made with and without ``guardrailConfig`` / the guardrail headers, interleaved.

    python bench/guardrails_in_calls.py            # ~30 s on 2 cores
    python bench/guardrails_in_calls.py --calls 300

The guardrail has word, PII (ANONYMIZE) and My Number policies; the prompts are short Japanese texts, a
third of them with a phone number that the output check masks. The guardrail checks the input once and
the output once (Converse, InvokeModel) or once per sentence (ConverseStream, synchronous mode). Printed:
p50/p95 per call with and without, and the p50 of the difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from haniwa.api.app import create_app  # noqa: E402
from haniwa.config import Settings  # noqa: E402
from haniwa.guardrails.base import MY_NUMBER_PATTERN  # noqa: E402
from haniwa.testing.server import serve_in_thread  # noqa: E402

__all__ = ["main"]

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
CONFIG: dict[str, Any] = {
    "name": "bench-calls",
    "blockedInputMessaging": "お答えできません。",
    "blockedOutputsMessaging": "表示できません。",
    "wordPolicyConfig": {
        "wordsConfig": [{"text": "爆弾"}],
        "managedWordListsConfig": [{"type": "PROFANITY"}],
    },
    "sensitiveInformationPolicyConfig": {
        "piiEntitiesConfig": [
            {"type": t, "action": "ANONYMIZE", "inputAction": "NONE"} for t in ("PHONE", "EMAIL", "ADDRESS")
        ],
        "regexesConfig": [{"name": "JP_MY_NUMBER", "pattern": MY_NUMBER_PATTERN, "action": "ANONYMIZE"}],
    },
}
PROMPTS = [
    "明日の会議は午後3時からです。資料の準備をお願いします。",
    "お問い合わせは090-1234-5678までお願いします。受付は平日のみです。",
    "新製品の発売日はいつですか？価格も教えてください。",
]


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=150, help="calls per operation and setting")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "models.toml").write_text(f'[aliases]\n"{MODEL}" = "echo:echo"\n', encoding="utf-8")
        with serve_in_thread(create_app(Settings(home=home, profile="fast"))) as url:
            kw: dict[str, Any] = {
                "endpoint_url": url,
                "region_name": "us-east-1",
                "aws_access_key_id": "x",
                "aws_secret_access_key": "x",
                "config": Config(retries={"max_attempts": 1}),
            }
            bedrock, rt = boto3.client("bedrock", **kw), boto3.client("bedrock-runtime", **kw)
            gid = bedrock.create_guardrail(**CONFIG)["guardrailId"]
            version = bedrock.create_guardrail_version(guardrailIdentifier=gid)["version"]
            cfg = {"guardrailIdentifier": gid, "guardrailVersion": version}

            def converse(text: str, guarded: bool) -> None:
                extra = {"guardrailConfig": cfg} if guarded else {}
                rt.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": text}]}], **extra)

            def stream(text: str, guarded: bool) -> None:
                extra = {"guardrailConfig": cfg} if guarded else {}
                resp = rt.converse_stream(
                    modelId=MODEL, messages=[{"role": "user", "content": [{"text": text}]}], **extra
                )
                for _ in resp["stream"]:
                    pass

            def invoke(text: str, guarded: bool) -> None:
                body = json.dumps(
                    {
                        "anthropic_version": "bedrock-2023-05-31",
                        "max_tokens": 200,
                        "messages": [{"role": "user", "content": text}],
                    }
                )
                extra = cfg if guarded else {}
                rt.invoke_model(modelId=MODEL, body=body, **extra)["body"].read()

            ops: dict[str, Callable[[str, bool], None]] = {
                "Converse": converse,
                "ConverseStream": stream,
                "InvokeModel": invoke,
            }
            print(f"{args.calls} calls per operation and setting, echo model, server on 127.0.0.1")
            print("| operation | without guardrail p50 / p95 | with guardrail p50 / p95 | added (p50) |")
            print("|---|---|---|---|")
            for name, fn in ops.items():
                for text in PROMPTS:  # warm up both paths
                    fn(text, False)
                    fn(text, True)
                times: dict[bool, list[float]] = {False: [], True: []}
                for i in range(args.calls):
                    text = PROMPTS[i % len(PROMPTS)]
                    for guarded in (False, True) if i % 2 else (True, False):
                        t0 = time.perf_counter()
                        fn(text, guarded)
                        times[guarded].append((time.perf_counter() - t0) * 1000)
                off, on = times[False], times[True]
                added = statistics.median(on) - statistics.median(off)
                print(
                    f"| {name} | {_pct(off, 0.5):.2f} / {_pct(off, 0.95):.2f} ms"
                    f" | {_pct(on, 0.5):.2f} / {_pct(on, 0.95):.2f} ms | {added:+.2f} ms |"
                )


if __name__ == "__main__":
    main()
