"""Model customization through boto3 against a real haniwa: create-time checks, failures that name the file
and the line, idempotent creation, provisioned throughput and deployments on the wire.

Jobs here never reach the trainer: their training file is larger than what CreateModelCustomizationJob
reads (so it is checked by the job) and holds a bad line, so each job fails while reading its data. The
training itself, serving and the before/after comparison are in tests/test_customization_model.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.customization.base import FAMILIES, family_of, parse_hyperparameters
from haniwa.customization.data import DataError, parse_lines
from haniwa.customization.service import CHEAP_CHECK_BYTES
from haniwa.errors import ValidationError
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs

BASE = "amazon.nova-micro-v1:0:128k"  # a customizable id; the test catalog sends it to the bundled 0.5B
GOOD = [{"prompt": f"Q{i}?", "completion": f"A{i}."} for i in range(3)]


def _jsonl(rows: list[Any]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return str(err["Code"]), str(err["Message"])


def _job(name: str, training: str = "s3://train/data.jsonl", **extra: Any) -> dict[str, Any]:
    return {
        "jobName": name,
        "customModelName": f"{name}-model",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "baseModelIdentifier": BASE,
        "trainingDataConfig": {"s3Uri": training},
        "outputDataConfig": {"s3Uri": "s3://out/jobs/"},
        **extra,
    }


@pytest.fixture
def world(settings: Settings) -> Any:
    app = create_app(settings)
    with serve_in_thread(app) as url:
        s3 = boto3.client("s3", **client_kwargs(url))
        for bucket in ("train", "out"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket="train", Key="data.jsonl", Body=_jsonl(GOOD))
        # past what create reads: line 2 is checked by the job
        filler = json.dumps({"prompt": "p", "completion": "c" * 1000}) + "\n"
        big = _jsonl(GOOD[:1]) + b"{not json\n" + filler.encode() * (CHEAP_CHECK_BYTES // len(filler) + 1)
        s3.put_object(Bucket="train", Key="big.jsonl", Body=big)
        yield app.state.platform, boto3.client("bedrock", **client_kwargs(url)), s3, url


def _wait_status(bedrock: Any, arn: str, want: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = bedrock.get_model_customization_job(jobIdentifier=arn)
        if job["status"] == want:
            return dict(job)
        assert job["status"] == "InProgress" and time.monotonic() < deadline, job
        time.sleep(0.1)


# -- the domain on its own ---------------------------------------------------------------------------------
def test_hyperparameters_are_checked_against_the_family_range() -> None:
    assert family_of("amazon.titan-text-lite-v1:0:4k") == "Amazon Titan Text"
    assert family_of("us.meta.llama3-1-8b-instruct-v1:0") == "Meta Llama"
    assert (
        family_of("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0:300k") == "Amazon Nova"
    )
    hp = parse_hyperparameters("Amazon Titan Text", {"epochCount": "2", "learningRate": "0.00001"})
    assert (hp.epochs, hp.batch_size, hp.warmup_steps) == (2, 1, 5)
    assert hp.lora.rank == 8 and hp.lora.target_modules == ("q_proj", "k_proj", "v_proj", "o_proj")
    assert hp.lora_learning_rate == pytest.approx(0.0002)  # the documented LoRA multiplier (20x)
    with pytest.raises(ValidationError, match="between 1 and 5 for Amazon Nova"):
        parse_hyperparameters("Amazon Nova", {"epochCount": "6"})
    with pytest.raises(ValidationError, match="must be an integer"):
        parse_hyperparameters("Amazon Titan Text", {"batchSize": "1.5"})
    with pytest.raises(ValidationError, match="unknown hyperparameter"):
        parse_hyperparameters("Amazon Titan Text", {"epochs": "1"})
    with pytest.raises(ValidationError, match="loraTargetModules"):
        parse_hyperparameters("Amazon Titan Text", {"loraTargetModules": "q_proj,lm_head"})
    assert set(FAMILIES) >= {"Amazon Titan Text", "Amazon Nova", "Meta Llama", "Anthropic Claude 3 Haiku"}


def test_every_data_format_parses_and_a_bad_line_is_named() -> None:
    conv = {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "丁寧に答える。"}],
        "messages": [
            {"role": "user", "content": [{"text": "こんにちは"}]},
            {"role": "assistant", "content": [{"text": "こんにちは。ご用件は？"}]},
        ],
    }
    rows = parse_lines([json.dumps(conv), "", json.dumps(GOOD[0])], "FINE_TUNING", "s3://b/k")
    assert rows[0] == {
        "system": "丁寧に答える。",
        "turns": [{"role": "user", "content": "こんにちは"}],
        "completion": "こんにちは。ご用件は？",
    }
    assert rows[1]["completion"] == "A0."
    assert parse_lines(['{"input": "本文"}'], "CONTINUED_PRE_TRAINING", "s3://b/k") == [{"text": "本文"}]
    # distillation prompts need no completion
    assert parse_lines(['{"prompt": "質問"}'], "DISTILLATION", "s3://b/k")[0]["completion"] is None
    for lines, kind, where in (
        ([json.dumps(GOOD[0]), "{oops"], "FINE_TUNING", "line 2: not valid JSON"),
        (['{"prompt": "q"}'], "FINE_TUNING", "line 1: completion is missing"),
        (['{"input": "x"}'], "FINE_TUNING", 'line 1: {"input"} lines are for CONTINUED_PRE_TRAINING'),
        (['{"prompt": "q", "completion": "a"}'], "CONTINUED_PRE_TRAINING", "line 1: continued pre-training"),
        ([], "FINE_TUNING", "no training examples"),
    ):
        with pytest.raises(DataError) as err:
            parse_lines(lines, kind, "s3://b/train.jsonl")
        assert "s3://b/train.jsonl" in str(err.value) and where in str(err.value)


# -- the API ---------------------------------------------------------------------------------------------
def test_create_refuses_bad_input_with_the_reason(world: Any) -> None:
    _, bedrock, s3, _ = world
    s3.put_object(Bucket="train", Key="bad.jsonl", Body=_jsonl(GOOD) + b'{"prompt": "no answer"}\n')
    cases = [
        (_job("a", hyperParameters={"epochCount": "11"}), "epochCount must be between 1 and 5"),
        (_job("a", hyperParameters={"learningRate": "1"}), "learningRate must be between 1e-06 and 0.0001"),
        (_job("a", "s3://train/bad.jsonl"), "s3://train/bad.jsonl line 4: completion is missing"),
        (_job("a", "s3://train/missing.jsonl"), "s3://train/missing.jsonl does not exist"),
        (_job("a", "not-a-uri"), "trainingDataConfig.s3Uri"),
        ({**_job("a"), "baseModelIdentifier": "amazon.titan-text-lite-v1:0:4k"}, "cannot be customized"),
        ({**_job("a"), "customizationType": "DISTILLATION"}, "teacherModelConfig"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ClientError) as err:
            bedrock.create_model_customization_job(**kwargs)
        assert _code(err)[0] == "ValidationException" and message in _code(err)[1], (message, _code(err))
    assert bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"] == []
    with pytest.raises(ClientError) as err:
        bedrock.get_model_customization_job(jobIdentifier="nosuchjob")
    assert _code(err)[0] == "ResourceNotFoundException"


def test_a_bad_line_past_the_create_check_fails_the_job_naming_file_and_line(world: Any) -> None:
    _, bedrock, _, url = world
    arn = bedrock.create_model_customization_job(**_job("big", "s3://train/big.jsonl"))["jobArn"]
    assert ":model-customization-job/amazon.nova-micro-v1/" in arn
    job = _wait_status(bedrock, arn, "Failed")
    assert (
        job["failureMessage"]
        == "s3://train/big.jsonl line 2: not valid JSON (Expecting property name enclosed in double quotes)"
    )
    assert job["customizationType"] == "FINE_TUNING" and "outputModelArn" not in job
    summaries = bedrock.list_model_customization_jobs(statusEquals="Failed")["modelCustomizationJobSummaries"]
    assert [s["jobName"] for s in summaries] == ["big"]
    # names are unique; a repeated clientRequestToken returns the first job
    with pytest.raises(ClientError) as err:
        bedrock.create_model_customization_job(**_job("big", "s3://train/big.jsonl"))
    assert _code(err)[0] in ("ConflictException", "ResourceInUseException")
    token = {"clientRequestToken": "tok-1"}
    first = bedrock.create_model_customization_job(**_job("again", "s3://train/big.jsonl", **token))["jobArn"]
    second = bedrock.create_model_customization_job(**_job("again", "s3://train/big.jsonl", **token))[
        "jobArn"
    ]
    assert first == second


def test_provisioned_throughput_and_deployments_serve_models_by_arn(world: Any) -> None:
    platform, bedrock, _, url = world
    arn = bedrock.create_model_customization_job(**_job("m", "s3://train/big.jsonl"))["jobArn"]
    _wait_status(bedrock, arn, "Failed")
    # a foundation model can be provisioned too: its ARN then answers InvokeModel and Converse
    pt = bedrock.create_provisioned_model_throughput(
        modelUnits=1,
        provisionedModelName="pt-echo",
        modelId="anthropic.claude-3-haiku-20240307-v1:0:200k",
        clientRequestToken="t",
    )["provisionedModelArn"]
    assert (
        pt
        == bedrock.create_provisioned_model_throughput(
            modelUnits=1,
            provisionedModelName="pt-echo",
            modelId="anthropic.claude-3-haiku-20240307-v1:0:200k",
            clientRequestToken="t",
        )["provisionedModelArn"]
    )
    # listed where the playground's model pickers look (ListFoundationModels)
    listed_ids = [m["modelId"] for m in bedrock.list_foundation_models()["modelSummaries"]]
    assert pt.rsplit("/", 1)[-1] in listed_ids
    got = bedrock.get_provisioned_model_throughput(provisionedModelId=pt)
    assert got["status"] == "InService" and got["provisionedModelName"] == "pt-echo"
    runtime = boto3.client("bedrock-runtime", **client_kwargs(url))
    out = runtime.converse(modelId=pt, messages=[{"role": "user", "content": [{"text": "hello"}]}])
    assert out["output"]["message"]["content"][0]["text"]
    bedrock.update_provisioned_model_throughput(provisionedModelId=pt, desiredProvisionedModelName="pt-2")
    assert bedrock.get_provisioned_model_throughput(provisionedModelId=pt)["provisionedModelName"] == "pt-2"
    listed = bedrock.list_provisioned_model_throughputs()["provisionedModelSummaries"]
    assert [p["provisionedModelArn"] for p in listed] == [pt]
    bedrock.delete_provisioned_model_throughput(provisionedModelId=pt)
    with pytest.raises(ClientError) as err:
        runtime.converse(modelId=pt, messages=[{"role": "user", "content": [{"text": "hello"}]}])
    assert _code(err)[0] == "ResourceNotFoundException"
    # deployments take custom models only
    with pytest.raises(ClientError) as err:
        bedrock.create_custom_model_deployment(
            modelDeploymentName="d",
            modelArn="arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
        )
    assert _code(err)[0] == "ValidationException"
    record = asyncio.run(platform.customization.get_job(arn)).record
    asyncio.run(platform.customization.add_model(record, Path("adapter.gguf")))
    model = bedrock.list_custom_models()["modelSummaries"][0]
    assert model["modelName"] == "m-model" and model["modelStatus"] == "Active"
    dep = bedrock.create_custom_model_deployment(modelDeploymentName="d", modelArn=model["modelArn"])
    got_dep = bedrock.get_custom_model_deployment(
        customModelDeploymentIdentifier=dep["customModelDeploymentArn"]
    )
    assert got_dep["status"] == "Active" and got_dep["modelArn"] == model["modelArn"]
    with pytest.raises(ClientError) as err:  # in use
        bedrock.delete_custom_model(modelIdentifier=model["modelArn"])
    assert _code(err)[0] in ("ConflictException", "ResourceInUseException")
    bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=dep["customModelDeploymentArn"])
    bedrock.delete_custom_model(modelIdentifier=model["modelArn"])
    assert bedrock.list_custom_models()["modelSummaries"] == []


def test_the_cli_follows_a_job_to_its_end(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import socket

    from click.testing import CliRunner

    from haniwa.cli import cli

    for name in list(os.environ):
        if name.startswith("HANIWA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HANIWA_HOME", str(home))
    monkeypatch.setenv("HANIWA_PROFILE", "fast")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HANIWA_PORT", str(s.getsockname()[1]))
    folder = home / "s3" / "train"
    folder.mkdir(parents=True)
    filler = json.dumps({"prompt": "p", "completion": "c" * 1000}) + "\n"
    big = _jsonl(GOOD[:1]) + b"{not json\n" + filler.encode() * (CHEAP_CHECK_BYTES // len(filler) + 1)
    (folder / "big.jsonl").write_bytes(big)

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["customize", *args], catch_exceptions=False)

    common = ["--base-model", BASE, "--training", "s3://train/big.jsonl", "--output", "s3://train/out/"]
    bad = run("create", "j0", *common, "-p", "epochCount=9")
    assert bad.exit_code == 1 and "epochCount must be between 1 and 5" in bad.output, bad.output
    followed = run("create", "j1", *common)
    assert followed.exit_code == 1, followed.output
    assert "j1: Failed" in followed.output and "big.jsonl line 2: not valid JSON" in followed.output
    listed = run("list")
    assert "j1" in listed.output and "Failed" in listed.output
    got = run("get", "j1")
    assert got.exit_code == 0 and '"status": "Failed"' in got.output and '"haniwa"' in got.output


def test_model_import_takes_a_gguf_and_refuses_other_sources(world: Any) -> None:
    _, bedrock, s3, _ = world
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="mine/model.gguf", Body=b"GGUF" + b"\0" * 64)
    s3.put_object(Bucket="models", Key="hf/config.json", Body=b"{}")
    s3.put_object(Bucket="models", Key="bad.gguf", Body=b"not a gguf")

    def start(name: str, uri: str) -> str:
        return str(
            bedrock.create_model_import_job(
                jobName=name,
                importedModelName=f"{name}-model",
                roleArn="arn:aws:iam::123456789012:role/r",
                modelDataSource={"s3DataSource": {"s3Uri": uri}},
            )["jobArn"]
        )

    def finished(arn: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while (job := bedrock.get_model_import_job(jobIdentifier=arn))["status"] == "InProgress":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        return dict(job)

    ok = finished(start("ok", "s3://models/mine/"))  # a prefix holding one GGUF
    assert ok["status"] == "Completed" and ":imported-model/" in ok["importedModelArn"]
    hf = finished(start("hf", "s3://models/hf/"))
    assert hf["status"] == "Failed" and "without .safetensors weights" in hf["failureMessage"]
    bad = finished(start("bad", "s3://models/bad.gguf"))
    assert bad["status"] == "Failed" and "not a GGUF file" in bad["failureMessage"]
    model = bedrock.get_imported_model(modelIdentifier=ok["importedModelArn"])
    assert model["modelName"] == "ok-model" and model["jobName"] == "ok"
    assert [m["modelName"] for m in bedrock.list_imported_models()["modelSummaries"]] == ["ok-model"]
    statuses = {
        j["jobName"]: j["status"] for j in bedrock.list_model_import_jobs()["modelImportJobSummaries"]
    }
    assert statuses == {"ok": "Completed", "hf": "Failed", "bad": "Failed"}
    bedrock.delete_imported_model(modelIdentifier=ok["importedModelArn"])
    assert bedrock.list_imported_models()["modelSummaries"] == []
