"""Evaluation jobs through boto3 against a real haniwa: datasets uploaded with the S3 client, jobs created,
polled and listed with the bedrock client, results read back from S3 in Bedrock's layout."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_process, serve_in_thread
from tests.conftest import ECHO_CATALOG, client_kwargs
from tests.needs import MODELS_DIR
from tests.test_knowledge_api import make_kb, sync

KEY, SECRET = "AKIDEXAMPLE", "secret-example"
API_KEY = "eval-test-key"
AUTH = {"authorization": f"Bearer {API_KEY}"}
ROLE = "arn:aws:iam::123456789012:role/eval"
JUDGE = "acme.judge-v1"
SLOW = "acme.slow-v1"
RAG = "acme.rag-v1"  # a scripted generator for retrieve-and-generate: answers from the passages' facts

# Japanese QA: a good answer and a bad one for each question
QA = [
    (
        "富士山の高さは何メートルですか？",
        "富士山の高さは3776メートルです。",
        "富士山は標高3776メートルです。",
        "富士山は低い山です。",
    ),
    (
        "日本の首都はどこですか？",
        "日本の首都は東京です。",
        "首都は東京です。",
        "日本の首都は大阪だと思います。",
    ),
    ("水の沸点は何度ですか？", "水は100度で沸騰します。", "水の沸点は100度です。", "水は冷たいです。"),
    ("一年は何日ですか？", "一年は365日です。", "一年は365日あります。", "一年はとても長いです。"),
    (
        "日本で一番長い川は？",
        "日本で一番長い川は信濃川です。",
        "一番長い川は信濃川です。",
        "利根川が有名です。",
    ),
    (
        "光の速さは？",
        "光の速さは秒速約30万キロメートルです。",
        "秒速約30万キロメートルです。",
        "音より遅いです。",
    ),
]
GOOD_MARK = "GOOD"  # the scripted judge rates answers that the good model wrote

CATALOG = (
    ECHO_CATALOG
    + f'"{JUDGE}" = "scripted:judge"\n"{SLOW}" = "echo:slow"\n"{RAG}" = "scripted:rag"\n'
    + '\n[models."scripted:judge"]\nbackend = "scripted"\nkind = "chat"\n'
    + "options = { rules = ["
    + '{ match = "評価する回答\\n(富士山は標高|首都は東京|水の沸点|一年は365日あります'
    + '|一番長い川|秒速約30万)",'
    + ' reply = \'{"reasoning": "参照回答と一致する", "rating": "yes"}\' }'
    + '], default = \'{"reasoning": "参照回答と異なる", "rating": "no"}\' }\n'
    + '\n[models."echo:slow"]\nbackend = "echo"\nkind = "chat"\noptions = { delay_ms = 40 }\n'
    + '\n[models."scripted:rag"]\nbackend = "scripted"\nkind = "chat"\noptions = { rules = ['
    + '{ match = "富士山", reply = "富士山の高さは3776メートルです。" },'
    + '{ match = "信濃川", reply = "信濃川の長さは367キロメートルです。" },'
    + '{ match = "緑茶", reply = "緑茶は発酵させない茶葉から作られます。" }'
    + '], default = "わかりません。" }\n'
)


def _lines(kind: str) -> list[dict[str, Any]]:
    out = []
    for q, ref, good, bad in QA:
        out.append(
            {
                "prompt": q,
                "referenceResponse": ref,
                "category": "general",
                "modelResponses": [
                    {"response": good if kind == "good" else bad, "modelIdentifier": kind},
                ],
            }
        )
    return out


@pytest.fixture
def eval_home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    (h / "models.toml").write_text(CATALOG, encoding="utf-8")
    return h


@pytest.fixture
def url(eval_home: Path) -> Iterator[str]:
    settings = Settings(home=eval_home, access_key_id=KEY, secret_access_key=SECRET, api_keys=[API_KEY])
    with serve_in_thread(create_app(settings)) as u:
        yield u


@pytest.fixture
def s3(url: str) -> Any:
    client = boto3.client("s3", **client_kwargs(url))
    client.create_bucket(Bucket="evals")
    return client


@pytest.fixture
def bedrock(url: str) -> Any:
    return boto3.client("bedrock", **client_kwargs(url))


def _put_jsonl(s3: Any, key: str, rows: list[Any], extra: str = "") -> str:
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + extra
    s3.put_object(Bucket="evals", Key=key, Body=body.encode())
    return f"s3://evals/{key}"


def _create(
    bedrock: Any,
    name: str,
    uri: str,
    metrics: list[str],
    source: dict[str, Any],
    task: str = "QuestionAndAnswer",
    **extra: Any,
) -> str:
    automated: dict[str, Any] = {
        "datasetMetricConfigs": [
            {
                "taskType": task,
                "dataset": {"name": "ja-qa", "datasetLocation": {"s3Uri": uri}},
                "metricNames": metrics,
            }
        ]
    }
    automated.update(extra)
    arn: str = bedrock.create_evaluation_job(
        jobName=name,
        roleArn=ROLE,
        evaluationConfig={"automated": automated},
        inferenceConfig={"models": [source]},
        outputDataConfig={"s3Uri": "s3://evals/out/"},
    )["jobArn"]
    return arn


def _wait(bedrock: Any, arn: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = bedrock.get_evaluation_job(jobIdentifier=arn)
        if job["status"] not in ("InProgress", "Stopping"):
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"evaluation job {arn} did not finish")


def _progress(url: str, arn: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/haniwa/v1/evaluation-jobs/{arn.rsplit('/', 1)[-1]}", headers=AUTH)
    r.raise_for_status()
    data: dict[str, Any] = r.json()
    return data


def _means(progress: dict[str, Any]) -> dict[str, float]:
    return {m: v["mean"] for m, v in progress["summary"]["results"][0]["metrics"].items()}


def _byo(name: str) -> dict[str, Any]:
    return {"precomputedInferenceSource": {"inferenceSourceIdentifier": name}}


def test_automated_qa_on_japanese_answers_scores_good_above_bad(url: str, s3: Any, bedrock: Any) -> None:
    metrics = ["Builtin.Accuracy", "Builtin.Toxicity"]
    # one malformed line and one not JSON: reported, not fatal
    junk = '{"referenceResponse": "no prompt"}\nnot json\n'
    good = _create(
        bedrock, "ja-good", _put_jsonl(s3, "ds/good.jsonl", _lines("good"), junk), metrics, _byo("good")
    )
    bad = _create(bedrock, "ja-bad", _put_jsonl(s3, "ds/bad.jsonl", _lines("bad")), metrics, _byo("bad"))
    g, b = _wait(bedrock, good), _wait(bedrock, bad)
    assert g["status"] == b["status"] == "Completed", (g.get("failureMessages"), b.get("failureMessages"))
    assert g["jobType"] == "Automated" and g["applicationType"] == "ModelEvaluation"
    assert len(g["failureMessages"]) == 2 and "line 7" in g["failureMessages"][0]

    pg, pb = _progress(url, good), _progress(url, bad)
    assert pg["done"] == pg["total"] == len(QA)
    mg, mb = _means(pg), _means(pb)
    for m in (
        "Builtin.Accuracy",
        "Accuracy.ROUGE-L",
        "Accuracy.BLEU",
        "Accuracy.BERTScoreLike",
        "Accuracy.F1",
    ):
        assert mg[m] > mb[m], m
    assert mg["Builtin.Toxicity"] == 0.0
    iv = pg["summary"]["results"][0]["metrics"]["Builtin.Accuracy"]
    assert iv["ci95Low"] <= iv["mean"] <= iv["ci95High"] and iv["count"] == len(QA)

    # Bedrock's layout:
    # <out>/<job-name>/<job-id>/models/<model>/taskTypes/<task>/datasets/<dataset>/<uuid>_output.jsonl
    job_id = good.rsplit("/", 1)[-1]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="evals", Prefix=f"out/ja-good/{job_id}/")["Contents"]]
    out = [k for k in keys if k.endswith("_output.jsonl")]
    assert len(out) == 1
    assert out[0].startswith(f"out/ja-good/{job_id}/models/good/taskTypes/QuestionAndAnswer/datasets/ja-qa/")
    lines = [
        json.loads(x) for x in s3.get_object(Bucket="evals", Key=out[0])["Body"].read().decode().splitlines()
    ]
    assert len(lines) == len(QA)
    names = {s["metricName"] for s in lines[0]["automatedEvaluationResult"]["scores"]}
    assert {"Builtin.Accuracy", "Builtin.Toxicity", "Accuracy.ROUGE-1"} <= names
    assert lines[0]["inputRecord"]["prompt"] == QA[0][0]

    # the paired comparison: the bad job is worse than the good one on the same questions
    r = httpx.get(
        f"{url}/haniwa/v1/evaluation-jobs/{good.rsplit('/', 1)[-1]}/compare/{bad.rsplit('/', 1)[-1]}",
        headers=AUTH,
    )
    verdicts = {c["metric"]: c["verdict"] for c in r.json()["comparisons"]}
    assert verdicts["Builtin.Accuracy"] == "worse"
    assert verdicts["Builtin.Toxicity"] == "indistinguishable"


def test_model_source_generates_and_measures_robustness(s3: Any, bedrock: Any, url: str) -> None:
    uri = _put_jsonl(s3, "ds/echo.jsonl", _lines("good"))
    model = {
        "bedrockModel": {
            "modelIdentifier": "meta.llama3-8b-instruct-v1:0",
            "inferenceParams": '{"inferenceConfig": {"maxTokens": 64}}',
        }
    }
    arn = _create(bedrock, "echo-robust", uri, ["Builtin.Accuracy", "Builtin.Robustness"], model)
    assert _wait(bedrock, arn)["status"] == "Completed"
    job_id = arn.rsplit("/", 1)[-1]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="evals", Prefix="out/echo-robust/")["Contents"]]
    key = next(k for k in keys if k.endswith("_output.jsonl"))
    assert f"/{job_id}/models/meta.llama3-8b-instruct-v1_0/" in key
    line = json.loads(s3.get_object(Bucket="evals", Key=key)["Body"].read().decode().splitlines()[0])
    # the echo model answers with the prompt; robustness asked it again with a perturbed prompt
    assert line["modelResponses"][0]["response"] == QA[0][0]
    assert line["robustness"]["perturbedPrompt"] != QA[0][0]
    scores = {s["metricName"]: s["result"] for s in line["automatedEvaluationResult"]["scores"]}
    assert 0.0 <= scores["Builtin.Robustness"] <= 1.0


def test_judge_job_with_a_schema_constrained_scripted_judge(s3: Any, bedrock: Any, url: str) -> None:
    judge = {"evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": JUDGE}]}}
    means = {}
    for kind in ("good", "bad"):
        uri = _put_jsonl(s3, f"ds/j-{kind}.jsonl", _lines(kind))
        arn = _create(bedrock, f"judge-{kind}", uri, ["Builtin.Correctness"], _byo(kind), **judge)
        assert _wait(bedrock, arn)["status"] == "Completed"
        means[kind] = _means(_progress(url, arn))["Builtin.Correctness"]
        if kind == "good":
            job_id = arn.rsplit("/", 1)[-1]
            keys = [
                o["Key"]
                for o in s3.list_objects_v2(Bucket="evals", Prefix=f"out/judge-good/{job_id}/")["Contents"]
            ]
            key = next(k for k in keys if k.endswith("_output.jsonl"))
            line = json.loads(s3.get_object(Bucket="evals", Key=key)["Body"].read().decode().splitlines()[0])
            score = line["automatedEvaluationResult"]["scores"][0]
            assert score["metricName"] == "Builtin.Correctness" and score["result"] == 1.0
            assert score["evaluatorDetails"] == [
                {"modelIdentifier": JUDGE, "explanation": "参照回答と一致する"}
            ]
    assert means == {"good": 1.0, "bad": 0.0}


def test_custom_metric_scale_is_normalised(s3: Any, bedrock: Any, url: str) -> None:
    custom = {
        "customMetricConfig": {
            "customMetrics": [
                {
                    "customMetricDefinition": {
                        "name": "AnswersInJapanese",
                        "instructions": "Is {{prediction}} written in Japanese? Question: {{prompt}}",
                        "ratingScale": [
                            {"definition": "no", "value": {"floatValue": 1}},
                            {"definition": "yes", "value": {"floatValue": 5}},
                        ],
                    }
                }
            ],
            "evaluatorModelConfig": {
                "bedrockEvaluatorModels": [{"modelIdentifier": "meta.llama3-8b-instruct-v1:0"}]
            },
        }
    }
    uri = _put_jsonl(s3, "ds/c.jsonl", _lines("good"))
    arn = _create(bedrock, "custom", uri, ["AnswersInJapanese"], _byo("good"), **custom)
    assert _wait(bedrock, arn)["status"] == "Completed"
    # the echo judge ignores the schema and echoes the instructions, which mention no rating: reported
    job_id = arn.rsplit("/", 1)[-1]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="evals", Prefix=f"out/custom/{job_id}/")["Contents"]]
    key = next(k for k in keys if k.endswith("_output.jsonl"))
    line = json.loads(s3.get_object(Bucket="evals", Key=key)["Body"].read().decode().splitlines()[0])
    score = line["automatedEvaluationResult"]["scores"][0]
    assert score["metricName"] == "AnswersInJapanese"
    assert score["result"] in (None, 0.0, 1.0)


def test_list_stop_delete_and_validation(s3: Any, bedrock: Any, url: str) -> None:
    uri = _put_jsonl(s3, "ds/slow.jsonl", _lines("good") * 3)
    slow = {"bedrockModel": {"modelIdentifier": SLOW}}
    arns = [_create(bedrock, f"job-{i}", uri, ["Builtin.Accuracy"], slow) for i in range(3)]
    bedrock.stop_evaluation_job(jobIdentifier=arns[0])
    assert _wait(bedrock, arns[0])["status"] == "Stopped"

    pages = bedrock.get_paginator("list_evaluation_jobs").paginate(PaginationConfig={"PageSize": 2})
    names = [s["jobName"] for page in pages for s in page["jobSummaries"]]
    assert names == ["job-2", "job-1", "job-0"]  # newest first
    one = bedrock.list_evaluation_jobs(nameContains="job-1")["jobSummaries"]
    assert [s["jobName"] for s in one] == ["job-1"]
    assert one[0]["modelIdentifiers"] == [SLOW] and one[0]["evaluationTaskTypes"] == ["QuestionAndAnswer"]
    assert bedrock.list_evaluation_jobs(statusEquals="Stopped")["jobSummaries"][0]["jobName"] == "job-0"

    out = bedrock.batch_delete_evaluation_job(
        jobIdentifiers=[*arns, "arn:aws:bedrock:us-east-1:000000000000:evaluation-job/aaaaaaaaaaaa"]
    )
    assert [e["jobStatus"] for e in out["evaluationJobs"]] == ["Deleting"] * 3
    assert out["errors"][0]["jobIdentifier"].endswith("aaaaaaaaaaaa")
    assert bedrock.list_evaluation_jobs()["jobSummaries"] == []
    with pytest.raises(bedrock.exceptions.ResourceNotFoundException):
        bedrock.get_evaluation_job(jobIdentifier=arns[1])

    # a judge metric without a judge, an unknown metric, a duplicate name: typed errors
    with pytest.raises(bedrock.exceptions.ValidationException, match="evaluator"):
        _create(bedrock, "nojudge", uri, ["Builtin.Correctness"], _byo("good"))
    with pytest.raises(bedrock.exceptions.ValidationException, match="unknown metric"):
        _create(bedrock, "unknown", uri, ["Builtin.Nonsense"], _byo("good"))
    _create(bedrock, "twice", uri, ["Builtin.Toxicity"], _byo("good"))
    with pytest.raises(bedrock.exceptions.ConflictException):
        _create(bedrock, "twice", uri, ["Builtin.Toxicity"], _byo("good"))


def test_missing_dataset_fails_the_job_with_a_message(s3: Any, bedrock: Any) -> None:
    arn = _create(bedrock, "missing", "s3://evals/nothing.jsonl", ["Builtin.Toxicity"], _byo("good"))
    job = _wait(bedrock, arn)
    assert job["status"] == "Failed"
    assert job["failureMessages"]


def _start(home: Path, port: int) -> subprocess.Popen[bytes]:
    return serve_in_process(
        home,
        port,
        HANIWA_ACCESS_KEY_ID=KEY,
        HANIWA_SECRET_ACCESS_KEY=SECRET,
        HANIWA_API_KEYS=json.dumps([API_KEY]),
    )


def test_kill_during_an_evaluation_job_then_resume(eval_home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = _start(eval_home, port)
    try:
        s3 = boto3.client("s3", **client_kwargs(url))
        s3.create_bucket(Bucket="evals")
        bedrock = boto3.client("bedrock", **client_kwargs(url))
        rows = [dict(r, prompt=f"{i}: {r['prompt']}") for i, r in enumerate(_lines("good") * 5)]
        uri = _put_jsonl(s3, "ds/many.jsonl", rows)
        arn = _create(
            bedrock, "crash", uri, ["Builtin.Accuracy"], {"bedrockModel": {"modelIdentifier": SLOW}}
        )
        deadline = time.monotonic() + 60
        while _progress(url, arn)["done"] < 5:
            assert time.monotonic() < deadline, "the job made no progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with sqlite3.connect(eval_home / "haniwa.db") as db:
            before = db.execute("SELECT count(*) FROM evaluation_records").fetchone()[0]
        assert 5 <= before < len(rows)

        proc = _start(eval_home, port)
        job = _wait(bedrock, arn, timeout=120)
        assert job["status"] == "Completed", job.get("failureMessages")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="evals", Prefix="out/crash/")["Contents"]]
        key = next(k for k in keys if k.endswith("_output.jsonl"))
        lines = [
            json.loads(x) for x in s3.get_object(Bucket="evals", Key=key)["Body"].read().decode().splitlines()
        ]
        # every record exactly once, in dataset order
        assert [x["inputRecord"]["prompt"] for x in lines] == [r["prompt"] for r in rows]
        assert _progress(url, arn)["done"] == len(rows)
    finally:
        proc.kill()
        proc.wait()


def test_rag_retrieve_only_job_scores_contexts(s3: Any, bedrock: Any, url: str) -> None:
    agent = boto3.client("bedrock-agent", **client_kwargs(url))
    s3.create_bucket(Bucket="kbdocs")
    docs = {
        "kb/fuji.md": "富士山の高さは3776メートルです。日本で一番高い山です。",
        "kb/river.md": "日本で一番長い川は信濃川です。長さは367キロメートルです。",
        "kb/tea.md": "緑茶は発酵させない茶葉から作られます。",
    }
    for key, text in docs.items():
        s3.put_object(Bucket="kbdocs", Key=key, Body=text.encode())
    kb_id = make_kb(agent, "eval-kb")
    ds_id = agent.create_data_source(
        knowledgeBaseId=kb_id,
        name="docs",
        dataSourceConfiguration={"type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::kbdocs"}},
    )["dataSource"]["dataSourceId"]
    assert sync(agent, kb_id, ds_id)["status"] == "COMPLETE"

    def turn(q: str, ref: str) -> dict[str, Any]:
        return {
            "conversationTurns": [
                {"prompt": {"content": [{"text": q}]}, "referenceResponses": [{"content": [{"text": ref}]}]}
            ]
        }

    uri = _put_jsonl(
        s3,
        "ds/rag.jsonl",
        [
            turn("富士山の高さは？", "富士山の高さは3776メートルです。"),
            turn("信濃川の長さは？", "信濃川は367キロメートルです。"),
        ],
    )
    arn = bedrock.create_evaluation_job(
        jobName="rag-retrieve",
        roleArn=ROLE,
        applicationType="RagEvaluation",
        evaluationConfig={
            "automated": {
                "datasetMetricConfigs": [
                    {
                        "taskType": "QuestionAndAnswer",
                        "dataset": {"name": "rag-ja", "datasetLocation": {"s3Uri": uri}},
                        "metricNames": ["Builtin.ContextRelevance", "Builtin.ContextCoverage"],
                    }
                ]
            }
        },
        inferenceConfig={
            "ragConfigs": [
                {
                    "knowledgeBaseConfig": {
                        "retrieveConfig": {
                            "knowledgeBaseId": kb_id,
                            "knowledgeBaseRetrievalConfiguration": {
                                "vectorSearchConfiguration": {"numberOfResults": 2}
                            },
                        }
                    }
                }
            ]
        },
        outputDataConfig={"s3Uri": "s3://evals/out/"},
    )["jobArn"]
    job = _wait(bedrock, arn)
    assert job["status"] == "Completed", job.get("failureMessages")
    assert job["applicationType"] == "RagEvaluation"
    summary = bedrock.list_evaluation_jobs(applicationTypeEquals="RagEvaluation")["jobSummaries"][0]
    assert summary["ragIdentifiers"] == [kb_id]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="evals", Prefix="out/rag-retrieve/")["Contents"]]
    key = next(k for k in keys if k.endswith("_output.jsonl"))
    assert f"/rag/{kb_id}/taskTypes/QuestionAndAnswer/datasets/rag-ja/" in key
    lines = [
        json.loads(x) for x in s3.get_object(Bucket="evals", Key=key)["Body"].read().decode().splitlines()
    ]
    assert len(lines) == 2
    first = lines[0]
    assert "富士山" in first["retrievedPassages"][0]["content"]["text"]
    scores = {s["metricName"]: s["result"] for s in first["automatedEvaluationResult"]["scores"]}
    assert 0 < scores["Builtin.ContextRelevance"] <= 1 and 0 < scores["Builtin.ContextCoverage"] <= 1


@pytest.mark.model
def test_bundled_small_model_judges_good_answers_above_bad(tmp_path: Path) -> None:
    """The 0.5B model as the judge of Builtin.Correctness, its answer decoded under the JSON schema."""
    home = tmp_path / "model-home"
    home.mkdir()
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(MODELS_DIR)
    settings = Settings(
        home=home, profile="fast", access_key_id=KEY, secret_access_key=SECRET, api_keys=[API_KEY]
    )
    judge_id = "anthropic.claude-3-haiku-20240307-v1:0"  # the fast profile's chat model: Qwen2.5-Coder-0.5B
    with serve_in_thread(create_app(settings)) as u:
        s3 = boto3.client("s3", **client_kwargs(u))
        s3.create_bucket(Bucket="evals")
        bedrock = boto3.client("bedrock", **client_kwargs(u))
        rows = []
        for q, ref, good, bad in QA[:4]:
            responses = [
                {"response": good, "modelIdentifier": "good"},
                {"response": bad, "modelIdentifier": "bad"},
            ]
            rows.append({"prompt": q, "referenceResponse": ref, "modelResponses": responses})
        uri = _put_jsonl(s3, "ds/judge.jsonl", rows)
        arn = bedrock.create_evaluation_job(
            jobName="small-judge",
            roleArn=ROLE,
            evaluationConfig={
                "automated": {
                    "datasetMetricConfigs": [
                        {
                            "taskType": "QuestionAndAnswer",
                            "dataset": {"name": "ja-qa", "datasetLocation": {"s3Uri": uri}},
                            "metricNames": ["Builtin.Correctness"],
                        }
                    ],
                    "evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": judge_id}]},
                }
            },
            inferenceConfig={"models": [_byo("good"), _byo("bad")]},
            outputDataConfig={"s3Uri": "s3://evals/out/"},
        )["jobArn"]
        job = _wait(bedrock, arn, timeout=800)
        assert job["status"] == "Completed", job.get("failureMessages")
        results = _progress(u, arn)["summary"]["results"]
        means = {r["source"]: r["metrics"]["Builtin.Correctness"]["mean"] for r in results}
        assert means["good"] > means["bad"], means
        # every judgement parsed: the schema held
        counts = {r["source"]: r["metrics"]["Builtin.Correctness"]["count"] for r in results}
        assert counts == {"good": 4, "bad": 4}


def test_classification_job_reports_accuracy_precision_recall_f1(s3: Any, bedrock: Any, url: str) -> None:
    labelled = [
        ("この製品は最高です", "ポジティブ", "ポジティブ"),
        ("二度と買いません", "ネガティブ", "ネガティブ"),
        ("普通に使えます", "ポジティブ", "ネガティブ"),
        ("とても満足しています", "ポジティブ", "ポジティブです。"),
    ]
    rows = [
        {"prompt": f"感情を分類して: {t}", "referenceResponse": gold, "category": "sentiment",
         "modelResponses": [{"response": pred, "modelIdentifier": "clf"}]}
        for t, gold, pred in labelled
    ]  # fmt: skip
    uri = _put_jsonl(s3, "ds/clf.jsonl", rows)
    arn = _create(bedrock, "clf", uri, ["Builtin.Accuracy"], _byo("clf"), task="Classification")
    assert _wait(bedrock, arn)["status"] == "Completed"
    result = _progress(url, arn)["summary"]["results"][0]
    assert result["metrics"]["Builtin.Accuracy"]["mean"] == pytest.approx(0.75)
    # ポジティブ: precision 2/2, recall 2/3; ネガティブ: precision 1/2, recall 1/1 (macro averages)
    assert result["classification"] == pytest.approx(
        {"accuracy": 0.75, "precision": 0.75, "recall": 5 / 6, "f1": (0.8 + 2 / 3) / 2}
    )


def test_report_html_is_written_with_escaped_scores(s3: Any, bedrock: Any, url: str) -> None:
    rows = _lines("good")
    rows[0]["prompt"] = "<script>alert('x')</script> 富士山の高さは？"
    arn = _create(
        bedrock, "rep-good", _put_jsonl(s3, "ds/rep.jsonl", rows), ["Builtin.Accuracy"], _byo("good")
    )
    assert _wait(bedrock, arn)["status"] == "Completed"
    job_id = arn.rsplit("/", 1)[-1]
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket="evals", Prefix=f"out/rep-good/{job_id}/")["Contents"]
    ]
    assert f"out/rep-good/{job_id}/report.html" in keys
    obj = s3.get_object(Bucket="evals", Key=f"out/rep-good/{job_id}/report.html")
    assert obj["ContentType"].startswith("text/html")
    page = obj["Body"].read().decode()
    summary = json.loads(
        s3.get_object(Bucket="evals", Key=f"out/rep-good/{job_id}/summary.json")["Body"].read()
    )
    acc = summary["results"][0]["metrics"]["Builtin.Accuracy"]
    assert f"{acc['mean']:.3f}" in page
    assert f"[{acc['ci95Low']:.3f}, {acc['ci95High']:.3f}]" in page
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert QA[1][2] in page and page.count("<tr>") >= len(QA) + 1
    assert "<svg" in page  # the interval chart

    # the per-record route the playground drills down with
    r = httpx.get(f"{url}/haniwa/v1/evaluation-jobs/{job_id}/records?limit=4", headers=AUTH)
    r.raise_for_status()
    data = r.json()
    assert data["total"] == len(QA) and len(data["records"]) == 4 and data["nextOffset"] == 4
    assert data["records"][0]["line"]["inputRecord"]["prompt"].startswith("<script>")
    r = httpx.get(f"{url}/haniwa/v1/evaluation-jobs/{job_id}/records?offset=4", headers=AUTH)
    assert len(r.json()["records"]) == 2 and r.json()["nextOffset"] is None
    r = httpx.get(f"{url}/haniwa/v1/evaluation-jobs/{job_id}/records?limit=0", headers=AUTH)
    assert r.status_code == 400 and "limit" in r.json()["error"]["message"]
