"""The ``openai`` backend, end to end: a downstream haniwa whose models live on an upstream server.

The upstream is a second real haniwa (its OpenAI surface serving echo / hash), or, for failure shapes
haniwa never produces, a tiny scripted OpenAI-style server. Clients are boto3 and the openai SDK.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import openai
import pytest
from botocore.exceptions import EventStreamError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.runtime.base import ChatBackend, Embedder, ModelInfo
from haniwa.runtime.openai_compat import OpenAIBackend, OpenAIOptions
from haniwa.testing.conformance import ChatBackendConformance, EmbedderConformance
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN_V2 = "amazon.titan-embed-text-v2:0"
WEATHER = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Weather for a city",
        "inputSchema": {
            "json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        },
    }
}


def downstream_catalog(base_url: str, **extra_options: Any) -> str:
    opts = "".join(f", {k} = {json.dumps(v)}" for k, v in extra_options.items())
    return f"""
[models."openai:upstream-echo"]
backend = "openai"
kind = "chat"
options = {{ base_url = "{base_url}", model = "echo:echo"{opts} }}

[models."openai:upstream-vision"]
backend = "openai"
kind = "chat"
input_modalities = ["TEXT", "IMAGE"]
options = {{ base_url = "{base_url}", model = "echo:echo", supports_images = true{opts} }}

[models."openai:upstream-missing"]
backend = "openai"
kind = "chat"
options = {{ base_url = "{base_url}", model = "no-such-upstream-model"{opts} }}

[models."openai:upstream-embed"]
backend = "openai"
kind = "embedding"
output_modalities = ["EMBEDDING"]
options = {{ base_url = "{base_url}", model = "hash:hash-384"{opts} }}

[aliases]
"{HAIKU}" = "openai:upstream-echo"
"{TITAN_V2}" = {{ target = "openai:upstream-embed", dimensions = 1024, allowed_dimensions = [256, 1024] }}
"""


@pytest.fixture
def serve_downstream(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start haniwa servers whose ``models.toml`` is the given text; returns their URLs."""
    stack: list[Any] = []

    def start(catalog: str) -> str:
        home = tmp_path / f"downstream-{len(stack)}"
        home.mkdir()
        (home / "models.toml").write_text(catalog, encoding="utf-8")
        cm = serve_in_thread(create_app(Settings(home=home, profile="fast")))
        stack.append(cm)
        return cm.__enter__()

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


@pytest.fixture
def downstream(server: str, serve_downstream: Callable[[str], str]) -> str:
    """A haniwa whose chat and embedding models are the upstream ``server``'s echo and hash."""
    return serve_downstream(downstream_catalog(server + "/v1"))


@pytest.fixture
def runtime2(downstream: str) -> Any:
    return boto3.client("bedrock-runtime", **client_kwargs(downstream))


@pytest.fixture
def oai2(downstream: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=downstream + "/v1", api_key="unused", max_retries=0)


def upstream_calls(settings: Settings) -> list[tuple[str, str, str, str]]:
    """What the upstream haniwa logged: proof a request crossed both servers."""
    with sqlite3.connect(settings.db_path) as db:
        rows = db.execute("SELECT surface, operation, model_requested, status FROM invocations ORDER BY id")
        return [tuple(r) for r in rows]


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


# -- the shipped conformance suites, against the upstream haniwa --------------------------------------
class TestOpenAIChatConformance(ChatBackendConformance):
    @pytest.fixture
    def chat(self, server: str, settings: Settings) -> ChatBackend:
        info = ModelInfo("openai:upstream-echo", "openai", "chat")
        return OpenAIBackend().load_chat(
            info, OpenAIOptions(base_url=server + "/v1", model="echo:echo"), settings
        )


class TestOpenAIEmbedderConformance(EmbedderConformance):
    @pytest.fixture
    def embedder(self, server: str, settings: Settings) -> Embedder:
        info = ModelInfo("openai:upstream-embed", "openai", "embedding")
        opts = OpenAIOptions(base_url=server + "/v1", model="hash:hash-384")
        return OpenAIBackend().load_embedder(info, opts, settings)


