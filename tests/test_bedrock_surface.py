"""Control plane, auth, limits and the error shape of the Bedrock surface, through real clients."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.errors import ThrottledError, UsageError
from haniwa.plugins import make_plugin_manager
from haniwa.runtime.base import ChatRequest, Message, TextBlock
from haniwa.runtime.registry import ModelRegistry
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs


def test_list_foundation_models_with_filters(bedrock: Any) -> None:
    models = bedrock.list_foundation_models()["modelSummaries"]
    ids = {m["modelId"] for m in models}
    assert {"echo:echo", "llamacpp:qwen2.5-coder-1.5b", "amazon.titan-embed-text-v2:0"} <= ids
    claude = next(m for m in models if m["modelId"] == "anthropic.claude-3-haiku-20240307-v1:0")
    assert claude["providerName"] == "Anthropic" and claude["responseStreamingSupported"] is True
    # models.toml routes anthropic.* to echo: the listing names the model a call really reaches
    assert claude["modelName"] == "Anthropic Claude 3 Haiku (served by echo:echo)"
    embeds = bedrock.list_foundation_models(byOutputModality="EMBEDDING")["modelSummaries"]
    assert embeds and all("EMBEDDING" in m["outputModalities"] for m in embeds)
    tunable = bedrock.list_foundation_models(byCustomizationType="FINE_TUNING")["modelSummaries"]
    assert any(m["modelId"] == "llamacpp:qwen2.5-coder-0.5b" for m in tunable)
    anthropic = bedrock.list_foundation_models(byProvider="Anthropic")["modelSummaries"]
    assert anthropic and all(m["providerName"] == "Anthropic" for m in anthropic)


def test_get_foundation_model_by_id_arn_and_pattern(bedrock: Any) -> None:
    d = bedrock.get_foundation_model(modelIdentifier="amazon.titan-text-express-v1")["modelDetails"]
    assert d["modelId"] == "amazon.titan-text-express-v1"
    arn = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert bedrock.get_foundation_model(modelIdentifier=arn)["modelDetails"]["providerName"] == "Anthropic"
    with pytest.raises(bedrock.exceptions.ResourceNotFoundException):
        bedrock.get_foundation_model(modelIdentifier="nobody.nothing-v1")


def test_cross_region_profile_ids_resolve(runtime: Any) -> None:
    for mid in ("us.anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic.claude-sonnet-4-20250514-v1:0"):
        out = runtime.converse(modelId=mid, messages=[{"role": "user", "content": [{"text": "hi"}]}])
        assert out["output"]["message"]["content"][0]["text"] == "hi"


def test_invocation_log_records_calls(runtime: Any, settings: Settings) -> None:
    runtime.converse(modelId="echo:echo", messages=[{"role": "user", "content": [{"text": "log me"}]}])
    import sqlite3

    rows = (
        sqlite3.connect(settings.db_path)
        .execute("SELECT operation, model_id, output_tokens, status FROM invocations")
        .fetchall()
    )
    assert ("Converse", "echo:echo", 2, "ok") in rows


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/model/echo:echo/converse", b"{not json", 400, "ValidationException"),
        ("POST", "/model/echo:echo/converse", b'{"messages": "nope"}', 400, "ValidationException"),
        (
            "POST",
            "/model/echo:echo/converse",
            b'{"messages": [], "inferenceConfig": {"maxTokens": 0}}',
            400,
            "ValidationException",
        ),
        (
            "POST",
            "/model/missing-model/converse",
            b'{"messages": [{"role":"user","content":[{"text":"x"}]}]}',
            404,
            "ResourceNotFoundException",
        ),
        ("POST", "/model/echo:echo/invoke", b"[1,2]", 400, "ValidationException"),
        ("POST", "/model/echo:echo/count-tokens", b'{"input": {}}', 400, "ValidationException"),
        ("GET", "/foundation-models/nope.nope", b"", 404, "ResourceNotFoundException"),
        ("GET", "/foundation-models?byOutputModality=SMELL", b"", 400, "ValidationException"),
        ("POST", "/async-invoke", b"{}", 400, "ValidationException"),
        ("GET", "/model-copy-jobs", b"", 501, "NotImplementedException"),
        ("GET", "/evaluation-jobs/nope", b"", 400, "ValidationException"),
    ],
)
def test_error_shape(server: str, method: str, path: str, body: bytes, status: int, code: str) -> None:
    r = httpx.request(method, server + path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["x-amzn-errortype"] == code
    assert r.headers["x-amzn-requestid"]
    assert set(r.json()) == {"message"} and r.json()["message"]


def test_oversized_body_is_rejected(home: Path) -> None:
    settings = Settings(home=home, max_body_bytes=1000)
    with serve_in_thread(create_app(settings)) as url:
        rt = boto3.client("bedrock-runtime", **client_kwargs(url))
        with pytest.raises(rt.exceptions.ValidationException, match="exceeds"):
            rt.converse(modelId="echo:echo", messages=[{"role": "user", "content": [{"text": "x" * 5000}]}])


def test_sigv4_is_verified_when_keys_are_configured(home: Path) -> None:
    settings = Settings(home=home, access_key_id="AKIDHANIWA", secret_access_key="s3cr3t")
    with serve_in_thread(create_app(settings)) as url:
        kw = client_kwargs(url)
        good = boto3.client(
            "bedrock-runtime", **{**kw, "aws_access_key_id": "AKIDHANIWA", "aws_secret_access_key": "s3cr3t"}
        )
        msgs = [{"role": "user", "content": [{"text": "署名 ok"}]}]
        assert good.converse(modelId="anthropic.claude-3-haiku-20240307-v1:0", messages=msgs)["output"]
        # streaming, a colon in the path and a query string are all signed too
        assert list(good.converse_stream(modelId="echo:echo", messages=msgs)["stream"])
        good_cp = boto3.client(
            "bedrock", **{**kw, "aws_access_key_id": "AKIDHANIWA", "aws_secret_access_key": "s3cr3t"}
        )
        assert good_cp.list_foundation_models(byOutputModality="TEXT")["modelSummaries"]
        wrong_secret = boto3.client(
            "bedrock-runtime", **{**kw, "aws_access_key_id": "AKIDHANIWA", "aws_secret_access_key": "wrong"}
        )
        with pytest.raises(wrong_secret.exceptions.AccessDeniedException, match="signature"):
            wrong_secret.converse(modelId="echo:echo", messages=msgs)
        wrong_key = boto3.client("bedrock-runtime", **kw)
        with pytest.raises(wrong_key.exceptions.AccessDeniedException):
            wrong_key.converse(modelId="echo:echo", messages=msgs)
        unsigned = httpx.post(url + "/model/echo:echo/converse", json={"messages": msgs})
        assert unsigned.status_code == 403 and unsigned.headers["x-amzn-errortype"] == "AccessDeniedException"


def test_loopback_without_keys_accepts_any_signature(runtime: Any) -> None:
    out = runtime.converse(modelId="echo:echo", messages=[{"role": "user", "content": [{"text": "ok"}]}])
    assert out["output"]["message"]["content"][0]["text"] == "ok"


def test_binding_beyond_loopback_requires_credentials(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="HANIWA_ACCESS_KEY_ID"):
        Settings(home=tmp_path, host="0.0.0.0").check_bind()
    Settings(home=tmp_path, host="127.0.0.1").check_bind()
    Settings(home=tmp_path, host="0.0.0.0", access_key_id="a", secret_access_key="b").check_bind()


def test_queue_limit_raises_throttling(settings: Settings) -> None:
    registry = ModelRegistry.from_plugins(settings.model_copy(update={"max_queue": 0}), make_plugin_manager())

    async def scenario() -> list[Any]:
        _, model = await registry.chat("echo:echo")
        req = ChatRequest((Message("user", (TextBlock("x " * 50),)),))
        gen = model.converse_stream(req)
        await gen.__anext__()  # one request in flight
        results = await asyncio.gather(model.converse(req), model.converse(req), return_exceptions=True)
        await gen.aclose()
        return results

    results = asyncio.run(scenario())
    assert all(isinstance(r, ThrottledError) for r in results)


def test_throttling_maps_to_429_over_http(home: Path) -> None:
    settings = Settings(home=home, max_queue=-1)
    with serve_in_thread(create_app(settings)) as url:
        rt = boto3.client("bedrock-runtime", **client_kwargs(url))
        with pytest.raises(rt.exceptions.ThrottlingException) as exc:
            rt.converse(modelId="echo:echo", messages=[{"role": "user", "content": [{"text": "x"}]}])
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
