"""The playground's Evaluation panel (``#/evaluation``) in headless Chromium against a real server: two
bring-your-own-responses jobs judged by a scripted judge, followed in the list, opened (metrics with their
95% intervals drawn as a chart, records with the judge's explanation) and compared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.browser import PlaygroundPage
from tests.conftest import client_kwargs
from tests.test_evaluation import CATALOG, JUDGE, ROLE, _lines


@pytest.fixture
def home(tmp_path: Path) -> Path:  # the evaluation catalog (scripted judge) over conftest's home
    h = tmp_path / "haniwa-home"
    h.mkdir()
    (h / "models.toml").write_text(CATALOG, encoding="utf-8")
    return h


def tid(pg: PlaygroundPage, testid: str) -> Any:
    return pg.page.get_by_test_id(testid)


def _job(bedrock: Any, s3: Any, kind: str) -> str:
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _lines(kind))
    s3.put_object(Bucket="pe-evals", Key=f"ds/{kind}.jsonl", Body=body.encode())
    arn: str = bedrock.create_evaluation_job(
        jobName=f"panel-{kind}",
        roleArn=ROLE,
        evaluationConfig={
            "automated": {
                "datasetMetricConfigs": [
                    {
                        "taskType": "QuestionAndAnswer",
                        "dataset": {
                            "name": "ja-qa",
                            "datasetLocation": {"s3Uri": f"s3://pe-evals/ds/{kind}.jsonl"},
                        },
                        "metricNames": ["Builtin.Correctness", "Builtin.Accuracy"],
                    }
                ],
                "evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": JUDGE}]},
            }
        },
        inferenceConfig={"models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": kind}}]},
        outputDataConfig={"s3Uri": "s3://pe-evals/out/"},
    )["jobArn"]
    return arn.rsplit("/", 1)[-1]


def test_list_open_drill_down_and_compare(pg_page: PlaygroundPage, server: str) -> None:
    pg = pg_page
    s3 = boto3.client("s3", **client_kwargs(server))
    s3.create_bucket(Bucket="pe-evals")
    bedrock = boto3.client("bedrock", **client_kwargs(server))
    pg.goto("#/evaluation")
    tid(pg, "eval-empty").wait_for()

    good, bad = _job(bedrock, s3, "good"), _job(bedrock, s3, "bad")
    tid(pg, "eval-refresh").click()
    for name in ("panel-good", "panel-bad"):
        r = tid(pg, "eval-row").filter(has_text=name)
        r.get_by_test_id("eval-status").filter(has_text="Completed").wait_for()
        assert r.get_by_test_id("eval-done").inner_text() == "6 / 6"

    # open the good job: metric table, interval chart, records with the judge's explanation
    tid(pg, "eval-row").filter(has_text="panel-good").get_by_test_id("eval-open").click()
    metric = tid(pg, "eval-metric").filter(has_text="Builtin.Correctness")
    metric.wait_for()
    assert metric.get_by_test_id("eval-mean").inner_text() == "1.000"
    assert metric.get_by_test_id("eval-interval").inner_text() == "[1.000, 1.000]"
    acc = (
        tid(pg, "eval-metric")
        .filter(has_text="Builtin.Accuracy")
        .get_by_test_id("eval-interval")
        .inner_text()
    )
    lo, hi = (float(x) for x in acc.strip("[]").split(", "))
    assert 0 <= lo <= hi <= 1
    bars = pg.page.locator("[data-testid=eval-chart] [data-testid=eval-bar]")
    assert bars.count() >= 2 and pg.page.locator("[data-testid=eval-whisker]").count() >= 2
    assert tid(pg, "eval-record").count() == 6
    tid(pg, "eval-record").first.get_by_test_id("eval-record-toggle").click()
    explain = tid(pg, "eval-drill").first.get_by_test_id("eval-explanation")
    assert "参照回答と一致する" in explain.all_inner_texts()[0] or "参照回答と一致する" in " ".join(
        explain.all_inner_texts()
    )

    # compare: bad (B) against good (A)
    tid(pg, "eval-compare-a").select_option(good)
    tid(pg, "eval-compare-b").select_option(bad)
    tid(pg, "eval-compare").click()
    row = tid(pg, "eval-cmp-row").filter(has_text="Builtin.Correctness")
    row.wait_for()
    assert row.get_attribute("data-verdict") == "worse"
    assert row.get_by_test_id("eval-verdict").inner_text() == "worse"
    chart_bars = pg.page.locator("[data-testid=eval-compare-out] [data-testid=eval-bar]")
    assert {chart_bars.nth(i).get_attribute("data-job") for i in range(chart_bars.count())} == {
        "panel-good",
        "panel-bad",
    }
    pg.shot("evaluation-panel", full_page=True)


def test_human_rating_view_completes_the_job(pg_page: PlaygroundPage, server: str) -> None:
    pg = pg_page
    s3 = boto3.client("s3", **client_kwargs(server))
    s3.create_bucket(Bucket="pe-human")
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _lines("good")[:2])
    s3.put_object(Bucket="pe-human", Key="ds/h.jsonl", Body=body.encode())
    bedrock = boto3.client("bedrock", **client_kwargs(server))
    arn = bedrock.create_evaluation_job(
        jobName="panel-human",
        roleArn=ROLE,
        evaluationConfig={
            "human": {
                "humanWorkflowConfig": {
                    "flowDefinitionArn": "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/x"
                },
                "customMetrics": [
                    {"name": "Helpful", "ratingMethod": "ThumbsUpDown"},
                    {"name": "Fluency", "ratingMethod": "IndividualLikertScale", "description": "自然さ"},
                ],
                "datasetMetricConfigs": [
                    {
                        "taskType": "Generation",
                        "dataset": {"name": "h", "datasetLocation": {"s3Uri": "s3://pe-human/ds/h.jsonl"}},
                        "metricNames": ["Helpful", "Fluency"],
                    }
                ],
            }
        },
        inferenceConfig={"models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": "good"}}]},
        outputDataConfig={"s3Uri": "s3://pe-human/out/"},
    )["jobArn"]
    pg.goto("#/evaluation")
    row = tid(pg, "eval-row").filter(has_text="panel-human")
    row.get_by_test_id("eval-message").filter(has_text="rated 0 of 2").wait_for()
    assert row.get_by_test_id("eval-status").inner_text() == "InProgress"
    row.get_by_test_id("eval-open").click()
    items = tid(pg, "eval-rate-item")
    items.nth(1).wait_for()
    assert "3776" in items.first.get_by_test_id("eval-rate-response").inner_text()
    for i, (thumb, likert) in enumerate([("up", "5"), ("down", "3")]):
        item = items.nth(i)
        item.locator(f"[data-metric=Helpful][data-value={thumb}]").click()
        if i == 0:  # a metric left unrated is refused in the page, before any request
            item.get_by_test_id("eval-rate-save").click()
            pg.page.locator("#toast").filter(has_text="Rate every metric").wait_for()
        item.locator(f"[data-metric=Fluency][data-value='{likert}']").click()
        item.get_by_test_id("eval-rate-save").click()
        item.get_by_test_id("eval-rate-state").filter(has_text="rated").wait_for()
    row.get_by_test_id("eval-status").filter(has_text="Completed").wait_for()
    assert bedrock.get_evaluation_job(jobIdentifier=arn)["status"] == "Completed"
    helpful = tid(pg, "eval-metric").filter(has_text="Helpful")
    helpful.wait_for()
    assert helpful.get_by_test_id("eval-mean").inner_text() == "0.500"
    assert (
        tid(pg, "eval-metric").filter(has_text="Fluency").get_by_test_id("eval-mean").inner_text() == "0.750"
    )
    pg.shot("evaluation-human", full_page=True)