# -- answers cross both servers -------------------------------------------------------------------------
def test_converse(runtime2: Any, settings: Settings) -> None:
    out = runtime2.converse(
        modelId=HAIKU,
        messages=[user("こんにちは、上流")],
        system=[{"text": "be brief"}],
        inferenceConfig={"maxTokens": 50},
    )
    assert out["output"]["message"]["content"] == [{"text": "こんにちは、上流"}]
    assert out["stopReason"] == "end_turn"
    assert out["usage"]["inputTokens"] > 0
    assert out["usage"]["outputTokens"] > 0
    assert upstream_calls(settings) == [("openai", "ChatCompletions", "echo:echo", "ok")]


def test_converse_limits(runtime2: Any) -> None:
    out = runtime2.converse(
        modelId=HAIKU, messages=[user("one two three four")], inferenceConfig={"maxTokens": 2}
    )
    assert out["output"]["message"]["content"] == [{"text": "one two"}]
    assert out["stopReason"] == "max_tokens"
    out = runtime2.converse(
        modelId=HAIKU, messages=[user("one two three four")], inferenceConfig={"stopSequences": ["three"]}
    )
    assert out["output"]["message"]["content"] == [{"text": "one two "}]
    assert out["stopReason"] == "stop_sequence"


def test_converse_stream(runtime2: Any, settings: Settings) -> None:
    text = "Streaming crosses two servers, token by token."
    resp = runtime2.converse_stream(modelId=HAIKU, messages=[user(text)])
    events = list(resp["stream"])
    deltas = [e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e]
    assert "".join(deltas) == text
    assert len(deltas) > 1
    assert [e["messageStop"]["stopReason"] for e in events if "messageStop" in e] == ["end_turn"]
    usage = next(e["metadata"]["usage"] for e in events if "metadata" in e)
    assert usage["outputTokens"] == len(deltas)  # counted upstream, sent in its include_usage chunk
    assert upstream_calls(settings) == [("openai", "ChatCompletions", "echo:echo", "ok")]


def test_tool_use_round_trip(runtime2: Any) -> None:
    messages = [user("What is the weather in Nara?")]
    out = runtime2.converse(modelId=HAIKU, messages=messages, toolConfig={"tools": [WEATHER]})
    assert out["stopReason"] == "tool_use"
    (block,) = out["output"]["message"]["content"]
    assert block["toolUse"]["name"] == "get_weather"
    assert block["toolUse"]["input"] == {"city": "echo"}
    messages.append(out["output"]["message"])
    result = {"toolResult": {"toolUseId": block["toolUse"]["toolUseId"], "content": [{"text": "sunny, 21C"}]}}
    messages.append({"role": "user", "content": [result]})
    out = runtime2.converse(modelId=HAIKU, messages=messages, toolConfig={"tools": [WEATHER]})
    assert out["stopReason"] == "end_turn"
    assert out["output"]["message"]["content"] == [{"text": "sunny, 21C"}]


def test_tool_use_round_trip_stream(runtime2: Any) -> None:
    messages = [user("What is the weather in Nara?")]
    events = list(
        runtime2.converse_stream(
            modelId=HAIKU, messages=messages, toolConfig={"tools": [WEATHER], "toolChoice": {"any": {}}}
        )["stream"]
    )
    start = next(e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e)
    assert start["name"] == "get_weather"
    args = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "contentBlockDelta" in e and "toolUse" in e["contentBlockDelta"]["delta"]
    )
    assert json.loads(args) == {"city": "echo"}
    assert [e["messageStop"]["stopReason"] for e in events if "messageStop" in e] == ["tool_use"]
    tool_use = {"toolUseId": start["toolUseId"], "name": "get_weather", "input": json.loads(args)}
    messages.append({"role": "assistant", "content": [{"toolUse": tool_use}]})
    result = {"toolResult": {"toolUseId": start["toolUseId"], "content": [{"json": {"sky": "clear"}}]}}
    messages.append({"role": "user", "content": [result]})
    events = list(
        runtime2.converse_stream(modelId=HAIKU, messages=messages, toolConfig={"tools": [WEATHER]})["stream"]
    )
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert json.loads(text) == {"sky": "clear"}
    assert [e["messageStop"]["stopReason"] for e in events if "messageStop" in e] == ["end_turn"]


