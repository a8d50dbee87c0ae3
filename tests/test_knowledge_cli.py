"""``haniwa kb``: create, sync (progress + statistics), query and ask, against an embedded server."""

from __future__ import annotations

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
    # a free port: no server answers there, so the commands start an embedded one
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HANIWA_PORT", str(s.getsockname()[1]))
    folder = home / "s3" / "manuals" / "ja"
    folder.mkdir(parents=True)
    (folder / "robot.md").write_text(
        "# ハニワロボ仕様\n\n## 材料\n\nアルミニウム 12 kg、銅線 3 m。\n", encoding="utf-8"
    )
    (folder / "tea.txt").write_text("Green tea is rich in catechins.", encoding="utf-8")
    return home


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_kb_commands(env: Path) -> None:
    created = run("kb", "create", "manuals", "--bucket", "manuals", "--prefix", "ja/")
    assert created.exit_code == 0, created.output
    assert "created knowledge base manuals" in created.output

    synced = run("kb", "sync", "manuals")
    assert synced.exit_code == 0, synced.output
    assert "scanned 2 · new 2" in synced.output and "COMPLETE" in synced.output
    again = run("kb", "sync", "manuals")
    assert "scanned 2 · new 0 · modified 0 · deleted 0" in again.output

    found = run("kb", "query", "manuals", "ロボットの材料", "-k", "1")
    assert found.exit_code == 0, found.output
    assert "s3://manuals/ja/robot.md" in found.output and "アルミニウム" in found.output

    answer = run("kb", "ask", "manuals", "ロボットの材料は？")
    assert answer.exit_code == 0, answer.output
    assert "[1] s3://manuals/ja/robot.md" in answer.output and "session:" in answer.output

    listed = run("kb", "list")
    assert "manuals" in listed.output and "manuals-ja" in listed.output

    missing = run("kb", "query", "nope", "x")
    assert missing.exit_code == 1 and "no knowledge base named 'nope'" in missing.output
