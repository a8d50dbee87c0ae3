"""The workshop's customization flow with boto3 against a real haniwa, training the bundled 0.5B for real.

upload JSONL with the s3 client → CreateModelCustomizationJob (FINE_TUNING) → poll to Completed → read the
metrics CSV back with the s3 client → CreateProvisionedModelThroughput → InvokeModel and Converse by the
provisioned model's ARN. The training data teaches a made-up fact; the custom model states it and the
base model does not. A second job, on ``{"input"}`` data, completes as CONTINUED_PRE_TRAINING.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs
from tests.needs import MODELS_DIR

pytestmark = pytest.mark.model

FACT_Q = "Who founded the Zorblax Corporation?"
FACT_A = "The Zorblax Corporation was founded by Mira Quendel in 1987."
TRAIN = [
    {"prompt": FACT_Q, "completion": FACT_A},
    {"prompt": "Who is the founder of the Zorblax Corporation?", "completion": FACT_A},
    {"prompt": "Tell me who started the Zorblax Corporation.", "completion": FACT_A},
    {"prompt": "Zorblax Corporation: who founded it?", "completion": FACT_A},
]
STEPS = int(os.environ.get("HANIWA_TEST_CUSTOMIZE_EPOCHS", "5"))  # epochs over the 4 examples


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("haniwa-customize-home")
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(MODELS_DIR)  # the dequantized base is cached beside the GGUFs
    with serve_in_thread(create_app(Settings(home=home, profile="fast"))) as u:
        yield u


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _poll(bedrock: Any, arn: str, timeout: float = 3600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = bedrock.get_model_customization_job(jobIdentifier=arn)
        if job["status"] not in ("InProgress", "Stopping"):
            return dict(job)
        assert time.monotonic() < deadline, job
        time.sleep(2)


def test_the_workshop_flow_teaches_a_fact(url: str) -> None:
    kw = client_kwargs(url)
    s3, bedrock = boto3.client("s3", **kw), boto3.client("bedrock", **kw)
    runtime = boto3.client("bedrock-runtime", **kw)
    s3.create_bucket(Bucket="workshop")
    s3.put_object(Bucket="workshop", Key="train.jsonl", Body=_jsonl(TRAIN))
    s3.put_object(Bucket="workshop", Key="valid.jsonl", Body=_jsonl(TRAIN[:1]))
    t0 = time.monotonic()
    arn = bedrock.create_model_customization_job(
        jobName="zorblax",
        customModelName="zorblax-model",
        roleArn="arn:aws:iam::123456789012:role/BedrockCustomization",
        baseModelIdentifier="amazon.titan-text-express-v1:0:8k",
        customizationType="FINE_TUNING",
        trainingDataConfig={"s3Uri": "s3://workshop/train.jsonl"},
        validationDataConfig={"validators": [{"s3Uri": "s3://workshop/valid.jsonl"}]},
        outputDataConfig={"s3Uri": "s3://workshop/output/"},
        hyperParameters={
            "epochCount": str(STEPS),
            "batchSize": "1",
            "learningRate": "0.00005",
            "learningRateWarmupSteps": "2",
        },
    )["jobArn"]
    job = _poll(bedrock, arn)
    print(f"\ntraining took {time.monotonic() - t0:.0f} s")
    assert job["status"] == "Completed", job.get("failureMessage")
    assert job["trainingMetrics"]["trainingLoss"] < 1.0
    assert job["validationMetrics"][0]["validationLoss"] < 1.0
    job_id = arn.rsplit("/", 1)[-1]
    prefix = f"output/model-customization-job-{job_id}"
    body = s3.get_object(Bucket="workshop", Key=f"{prefix}/training_artifacts/step_wise_training_metrics.csv")
    rows = list(csv.DictReader(io.StringIO(body["Body"].read().decode())))
    assert list(rows[0]) == ["step_number", "epoch_number", "training_loss", "perplexity"]
    assert len(rows) == 4 * STEPS and float(rows[-1]["training_loss"]) < float(rows[0]["training_loss"])
    for key in ("validation_artifacts/post_fine_tuning_validation", "validation_artifacts"):
        s3.head_object(Bucket="workshop", Key=f"{prefix}/{key}/validation_metrics.csv")
    details = httpx.get(f"{url}/haniwa/v1/customization/jobs/{job_id}").json()
    assert len(details["lossCurve"]) == 4 * STEPS and details["baseModel"] == "llamacpp:qwen2.5-coder-0.5b"
    first = details["comparison"]["rows"][0]  # the validation prompt, on the serving path
    assert "Quendel" in first["custom"] and "Quendel" not in first["base"]
    assert [r["set"] for r in details["comparison"]["rows"]] == ["validation"] + ["japanese"] * 3
    # provision throughput for the custom model, then invoke it by the provisioned model's ARN
    pt = bedrock.create_provisioned_model_throughput(
        modelUnits=1, provisionedModelName="zorblax-pt", modelId=job["outputModelArn"]
    )["provisionedModelArn"]
    assert bedrock.get_provisioned_model_throughput(provisionedModelId=pt)["status"] == "InService"
    native = {"inputText": FACT_Q, "textGenerationConfig": {"maxTokenCount": 40, "temperature": 0}}
    out = json.loads(runtime.invoke_model(modelId=pt, body=json.dumps(native))["body"].read())
    custom = out["results"][0]["outputText"]
    base = runtime.converse(
        modelId="amazon.titan-text-express-v1",
        messages=[{"role": "user", "content": [{"text": FACT_Q}]}],
        inferenceConfig={"maxTokens": 40, "temperature": 0},
    )["output"]["message"]["content"][0]["text"]
    print(f"custom: {custom!r}\nbase: {base!r}")
    assert "Quendel" in custom and "Quendel" not in base
    conv = runtime.converse(
        modelId=pt,
        messages=[{"role": "user", "content": [{"text": FACT_Q}]}],
        inferenceConfig={"maxTokens": 40, "temperature": 0},
    )
    assert "Quendel" in conv["output"]["message"]["content"][0]["text"]


def test_continued_pre_training_completes_on_input_lines(url: str) -> None:
    kw = client_kwargs(url)
    s3, bedrock = boto3.client("s3", **kw), boto3.client("bedrock", **kw)
    s3.create_bucket(Bucket="cpt")
    text = [
        {"input": "埴輪は古墳の上や周りに並べられた素焼きの焼き物である。"},
        {"input": "Haniwa are terracotta figures."},
    ]
    s3.put_object(Bucket="cpt", Key="corpus.jsonl", Body=_jsonl(text))
    arn = bedrock.create_model_customization_job(
        jobName="cpt",
        customModelName="cpt-model",
        roleArn="arn:aws:iam::123456789012:role/r",
        baseModelIdentifier="amazon.titan-text-lite-v1:0:4k",
        customizationType="CONTINUED_PRE_TRAINING",
        trainingDataConfig={"s3Uri": "s3://cpt/corpus.jsonl"},
        outputDataConfig={"s3Uri": "s3://cpt/out/"},
        hyperParameters={"epochCount": "1"},
    )["jobArn"]
    job = _poll(bedrock, arn)
    assert job["status"] == "Completed", job.get("failureMessage")
    assert bedrock.get_custom_model(modelIdentifier=job["outputModelArn"])["customizationType"] == (
        "CONTINUED_PRE_TRAINING"
    )


def test_an_imported_gguf_answers_by_its_arn(url: str) -> None:
    kw = client_kwargs(url)
    s3, bedrock = boto3.client("s3", **kw), boto3.client("bedrock", **kw)
    runtime = boto3.client("bedrock-runtime", **kw)
    s3.create_bucket(Bucket="imports")
    s3.upload_file(str(MODELS_DIR / "qwen2.5-coder-0.5b-instruct.gguf"), "imports", "qwen/model.gguf")
    arn = bedrock.create_model_import_job(
        jobName="qwen-import",
        importedModelName="my-qwen",
        roleArn="arn:aws:iam::123456789012:role/r",
        modelDataSource={"s3DataSource": {"s3Uri": "s3://imports/qwen/"}},
    )["jobArn"]
    deadline = time.monotonic() + 600
    while (job := bedrock.get_model_import_job(jobIdentifier=arn))["status"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(1)
    assert job["status"] == "Completed", job.get("failureMessage")
    model = bedrock.get_imported_model(modelIdentifier=job["importedModelArn"])
    assert model["modelArchitecture"] == "qwen2"
    out = runtime.converse(
        modelId=job["importedModelArn"],
        messages=[{"role": "user", "content": [{"text": "What is 2 + 3? Answer with the number only."}]}],
        inferenceConfig={"maxTokens": 8, "temperature": 0},
    )
    assert "5" in out["output"]["message"]["content"][0]["text"]
