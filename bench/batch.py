"""Batch inference benchmark: records/s of a batch job against a client calling InvokeModel in a loop, in
one run, on the same server and records.

    python bench/batch.py --fast                 # echo, then the bundled 0.5B (llama.cpp)
    python bench/batch.py --fast --records 48 --tokens 24

For each model: N records (Anthropic Messages bodies, greedy, ``--tokens`` output tokens at most) are
(a) sent one after another with boto3 ``invoke_model``, then (b) uploaded as one JSONL object with the
s3 client and run as a CreateModelInvocationJob, polled with GetModelInvocationJob until it ends. Both
are timed by the client, from the first request to the last answer (the job: from the upload to the
final status). The batch job runs records on the model's batch slots (``HANIWA_LLAMA_SLOTS``, 4 by
default; echo: up to half of ``HANIWA_MAX_QUEUE``), the loop one at a time. Prints records/s and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.runtime import bundled
from haniwa.testing.server import serve_in_thread

MODELS_DIR = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))
TOPICS = [
    "tea",
    "rice",
    "trains",
    "kanji",
    "rain",
    "cats",
    "bridges",
    "paper",
    "clocks",
    "salt",
    "maps",
    "bells",
]


def _client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}, read_timeout=600),
    )


def _body(i: int, tokens: int) -> dict[str, Any]:
    return {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": tokens,
        "temperature": 0,
        "messages": [
            {"role": "user", "content": f"Write one short sentence about {TOPICS[i % len(TOPICS)]} ({i})."}
        ],
    }


def loop(rt: Any, model: str, n: int, tokens: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        rt.invoke_model(modelId=model, body=json.dumps(_body(i, tokens)))
    return n / (time.perf_counter() - t0)


def batch(bedrock: Any, s3: Any, model: str, n: int, tokens: int, name: str) -> tuple[float, dict[str, Any]]:
    lines = "\n".join(json.dumps({"recordId": f"r{i}", "modelInput": _body(i, tokens)}) for i in range(n))
    t0 = time.perf_counter()
    s3.put_object(Bucket="bench-batch", Key=f"{name}/in.jsonl", Body=lines.encode())
    arn = bedrock.create_model_invocation_job(
        jobName=name,
        roleArn="arn:aws:iam::000000000000:role/bench",
        modelId=model,
        inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://bench-batch/{name}/"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://bench-batch/out/"}},
    )["jobArn"]
    while (job := bedrock.get_model_invocation_job(jobIdentifier=arn))["status"] not in (
        "Completed",
        "PartiallyCompleted",
        "Failed",
        "Stopped",
    ):
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    if job["successRecordCount"] != n:
        raise SystemExit(f"{name}: {job['status']}, {job['errorRecordCount']} errors: {job.get('message')}")
    return n / elapsed, job


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fast", action="store_true", help="use llamacpp:qwen2.5-coder-0.5b")
    ap.add_argument("--model", default="llamacpp:qwen2.5-coder-1.5b")
    ap.add_argument("--records", type=int, default=32, help="records for the llama.cpp model")
    ap.add_argument("--echo-records", type=int, default=1000, help="records for echo")
    ap.add_argument("--tokens", type=int, default=16, help="output tokens at most per record")
    ap.add_argument("--slots", type=int, default=4, help="HANIWA_LLAMA_SLOTS")
    args = ap.parse_args()
    model = "llamacpp:qwen2.5-coder-0.5b" if args.fast else args.model
    rows = []
    with tempfile.TemporaryDirectory(prefix="haniwa-bench-") as tmp:
        home = Path(tmp)
        MODELS_DIR.mkdir(parents=True, exist_ok=True)
        (home / "models").symlink_to(MODELS_DIR)
        bundled.ensure(model.split(":", 1)[-1], MODELS_DIR)
        settings = Settings(home=home, llama_slots=args.slots)
        with serve_in_thread(create_app(settings)) as url:
            rt, bedrock, s3 = _client("bedrock-runtime", url), _client("bedrock", url), _client("s3", url)
            s3.create_bucket(Bucket="bench-batch")
            print(f"haniwa at {url}; llama.cpp threads {settings.llama_threads()}, slots {args.slots}")
            for name, mid, n in (("echo", "echo:echo", args.echo_records), ("llama", model, args.records)):
                t0 = time.perf_counter()
                rt.invoke_model(modelId=mid, body=json.dumps(_body(0, args.tokens)))  # load, warm
                print(f"{mid}: first request {time.perf_counter() - t0:.1f} s")
                looped = loop(rt, mid, n, args.tokens)
                print(f"{mid}: InvokeModel loop, {n} records: {looped:.2f} records/s")
                batched, job = batch(bedrock, s3, mid, n, args.tokens, f"bench-{name}")
                print(f"{mid}: batch job, {n} records: {batched:.2f} records/s ({job['message']})")
                rows.append((mid, n, looped, batched))
    print("\n| model | records | InvokeModel loop (records/s) | batch job (records/s) | ratio |")
    print("|---|---|---|---|---|")
    for mid, n, looped, batched in rows:
        print(f"| {mid} | {n} | {looped:.2f} | {batched:.2f} | {batched / looped:.2f}× |")


if __name__ == "__main__":
    main()
