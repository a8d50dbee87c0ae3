"""Batch inference through boto3 only: JSONL in haniwa's S3, CreateModelInvocationJob, the output and the
manifest read back with the s3 client, against a real haniwa with the echo model."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_process, serve_in_thread
from tests.conftest import ECHO_CATALOG, client_kwargs

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
SLOW = "echo:slow"  # echo, 20 ms a token: jobs that are still running when the test looks
CATALOG = ECHO_CATALOG.replace(
    "[aliases]",
    '[models."echo:slow"]\nbackend = "echo"\nkind = "chat"\noptions = { delay_ms = 20 }\n\n[aliases]',
)
ROLE = "arn:aws:iam::123456789012:role/batch"
TERMINAL = {"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"}


@pytest.fixture
def batch_home(tmp_path: Path) -> Path:
    h = tmp_path / "haniwa-home"
    h.mkdir()
    (h / "models.toml").write_text(CATALOG, encoding="utf-8")
    return h


@pytest.fixture
def url(batch_home: Path) -> Iterator[str]:
    with serve_in_thread(create_app(Settings(home=batch_home, profile="fast"))) as u:
        yield u


@pytest.fixture
def bedrock(url: str) -> Any:
    return boto3.client("bedrock", **client_kwargs(url))


@pytest.fixture
def s3(url: str) -> Any:
    client = boto3.client("s3", **client_kwargs(url))
    client.create_bucket(Bucket="batch-in")
    client.create_bucket(Bucket="batch-out")
    return client


def anthropic(text: str) -> dict[str, Any]:
    return {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": text}],
    }


def converse(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"text": text}]}], "inferenceConfig": {"maxTokens": 50}}


def put_jsonl(s3: Any, key: str, lines: list[str]) -> None:
    s3.put_object(Bucket="batch-in", Key=key, Body="\n".join(lines).encode())


def create(bedrock: Any, name: str, *, model: str = MODEL, prefix: str = "in/", **kw: Any) -> str:
    return str(
        bedrock.create_model_invocation_job(
            jobName=name,
            roleArn=ROLE,
            modelId=model,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://batch-in/{prefix}"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://batch-out/results/"}},
            **kw,
        )["jobArn"]
    )


def wait(
    bedrock: Any, arn: str, until: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = bedrock.get_model_invocation_job(jobIdentifier=arn)
        if until(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def ended(job: dict[str, Any]) -> bool:
    return job["status"] in TERMINAL


def read(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket="batch-out", Key=key)["Body"].read())


def outputs(s3: Any, arn: str, name: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    job_id = arn.rsplit("/", 1)[-1]
    lines = read(s3, f"results/{job_id}/{name}.out").decode().splitlines()
    return [json.loads(x) for x in lines], json.loads(read(s3, f"results/{job_id}/manifest.json.out"))


def test_a_malformed_record_among_others_every_other_answer_in_order(bedrock: Any, s3: Any) -> None:
    lines = [
        json.dumps({"recordId": f"r{i:03d}", "modelInput": anthropic(f"質問 {i} です")}) for i in range(40)
    ]
    lines.insert(7, '{"recordId": "broken", "modelInput": ')  # cut short
    lines.insert(20, "")  # a blank line is no record
    lines.insert(30, json.dumps({"recordId": "no-input"}))
    put_jsonl(s3, "in/records.jsonl", lines)
    arn = create(bedrock, "with-bad-records", clientRequestToken="token-1")
    job = wait(bedrock, arn, ended)
    assert job["status"] == "PartiallyCompleted"
    assert job["modelInvocationType"] == "InvokeModel" and job["clientRequestToken"] == "token-1"
    assert (job["totalRecordCount"], job["processedRecordCount"]) == (42, 42)
    assert (job["successRecordCount"], job["errorRecordCount"]) == (40, 2)
    assert "42 of 42" in job["message"] and job["endTime"] >= job["submitTime"]

    rows, manifest = outputs(s3, arn, "records.jsonl")
    assert len(rows) == 42
    answers = [r for r in rows if "modelOutput" in r]
    assert [r["recordId"] for r in answers] == [f"r{i:03d}" for i in range(40)]
    for r in answers:
        n = int(r["recordId"][1:])
        assert r["modelInput"] == anthropic(f"質問 {n} です")
        assert r["modelOutput"]["content"][0]["text"] == f"質問 {n} です"  # echo answers its input
    errors = [(i, r) for i, r in enumerate(rows) if "error" in r]
    assert [i for i, _ in errors] == [7, 29]  # the blank line took no place
    assert (
        errors[0][1]["error"]["errorCode"] == 400
        and "not valid JSON" in errors[0][1]["error"]["errorMessage"]
    )
    assert errors[1][1]["recordId"] == "no-input" or errors[1][1]["recordId"].startswith("RECORD")
    tokens_in = sum(r["modelOutput"]["usage"]["input_tokens"] for r in answers)
    tokens_out = sum(r["modelOutput"]["usage"]["output_tokens"] for r in answers)
    assert manifest == {
        "totalRecordCount": 42,
        "processedRecordCount": 42,
        "successRecordCount": 40,
        "errorRecordCount": 2,
        "inputTokenCount": tokens_in,
        "outputTokenCount": tokens_out,
    }
    # the same clientRequestToken is the same job; the same name is a conflict
    assert create(bedrock, "with-bad-records", clientRequestToken="token-1") == arn
    with pytest.raises(ClientError) as err:
        create(bedrock, "with-bad-records")
    assert err.value.response["Error"]["Code"] == "ConflictException"


def test_converse_records_over_several_files(bedrock: Any, s3: Any) -> None:
    put_jsonl(
        s3,
        "conv/a.jsonl",
        [json.dumps({"recordId": f"a{i}", "modelInput": converse(f"a{i}")}) for i in range(5)],
    )
    put_jsonl(s3, "conv/b.jsonl", [json.dumps({"modelInput": converse(f"b{i}")}) for i in range(3)])
    put_jsonl(s3, "conv/readme.txt", ["not an input"])
    arn = create(bedrock, "conv", prefix="conv/", modelInvocationType="Converse")
    job = wait(bedrock, arn, ended)
    assert job["status"] == "Completed" and job["successRecordCount"] == 8
    a, manifest = outputs(s3, arn, "a.jsonl")
    b, _ = outputs(s3, arn, "b.jsonl")
    assert [r["modelOutput"]["output"]["message"]["content"][0]["text"] for r in a] == [
        f"a{i}" for i in range(5)
    ]
    assert [r["recordId"] for r in b] == [f"RECORD{i:010d}" for i in range(1, 4)]
    assert manifest["processedRecordCount"] == 8 and manifest["errorRecordCount"] == 0
    # a Converse body that the Converse shape refuses is that record's ValidationException
    put_jsonl(s3, "conv2/x.jsonl", [json.dumps({"recordId": "x", "modelInput": {"messages": "hi"}})])
    arn = create(bedrock, "conv-bad", prefix="conv2/", modelInvocationType="Converse")
    job = wait(bedrock, arn, ended)
    rows, _ = outputs(s3, arn, "x.jsonl")
    assert job["status"] == "PartiallyCompleted" and rows[0]["error"]["errorCode"] == 400


def test_refusals(bedrock: Any, s3: Any) -> None:
    with pytest.raises(ClientError) as err:
        create(bedrock, "nomodel", model="no-such.model-v1")
    assert err.value.response["Error"]["Code"] in ("ResourceNotFoundException", "ValidationException")
    with pytest.raises(ClientError) as err:
        bedrock.get_model_invocation_job(jobIdentifier="abcdefabcdef")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    arn = create(bedrock, "empty", prefix="nothing-here/")  # no .jsonl: the job fails and says why
    job = wait(bedrock, arn, ended)
    assert job["status"] == "Failed" and "no .jsonl" in job["message"]
    with pytest.raises(ClientError) as err:
        bedrock.stop_model_invocation_job(jobIdentifier=arn)
    assert err.value.response["Error"]["Code"] == "ConflictException"


def test_stop_publishes_what_was_written(bedrock: Any, s3: Any) -> None:
    put_jsonl(
        s3,
        "slow/s.jsonl",
        [json.dumps({"recordId": f"s{i}", "modelInput": converse("one two three")}) for i in range(400)],
    )
    arn = create(bedrock, "to-stop", model=SLOW, prefix="slow/", modelInvocationType="Converse")
    seen = {
        wait(bedrock, arn, lambda j: j["status"] == "InProgress" and j["processedRecordCount"] >= 40)[
            "status"
        ]
    }
    job = bedrock.get_model_invocation_job(jobIdentifier=arn)
    assert "records/s measured" in job["message"] and "s left" in job["message"]
    bedrock.stop_model_invocation_job(jobIdentifier=arn)
    job = wait(bedrock, arn, lambda j: (seen.add(j["status"]), ended(j))[1])
    assert job["status"] == "Stopped" and seen <= {"InProgress", "Stopping", "Stopped"}
    rows, manifest = outputs(s3, arn, "s.jsonl")
    assert 40 <= len(rows) < 400
    assert [r["recordId"] for r in rows] == [f"s{i}" for i in range(len(rows))]
    assert manifest["processedRecordCount"] == len(rows) == job["processedRecordCount"]
    assert manifest["totalRecordCount"] == 400


def test_a_job_past_its_timeout_expires(bedrock: Any, s3: Any, batch_home: Path) -> None:
    put_jsonl(
        s3,
        "exp/e.jsonl",
        [json.dumps({"recordId": f"e{i}", "modelInput": converse("one two")}) for i in range(400)],
    )
    arn = create(
        bedrock,
        "to-expire",
        model=SLOW,
        prefix="exp/",
        modelInvocationType="Converse",
        timeoutDurationInHours=24,
    )
    job = wait(bedrock, arn, lambda j: j["processedRecordCount"] >= 10)
    assert job["timeoutDurationInHours"] == 24
    assert 23.9 * 3600 < (job["jobExpirationTime"] - job["submitTime"]).total_seconds() <= 24 * 3600
    # a day is long for a test: the job's expiry is moved to now, as if the day had passed
    with sqlite3.connect(batch_home / "haniwa.db") as db:
        db.execute("UPDATE batch_jobs SET expires = ?", (time.time(),))
    job = wait(bedrock, arn, ended)
    assert job["status"] == "Expired"
    rows, manifest = outputs(s3, arn, "e.jsonl")
    assert manifest["processedRecordCount"] == len(rows) < 400
    listed = bedrock.list_model_invocation_jobs(statusEquals="Expired")["invocationJobSummaries"]
    assert [j["jobArn"] for j in listed] == [arn]


def test_list_filters(bedrock: Any, s3: Any) -> None:
    put_jsonl(s3, "in/a.jsonl", [json.dumps({"modelInput": anthropic("x")})])
    arns = [create(bedrock, f"list-{n}") for n in ("alpha", "beta", "gamma")]
    for arn in arns:
        wait(bedrock, arn, ended)
    summaries = bedrock.list_model_invocation_jobs()["invocationJobSummaries"]
    assert [j["jobArn"] for j in summaries] == arns[::-1]  # newest first, as Bedrock sorts
    asc = bedrock.list_model_invocation_jobs(sortOrder="Ascending", nameContains="a")[
        "invocationJobSummaries"
    ]
    assert [j["jobName"] for j in asc] == ["list-alpha", "list-beta", "list-gamma"]
    assert (
        bedrock.list_model_invocation_jobs(nameContains="bet")["invocationJobSummaries"][0]["jobArn"]
        == arns[1]
    )
    first = summaries[-1]["submitTime"]
    after = bedrock.list_model_invocation_jobs(submitTimeAfter=first)["invocationJobSummaries"]
    assert len(after) == 3
    assert bedrock.list_model_invocation_jobs(statusEquals="Failed")["invocationJobSummaries"] == []
    paged = bedrock.get_paginator("list_model_invocation_jobs").paginate(PaginationConfig={"PageSize": 2})
    assert [j["jobArn"] for p in paged for j in p["invocationJobSummaries"]] == arns[::-1]


# -- kill -9 -------------------------------------------------------------------------------------------
def _start(home: Path, port: int) -> subprocess.Popen[bytes]:
    return serve_in_process(home, port)


def test_kill_9_resumes_after_the_last_written_record(batch_home: Path) -> None:
    n = 300
    folder = batch_home / "s3" / "batch-in" / "kill"
    folder.mkdir(parents=True)
    (batch_home / "s3" / "batch-out").mkdir()
    (folder / "k.jsonl").write_text(
        "\n".join(json.dumps({"recordId": f"k{i}", "modelInput": converse(f"番号 {i}")}) for i in range(n)),
        encoding="utf-8",
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = _start(batch_home, port)
    try:
        bedrock = boto3.client("bedrock", **client_kwargs(url))
        arn = create(bedrock, "killed", model=SLOW, prefix="kill/", modelInvocationType="Converse")
        before = wait(bedrock, arn, lambda j: j["processedRecordCount"] >= 30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    staged = batch_home / "batch" / arn.rsplit("/", 1)[-1] / "0.out"
    written = len(staged.read_bytes().splitlines())
    assert 30 <= written < n and before["processedRecordCount"] <= written
    proc = _start(batch_home, port)
    try:
        bedrock = boto3.client("bedrock", **client_kwargs(url))
        s3 = boto3.client("s3", **client_kwargs(url))
        job = wait(bedrock, arn, ended, timeout=120)
        rows, manifest = outputs(s3, arn, "k.jsonl")
        assert [r for r in rows if "error" in r] == []
        assert job["status"] == "Completed"
        assert (job["processedRecordCount"], job["successRecordCount"]) == (n, n)
        rows, manifest = outputs(s3, arn, "k.jsonl")
        # nothing lost, nothing twice, in input order
        assert [r["recordId"] for r in rows] == [f"k{i}" for i in range(n)]
        assert [r["modelOutput"]["output"]["message"]["content"][0]["text"] for r in rows] == [
            f"番号 {i}" for i in range(n)
        ]
        assert manifest["processedRecordCount"] == manifest["successRecordCount"] == n
        with sqlite3.connect(batch_home / "haniwa.db") as db:
            runs = db.execute("SELECT count(*) FROM invocations WHERE model_id = ?", (SLOW,)).fetchone()[0]
        # records answered but not yet written when the kill came ran again (at most one window's worth)
        assert n <= runs <= n + 4 * 32
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_line_over_the_body_limit_is_an_error_record(batch_home: Path) -> None:
    settings = Settings(home=batch_home, profile="fast", max_body_bytes=2000)
    with serve_in_thread(create_app(settings)) as u:
        s3 = boto3.client("s3", **client_kwargs(u))
        bedrock = boto3.client("bedrock", **client_kwargs(u))
        s3.create_bucket(Bucket="batch-in")
        s3.create_bucket(Bucket="batch-out")
        huge = json.dumps({"recordId": "huge", "modelInput": converse("長い" * 5000)})
        small = [json.dumps({"recordId": f"s{i}", "modelInput": converse(f"s{i}")}) for i in range(3)]
        put_jsonl(s3, "long/l.jsonl", [small[0], huge, *small[1:]])
        arn = create(bedrock, "long-line", prefix="long/", modelInvocationType="Converse")
        job = wait(bedrock, arn, ended)
        rows, manifest = outputs(s3, arn, "l.jsonl")
    assert job["status"] == "PartiallyCompleted"
    assert [r.get("recordId") for r in rows] == ["s0", "RECORD0000000002", "s1", "s2"]
    assert "longer than 2000 bytes" in rows[1]["error"]["errorMessage"]
    assert (manifest["successRecordCount"], manifest["errorRecordCount"]) == (3, 1)
