"""ApplyGuardrail latency: haniwa's exact, offline detectors on ~100 Japanese and English texts.

    python bench/guardrails.py            # ~10 s on 2 cores
    python bench/guardrails.py --rounds 5

It builds one guardrail with every implemented policy (custom words, PROFANITY, EMAIL, PHONE, card
numbers, IP, URL, ADDRESS, My Number) and prints p50/p95 latency per text (a) in process, through
``haniwa.guardrails.apply`` with the compiled detectors cached, and (b) through boto3
``apply_guardrail`` against a server on 127.0.0.1. Precision and recall on a labelled evaluation set are
a later slice of the issue; this measures speed only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from haniwa.api.app import create_app  # noqa: E402
from haniwa.api.bedrock_guardrails import policy_of  # noqa: E402
from haniwa.config import Settings  # noqa: E402
from haniwa.guardrails.apply import apply  # noqa: E402
from haniwa.guardrails.base import MY_NUMBER_PATTERN  # noqa: E402
from haniwa.testing.server import serve_in_thread  # noqa: E402

__all__ = ["main"]

CONFIG: dict[str, Any] = {
    "name": "bench",
    "blockedInputMessaging": "blocked",
    "blockedOutputsMessaging": "blocked",
    "wordPolicyConfig": {
        "wordsConfig": [{"text": "競合他社"}, {"text": "secret project"}],
        "managedWordListsConfig": [{"type": "PROFANITY"}],
    },
    "sensitiveInformationPolicyConfig": {
        "piiEntitiesConfig": [
            {"type": t, "action": "ANONYMIZE"}
            for t in ("EMAIL", "PHONE", "ADDRESS", "CREDIT_DEBIT_CARD_NUMBER", "IP_ADDRESS", "URL")
        ],
        "regexesConfig": [{"name": "JP_MY_NUMBER", "pattern": MY_NUMBER_PATTERN, "action": "ANONYMIZE"}],
    },
}

_TEMPLATES = [
    "お問い合わせは{n}番の窓口、電話090-{a}-{b}までご連絡ください。",
    "配送先：東京都千代田区丸の内{d}丁目{d}番{d}号、担当 yamada{n}@example.co.jp",
    "ご注文番号{n}{a}{b}の商品は明日発送いたします。返品は https://example.jp/r/{n} から。",
    "マイナンバー 6214 9832 0257 を入力してください。カード 4111 1111 1111 1111 は使えません。",
    "当社の製品は競合他社の製品より{d}割安いと評判です。詳しくは営業部まで。",
    "Please call (415) 555-{a} or email support{n}@example.com before {d} pm.",
    "Server 10.0.{d}.{d} answered in {n} ms; see http://status.example.com/{n}.",
    "The Scunthorpe office ships classic assemblies; order {n}-{a}-{b} is on its way.",
    "What the hell is this {n}? It is a damn mess, honestly.",
    "大阪府大阪市北区梅田{d}-{d}-{d}の倉庫から、０３－１２３４－{a}へ折り返します。",
]


def texts(count: int = 100) -> list[str]:
    """``count`` short JA/EN texts, half with something to find (deterministic)."""
    out = []
    for i in range(count):
        t = _TEMPLATES[i % len(_TEMPLATES)]
        out.append(t.format(n=100 + i, a=f"{(i * 37) % 10000:04d}", b=f"{(i * 91) % 10000:04d}", d=1 + i % 9))
    return out


def _pct(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=20)
    return f"p50 {statistics.median(ms):.2f} ms, p95 {q[18]:.2f} ms (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    corpus = texts()
    policy = policy_of(CONFIG)
    apply(policy, corpus[:1], "INPUT")  # compile the detectors once, as a server does on first use
    local: list[float] = []
    for _ in range(args.rounds):
        for text in corpus:
            t = time.perf_counter()
            apply(policy, [text], "INPUT")
            local.append((time.perf_counter() - t) * 1000)
    print(f"(a) in process, haniwa.guardrails.apply: {_pct(local)}")

    with tempfile.TemporaryDirectory() as home, serve_in_thread(create_app(Settings(home=Path(home)))) as url:
        kw: dict[str, Any] = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": "AKIDEXAMPLE",
            "aws_secret_access_key": "secret-example",
            "config": Config(retries={"max_attempts": 1}),
        }
        gid = boto3.client("bedrock", **kw).create_guardrail(**CONFIG)["guardrailId"]
        runtime = boto3.client("bedrock-runtime", **kw)

        def one(text: str) -> None:
            runtime.apply_guardrail(
                guardrailIdentifier=gid,
                guardrailVersion="DRAFT",
                source="INPUT",
                content=[{"text": {"text": text}}],
            )

        one(corpus[0])
        remote: list[float] = []
        for _ in range(args.rounds):
            for text in corpus:
                t = time.perf_counter()
                one(text)
                remote.append((time.perf_counter() - t) * 1000)
    print(f"(b) boto3 apply_guardrail, server on 127.0.0.1: {_pct(remote)}")


if __name__ == "__main__":
    main()
