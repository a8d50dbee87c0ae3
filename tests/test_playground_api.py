"""``/haniwa/v1`` (conversations, comparisons, usage), the static playground and Bedrock API keys.

Driven over HTTP with httpx (the REST has no SDK), the openai SDK and boto3 against a real server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import openai
import pytest

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


def test_conversation_lifecycle(http: httpx.Client, oai: Any) -> None:
    r = http.post(
        "/haniwa/v1/conversations",
        json={"model_id": "echo:echo", "system": "簡潔に答えてください", "params": {"temperature": 0.2}},
    )
    assert r.status_code == 201, r.text
    conv = r.json()
    assert conv["title"] == "" and conv["params"] == {"temperature": 0.2} and conv["message_count"] == 0
    cid = conv["id"]

    question = "はにわロボットの材料は何ですか？"
    r = http.post(f"/haniwa/v1/conversations/{cid}/messages", json={"role": "user", "content": question})
    assert r.status_code == 201 and r.json()["role"] == "user"
    answer = oai.chat.completions.create(model="echo:echo", messages=[{"role": "user", "content": question}])
    text = answer.choices[0].message.content
    r = http.post(
        f"/haniwa/v1/conversations/{cid}/messages",
        json={
            "role": "assistant",
            "content": text,
            "output_tokens": answer.usage.completion_tokens,
            "input_tokens": answer.usage.prompt_tokens,
            "latency_ms": 12,
        },
    )
    assert r.json()["output_tokens"] == answer.usage.completion_tokens

    got = http.get(f"/haniwa/v1/conversations/{cid}").json()
    assert got["title"] == question  # the first user message titles it
    assert [m["role"] for m in got["messages"]] == ["user", "assistant"]
    assert got["messages"][1]["content"] == text and got["system"] == "簡潔に答えてください"

    r = http.patch(
        f"/haniwa/v1/conversations/{cid}", json={"title": "材料の質問", "params": {"temperature": 0.9}}
    )
    assert r.json()["title"] == "材料の質問" and r.json()["params"] == {"temperature": 0.9}
    assert [c["id"] for c in http.get("/haniwa/v1/conversations").json()["data"]] == [cid]

    export = http.get(f"/haniwa/v1/conversations/{cid}", params={"download": 1})
    assert "attachment" in export.headers["content-disposition"]
    assert json.loads(export.content)["messages"][0]["content"] == question

    assert http.delete(f"/haniwa/v1/conversations/{cid}").json() == {
        "id": cid,
        "object": "conversation.deleted",
        "deleted": True,
    }
    missing = http.get(f"/haniwa/v1/conversations/{cid}")
    assert missing.status_code == 404 and "does not exist" in missing.json()["error"]["message"]


def test_conversations_reject_bad_input(http: httpx.Client) -> None:
    r = http.post("/haniwa/v1/conversations", json={"system": "x"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model_id"
    cid = http.post("/haniwa/v1/conversations", json={"model_id": "echo:echo"}).json()["id"]
    r = http.post(f"/haniwa/v1/conversations/{cid}/messages", json={"role": "system", "content": "x"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = http.post("/haniwa/v1/conversations/nope/messages", json={"role": "user", "content": "x"})
    assert r.status_code == 404
    assert http.get(f"/haniwa/v1/conversations/{cid}").json()["messages"] == []


def test_conversations_are_shared_with_the_cli_store(settings: Settings, http: httpx.Client) -> None:
    import asyncio

    from haniwa.store.conversations import ConversationStore
    from haniwa.store.db import Database

    async def made_by_cli() -> str:
        store = ConversationStore(Database(settings.db_path))
        cid = await store.create("echo:echo")
        await store.append(cid, "user", "CLI から始めた会話")
        return cid

    cid = asyncio.run(made_by_cli())
    listed = http.get("/haniwa/v1/conversations").json()["data"]
    assert listed[0]["id"] == cid and listed[0]["title"] == "CLI から始めた会話"


def test_comparisons_history(http: httpx.Client) -> None:
    results = [
        {
            "model": "echo:echo",
            "text": "東京",
            "ttft_ms": 3.5,
            "latency_ms": 10,
            "input_tokens": 5,
            "output_tokens": 1,
            "tokens_per_s": 153.8,
        },
        {"model": "echo:blind", "text": "", "error": "timeout", "gpu": "none"},
    ]
    r = http.post("/haniwa/v1/comparisons", json={"prompt": "日本の首都は？", "results": results})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    got = http.get(f"/haniwa/v1/comparisons/{cid}").json()
    assert got["prompt"] == "日本の首都は？"
    assert got["results"][0]["tokens_per_s"] == 153.8 and got["results"][1]["gpu"] == "none"
    assert [c["id"] for c in http.get("/haniwa/v1/comparisons").json()["data"]] == [cid]
    assert http.post("/haniwa/v1/comparisons", json={"prompt": "x", "results": []}).status_code == 400
    assert http.delete(f"/haniwa/v1/comparisons/{cid}").json()["deleted"] is True
    assert http.get(f"/haniwa/v1/comparisons/{cid}").status_code == 404


def test_usage_reports_calls_per_model(http: httpx.Client, oai: Any, runtime: Any) -> None:
    since = time.time() - 1
    for _ in range(2):
        oai.chat.completions.create(model="echo:echo", messages=[{"role": "user", "content": "こんにちは"}])
    runtime.converse(modelId="echo:blind", messages=[{"role": "user", "content": [{"text": "hello"}]}])
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    body = http.get("/haniwa/v1/usage", params={"since": since}).json()
    ops = [(i["surface"], i["operation"], i["status"]) for i in body["invocations"]]
    assert ops[0] == ("openai", "ChatCompletions", "error")  # newest first
    assert ("bedrock", "Converse", "ok") in ops
    per_model: dict[str, int] = {}
    for point in body["series"]:
        per_model[point["model_id"]] = per_model.get(point["model_id"], 0) + point["requests"]
    assert per_model["echo:echo"] == 2 and per_model["echo:blind"] == 1
    assert body["bucket_s"] == 60
    assert all(p["output_tokens"] > 0 for p in body["series"] if p["model_id"] == "echo:echo")
    assert http.get("/haniwa/v1/usage", params={"since": time.time() + 60}).json()["invocations"] == []


def test_playground_is_served(http: httpx.Client) -> None:
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/playground/main.js" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    for asset in (
        "main.js",
        "common/api.js",
        "common/i18n.js",
        "styles.css",
        "chat/panel.js",
        "compare/panel.js",
        "usage/panel.js",
        "agents/panel.js",
        "agents/trace.js",
        "agents/return-control.js",
        "common/dom.js",
        "common/format.js",
        "common/panel.js",
        "chat/chat.css",
        "compare/compare.css",
        "kb/panel.js",
        "kb/kb.css",
        "agents/agents.css",
        "usage/usage.css",
    ):
        assert http.get(f"/playground/{asset}").status_code == 200, asset
    escape = http.get("/playground/..%2F..%2Fconfig.py")
    assert escape.status_code == 404


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[str]:
    settings = Settings(home=tmp_path, access_key_id="AK", secret_access_key="SK", api_keys=["pg-key"])
    with serve_in_thread(create_app(settings)) as url:
        yield url


def test_bedrock_api_key_as_bearer(auth_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3 sends a Bedrock API key (AWS_BEARER_TOKEN_BEDROCK) as a bearer token instead of signing
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "pg-key")
    kw = client_kwargs(auth_server)
    bedrock = boto3.client("bedrock", **kw)
    assert bedrock.list_foundation_models()["modelSummaries"]
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "wrong")
    wrong = boto3.client("bedrock", **kw)
    with pytest.raises(wrong.exceptions.AccessDeniedException):
        wrong.list_foundation_models()
    # the REST resources take the same keys as the OpenAI surface
    assert httpx.get(auth_server + "/haniwa/v1/conversations").status_code == 401
    ok = httpx.get(auth_server + "/haniwa/v1/conversations", headers={"authorization": "Bearer pg-key"})
    assert ok.status_code == 200 and ok.json()["data"] == []
