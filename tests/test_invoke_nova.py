"""InvokeModel / InvokeModelWithResponseStream with Amazon Nova's native ``messages-v1`` body.

boto3 against a real haniwa whose Nova ids (and ``us.`` / ``global.`` inference profiles) answer from
the deterministic ``echo:echo`` model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ECHO_CATALOG

LITE = "amazon.nova-lite-v1:0"
MICRO = "amazon.nova-micro-v1:0"
PRO = "amazon.nova-pro-v1:0"
TITAN_TEXT = "amazon.titan-text-express-v1"
TITAN_V2 = "amazon.titan-embed-text-v2:0"
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "haniwa-home"
    h.mkdir()
    extra = '"amazon.nova-*" = "echo:echo"\n"global.*" = "echo:echo"\n'
    (h / "models.toml").write_text(ECHO_CATALOG + extra, encoding="utf-8")
    return h


def nova_body(text: str, **config: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemaVersion": "messages-v1",
        "messages": [{"role": "user", "content": [{"text": text}]}],
    }
    if config:
        body["inferenceConfig"] = config
    return body


def invoke(runtime: Any, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = runtime.invoke_model(modelId=model_id, body=json.dumps(body), contentType="application/json")
    assert resp["contentType"] == "application/json"
    out: dict[str, Any] = json.loads(resp["body"].read())
    return out


def stream(runtime: Any, model_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    resp = runtime.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body))
    return [json.loads(ev["chunk"]["bytes"]) for ev in resp["body"]]


def streamed_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        c["contentBlockDelta"]["delta"].get("text", "") for c in chunks if "contentBlockDelta" in c
    )


def validation_error(runtime: Any, model_id: str, body: dict[str, Any]) -> str:
    with pytest.raises(runtime.exceptions.ValidationException) as info:
        runtime.invoke_model(modelId=model_id, body=json.dumps(body))
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(info.value.response["Error"]["Message"])


def test_nova_invoke(runtime: Any) -> None:
    body = nova_body(
        "はにわは古墳に並べられた素焼きの焼き物です。", maxTokens=200, temperature=0.5, topP=0.9, topK=20
    )
    body["system"] = [{"text": "日本語で簡潔に答えてください。"}]
    out = invoke(runtime, LITE, body)
    assert out["output"] == {
        "message": {
            "role": "assistant",
            "content": [{"text": "はにわは古墳に並べられた素焼きの焼き物です。"}],
        }
    }
    assert out["stopReason"] == "end_turn"
    usage = out["usage"]
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert usage["cacheReadInputTokenCount"] == 0 and usage["cacheWriteInputTokenCount"] == 0


def test_nova_stream_matches_invoke(runtime: Any) -> None:
    body = nova_body("Streaming Nova answers arrive token by token", maxTokens=100)
    whole = invoke(runtime, LITE, body)
    chunks = stream(runtime, LITE, body)
    assert chunks[0] == {"messageStart": {"role": "assistant"}}
    assert streamed_text(chunks) == whole["output"]["message"]["content"][0]["text"]
    deltas = [c for c in chunks if "contentBlockDelta" in c]
    assert len(deltas) > 1 and all(c["contentBlockDelta"]["contentBlockIndex"] == 0 for c in deltas)
    keys = [next(iter(c)) for c in chunks]
    assert keys[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    assert chunks[-3]["contentBlockStop"] == {"contentBlockIndex": 0}
    assert chunks[-2]["messageStop"] == {"stopReason": "end_turn"}
    meta = chunks[-1]["metadata"]
    assert meta["usage"] == whole["usage"]
    assert meta["metrics"] == {} and meta["trace"] == {}
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["inputTokenCount"] == whole["usage"]["inputTokens"]
    assert metrics["outputTokenCount"] == whole["usage"]["outputTokens"]
    assert all("amazon-bedrock-invocationMetrics" not in c for c in chunks[:-1])


def test_nova_max_tokens_and_stop_sequences(runtime: Any) -> None:
    out = invoke(runtime, LITE, nova_body("one two three four five six", maxTokens=3))
    assert out["output"]["message"]["content"] == [{"text": "one two three"}]
    assert out["stopReason"] == "max_tokens" and out["usage"]["outputTokens"] == 3

    # the older spelling in AWS's Nova samples
    out = invoke(runtime, LITE, nova_body("one two three four five six", max_new_tokens=2))
    assert out["output"]["message"]["content"] == [{"text": "one two"}]

    out = invoke(runtime, LITE, nova_body("alpha beta STOP gamma", stopSequences=["STOP"]))
    assert out["output"]["message"]["content"] == [{"text": "alpha beta "}]
    assert out["stopReason"] == "stop_sequence"

    chunks = stream(runtime, LITE, nova_body("one two three four five six", maxTokens=3))
    assert streamed_text(chunks) == "one two three"
    assert chunks[-2]["messageStop"] == {"stopReason": "max_tokens"}
    assert chunks[-1]["metadata"]["usage"]["outputTokens"] == 3


@pytest.mark.parametrize(
    "model_id",
    [
        MICRO,
        PRO,
        "us.amazon.nova-lite-v1:0",
        "global.amazon.nova-2-lite-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
    ],
)
def test_nova_ids_and_profiles(runtime: Any, model_id: str) -> None:
    body = {"messages": [{"role": "user", "content": [{"text": "profiles work"}]}]}  # no schemaVersion
    out = invoke(runtime, model_id, body)
    assert out["output"]["message"]["content"] == [{"text": "profiles work"}]
    assert streamed_text(stream(runtime, model_id, body)) == "profiles work"


def test_nova_multi_turn_image_and_local_id(runtime: Any) -> None:
    body = {
        "messages": [
            {"role": "user", "content": [{"text": "first"}]},
            {"role": "assistant", "content": [{"text": "an answer"}]},
            {
                "role": "user",
                "content": [
                    {"image": {"format": "png", "source": {"bytes": PNG_B64}}},
                    {"text": "what is in this picture?"},
                ],
            },
        ],
        "inferenceConfig": {"max_new_tokens": 50},
    }
    assert invoke(runtime, LITE, body)["output"]["message"]["content"] == [
        {"text": "what is in this picture?"}
    ]
    # a local id recognises the Nova body by its keys
    assert invoke(runtime, "echo:echo", body)["stopReason"] == "end_turn"


def test_nova_tool_use_round_trip(runtime: Any) -> None:
    tool_config = {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Current weather of a city",
                    "inputSchema": {
                        "json": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                            "required": ["city"],
                        }
                    },
                }
            }
        ],
        "toolChoice": {"auto": {}},
    }
    question = {"role": "user", "content": [{"text": "What's the weather in Nara?"}]}
    out = invoke(runtime, LITE, {"messages": [question], "toolConfig": tool_config})
    assert out["stopReason"] == "tool_use"
    call = out["output"]["message"]["content"][-1]["toolUse"]
    assert call["name"] == "get_weather" and set(call["input"]) == {"city"} and call["toolUseId"]

    result = {"toolResult": {"toolUseId": call["toolUseId"], "content": [{"text": "Sunny, 21°C"}]}}
    messages = [question, {"role": "assistant", "content": out["output"]["message"]["content"]}]
    messages.append({"role": "user", "content": [result]})
    out = invoke(runtime, LITE, {"messages": messages, "toolConfig": tool_config})
    assert out["stopReason"] == "end_turn"
    assert out["output"]["message"]["content"] == [{"text": "Sunny, 21°C"}]

    chunks = stream(runtime, LITE, {"messages": [question], "toolConfig": tool_config})
    start = next(c["contentBlockStart"] for c in chunks if "contentBlockStart" in c)
    assert start["start"]["toolUse"]["name"] == "get_weather"
    delta = next(c["contentBlockDelta"] for c in chunks if "contentBlockDelta" in c)
    assert set(json.loads(delta["delta"]["toolUse"]["input"])) == {"city"}
    assert chunks[-2]["messageStop"] == {"stopReason": "tool_use"}


def test_nova_count_tokens(runtime: Any) -> None:
    body = json.dumps(nova_body("count these tokens please"))
    assert runtime.count_tokens(modelId=LITE, input={"invokeModel": {"body": body}})["inputTokens"] > 0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({**nova_body("hi"), "max_tokens": 5}, "extraneous key [max_tokens]"),
        (nova_body("hi", maxTokenCount=5), "extraneous key [maxTokenCount]"),
        (nova_body("hi", maxTokens=0), "#/inferenceConfig/maxTokens"),
        (nova_body("hi", temperature=1.5), "#/inferenceConfig/temperature"),
        (nova_body("hi", maxTokens=5, max_new_tokens=5), "not both"),
        (nova_body("hi", stopSequences="STOP"), "#/inferenceConfig/stopSequences"),
        ({**nova_body("hi"), "schemaVersion": "messages-v2"}, "messages-v1"),
        ({"schemaVersion": "messages-v1"}, "required key [messages]"),
        ({"messages": []}, "#/messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "#/messages/0/content"),
        ({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}, "user role"),
        ({"messages": [{"role": "system", "content": [{"text": "hi"}]}]}, "#/messages/0/role"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}, "exactly one"),
        (
            {"messages": [{"role": "user", "content": [{"video": {"format": "mp4", "source": {}}}]}]},
            "video input is not supported",
        ),
        (
            {"messages": [{"role": "user", "content": [{"document": {"format": "txt"}}]}]},
            "Converse API",
        ),
        (
            {"messages": [{"role": "user", "content": [{"image": {"format": "bmp", "source": {}}}]}]},
            "#/messages/0/content/0/image/format",
        ),
        ({**nova_body("hi"), "system": "be brief"}, "#/system"),
        ({**nova_body("hi"), "toolConfig": {"tools": []}}, "#/toolConfig/tools"),
        (
            {
                **nova_body("hi"),
                "toolConfig": {
                    "tools": [{"toolSpec": {"name": "t", "inputSchema": {"json": {}}}}],
                    "toolChoice": {"tool": {"name": "nope"}},
                },
            },
            "no tool named nope",
        ),
        ({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a cat"}}, "not supported"),
    ],
)
def test_nova_validation(runtime: Any, body: dict[str, Any], expected: str) -> None:
    assert expected in validation_error(runtime, LITE, body)


def test_nova_bad_body_on_stream_is_an_http_error(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationException) as info:
        runtime.invoke_model_with_response_stream(modelId=LITE, body=json.dumps(nova_body("hi", topP=2)))
    assert "topP" in info.value.response["Error"]["Message"]


def test_titan_bodies_still_work(runtime: Any) -> None:
    out = invoke(runtime, TITAN_TEXT, {"inputText": "titan still answers"})
    assert out["results"][0]["outputText"] == "titan still answers"
    out = invoke(runtime, TITAN_V2, {"inputText": "titan still embeds", "dimensions": 256})
    assert len(out["embedding"]) == 256
    # a Titan body sent to a Nova id is refused with Nova's schema, not silently read as Titan
    assert "extraneous key [inputText]" in validation_error(runtime, LITE, {"inputText": "hi"})
