"""Judge sampling (issue 17): the judge asked N times per metric shows its own noise. A scripted judge
whose answer depends on the sampling seed makes the disagreement observable: at seed 1 it rates the first
good answer "no", at every other seed "yes"."""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from haniwa.api.app import create_app
from haniwa.cli import cli
from haniwa.config import Settings
from haniwa.evaluation.base import plan_from_json, plan_to_json
from haniwa.evaluation.report import render_report
from haniwa.testing.server import serve_in_thread
from tests.conftest import ECHO_CATALOG, client_kwargs
from tests.test_evaluation import (
    API_KEY,
    KEY,
    QA,
    SECRET,
    _byo,
    _create,
    _lines,
    _progress,
    _put_jsonl,
    _wait,
)

NOISY = "acme.noisy-judge-v1"
YES = '\'{"reasoning": "参照回答と一致する", "rating": "yes"}\''
NO = '\'{"reasoning": "参照回答と異なる", "rating": "no"}\''
NOISY_CATALOG = (
    ECHO_CATALOG
    + f'"{NOISY}" = "scripted:noisy"\n'
    + '\n[models."scripted:noisy"]\nbackend = "scripted"\nkind = "chat"\n'
    + "options = { rules = ["
    + f'{{ match = "評価する回答\\n富士山は標高", seed = 1, reply = {NO} }},'
    + '{ match = "評価する回答\\n(富士山は標高|首都は東京|水の沸点|一年は365日あります'
    + f'|一番長い川|秒速約30万)", reply = {YES} }}'
    + f"], default = {NO} }}\n"
)
JUDGE = {"evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": NOISY}]}}


def _home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    (h / "models.toml").write_text(NOISY_CATALOG, encoding="utf-8")
    return h


@pytest.fixture(params=[1, 3], ids=["samples1", "samples3"])
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    settings = Settings(
        home=_home(tmp_path),
        access_key_id=KEY,
        secret_access_key=SECRET,
        api_keys=[API_KEY],
        eval_judge_samples=request.param,
    )
    with serve_in_thread(create_app(settings)) as u:
        yield u, request.param


def _output_lines(s3: Any, name: str, arn: str) -> list[dict[str, Any]]:
    prefix = f"out/{name}/{arn.rsplit('/', 1)[-1]}/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="evals", Prefix=prefix)["Contents"]]
    key = next(k for k in keys if k.endswith("_output.jsonl"))
    text = s3.get_object(Bucket="evals", Key=key)["Body"].read().decode()
    return [json.loads(x) for x in text.splitlines()]


def _report(s3: Any, name: str, arn: str) -> str:
    key = f"out/{name}/{arn.rsplit('/', 1)[-1]}/report.html"
    return str(s3.get_object(Bucket="evals", Key=key)["Body"].read().decode())


def test_judge_samples_setting(served: tuple[str, int]) -> None:
    url, n = served
    s3 = boto3.client("s3", **client_kwargs(url))
    s3.create_bucket(Bucket="evals")
    bedrock = boto3.client("bedrock", **client_kwargs(url))
    uri = _put_jsonl(s3, "ds/good.jsonl", _lines("good"))
    arn = _create(bedrock, "noise", uri, ["Builtin.Correctness"], _byo("good"), **JUDGE)
    assert _wait(bedrock, arn)["status"] == "Completed"
    lines = _output_lines(s3, "noise", arn)
    first = lines[0]["automatedEvaluationResult"]["scores"][0]
    result = _progress(url, arn)["summary"]["results"][0]
    if n == 1:
        # today's output, unchanged: one judgement at temperature 0, no extra field, no noise
        assert first["result"] == 1.0
        assert set(first) == {"metricName", "result", "evaluatorDetails"}
        assert "judgeNoise" not in result
        assert result["metrics"]["Builtin.Correctness"]["mean"] == 1.0
        assert "judge noise" not in _report(s3, "noise", arn)
        return
    # seed 0 says yes, seed 1 no, seed 2 yes: the record's score is the mean, with the samples and sd
    assert first["judgeSamples"]["results"] == [1.0, 0.0, 1.0]
    assert first["result"] == pytest.approx(2 / 3)
    sd = math.sqrt(2 / 9)
    assert first["judgeSamples"]["standardDeviation"] == pytest.approx(sd)
    assert first["evaluatorDetails"][0]["modelIdentifier"] == NOISY  # Bedrock's fields stay
    others = [x["automatedEvaluationResult"]["scores"][0] for x in lines[1:]]
    assert all(s["judgeSamples"] == {"results": [1.0, 1.0, 1.0], "standardDeviation": 0.0} for s in others)
    noise = result["judgeNoise"]["Builtin.Correctness"]
    assert noise["count"] == len(QA)
    assert noise["disagreement"] == pytest.approx(1 / len(QA))
    assert noise["meanStd"] == pytest.approx(sd / len(QA))
    assert result["metrics"]["Builtin.Correctness"]["mean"] == pytest.approx((5 + 2 / 3) / 6)
    page = _report(s3, "noise", arn)
    assert "judge noise" in page and "17%" in page