def test_images(runtime2: Any) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
    content = [{"text": "describe"}, {"image": {"format": "png", "source": {"bytes": png}}}]
    out = runtime2.converse(modelId="openai:upstream-vision", messages=[{"role": "user", "content": content}])
    assert out["output"]["message"]["content"] == [{"text": "describe"}]
    with pytest.raises(runtime2.exceptions.ValidationException):  # supports_images defaults to false
        runtime2.converse(modelId=HAIKU, messages=[{"role": "user", "content": content}])


def test_openai_surface_over_openai_backend(oai2: openai.OpenAI) -> None:
    out = oai2.chat.completions.create(model=HAIKU, messages=[{"role": "user", "content": "hello twice"}])
    assert out.choices[0].message.content == "hello twice"
    chunks = list(
        oai2.chat.completions.create(
            model=HAIKU, messages=[{"role": "user", "content": "hello twice"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hello twice"


def test_embeddings(oai: openai.OpenAI, oai2: openai.OpenAI, settings: Settings) -> None:
    texts = ["はにわ", "clay figures of the Kofun period"]
    direct = oai.embeddings.create(model="hash:hash-384", input=texts, encoding_format="float")
    chained = oai2.embeddings.create(model="openai:upstream-embed", input=texts, encoding_format="float")
    assert [d.embedding for d in chained.data] == [d.embedding for d in direct.data]
    small = oai2.embeddings.create(model=TITAN_V2, input="haniwa", dimensions=256)
    assert len(small.data[0].embedding) == 256
    assert len(oai2.embeddings.create(model=TITAN_V2, input="haniwa").data[0].embedding) == 1024
    assert ("openai", "Embeddings", "hash:hash-384", "ok") in upstream_calls(settings)


def test_embeddings_bedrock(runtime2: Any) -> None:
    body = json.dumps({"inputText": "haniwa", "dimensions": 256})
    out = json.loads(runtime2.invoke_model(modelId=TITAN_V2, body=body)["body"].read())
    assert len(out["embedding"]) == 256


def test_declared_dimensions_skip_the_probe(server: str, serve_downstream: Callable[[str], str]) -> None:
    url = serve_downstream(downstream_catalog(server + "/v1", dimensions=384))
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    out = client.embeddings.create(model="openai:upstream-embed", input="x", encoding_format="float")
    assert len(out.data[0].embedding) == 384


# -- failures ------------------------------------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_upstream_down(serve_downstream: Callable[[str], str]) -> None:
    base = f"http://127.0.0.1:{closed_port()}/v1"
    url = serve_downstream(downstream_catalog(base))
    runtime = boto3.client("bedrock-runtime", **client_kwargs(url))
    with pytest.raises(runtime.exceptions.ModelNotReadyException) as err:
        runtime.converse(modelId=HAIKU, messages=[user("hi")])
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert base in err.value.response["Error"]["Message"]
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    for call in (
        lambda: client.chat.completions.create(model=HAIKU, messages=[{"role": "user", "content": "hi"}]),
        lambda: client.chat.completions.create(
            model=HAIKU, messages=[{"role": "user", "content": "hi"}], stream=True
        ),
        lambda: client.embeddings.create(model=TITAN_V2, input="hi"),
    ):
        with pytest.raises(openai.InternalServerError) as oerr:
            call()
        assert oerr.value.status_code == 503
        assert oerr.value.body["type"] == "server_error"  # type: ignore[index]


def test_upstream_rejects_request(runtime2: Any, oai2: openai.OpenAI) -> None:
    with pytest.raises(runtime2.exceptions.ValidationException) as err:
        runtime2.converse(modelId="openai:upstream-missing", messages=[user("hi")])
    assert "404" in err.value.response["Error"]["Message"]
    assert "no-such-upstream-model" in err.value.response["Error"]["Message"]  # the upstream's own message
    with pytest.raises(openai.BadRequestError):
        oai2.chat.completions.create(
            model="openai:upstream-missing", messages=[{"role": "user", "content": "x"}]
        )


def test_api_key_env(tmp_path: Path, serve_downstream: Callable[[str], str], monkeypatch: Any) -> None:
    home = tmp_path / "locked-upstream"
    home.mkdir()
    with serve_in_thread(create_app(Settings(home=home, api_keys=["upstream-key"]))) as upstream:
        url = serve_downstream(downstream_catalog(upstream + "/v1", api_key_env="HANIWA_TEST_UPSTREAM_KEY"))
        runtime = boto3.client("bedrock-runtime", **client_kwargs(url))
        monkeypatch.delenv("HANIWA_TEST_UPSTREAM_KEY", raising=False)
        with pytest.raises(runtime.exceptions.ModelNotReadyException) as err:
            runtime.converse(modelId=HAIKU, messages=[user("hi")])
        assert "HANIWA_TEST_UPSTREAM_KEY" in err.value.response["Error"]["Message"]
        monkeypatch.setenv("HANIWA_TEST_UPSTREAM_KEY", "upstream-key")
        out = runtime.converse(modelId=HAIKU, messages=[user("let me in")])
        assert out["output"]["message"]["content"] == [{"text": "let me in"}]
    assert "upstream-key" not in (tmp_path / "downstream-0" / "models.toml").read_text()


def test_options_are_strict() -> None:
    from pydantic import ValidationError

    from haniwa.runtime.openai_compat import OpenAIOptions

    opts = OpenAIOptions(base_url="http://127.0.0.1:8000/v1", model="m")
    assert (opts.timeout, opts.supports_tools, opts.supports_images, opts.api_key_env) == (
        120,
        True,
        False,
        None,
    )
    with pytest.raises(ValidationError):  # a literal key has no place in the catalog: api_key_env names one
        OpenAIOptions(base_url="http://127.0.0.1:8000/v1", model="m", api_key="sk-literal")  # type: ignore[call-arg]


# -- a scripted OpenAI-style upstream, for shapes haniwa itself never sends --------------------------------
def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


SCRIPTS: dict[str, list[dict[str, Any]]] = {
    # vLLM-style: tool arguments in fragments, no usage chunk
    "fragments": [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Let me check. "}),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Nara"}'}}]}),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Kyoto"}'},
                    }
                ]
            }
        ),
        _chunk({}, "tool_calls"),
    ],
    "broken": [
        _chunk({"content": "partial "}),
        {"error": {"message": "upstream exploded", "type": "server_error"}},
    ],
}


