"""``haniwa batch``: create (a local JSONL uploaded for you), list, get, wait and stop, against an embedded
server."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from haniwa.cli import cli


@pytest.fixture
def env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("HANIWA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HANIWA_HOME", str(home))
    monkeypatch.setenv("HANIWA_PROFILE", "fast")
    with socket.socket() as s:  # no server answers there: the commands start an embedded one
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HANIWA_PORT", str(s.getsockname()[1]))
    (home / "s3" / "results").mkdir(parents=True)
    return home


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_batch_commands(env: Path, tmp_path: Path) -> None:
    records = tmp_path / "questions.jsonl"
    body = {"messages": [{"role": "user", "content": [{"text": "日本の首都は？"}]}]}
    records.write_text(
        "\n".join([json.dumps({"recordId": f"q{i}", "modelInput": body}) for i in range(5)] + ["oops"]),
        encoding="utf-8",
    )
    created = run(
        "batch",
        "create",
        "capitals",
        "--input",
        str(records),
        "--output",
        "s3://results/",
        "--type",
        "Converse",
    )
    assert created.exit_code == 0, created.output
    assert "created batch job capitals" in created.output
    assert "PartiallyCompleted — 5 answers, 1 errors of 6 records" in created.output
    job_id = created.output.split("(", 1)[1].split(")", 1)[0]
    out = env / "s3" / "results" / job_id / "questions.jsonl.out"
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r.get("recordId") for r in rows[:5]] == [f"q{i}" for i in range(5)] and "error" in rows[5]
    listed = run("batch", "list")
    assert "capitals" in listed.output and "6/6" in listed.output
    got = run("batch", "get", "capitals", "--json")
    assert json.loads(got.output)["successRecordCount"] == 5
    assert "PartiallyCompleted" in run("batch", "wait", job_id).output
    stopped = run("batch", "stop", "capitals")
    assert stopped.exit_code == 1 and "ConflictException" in stopped.output
    missing = run("batch", "get", "nope")
    assert missing.exit_code == 1 and "no batch job named 'nope'" in missing.output
