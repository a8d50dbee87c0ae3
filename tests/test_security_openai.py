"""Issue 11 on the OpenAI and ``/haniwa/v1`` surfaces: strict bodies, typed errors, no bad row, caps.

Driven by the ``openai`` SDK, boto3 and raw httpx against a real haniwa; bad rows are written straight into
its SQLite file with ``sqlite3``, as an older version (or another tool) could have left them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import openai
import pytest
from botocore.exceptions import ClientError
from pydantic import BaseModel

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.runtime.base import ChatEvent, ChatRequest, ChatResult, ModelInfo, TextDelta
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs

JSON = {"content-type": "application/json"}
HI = [{"role": "user", "content": "hi"}]


def _error(r: httpx.Response, status: int) -> dict[str, Any]:
    """The response is ``status`` with an OpenAI error body (never FastAPI's ``{"detail": ...}``)."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


# -- /haniwa/v1: nothing unstorable gets in, and a bad row never breaks a list ----------------------------
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_comparison_with_a_non_finite_number_is_refused_and_not_stored(server: str, value: str) -> None:
    body = '{"prompt": "p", "results": [{"model": "echo:echo", "ttft_ms": VALUE}]}'.replace("VALUE", value)
    err = _error(httpx.post(server + "/haniwa/v1/comparisons", content=body, headers=JSON), 400)
    assert err["type"] == "invalid_request_error"
    listed = httpx.get(server + "/haniwa/v1/comparisons")
    assert listed.status_code == 200 and listed.json()["data"] == []


def test_conversation_params_with_nan_are_refused_on_create_and_update(server: str) -> None:
    url = server + "/haniwa/v1/conversations"
    bad = '{"model_id": "echo:echo", "params": {"temperature": NaN}}'
    _error(httpx.post(url, content=bad, headers=JSON), 400)
    assert httpx.get(url).json()["data"] == []
    conv = httpx.post(url, json={"model_id": "echo:echo", "params": {"temperature": 0.5}}).json()
    patch = '{"params": {"nested": [1, {"x": Infinity}]}}'
    _error(httpx.patch(f"{url}/{conv['id']}", content=patch, headers=JSON), 400)
    listed = httpx.get(url)
    assert listed.status_code == 200
    assert listed.json()["data"][0]["params"] == {"temperature": 0.5}


@pytest.mark.parametrize("since", ["nan", "inf", "-inf", "1e400", "NaN"])
def test_usage_window_must_be_finite(server: str, since: str) -> None:
    err = _error(httpx.get(server + "/haniwa/v1/usage", params={"since": since}), 400)
    assert err["param"] == "since"
    _error(httpx.get(server + "/haniwa/v1/usage", params={"until": since}), 400)
    assert httpx.get(server + "/haniwa/v1/usage", params={"since": "0"}).status_code == 200


def test_integers_beyond_64_bits_are_refused(server: str, oai: Any) -> None:
    conv = httpx.post(server + "/haniwa/v1/conversations", json={"model_id": "echo:echo"}).json()
    url = f"{server}/haniwa/v1/conversations/{conv['id']}/messages"
    err = _error(httpx.post(url, json={"role": "user", "content": "x", "input_tokens": 10**30}), 400)
    assert "64 bits" in err["message"]
    assert httpx.get(f"{server}/haniwa/v1/conversations/{conv['id']}").json()["messages"] == []
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="echo:echo", messages=HI, max_tokens=10**30)
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="echo:echo", messages=HI, seed=-(10**20))


def test_lone_surrogates_are_refused_before_anything_is_stored(server: str, oai: Any) -> None:
    conv = httpx.post(server + "/haniwa/v1/conversations", json={"model_id": "echo:echo"}).json()
    url = f"{server}/haniwa/v1/conversations/{conv['id']}/messages"
    err = _error(httpx.post(url, content='{"role": "user", "content": "a\\ud800b"}', headers=JSON), 400)
    assert "surrogate" in err["message"]
    got = httpx.get(f"{server}/haniwa/v1/conversations/{conv['id']}")
    assert got.status_code == 200 and got.json()["messages"] == []
    body = '{"model": "echo:echo", "messages": [{"role": "user", "content": "\\udc80"}]}'
    _error(httpx.post(server + "/v1/chat/completions", content=body, headers=JSON), 400)


