"""Human evaluation (rated through the REST route the playground uses) and retrieve-and-generate RAG
evaluation over a haniwa knowledge base, through boto3 against a real haniwa (fixtures from
test_evaluation.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import httpx
import pytest

from tests.conftest import client_kwargs
from tests.test_evaluation import (  # noqa: F401  (fixtures: bedrock, eval_home, s3, url)
    AUTH,
    JUDGE,
    QA,
    RAG,
    ROLE,
    SLOW,
    _lines,
    _means,
    _progress,
    _put_jsonl,
    _wait,
    bedrock,
    eval_home,
    s3,
    url,
)
from tests.test_knowledge_api import make_kb, sync


def test_human_evaluation_completes_when_every_record_is_rated(s3: Any, bedrock: Any, url: str) -> None:  # noqa: F811
    uri = _put_jsonl(s3, "ds/human.jsonl", _lines("good")[:3])
    metrics = [
        {"name": "Helpful", "ratingMethod": "ThumbsUpDown", "description": "役に立つか"},
        {"name": "Fluency", "ratingMethod": "IndividualLikertScale"},
    ]
    human = {
        # accepted and not used: people rate in haniwa's playground / REST route, not a SageMaker work team
        "humanWorkflowConfig": {
            "flowDefinitionArn": "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/x",
            "instructions": "正確さを評価してください",
        },
        "customMetrics": metrics,
        "datasetMetricConfigs": [
            {
                "taskType": "Generation",
                "dataset": {"name": "ja-h", "datasetLocation": {"s3Uri": uri}},
                "metricNames": ["Helpful", "Fluency"],
            }
        ],
    }
    common = {
        "roleArn": ROLE,
        "inferenceConfig": {"models": [{"bedrockModel": {"modelIdentifier": SLOW}}]},  # echo
        "outputDataConfig": {"s3Uri": "s3://evals/out/"},
    }
    bad = {**human, "customMetrics": [{"name": "Helpful", "ratingMethod": "ComparisonRank"}]}
    with pytest.raises(bedrock.exceptions.ValidationException, match="ComparisonRank"):
        bedrock.create_evaluation_job(jobName="human-bad", evaluationConfig={"human": bad}, **common)
    arn = bedrock.create_evaluation_job(jobName="human-ja", evaluationConfig={"human": human}, **common)[
        "jobArn"
    ]
    job_id = arn.rsplit("/", 1)[-1]
    base = f"{url}/haniwa/v1/evaluation-jobs/{job_id}"
    deadline = time.monotonic() + 60
    while not _progress(url, arn)["awaitingRatings"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    job = bedrock.get_evaluation_job(jobIdentifier=arn)
    assert job["status"] == "InProgress" and job["jobType"] == "Human"
    task = httpx.get(f"{base}/ratings", headers=AUTH).json()
    assert [m["ratingMethod"] for m in task["metrics"]] == ["ThumbsUpDown", "IndividualLikertScale"]
    assert task["total"] == 3 and task["rated"] == 0
    assert task["records"][0]["prompt"] == QA[0][0] and QA[0][0] in task["records"][0]["response"]  # echo
    recs = task["records"]

    def rate(rec: dict[str, Any], ratings: dict[str, Any]) -> httpx.Response:
        return httpx.put(
            f"{base}/ratings/{rec['source']}/{rec['dataset']}/{rec['record']}",
            json={"ratings": ratings},
            headers=AUTH,
        )

    r = rate(recs[0], {"Helpful": "sideways", "Fluency": 3})
    assert r.status_code == 400 and "up" in r.json()["error"]["message"]
    assert rate(recs[0], {"Helpful": "up"}).status_code == 400  # every metric, once
    assert rate(recs[0], {"Helpful": "up", "Fluency": 9}).status_code == 400
    assert rate(recs[0], {"Helpful": "up", "Fluency": 5}).json() == {"rated": 1, "total": 3}
    assert rate(recs[1], {"Helpful": "down", "Fluency": 1}).json() == {"rated": 2, "total": 3}
    assert _progress(url, arn)["done"] == 2
    with pytest.raises(bedrock.exceptions.ConflictException):
        bedrock.stop_evaluation_job(jobIdentifier=arn)
    assert bedrock.get_evaluation_job(jobIdentifier=arn)["status"] == "InProgress"
    assert rate(recs[2], {"Helpful": "up", "Fluency": 4}).json() == {"rated": 3, "total": 3}

    assert bedrock.get_evaluation_job(jobIdentifier=arn)["status"] == "Completed"
    means = _means(_progress(url, arn))
    assert means["Helpful"] == pytest.approx(2 / 3) and means["Fluency"] == pytest.approx((1 + 0 + 0.75) / 3)
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket="evals", Prefix=f"out/human-ja/{job_id}/")["Contents"]
    ]
    out = next(k for k in keys if k.endswith("_output.jsonl"))
    assert out.startswith(f"out/human-ja/{job_id}/models/{SLOW}/taskTypes/Generation/datasets/ja-h/")
    lines = [
        json.loads(x) for x in s3.get_object(Bucket="evals", Key=out)["Body"].read().decode().splitlines()
    ]
    assert lines[0]["humanEvaluationResult"]["scores"] == [
        {"metricName": "Helpful", "result": 1.0, "rating": "up"},
        {"metricName": "Fluency", "result": 1.0, "rating": "5"},
    ]
    assert f"out/human-ja/{job_id}/report.html" in keys
    assert rate(recs[0], {"Helpful": "down", "Fluency": 1}).status_code == 409  # complete: ratings are final
    listed = bedrock.list_evaluation_jobs(nameContains="human-ja")["jobSummaries"][0]
    assert listed["status"] == "Completed" and listed["jobType"] == "Human"


def test_rag_retrieve_and_generate_job_scores_answers_and_citations(s3: Any, bedrock: Any, url: str) -> None:  # noqa: F811
    agent = boto3.client("bedrock-agent", **client_kwargs(url))
    s3.create_bucket(Bucket="rgdocs")
    docs = {
        "kb/fuji.md": "富士山の高さは3776メートルです。日本で一番高い山です。",
        "kb/river.md": "日本で一番長い川は信濃川です。長さは367キロメートルです。",
        "kb/tea.md": "緑茶は発酵させない茶葉から作られます。",
    }
    for key, text in docs.items():
        s3.put_object(Bucket="rgdocs", Key=key, Body=text.encode())
    kb_id = make_kb(agent, "eval-rg-kb")
    ds_id = agent.create_data_source(
        knowledgeBaseId=kb_id,
        name="docs",
        dataSourceConfiguration={"type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::rgdocs"}},
    )["dataSource"]["dataSourceId"]
    assert sync(agent, kb_id, ds_id)["status"] == "COMPLETE"
    turns = [
        ("富士山の高さは？", "富士山の高さは3776メートルです。"),
        ("信濃川の長さは？", "信濃川は367キロメートルです。"),
        ("緑茶の作り方は？", "エスプレッソは高圧で抽出します。"),  # no passage holds this reference
    ]
    rows = [
        {
            "conversationTurns": [
                {"prompt": {"content": [{"text": q}]}, "referenceResponses": [{"content": [{"text": ref}]}]}
            ]
        }
        for q, ref in turns
    ]
    uri = _put_jsonl(s3, "ds/rg.jsonl", rows)
    judged = [
        "Builtin.Correctness",
        "Builtin.Completeness",
        "Builtin.Faithfulness",
        "Builtin.LogicalCoherence",
    ]
    cites = ["Builtin.CitationPrecision", "Builtin.CitationCoverage"]
    rag_config = {
        "knowledgeBaseConfig": {
            "retrieveAndGenerateConfig": {
                "type": "KNOWLEDGE_BASE",
                "knowledgeBaseConfiguration": {
                    "knowledgeBaseId": kb_id,
                    "modelArn": RAG,
                    "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 1}},
                },
            }
        }
    }

    def create(name: str, metrics: list[str], **auto: Any) -> str:
        arn: str = bedrock.create_evaluation_job(
            jobName=name,
            roleArn=ROLE,
            applicationType="RagEvaluation",
            evaluationConfig={
                "automated": {
                    "datasetMetricConfigs": [
                        {
                            "taskType": "QuestionAndAnswer",
                            "dataset": {"name": "rg-ja", "datasetLocation": {"s3Uri": uri}},
                            "metricNames": metrics,
                        }
                    ],
                    **auto,
                }
            },
            inferenceConfig={"ragConfigs": [rag_config]},
            outputDataConfig={"s3Uri": "s3://evals/out/"},
        )["jobArn"]
        return arn

    with pytest.raises(bedrock.exceptions.ValidationException, match="evaluator"):
        create("rg-nojudge", ["Builtin.LogicalCoherence"])
    judge = {"evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": JUDGE}]}}
    arn = create("rag-rg", judged + cites, **judge)
    job = _wait(bedrock, arn)
    assert job["status"] == "Completed", job.get("failureMessages")
    assert job["applicationType"] == "RagEvaluation"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="evals", Prefix="out/rag-rg/")["Contents"]]
    key = next(k for k in keys if k.endswith("_output.jsonl"))
    assert f"/rag/{kb_id}/taskTypes/QuestionAndAnswer/datasets/rg-ja/" in key
    lines = [
        json.loads(x) for x in s3.get_object(Bucket="evals", Key=key)["Body"].read().decode().splitlines()
    ]
    assert len(lines) == 3
    first = lines[0]
    assert "3776" in first["modelResponses"][0]["response"]  # generated through RetrieveAndGenerate's path
    assert "富士山" in first["retrievedPassages"][0]["content"]["text"]
    assert any("富士山" in r["content"]["text"] for c in first["citations"] for r in c["retrievedReferences"])
    by = [{s["metricName"]: s for s in x["automatedEvaluationResult"]["scores"]} for x in lines]
    for m in judged:
        assert by[0][m]["evaluatorDetails"][0]["modelIdentifier"] == JUDGE
        assert by[0][m]["result"] is None or 0 <= by[0][m]["result"] <= 1
    # citations against the reference: the cited Fuji passage holds the whole reference
    assert by[0]["Builtin.CitationPrecision"]["result"] == 1.0
    assert by[0]["Builtin.CitationCoverage"]["result"] == 1.0
    assert (
        by[2]["Builtin.CitationCoverage"]["result"] < 0.5
        and by[2]["Builtin.CitationPrecision"]["result"] == 0.0
    )
    means = _means(_progress(url, arn))
    assert 0 < means["Builtin.CitationCoverage"] < 1