WHOLE = {  # what a server that ignores stream=true sends back
    "id": "c",
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "whole answer",
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Sakai"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
}


async def _scripted(request: Request) -> Response:
    body = await request.json()
    name = body["messages"][-1]["content"]
    if name == "busy":
        return JSONResponse({"error": {"message": "slow down", "type": "rate_limit_error"}}, status_code=429)
    if name == "crash":
        return JSONResponse({"detail": "kaboom"}, status_code=500)
    if name == "slow":
        await asyncio.sleep(2)
    if name in ("whole", "slow"):
        return JSONResponse(WHOLE)
    script = SCRIPTS[name]

    async def sse() -> AsyncIterator[str]:
        for item in script:
            yield f"data: {json.dumps(item)}\n\n"
        if "error" not in script[-1]:
            yield "data: [DONE]\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream")


@pytest.fixture
def scripted(serve_downstream: Callable[[str], str]) -> Iterator[str]:
    app = Starlette(routes=[Route("/v1/chat/completions", _scripted, methods=["POST"])])
    with serve_in_thread(app) as upstream:
        yield serve_downstream(downstream_catalog(upstream + "/v1", timeout=0.5))


def test_streamed_tool_call_fragments(scripted: str) -> None:
    runtime = boto3.client("bedrock-runtime", **client_kwargs(scripted))
    events = list(
        runtime.converse_stream(modelId=HAIKU, messages=[user("fragments")], toolConfig={"tools": [WEATHER]})[
            "stream"
        ]
    )
    text = "".join(
        e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e
    )
    assert text == "Let me check. "
    starts = [e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e]
    assert [(s["toolUseId"], s["name"]) for s in starts] == [
        ("call_1", "get_weather"),
        ("call_2", "get_weather"),
    ]
    inputs = [
        json.loads(e["contentBlockDelta"]["delta"]["toolUse"]["input"])
        for e in events
        if "contentBlockDelta" in e and "toolUse" in e["contentBlockDelta"]["delta"]
    ]
    assert inputs == [{"city": "Nara"}, {"city": "Kyoto"}]
    assert [e["messageStop"]["stopReason"] for e in events if "messageStop" in e] == ["tool_use"]
    usage = next(e["metadata"]["usage"] for e in events if "metadata" in e)
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0  # estimated: the upstream sent none


