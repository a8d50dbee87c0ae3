"""Issue 11, item 1: signatures bind the body, empty credentials are none, only API keys are bearers.

Requests are signed with botocore's own ``SigV4Auth`` and sent with httpx, so the body can be changed after
signing; boto3 and the openai SDK check that the ordinary clients keep working.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import openai
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.errors import UsageError
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs

KEY, SECRET, API_KEY = "AKIDHANIWA", "s3cr3t-value", "api-key-1"
CONVERSE = "/model/echo:echo/converse"


def _body(text: str) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": [{"text": text}]}]}).encode()


def _sign(
    url: str,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    signer: type[SigV4Auth] = SigV4Auth,
    path: str = CONVERSE,
) -> dict[str, str]:
    all_headers = {"content-type": "application/json", **(headers or {})}
    req = AWSRequest(method="POST", url=url + path, data=body, headers=all_headers)
    signer(Credentials(KEY, SECRET), "bedrock", "us-east-1").add_auth(req)
    return dict(req.headers.items())


class _HostUnsigned(SigV4Auth):  # type: ignore[misc]
    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        out = super().headers_to_sign(request)
        del out["host"]
        return out


def _denied(r: httpx.Response, match: str) -> None:
    assert r.status_code == 403, r.text
    assert r.headers["x-amzn-errortype"] == "AccessDeniedException"
    assert match in r.json()["message"]


@pytest.fixture
def keyed(home: Path) -> Iterator[str]:
    settings = Settings(home=home, access_key_id=KEY, secret_access_key=SECRET, api_keys=[API_KEY])
    with serve_in_thread(create_app(settings)) as url:
        yield url


def test_body_changed_after_signing_is_refused(keyed: str) -> None:
    original = _body("transfer 1 yen")
    sha = {"x-amz-content-sha256": hashlib.sha256(original).hexdigest()}
    headers = _sign(keyed, original, headers=sha)
    ok = httpx.post(keyed + CONVERSE, content=original, headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["output"]["message"]["content"][0]["text"] == "transfer 1 yen"
    # the same signed headers with another body: botocore would trust the signed hash, haniwa compares it
    tampered = httpx.post(keyed + CONVERSE, content=_body("transfer 1000000 yen"), headers=headers)
    _denied(tampered, "x-amz-content-sha256")
    # without the header the signature covers the body's own hash, which differs too
    plain = _sign(keyed, original)
    _denied(httpx.post(keyed + CONVERSE, content=_body("other"), headers=plain), "signature")
    # boto3 signs the body it sends, so it keeps working, streams included
    kw = {**client_kwargs(keyed), "aws_access_key_id": KEY, "aws_secret_access_key": SECRET}
    rt = boto3.client("bedrock-runtime", **kw)
    msgs = [{"role": "user", "content": [{"text": "署名"}]}]
    out = rt.converse(modelId="echo:echo", messages=msgs)
    assert out["output"]["message"]["content"][0]["text"] == "署名"
    assert list(rt.converse_stream(modelId="echo:echo", messages=msgs)["stream"])


@pytest.mark.parametrize("policy", ["UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "nothex"])
def test_unsigned_payload_is_refused(keyed: str, policy: str) -> None:
    body = _body("hi")
    headers = _sign(keyed, body, headers={"x-amz-content-sha256": policy})
    _denied(httpx.post(keyed + CONVERSE, content=body, headers=headers), "x-amz-content-sha256")


def test_signature_must_cover_host(keyed: str) -> None:
    body = _body("hi")
    headers = _sign(keyed, body, signer=_HostUnsigned)
    assert "host" not in headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    _denied(httpx.post(keyed + CONVERSE, content=body, headers=headers), "'Host' must be a 'SignedHeader'")


def test_secret_access_key_is_not_a_bearer_token(keyed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = openai.OpenAI(base_url=keyed + "/v1", api_key=API_KEY, max_retries=0)
    chat = client.chat.completions.create(model="echo:echo", messages=[{"role": "user", "content": "hi"}])
    assert chat.choices[0].message.content == "hi"
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", API_KEY)
    assert boto3.client("bedrock", **client_kwargs(keyed)).list_foundation_models()["modelSummaries"]
    # the SigV4 secret opens neither surface as a bearer token, and SigV4 does not open the OpenAI one
    client = openai.OpenAI(base_url=keyed + "/v1", api_key=SECRET, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    r = httpx.get(keyed + "/haniwa/v1/conversations", headers={"authorization": f"Bearer {SECRET}"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "Incorrect API key provided"
    body = json.dumps({"model": "echo:echo", "messages": [{"role": "user", "content": "hi"}]}).encode()
    signed = _sign(keyed, body, path="/v1/chat/completions")
    r = httpx.post(keyed + "/v1/chat/completions", content=body, headers=signed)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", SECRET)
    bedrock = boto3.client("bedrock", **client_kwargs(keyed))
    with pytest.raises(bedrock.exceptions.AccessDeniedException):
        bedrock.list_foundation_models()


def test_non_ascii_bearer_is_refused_not_a_crash(keyed: str) -> None:
    r = httpx.get(keyed + "/v1/models", headers={"authorization": "Bearer s\u00e9cret".encode("latin-1")})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_credentials_without_api_keys_close_the_bearer_surfaces(home: Path) -> None:
    settings = Settings(home=home, access_key_id=KEY, secret_access_key=SECRET)
    with serve_in_thread(create_app(settings)) as url:
        for path in ("/v1/models", "/haniwa/v1/conversations"):
            for auth in ({}, {"authorization": "Bearer"}, {"authorization": f"Bearer {SECRET}"}):
                r = httpx.get(url + path, headers=auth)
                assert r.status_code == 401, (path, auth, r.text)
                assert "HANIWA_API_KEYS" in r.json()["error"]["message"]
        r = httpx.get(url + "/foundation-models", headers={"authorization": f"Bearer {SECRET}"})
        _denied(r, "HANIWA_API_KEYS")
        # SigV4 is how this server is used
        kw = {**client_kwargs(url), "aws_access_key_id": KEY, "aws_secret_access_key": SECRET}
        assert boto3.client("bedrock", **kw).list_foundation_models()["modelSummaries"]


def test_empty_secret_is_not_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANIWA_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("HANIWA_SECRET_ACCESS_KEY", "")
    settings = Settings(home=tmp_path, host="0.0.0.0")
    assert settings.secret_access_key is None and not settings.auth_enabled
    with pytest.raises(UsageError, match="HANIWA_SECRET_ACCESS_KEY"):
        settings.check_bind()
    # half a pair is refused on loopback too: it would silently serve without authentication
    with pytest.raises(UsageError, match="set both, or neither"):
        settings.model_copy(update={"host": "127.0.0.1"}).check_bind()
    monkeypatch.setenv("HANIWA_ACCESS_KEY_ID", "  ")
    monkeypatch.setenv("HANIWA_SECRET_ACCESS_KEY", "s")
    assert Settings(home=tmp_path).access_key_id is None
    blank: dict[str, Any] = {"access_key_id": KEY, "secret_access_key": ""}
    with pytest.raises(UsageError):
        Settings(home=tmp_path, host="10.0.0.1", **blank).check_bind()


def test_empty_api_key_is_not_configured(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANIWA_API_KEYS", '[""]')
    assert Settings(home=home).api_keys == []
    monkeypatch.setenv("HANIWA_API_KEYS", '["", "real-key", " "]')
    assert Settings(home=home).api_keys == ["real-key"]
    settings = Settings(home=home, access_key_id=KEY, secret_access_key=SECRET, api_keys=[""])
    with serve_in_thread(create_app(settings)) as url:
        for auth in ({"authorization": "Bearer"}, {}):  # no token at all used to match the key ""
            r = httpx.get(url + "/v1/models", headers=auth)
            assert r.status_code == 401, r.text
            assert "HANIWA_API_KEYS" in r.json()["error"]["message"]


def test_api_keys_without_sigv4_close_the_bedrock_surface(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with only HANIWA_API_KEYS, no signature can be checked: the Bedrock routes take the same bearer keys
    with serve_in_thread(create_app(Settings(home=home, api_keys=[API_KEY]))) as url:
        runtime = boto3.client("bedrock-runtime", **client_kwargs(url))
        with pytest.raises(runtime.exceptions.AccessDeniedException):
            runtime.converse(modelId="echo:echo", messages=[{"role": "user", "content": [{"text": "hi"}]}])
        monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", API_KEY)
        runtime = boto3.client("bedrock-runtime", **client_kwargs(url))
        out = runtime.converse(modelId="echo:echo", messages=[{"role": "user", "content": [{"text": "hi"}]}])
        assert out["output"]["message"]["content"] == [{"text": "hi"}]
        client = openai.OpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0)
        assert client.models.list().data
