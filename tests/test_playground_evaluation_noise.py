"""The playground Evaluation panel's "judge noise" column (issue 17), in headless Chromium against a real
server: a job whose seed-dependent scripted judge was asked three times per record."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.browser import PlaygroundPage
from tests.conftest import client_kwargs
from tests.test_evaluation import ROLE, _lines
from tests.test_evaluation_noise import JUDGE, NOISY_CATALOG


@pytest.fixture
def home(tmp_path: Path) -> Path:  # the noisy scripted judge over conftest's home
    h = tmp_path / "haniwa-home"
    h.mkdir()
    (h / "models.toml").write_text(NOISY_CATALOG, encoding="utf-8")
    return h


def test_metric_table_shows_judge_noise(pg_page: PlaygroundPage, server: str) -> None:
    pg = pg_page
    s3 = boto3.client("s3", **client_kwargs(server))
    s3.create_bucket(Bucket="pn-evals")
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _lines("good"))
    s3.put_object(Bucket="pn-evals", Key="ds/good.jsonl", Body=body.encode())
    bedrock = boto3.client("bedrock", **client_kwargs(server))
    bedrock.meta.events.register(  # what `haniwa eval create --judge-samples 3` sends
        "before-sign.bedrock.CreateEvaluationJob",
        lambda request, **_: request.headers.__setitem__("x-haniwa-judge-samples", "3"),
    )
    bedrock.create_evaluation_job(
        jobName="panel-noise",
        roleArn=ROLE,
        evaluationConfig={
            "automated": {
                "datasetMetricConfigs": [
                    {
                        "taskType": "QuestionAndAnswer",
                        "dataset": {
                            "name": "ja-qa",
                            "datasetLocation": {"s3Uri": "s3://pn-evals/ds/good.jsonl"},
                        },
                        "metricNames": ["Builtin.Correctness", "Builtin.Accuracy"],
                    }
                ],
                **JUDGE,
            }
        },
        inferenceConfig={"models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": "good"}}]},
        outputDataConfig={"s3Uri": "s3://pn-evals/out/"},
    )
    pg.goto("#/evaluation")
    row = pg.page.get_by_test_id("eval-row").filter(has_text="panel-noise")
    row.get_by_test_id("eval-status").filter(has_text="Completed").wait_for()
    row.get_by_test_id("eval-open").click()
    correctness = pg.page.get_by_test_id("eval-metric").filter(has_text="Builtin.Correctness")
    correctness.wait_for()
    assert correctness.get_by_test_id("eval-noise").inner_text() == "sd 0.079 · 17%"
    # a metric the judge does not rate has no noise
    accuracy = pg.page.get_by_test_id("eval-metric").filter(has_text="Builtin.Accuracy").first
    assert accuracy.get_by_test_id("eval-noise").inner_text() == "—"
