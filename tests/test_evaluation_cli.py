"""``haniwa eval``: generate a test set from a knowledge base, create jobs with a progress bar, list, get
and compare them, against an embedded server."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from haniwa.cli import cli
from tests.test_evaluation import QA

WRITER = "acme.writer-v1"
WRITER_CATALOG = (
    f'"{WRITER}" = "scripted:writer"\n'
    + '\n[models."scripted:writer"]\nbackend = "scripted"\nkind = "chat"\n'
    + "options = { rules = ["
    + '{ match = "材料", reply = \'{"question": "ロボットの材料は？",'
    + ' "answer": "アルミニウム 12 kg、銅線 3 m。"}\' }'
    + '], default = \'{"question": "What is green tea rich in?", "answer": "Catechins."}\' }\n'
)


@pytest.fixture
def env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("HANIWA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HANIWA_HOME", str(home))
    monkeypatch.setenv("HANIWA_PROFILE", "fast")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HANIWA_PORT", str(s.getsockname()[1]))
    catalog = home / "models.toml"
    catalog.write_text(catalog.read_text(encoding="utf-8") + WRITER_CATALOG, encoding="utf-8")
    folder = home / "s3" / "manuals" / "ja"
    folder.mkdir(parents=True)
    (folder / "robot.md").write_text(
        "# ハニワロボ\n\n材料: アルミニウム 12 kg、銅線 3 m。\n", encoding="utf-8"
    )
    (folder / "tea.txt").write_text("Green tea is rich in catechins.", encoding="utf-8")
    evals = home / "s3" / "evals"
    evals.mkdir(parents=True)
    for kind, i in (("good", 2), ("bad", 3)):
        rows = [
            {
                "prompt": q,
                "referenceResponse": ref,
                "modelResponses": [{"response": r[i - 2], "modelIdentifier": kind}],
            }
            for q, ref, *r in QA
        ]
        (evals / f"{kind}.jsonl").write_text(
            "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in rows), encoding="utf-8"
        )
    return home


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_eval_commands(env: Path) -> None:
    assert run("kb", "create", "manuals", "--bucket", "manuals", "--prefix", "ja/").exit_code == 0
    assert run("kb", "sync", "manuals").exit_code == 0
    made = run("eval", "generate", "manuals", "--model", WRITER, "--output", "s3://evals/generated.jsonl")
    assert made.exit_code == 0, made.output
    assert "wrote 2 pairs from 2 documents" in made.output
    pairs = [
        json.loads(x) for x in (env / "s3" / "evals" / "generated.jsonl").read_text("utf-8").splitlines()
    ]
    by_doc = {p["category"]: p for p in pairs}
    # each pair is in its document's language
    assert by_doc["s3://manuals/ja/robot.md"]["prompt"] == "ロボットの材料は？"
    assert by_doc["s3://manuals/ja/tea.txt"]["referenceResponse"] == "Catechins."

    for kind in ("good", "bad"):
        created = run(
            "eval", "create", f"qa-{kind}", "--dataset", f"s3://evals/{kind}.jsonl",
            "--responses", kind, "--metric", "Builtin.Accuracy", "--output", "s3://evals/out/",
        )  # fmt: skip
        assert created.exit_code == 0, created.output
        assert "Completed" in created.output and "95% interval" in created.output
    listed = run("eval", "list")
    assert "qa-good" in listed.output and "qa-bad" in listed.output
    got = run("eval", "get", "qa-good")
    assert "Builtin.Accuracy" in got.output and "Accuracy.ROUGE-L" in got.output
    compared = run("eval", "compare", "qa-good", "qa-bad")
    assert compared.exit_code == 0, compared.output
    row = next((line for line in compared.output.splitlines() if "Builtin.Accuracy" in line), compared.output)
    assert "worse" in row