def test_bad_rows_left_in_the_database_are_repaired_when_read(server: str, settings: Settings) -> None:
    base = server + "/haniwa/v1"
    conv = httpx.post(base + "/conversations", json={"model_id": "echo:echo"}).json()
    with sqlite3.connect(settings.db_path) as db:
        db.execute(
            "INSERT INTO comparisons (id, created, prompt, system, params, results) VALUES (?,?,?,?,?,?)",
            ("bad1", time.time(), "p", None, '{"t": NaN}', '[{"model": "m", "ttft_ms": Infinity}]'),
        )
        db.execute(
            "INSERT INTO comparisons (id, created, prompt, system, params, results) VALUES (?,?,?,?,?,?)",
            ("bad2", time.time(), "p", None, "{not json", "[1, 2"),
        )
        db.execute("UPDATE conversations SET params = ? WHERE id = ?", ('{"x": -Infinity}', conv["id"]))
        db.execute(
            "INSERT INTO messages (conversation_id, role, content, input_tokens, latency_ms, created)"
            " VALUES (?,?,?,?,?,?)",
            (conv["id"], "user", "hello", float("inf"), "slow", time.time()),
        )
        db.execute(
            "INSERT INTO invocations (request_id, ts, surface, operation, latency_ms, first_token_ms, status)"
            " VALUES (?,?,?,?,?,?,?)",
            ("r", time.time(), "openai", "ChatCompletions", float("inf"), float("-inf"), "ok"),
        )
        # bytes that are not UTF-8 in a TEXT column (another tool wrote them) made every read fail
        db.execute(
            "UPDATE conversations SET title = CAST(? AS TEXT) WHERE id = ?", (b"caf\xe9 \xff", conv["id"])
        )
    comparisons = httpx.get(base + "/comparisons")
    assert comparisons.status_code == 200, comparisons.text
    by_id = {c["id"]: c for c in comparisons.json()["data"]}
    assert by_id["bad1"]["params"] == {"t": None}
    assert by_id["bad1"]["results"] == [{"model": "m", "ttft_ms": None}]
    assert by_id["bad2"]["params"] == {} and by_id["bad2"]["results"] == []
    assert httpx.get(base + "/comparisons/bad2").status_code == 200
    listed = httpx.get(base + "/conversations")
    assert listed.status_code == 200 and listed.json()["data"][0]["params"] == {"x": None}
    assert listed.json()["data"][0]["title"] == "caf\ufffd \ufffd"
    one = httpx.get(f"{base}/conversations/{conv['id']}")
    assert one.status_code == 200
    assert one.json()["messages"][0] | {"id": 0, "created": 0} == {
        "id": 0,
        "role": "user",
        "content": "hello",
        "created": 0,
        "input_tokens": None,
        "output_tokens": None,
        "latency_ms": None,
    }
    used = httpx.get(base + "/usage", params={"since": 0})
    assert used.status_code == 200, used.text
    row = used.json()["invocations"][0]
    assert row["latency_ms"] is None and row["first_token_ms"] is None
    # new writes keep working next to the repaired rows
    ok = httpx.post(base + "/comparisons", json={"prompt": "p", "results": [{"model": "m", "ttft_ms": 1.5}]})
    assert ok.status_code == 201


# -- the OpenAI surface: strict bodies, one error shape, the statuses the document declares --------------
def test_values_are_not_coerced(oai: Any) -> None:
    for extra in ({"stream": "yes"}, {"max_tokens": "5"}, {"temperature": True}, {"seed": 7.5}):
        with pytest.raises(openai.BadRequestError) as err:
            oai.chat.completions.create(model="echo:echo", messages=HI, extra_body=extra)
        assert err.value.body["param"] == next(iter(extra)), extra
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model="hash:hash-384", input="x", extra_body={"dimensions": "64"})
    # what OpenAI itself accepts still passes: an integer where a number is due
    out = oai.chat.completions.create(model="echo:echo", messages=HI, temperature=1)
    assert out.choices[0].message.content == "hi"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"{bad", JSON),
        (b"\xff\xfe\x00", JSON),  # not UTF-8
        (b"[" * 100_000 + b"]" * 100_000, JSON),  # RecursionError in json.loads
        (b'{"a":' * 70 + b"1" + b"}" * 70, JSON),  # deeper than MAX_JSON_DEPTH
        (b'"just a string"', JSON),
        (b"model=echo:echo", {"content-type": "application/x-www-form-urlencoded"}),
        (b"", JSON),
    ],
    ids=["invalid", "not-utf8", "recursion", "too-deep", "not-an-object", "form", "empty"],
)
def test_body_parse_errors_have_the_openai_shape(server: str, body: bytes, headers: dict[str, str]) -> None:
    for path in ("/v1/chat/completions", "/v1/embeddings", "/haniwa/v1/conversations"):
        r = httpx.post(server + path, content=body, headers=headers)
        assert _error(r, 400)["type"] == "invalid_request_error"
        assert "detail" not in r.text


