"""The OpenAI surface, driven by the real ``openai`` SDK against a real haniwa (echo / hash models)."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def test_models_list(oai: Any) -> None:
    ids = {m.id for m in oai.models.list()}
    assert {"echo:echo", "hash:hash-384", "amazon.titan-embed-text-v2:0"} <= ids
    assert "anthropic.*" not in ids  # patterns are not listable
    assert oai.models.retrieve("echo:echo").id == "echo:echo"


def test_chat(oai: Any) -> None:
    out = oai.chat.completions.create(
        model="anthropic.claude-3-haiku-20240307-v1:0",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "こんにちは、はにわ"},
        ],
        temperature=0.2,
        top_p=0.9,
        seed=7,
    )
    assert out.object == "chat.completion"
    assert out.model == "anthropic.claude-3-haiku-20240307-v1:0"
    assert out.choices[0].message.role == "assistant"
    assert out.choices[0].message.content == "こんにちは、はにわ"
    assert out.choices[0].finish_reason == "stop"
    assert out.usage.prompt_tokens > 0
    assert out.usage.completion_tokens > 0
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens


def test_chat_content_parts_and_images(oai: Any) -> None:
    out = oai.chat.completions.create(
        model="echo:echo",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is "},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "text", "text": "this?"},
                ],
            }
        ],
    )
    assert out.choices[0].message.content == "what is this?"
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(
            model="echo:echo",
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
            ],
        )
    assert err.value.body["param"] == "messages[0].content[0].image_url.url"


def test_chat_limits_and_stop(oai: Any) -> None:
    out = oai.chat.completions.create(
        model="echo:echo", messages=[{"role": "user", "content": "one two three four"}], max_tokens=2
    )
    assert out.choices[0].message.content == "one two"
    assert out.choices[0].finish_reason == "length"
    out = oai.chat.completions.create(
        model="echo:echo", messages=[{"role": "user", "content": "one two three"}], stop="three"
    )
    assert out.choices[0].message.content == "one two "
    assert out.choices[0].finish_reason == "stop"
    out = oai.chat.completions.create(
        model="echo:echo",
        messages=[{"role": "user", "content": "one two three"}],
        stop=["zzz", "two"],
        max_completion_tokens=10,
    )
    assert out.choices[0].message.content == "one "


def test_chat_response_format(oai: Any) -> None:
    for fmt in (
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    ):
        out = oai.chat.completions.create(
            model="echo:echo", messages=[{"role": "user", "content": '{"a": 1}'}], response_format=fmt
        )
        assert json.loads(out.choices[0].message.content) == {"a": 1}


def test_chat_stream(oai: Any) -> None:
    text = "Streaming works, one token at a time."
    chunks = list(
        oai.chat.completions.create(
            model="echo:echo",
            messages=[{"role": "user", "content": text}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_chat_stream_without_usage(server: str) -> None:
    with httpx.stream(
        "POST",
        server + "/v1/chat/completions",
        json={"model": "echo:echo", "messages": [{"role": "user", "content": "hi there"}], "stream": True},
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in resp.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all("usage" not in c for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "hi there"


def test_tools_round_trip(oai: Any) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Nara?"}]
    out = oai.chat.completions.create(
        model="echo:echo", messages=messages, tools=[WEATHER], tool_choice="auto"
    )
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "echo"}
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"})
    out = oai.chat.completions.create(model="echo:echo", messages=messages, tools=[WEATHER])
    assert out.choices[0].finish_reason == "stop"
    assert out.choices[0].message.content == "sunny, 21C"
    assert not out.choices[0].message.tool_calls


def test_tool_choice(oai: Any) -> None:
    msgs = [{"role": "user", "content": "hello"}]
    out = oai.chat.completions.create(model="echo:echo", messages=msgs, tools=[WEATHER], tool_choice="none")
    assert out.choices[0].message.content == "hello"
    other = {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}
    out = oai.chat.completions.create(
        model="echo:echo",
        messages=msgs,
        tools=[WEATHER, other],
        tool_choice={"type": "function", "function": {"name": "other"}},
    )
    assert out.choices[0].message.tool_calls[0].function.name == "other"
    out = oai.chat.completions.create(
        model="echo:echo", messages=msgs, tools=[WEATHER], tool_choice="required"
    )
    assert out.choices[0].finish_reason == "tool_calls"
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(
            model="echo:echo",
            messages=msgs,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "x"}},
        )
    assert err.value.body["param"] == "tool_choice"


def test_tools_stream(oai: Any) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="echo:echo",
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[WEATHER],
            stream=True,
        )
    )
    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(deltas) == 1
    assert deltas[0].index == 0
    assert deltas[0].function.name == "get_weather"
    assert json.loads(deltas[0].function.arguments) == {"city": "echo"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_embeddings(oai: Any) -> None:
    one = oai.embeddings.create(model="hash:hash-384", input="はにわ", encoding_format="float")
    assert one.object == "list"
    assert len(one.data) == 1
    assert len(one.data[0].embedding) == 384
    assert one.usage.prompt_tokens > 0
    batch = oai.embeddings.create(
        model="hash:hash-384", input=["はにわ", "clay figures"], encoding_format="float"
    )
    assert [d.index for d in batch.data] == [0, 1]
    assert batch.data[0].embedding == one.data[0].embedding
    assert batch.data[0].embedding != batch.data[1].embedding


def test_embedding_dimensions_and_base64(oai: Any) -> None:
    model = "amazon.titan-embed-text-v2:0"
    assert (
        len(oai.embeddings.create(model=model, input="x y", encoding_format="float").data[0].embedding)
        == 1024
    )
    small = oai.embeddings.create(model=model, input="haniwa clay", dimensions=256, encoding_format="float")
    assert len(small.data[0].embedding) == 256
    raw = oai.embeddings.create(model=model, input="haniwa clay", dimensions=256, encoding_format="base64")
    decoded = np.frombuffer(base64.b64decode(raw.data[0].embedding), dtype="<f4")
    assert np.allclose(decoded, small.data[0].embedding, atol=1e-6)
    # the SDK's default asks for base64 and decodes it itself
    default = oai.embeddings.create(model=model, input="haniwa clay", dimensions=256)
    assert np.allclose(default.data[0].embedding, small.data[0].embedding, atol=1e-6)
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model=model, input="x", dimensions=300)


def test_unknown_model(oai: Any) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        oai.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404
    assert err.value.body["type"] == "not_found_error"
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    with pytest.raises(openai.NotFoundError):
        oai.embeddings.create(model="no-such-model", input="hi")
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("no-such-model")


def test_wrong_kind_of_model(oai: Any) -> None:
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="hash:hash-384", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model="echo:echo", input="hi")


def test_bad_bodies(oai: Any) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        oai.post("/chat/completions", body={"model": "echo:echo"}, cast_to=httpx.Response)
    assert err.value.body["param"] == "messages"
    assert err.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(
            model="echo:echo", messages=[{"role": "user", "content": "hi"}], extra_body={"temperature": "hot"}
        )
    assert err.value.body["param"] == "temperature"
    assert "temperature" in err.value.message
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="echo:echo", messages=[])
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="echo:echo", messages=[{"role": "wizard", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model="hash:hash-384", input=[])
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(
            model="echo:echo",
            messages=[
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{"}}
                    ],
                },
            ],
        )
    assert err.value.body["param"] == "messages[1].tool_calls[0].function.arguments"


def test_invalid_json_body(server: str) -> None:
    r = httpx.post(
        server + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert "JSON" in err["message"]


def test_invocations_are_logged(oai: Any, server: str, settings: Settings) -> None:
    oai.chat.completions.create(model="echo:echo", messages=[{"role": "user", "content": "log me"}])
    list(
        oai.chat.completions.create(
            model="echo:echo", messages=[{"role": "user", "content": "me"}], stream=True
        )
    )
    oai.embeddings.create(model="amazon.titan-embed-text-v2:0", input="log me too")
    with pytest.raises(openai.NotFoundError):
        oai.embeddings.create(model="nope", input="x")
    r = httpx.post(server + "/v1/embeddings", json={"model": "hash:hash-384", "input": "x"})
    assert r.headers["x-request-id"]
    with sqlite3.connect(settings.db_path) as db:
        rows = db.execute(
            "SELECT surface, operation, model_requested, model_id, status, error_code, output_tokens,"
            " first_token_ms IS NOT NULL FROM invocations ORDER BY id"
        ).fetchall()
    assert rows == [
        ("openai", "ChatCompletions", "echo:echo", "echo:echo", "ok", None, 2, 0),
        ("openai", "ChatCompletions", "echo:echo", "echo:echo", "ok", None, 1, 1),
        ("openai", "Embeddings", "amazon.titan-embed-text-v2:0", "hash:hash-384", "ok", None, 0, 0),
        ("openai", "Embeddings", "nope", None, "error", "ResourceNotFoundException", None, 0),
        ("openai", "Embeddings", "hash:hash-384", "hash:hash-384", "ok", None, 0, 0),
    ]


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[str]:
    settings = Settings(home=tmp_path, access_key_id="AK", secret_access_key="SK", api_keys=["k1"])
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.mark.parametrize("key", ["k1"])  # only HANIWA_API_KEYS: the SigV4 secret is no bearer
def test_bearer_keys_accepted(auth_server: str, key: str) -> None:
    client = openai.OpenAI(base_url=auth_server + "/v1", api_key=key, max_retries=0)
    assert "echo:echo" in {m.id for m in client.models.list()}
    out = client.chat.completions.create(model="echo:echo", messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "hi"


def test_bearer_key_rejected(auth_server: str) -> None:
    client = openai.OpenAI(base_url=auth_server + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model="echo:echo", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    with pytest.raises(openai.AuthenticationError):  # the key is checked before the body
        client.post("/chat/completions", body={}, cast_to=httpx.Response)
