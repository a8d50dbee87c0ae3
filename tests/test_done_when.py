"""The issue's acceptance script: Bedrock sample code, unchanged but for endpoint_url, against the real
bundled models (default profile: Qwen2.5-Coder-1.5B + multilingual-e5-small)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

pytestmark = pytest.mark.model

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def test_invoke_model_anthropic_body_with_system_prompt(model_runtime: Any) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 60,
        "temperature": 0,
        "system": "You are a pirate. Always answer in English and always include the word 'Arr'.",
        "messages": [{"role": "user", "content": "Say hello to me in one short sentence."}],
    }
    out = json.loads(model_runtime.invoke_model(modelId=CLAUDE, body=json.dumps(body))["body"].read())
    assert out["type"] == "message" and out["role"] == "assistant"
    assert "arr" in out["content"][0]["text"].lower()
    assert out["usage"]["input_tokens"] > 10 and out["usage"]["output_tokens"] > 0


def test_streaming_call_decodes_and_reports_metrics(model_runtime: Any) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 24,
        "messages": [{"role": "user", "content": "Count from 1 to 5, separated by commas."}],
    }
    resp = model_runtime.invoke_model_with_response_stream(modelId=CLAUDE, body=json.dumps(body))
    chunks = [json.loads(e["chunk"]["bytes"]) for e in resp["body"]]
    text = "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    assert "1" in text and "3" in text
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["outputTokenCount"] > 0 and metrics["firstByteLatency"] <= metrics["invocationLatency"]


def test_converse_with_a_tool(model_runtime: Any) -> None:
    tool = {
        "toolSpec": {
            "name": "get_material_stock",
            "description": "Returns how many units of a material are in stock.",
            "inputSchema": {
                "json": {
                    "type": "object",
                    "properties": {"material_name": {"type": "string", "description": "material name"}},
                    "required": ["material_name"],
                }
            },
        }
    }
    msgs = [{"role": "user", "content": [{"text": "How many units of clay do we have in stock?"}]}]
    out = model_runtime.converse(modelId=CLAUDE, messages=msgs, toolConfig={"tools": [tool]})
    assert out["stopReason"] == "tool_use"
    use = next(b["toolUse"] for b in out["output"]["message"]["content"] if "toolUse" in b)
    assert use["name"] == "get_material_stock" and "clay" in use["input"]["material_name"].lower()
    msgs += [
        out["output"]["message"],
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": use["toolUseId"], "content": [{"json": {"stock": 42}}]}}
            ],
        },
    ]
    final = model_runtime.converse(
        modelId=CLAUDE, messages=msgs, toolConfig={"tools": [tool]}, inferenceConfig={"maxTokens": 60}
    )
    assert "42" in final["output"]["message"]["content"][0]["text"]


def test_titan_embeddings_japanese_and_english(model_runtime: Any) -> None:
    def embed(text: str) -> list[float]:
        resp = model_runtime.invoke_model(
            modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": text})
        )
        vec: list[float] = json.loads(resp["body"].read())["embedding"]
        assert len(vec) == 1024
        return vec

    ja_a, ja_b = embed("白い犬を散歩させている男性"), embed("男の人が白い犬と一緒に歩いている")
    en_a, en_b = embed("a man walks a white dog"), embed("a person with a dog is walking; the dog is white")
    fridge = embed("冷蔵庫に野菜がたくさん入っている")
    assert cos(ja_a, ja_b) > cos(ja_a, fridge)
    assert cos(en_a, en_b) > cos(en_a, fridge)
    assert cos(ja_a, en_a) > cos(en_a, fridge)  # cross-lingual