def test_cli_judge_samples_per_job_and_bad_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _home(tmp_path)
    for name in list(os.environ):
        if name.startswith("HANIWA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HANIWA_HOME", str(home))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HANIWA_PORT", str(s.getsockname()[1]))
    evals = home / "s3" / "evals"
    evals.mkdir(parents=True)
    (evals / "good.jsonl").write_text(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in _lines("good")), encoding="utf-8"
    )
    out = CliRunner().invoke(
        cli,
        ["eval", "create", "cli-noise", "--dataset", "s3://evals/good.jsonl", "--responses", "good",
         "--metric", "Builtin.Correctness", "--judge", NOISY, "--judge-samples", "3",
         "--output", "s3://evals/out/"],
        catch_exceptions=False,
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "Completed" in out.output and "judge noise" in out.output and "17% disagree" in out.output
    # the count is part of the stored plan, so a resumed job asks the judge as many times
    db = next(home.rglob("*.db"))
    with sqlite3.connect(db) as conn:
        (raw,) = conn.execute("SELECT plan FROM evaluation_jobs WHERE name = 'cli-noise'").fetchone()
    plan = plan_from_json(json.loads(raw))
    assert plan.judge_samples == 3 and plan_from_json(plan_to_json(plan)) == plan
    bad = CliRunner().invoke(cli, ["eval", "create", "x", "--dataset", "s3://e/x.jsonl", "--responses", "a",
                                   "--output", "s3://e/", "--judge-samples", "11"])  # fmt: skip
    assert bad.exit_code != 0 and "11" in bad.output


def test_judge_samples_header_is_validated(tmp_path: Path) -> None:
    settings = Settings(home=_home(tmp_path), access_key_id=KEY, secret_access_key=SECRET)
    with serve_in_thread(create_app(settings)) as url:
        s3 = boto3.client("s3", **client_kwargs(url))
        s3.create_bucket(Bucket="evals")
        bedrock = boto3.client("bedrock", **client_kwargs(url))
        bedrock.meta.events.register(
            "before-sign.bedrock.CreateEvaluationJob",
            lambda request, **_: request.headers.__setitem__("x-haniwa-judge-samples", "0"),
        )
        uri = _put_jsonl(s3, "ds/good.jsonl", _lines("good"))
        with pytest.raises(ClientError) as err:
            _create(bedrock, "bad", uri, ["Builtin.Correctness"], _byo("good"), **JUDGE)
        assert err.value.response["Error"]["Code"] == "ValidationException"
        assert "1 to 10" in err.value.response["Error"]["Message"]


def test_report_without_noise_is_unchanged() -> None:
    summary = {"jobName": "j", "jobId": "i", "results": [{"metrics": {"m": {"mean": 0.5, "count": 1}}}]}
    assert "judge noise" not in render_report(summary, [[]])