OPENAI_PATHS = ("/v1/", "/haniwa/v1/")


def test_the_openapi_document_declares_what_is_returned(server: str) -> None:
    doc = httpx.get(server + "/openapi.json").json()
    ops = [
        (p, m, op) for p, item in doc["paths"].items() if p.startswith(OPENAI_PATHS) for m, op in item.items()
    ]
    assert len(ops) >= 13
    for path, method, op in ops:
        responses = op["responses"]
        assert "422" not in responses, (method, path)
        for status in ("400", "401", "404", "429", "4XX", "5XX"):
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/OpenAIErrorBody"}, (method, path, status)
        assert "Retry-After" in responses["429"]["headers"]
    assert "201" in doc["paths"]["/haniwa/v1/conversations"]["post"]["responses"]
    assert "201" in doc["paths"]["/haniwa/v1/comparisons"]["post"]["responses"]
    # and what is declared is what comes back: a body that fails validation is a 400 everywhere
    for path, method, op in ops:
        if "requestBody" not in op:
            continue
        url = server + path.replace("{conv_id}", "nope").replace("{cid}", "nope")
        r = httpx.request(method.upper(), url, json={"unexpected": [1]})
        assert "400" in op["responses"]
        _error(r, 400)
    r = httpx.get(server + "/haniwa/v1/conversations", params={"limit": "lots"})
    assert _error(r, 400)["param"] == "limit"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("PUT", "/v1/embeddings", "POST"),
        ("DELETE", "/v1/models", "GET"),
        ("POST", "/v1/models/echo:echo", "GET"),
        ("PUT", "/haniwa/v1/usage", "GET"),
        ("POST", "/haniwa/v1/comparisons/abc", "DELETE, GET"),
        ("PUT", "/haniwa/v1/conversations", "GET, POST"),
    ],
)
def test_a_wrong_method_is_405_in_the_openai_shape(server: str, method: str, path: str, allow: str) -> None:
    r = httpx.request(method, server + path, json={})
    err = _error(r, 405)
    assert err["code"] == "method_not_allowed"
    assert r.headers["allow"] == allow


def test_an_unknown_path_under_v1_is_404_in_the_openai_shape(server: str, oai: Any) -> None:
    for path in ("/v1/completions", "/v1/nothing/here", "/haniwa/v1/elsewhere"):
        _error(httpx.post(server + path, json={}), 404)
    with pytest.raises(openai.NotFoundError):
        oai.completions.create(model="echo:echo", prompt="hi")


# -- an exception that is nobody's fault but ours -------------------------------------------------------
class _NoOptions(BaseModel):
    pass


class _Broken:
    """A chat backend with a bug, registered like any other: it fails before or after its first token."""

    name = "broken"
    options_model = _NoOptions
    supports_tools = False
    supports_images = False

    def load_chat(self, info: ModelInfo, options: BaseModel, settings: Settings) -> _Broken:
        return self

    def load_embedder(self, info: ModelInfo, options: BaseModel, settings: Settings) -> Any:
        raise NotImplementedError

    async def converse(self, req: ChatRequest) -> ChatResult:
        raise RuntimeError("boom at /srv/haniwa/secret.py")

    async def converse_stream(self, req: ChatRequest) -> AsyncIterator[ChatEvent]:
        if req.messages[-1].text == "late":
            yield TextDelta("partial")
        raise RuntimeError("boom at /srv/haniwa/secret.py")


@pytest.fixture
def broken_server(settings: Settings) -> Iterator[str]:
    app = create_app(settings)
    registry = app.state.platform.registry
    registry.add_backend(_Broken())
    registry.add_model(ModelInfo("broken:bug", "broken", "chat"))
    with serve_in_thread(app) as url:
        yield url


