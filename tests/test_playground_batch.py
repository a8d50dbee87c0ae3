"""The playground's Batch panel (``#/batch``) in headless Chromium against a real server with the echo
model: create a job over JSONL in haniwa's S3, watch its live counts, stop one, download the output."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.browser import PlaygroundPage
from tests.conftest import client_kwargs
from tests.test_batch import CATALOG, converse


@pytest.fixture
def home(tmp_path: Path) -> Path:  # the echo catalog plus echo:slow (overrides conftest's home)
    h = tmp_path / "haniwa-home"
    h.mkdir()
    (h / "models.toml").write_text(CATALOG, encoding="utf-8")
    return h


def tid(pg: PlaygroundPage, testid: str) -> Any:
    return pg.page.get_by_test_id(testid)


def test_create_follow_stop_and_download(pg_page: PlaygroundPage, server: str) -> None:
    pg = pg_page
    s3 = boto3.client("s3", **client_kwargs(server))
    s3.create_bucket(Bucket="panel-in")
    s3.create_bucket(Bucket="panel-out")
    records = [json.dumps({"recordId": f"p{i}", "modelInput": converse(f"パネル {i}")}) for i in range(20)]
    s3.put_object(Bucket="panel-in", Key="quick/q.jsonl", Body="\n".join([*records, "{bad"]).encode())
    slow = [json.dumps({"recordId": f"s{i}", "modelInput": converse("one two three")}) for i in range(500)]
    s3.put_object(Bucket="panel-in", Key="slow/s.jsonl", Body="\n".join(slow).encode())

    pg.goto("#/batch")
    tid(pg, "batch-empty").wait_for()
    tid(pg, "batch-name-input").fill("panel-quick")
    tid(pg, "batch-model").select_option("echo:echo")
    tid(pg, "batch-type").select_option("Converse")
    tid(pg, "batch-input").fill("s3://panel-in/quick/")
    tid(pg, "batch-output-uri").fill("s3://panel-out/results/")
    tid(pg, "batch-create").click()
    quick = tid(pg, "batch-row").filter(has_text="panel-quick")
    quick.get_by_test_id("batch-status").filter(has_text="PartiallyCompleted").wait_for()
    assert quick.get_by_test_id("batch-done").inner_text() == "21 / 21"
    assert quick.get_by_test_id("batch-counts").inner_text() == "20 · 1"
    links = quick.get_by_test_id("batch-download")
    links.first.wait_for()
    assert sorted(links.all_inner_texts()) == ["manifest.json.out", "q.jsonl.out"]
    href = links.filter(has_text="q.jsonl.out").get_attribute("href")
    with urllib.request.urlopen(server + href) as resp:
        rows = [json.loads(x) for x in resp.read().decode().splitlines()]
    assert [r["recordId"] for r in rows[:20]] == [f"p{i}" for i in range(20)] and "error" in rows[20]

    # a slow job: live counts, then Stop
    tid(pg, "batch-name-input").fill("panel-slow")
    tid(pg, "batch-model").select_option("echo:slow")
    tid(pg, "batch-input").fill("s3://panel-in/slow/")
    tid(pg, "batch-create").click()
    slow_row = tid(pg, "batch-row").filter(has_text="panel-slow")
    slow_row.get_by_test_id("batch-status").filter(has_text="InProgress").wait_for()
    slow_row.get_by_test_id("batch-message").filter(has_text="records/s measured").wait_for()
    pg.page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=batch-row][data-status=InProgress]"
        " [data-testid=batch-progress]')].some(p => p.value >= 20)"
    )
    slow_row.get_by_test_id("batch-stop").click()
    slow_row.get_by_test_id("batch-status").filter(has_text="Stopped").wait_for()
    slow_row.get_by_test_id("batch-download").first.wait_for()
    bedrock = boto3.client("bedrock", **client_kwargs(server))
    job = bedrock.list_model_invocation_jobs(nameContains="panel-slow")["invocationJobSummaries"][0]
    assert job["status"] == "Stopped" and 20 <= job["processedRecordCount"] < 500
    pg.shot("batch-panel")
