"""Converse / ConverseStream / CountTokens through boto3 against a live server (echo backend)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
WEATHER = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "inputSchema": {
            "json": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            }
        },
    }
}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


def test_converse_multi_turn_usage_and_latency(runtime: Any) -> None:
    out = runtime.converse(
        modelId=MODEL,
        messages=[user("first"), {"role": "assistant", "content": [{"text": "ok"}]}, user("second turn")],
        inferenceConfig={"maxTokens": 20, "temperature": 0.2, "topP": 0.9},
        additionalModelRequestFields={"top_k": 20},
    )
    assert out["output"]["message"] == {"role": "assistant", "content": [{"text": "second turn"}]}
    usage = out["usage"]
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert usage["outputTokens"] == 2
    assert out["metrics"]["latencyMs"] >= 0


def test_converse_max_tokens_and_stop_sequence(runtime: Any) -> None:
    out = runtime.converse(
        modelId=MODEL, messages=[user("one two three four")], inferenceConfig={"maxTokens": 2}
    )
    assert out["stopReason"] == "max_tokens"
    assert out["output"]["message"]["content"][0]["text"] == "one two"
    out = runtime.converse(
        modelId=MODEL, messages=[user("alpha STOP beta")], inferenceConfig={"stopSequences": ["STOP"]}
    )
    assert out["stopReason"] == "stop_sequence"
    assert out["output"]["message"]["content"][0]["text"].strip() == "alpha"


def test_converse_stream_events_in_order(runtime: Any) -> None:
    resp = runtime.converse_stream(modelId=MODEL, messages=[user("はにわ は 埴輪")])
    events = list(resp["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == "はにわ は 埴輪"
    assert events[-1]["metadata"]["usage"]["outputTokens"] > 0
    assert "latencyMs" in events[-1]["metadata"]["metrics"]


def test_converse_tool_use_round_trip(runtime: Any) -> None:
    msgs = [user("What's the weather in Osaka?")]
    out = runtime.converse(modelId=MODEL, messages=msgs, toolConfig={"tools": [WEATHER]})
    assert out["stopReason"] == "tool_use"
    tool_use = out["output"]["message"]["content"][0]["toolUse"]
    assert tool_use["name"] == "get_weather" and "city" in tool_use["input"]
    msgs += [
        out["output"]["message"],
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": tool_use["toolUseId"], "content": [{"json": {"temp": 21}}]}}
            ],
        },
    ]
    final = runtime.converse(modelId=MODEL, messages=msgs, toolConfig={"tools": [WEATHER]})
    assert final["stopReason"] == "end_turn"
    assert "21" in final["output"]["message"]["content"][0]["text"]


def test_converse_stream_tool_use(runtime: Any) -> None:
    resp = runtime.converse_stream(
        modelId=MODEL,
        messages=[user("weather?")],
        toolConfig={"tools": [WEATHER], "toolChoice": {"tool": {"name": "get_weather"}}},
    )
    events = list(resp["stream"])
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start["start"]["toolUse"]["name"] == "get_weather"
    assert next(e["messageStop"] for e in events if "messageStop" in e)["stopReason"] == "tool_use"


def test_count_tokens_converse(runtime: Any) -> None:
    out = runtime.count_tokens(
        modelId=MODEL, input={"converse": {"messages": [user("a b c d")], "system": [{"text": "x"}]}}
    )
    assert out["inputTokens"] == 5


def test_image_to_blind_model_is_validation_error(runtime: Any) -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    msg = {
        "role": "user",
        "content": [{"text": "what is this?"}, {"image": {"format": "png", "source": {"bytes": png}}}],
    }
    # echo can "see": it answers
    assert runtime.converse(modelId="echo:echo", messages=[msg])["stopReason"] == "end_turn"
    with pytest.raises(runtime.exceptions.ValidationException) as exc:
        runtime.converse(modelId="echo:blind", messages=[msg])
    assert "does not support image input" in exc.value.response["Error"]["Message"]


def test_unknown_model_is_resource_not_found(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ResourceNotFoundException) as exc:
        runtime.converse(modelId="nope.unknown-model-v9", messages=[user("hi")])
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "haniwa models" in exc.value.response["Error"]["Message"]


def test_validation_errors(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationException):
        runtime.converse(modelId=MODEL, messages=[{"role": "assistant", "content": [{"text": "hi"}]}])
    with pytest.raises(runtime.exceptions.ValidationException):
        runtime.converse(modelId=MODEL, messages=[user("x")], additionalModelRequestFields={"top_k": -3})
    with pytest.raises(runtime.exceptions.ValidationException):
        runtime.converse(modelId="hash:hash-384", messages=[user("x")])