def test_an_unexpected_exception_is_a_typed_error_with_a_request_id(broken_server: str) -> None:
    url = broken_server + "/v1/chat/completions"
    for stream in (False, True):
        r = httpx.post(url, json={"model": "broken:bug", "messages": HI, "stream": stream})
        err = _error(r, 500)
        assert err["type"] == "server_error"
        assert r.headers["x-request-id"] in err["message"]
        assert "/srv" not in r.text and "boom" not in r.text and "Traceback" not in r.text
    # a failure after the first event ends the stream with an error event instead of cutting it
    late = {"model": "broken:bug", "messages": [{"role": "user", "content": "late"}], "stream": True}
    with httpx.stream("POST", url, json=late) as r:
        assert r.status_code == 200
        events = [line.removeprefix("data: ") for line in r.iter_lines() if line.startswith("data: ")]
    assert json.loads(events[-1])["error"]["type"] == "server_error"
    assert "boom" not in "".join(events)


# -- caps on what one request may ask for -----------------------------------------------------------------
@pytest.fixture
def capped(home: Path) -> Iterator[str]:
    settings = Settings(
        home=home,
        profile="fast",
        max_embedding_inputs=3,
        max_embedding_dimensions=2048,
        max_messages=4,
        max_tools=2,
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url


def test_embedding_dimensions_are_capped_on_the_openai_surface(server: str, oai: Any) -> None:
    # 10**7 first: without the cap it answers (slowly) and the test stops before 10**9 tries to take 8 GB
    for dims in (10_000_000, 10**9, 100_000, 0, -1):
        started = time.perf_counter()
        with pytest.raises(openai.BadRequestError) as err:
            oai.embeddings.create(model="hash:hash-384", input="x", dimensions=dims)
        assert time.perf_counter() - started < 2.0  # refused at once, nothing allocated
        assert err.value.body["param"] == "dimensions"
    assert (
        len(oai.embeddings.create(model="hash:hash-384", input="x", dimensions=512).data[0].embedding) == 512
    )


def test_embedding_caps_hold_on_both_surfaces(capped: str) -> None:
    oai = openai.OpenAI(base_url=capped + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        oai.embeddings.create(model="hash:hash-384", input=["a", "b", "c", "d"])
    assert err.value.body["param"] == "input" and "HANIWA_MAX_EMBEDDING_INPUTS" in err.value.body["message"]
    assert len(oai.embeddings.create(model="hash:hash-384", input=["a", "b", "c"]).data) == 3
    runtime = boto3.client("bedrock-runtime", **client_kwargs(capped))
    with pytest.raises(ClientError) as bedrock_err:
        runtime.invoke_model(
            modelId="cohere.embed-multilingual-v3",
            body=json.dumps({"texts": ["a", "b", "c", "d"], "input_type": "search_document"}),
        )
    assert bedrock_err.value.response["Error"]["Code"] == "ValidationException"
    assert "HANIWA_MAX_EMBEDDING_INPUTS" in bedrock_err.value.response["Error"]["Message"]
    # Bedrock's own formats allow a few sizes only; the registry's cap is the second line behind them
    with pytest.raises(ClientError) as bedrock_err:
        runtime.invoke_model(
            modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "a", "dimensions": 10**9})
        )
    assert bedrock_err.value.response["Error"]["Code"] == "ValidationException"


def test_chat_caps_on_the_openai_surface(capped: str) -> None:
    oai = openai.OpenAI(base_url=capped + "/v1", api_key="unused", max_retries=0)
    five = [{"role": "user", "content": str(i)} for i in range(5)]
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="echo:echo", messages=five)
    assert err.value.body["param"] == "messages"
    tool = {"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}}
    tools = [{**tool, "function": {**tool["function"], "name": f"t{i}"}} for i in range(3)]
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="echo:echo", messages=HI, tools=tools)
    assert err.value.body["param"] == "tools"
    for field in ("max_tokens", "max_completion_tokens"):
        with pytest.raises(openai.BadRequestError) as err:
            oai.chat.completions.create(model="echo:echo", messages=HI, **{field: 10**9})
        assert err.value.body["param"] == field and "context window" in err.value.body["message"]
    assert oai.chat.completions.create(model="echo:echo", messages=five[:4], max_tokens=100).choices