def test_error_mid_stream(scripted: str) -> None:
    client = openai.OpenAI(base_url=scripted + "/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model=HAIKU, messages=[{"role": "user", "content": "broken"}], stream=True
    )
    got: list[str] = []
    with pytest.raises(openai.APIError) as err:
        for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "partial "
    assert "upstream exploded" in err.value.message
    runtime = boto3.client("bedrock-runtime", **client_kwargs(scripted))
    resp = runtime.converse_stream(modelId=HAIKU, messages=[user("broken")])
    with pytest.raises(EventStreamError) as serr:
        list(resp["stream"])
    assert "upstream exploded" in str(serr.value)


def test_upstream_ignoring_stream(scripted: str) -> None:
    runtime = boto3.client("bedrock-runtime", **client_kwargs(scripted))
    events = list(runtime.converse_stream(modelId=HAIKU, messages=[user("whole")])["stream"])
    text = "".join(
        e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e
    )
    assert text == "whole answer"
    (start,) = [e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e]
    assert (start["toolUseId"], start["name"]) == ("call_9", "get_weather")
    assert [e["messageStop"]["stopReason"] for e in events if "messageStop" in e] == ["tool_use"]
    usage = next(e["metadata"]["usage"] for e in events if "metadata" in e)
    assert (usage["inputTokens"], usage["outputTokens"]) == (7, 5)
    out = runtime.converse(modelId=HAIKU, messages=[user("whole")])
    assert out["output"]["message"]["content"] == [
        {"text": "whole answer"},
        {"toolUse": {"toolUseId": "call_9", "name": "get_weather", "input": {"city": "Sakai"}}},
    ]


def test_upstream_failures(scripted: str) -> None:
    runtime = boto3.client("bedrock-runtime", **client_kwargs(scripted))
    client = openai.OpenAI(base_url=scripted + "/v1", api_key="unused", max_retries=0)
    cases = [
        ("busy", runtime.exceptions.ThrottlingException, openai.RateLimitError, "slow down"),
        ("crash", runtime.exceptions.ModelErrorException, openai.InternalServerError, "kaboom"),
        ("slow", runtime.exceptions.ModelTimeoutException, openai.InternalServerError, "0.5 s"),
    ]
    for script, bedrock_exc, openai_exc, message in cases:
        with pytest.raises(bedrock_exc) as err:
            runtime.converse(modelId=HAIKU, messages=[user(script)])
        assert message in err.value.response["Error"]["Message"]
        with pytest.raises(openai_exc) as oerr:
            client.chat.completions.create(model=HAIKU, messages=[{"role": "user", "content": script}])
        assert message in oerr.value.message


def test_base64_vectors_decode() -> None:
    from haniwa.runtime.openai_compat import _vector

    raw = base64.b64encode(bytes.fromhex("0000803f000000c0")).decode()
    assert _vector(raw) == [1.0, -2.0]
