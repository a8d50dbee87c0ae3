"""InvokeModel / InvokeModelWithResponseStream / CountTokens with each provider's native body.

boto3 against a real haniwa whose Bedrock ids answer from ``echo:echo`` and ``hash:hash-384``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from botocore.exceptions import ClientError

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN_TEXT = "amazon.titan-text-express-v1"
TITAN_V1 = "amazon.titan-embed-text-v1"
TITAN_V2 = "amazon.titan-embed-text-v2:0"
COHERE_EMBED = "cohere.embed-multilingual-v3"
COMMAND_R = "cohere.command-r-plus-v1:0"
LLAMA = "meta.llama3-8b-instruct-v1:0"
MISTRAL = "mistral.mistral-7b-instruct-v0:2"
# a 1×1 PNG
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def invoke(runtime: Any, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = runtime.invoke_model(modelId=model_id, body=json.dumps(body), contentType="application/json")
    assert resp["contentType"] == "application/json"
    out: dict[str, Any] = json.loads(resp["body"].read())
    return out


def stream(runtime: Any, model_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    resp = runtime.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body))
    chunks = [json.loads(ev["chunk"]["bytes"]) for ev in resp["body"]]
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["inputTokenCount"] > 0
    assert metrics["outputTokenCount"] > 0
    assert metrics["invocationLatency"] >= 0 and metrics["firstByteLatency"] >= 0
    assert all("amazon-bedrock-invocationMetrics" not in c for c in chunks[:-1])
    return chunks


def validation_error(runtime: Any, model_id: str, body: dict[str, Any] | str) -> str:
    raw = body if isinstance(body, str) else json.dumps(body)
    with pytest.raises(runtime.exceptions.ValidationException) as info:
        runtime.invoke_model(modelId=model_id, body=raw)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(info.value.response["Error"]["Message"])


def anthropic_body(content: Any, **extra: Any) -> dict[str, Any]:
    return {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    )


# -- Anthropic ----------------------------------------------------------------------------------------
def test_anthropic_invoke(runtime: Any) -> None:
    out = invoke(
        runtime,
        CLAUDE,
        anthropic_body(
            "はにわは古墳に並べられた素焼きの焼き物です。",
            system="自信を持って答え、文末は必ず「なのだ」にするのだ。",
            temperature=0.2,
            top_p=0.9,
            top_k=40,
        ),
    )
    assert out["id"].startswith("msg_bdrk_")
    assert out["type"] == "message" and out["role"] == "assistant"
    assert out["model"] == "claude-3-haiku-20240307"
    assert out["content"] == [{"type": "text", "text": "はにわは古墳に並べられた素焼きの焼き物です。"}]
    assert out["stop_reason"] == "end_turn" and out["stop_sequence"] is None
    assert out["usage"]["input_tokens"] > 0 and out["usage"]["output_tokens"] > 0


def test_anthropic_block_content_system_list_and_arn(runtime: Any) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
    arn += "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
    body = anthropic_body(
        [{"type": "text", "text": "Tell me about haniwa."}], system=[{"type": "text", "text": "Be brief."}]
    )
    out = invoke(runtime, arn, body)
    assert out["content"][0]["text"] == "Tell me about haniwa."
    assert out["model"] == "claude-3-5-sonnet-20240620"


def test_anthropic_max_tokens_and_stop_sequences(runtime: Any) -> None:
    out = invoke(runtime, CLAUDE, {**anthropic_body("one two three four five six"), "max_tokens": 3})
    assert out["content"][0]["text"] == "one two three"
    assert out["stop_reason"] == "max_tokens"
    assert out["usage"]["output_tokens"] == 3

    out = invoke(runtime, CLAUDE, anthropic_body("alpha beta STOP gamma", stop_sequences=["STOP"]))
    assert out["content"][0]["text"] == "alpha beta "
    assert out["stop_reason"] == "stop_sequence"
    assert out["stop_sequence"] == "STOP"


def test_anthropic_image_block(runtime: Any) -> None:
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
        {"type": "text", "text": "この本の価格とISBNを読み取ってください。"},
    ]
    out = invoke(runtime, CLAUDE, anthropic_body(content))
    assert out["content"][0]["text"] == "この本の価格とISBNを読み取ってください。"


def test_anthropic_tool_use_round_trip(runtime: Any) -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "Current weather of a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    question = {"role": "user", "content": "What's the weather in Nara?"}
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "messages": [question],
        "tools": tools,
    }
    out = invoke(runtime, CLAUDE, {**body, "tool_choice": {"type": "auto"}})
    assert out["stop_reason"] == "tool_use"
    call = out["content"][-1]
    assert call["type"] == "tool_use" and call["name"] == "get_weather"
    assert set(call["input"]) == {"city"} and call["id"]

    result = {"type": "tool_result", "tool_use_id": call["id"], "content": "Sunny, 21°C"}
    messages = [
        question,
        {"role": "assistant", "content": out["content"]},
        {"role": "user", "content": [result]},
    ]
    out = invoke(runtime, CLAUDE, {**body, "messages": messages})
    assert out["stop_reason"] == "end_turn"
    assert out["content"] == [{"type": "text", "text": "Sunny, 21°C"}]


def test_anthropic_stream(runtime: Any) -> None:
    chunks = stream(runtime, CLAUDE, anthropic_body("Hello from the haniwa workshop"))
    types = [c["type"] for c in chunks]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert chunks[0]["message"]["usage"]["input_tokens"] > 0
    assert chunks[1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    text = "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    assert text == "Hello from the haniwa workshop"
    assert "content_block_stop" in types
    assert chunks[-2]["delta"]["stop_reason"] == "end_turn"
    assert chunks[-2]["usage"]["output_tokens"] > 0


def test_anthropic_stream_tool_use(runtime: Any) -> None:
    tools = [{"name": "lookup", "description": "d", "input_schema": {"type": "object", "properties": {}}}]
    chunks = stream(runtime, CLAUDE, anthropic_body("find it", tools=tools, tool_choice={"type": "any"}))
    start = next(c for c in chunks if c["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["name"] == "lookup"
    delta = next(c for c in chunks if c["type"] == "content_block_delta")
    assert json.loads(delta["delta"]["partial_json"]) == {}
    assert chunks[-2]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": "hi"}]},
            "max_tokens",
        ),
        ({**anthropic_body("hi"), "anthropic_version": "2023-06-01"}, "anthropic_version"),
        ({**anthropic_body("hi"), "temperature": 1.5}, "temperature"),
        ({**anthropic_body("hi"), "top_p": "high"}, "top_p"),
        ({**anthropic_body("hi"), "max_tokens": 0}, "max_tokens"),
        ({**anthropic_body("hi"), "messages": []}, "messages"),
        ({**anthropic_body("hi"), "stop_sequences": "STOP"}, "stop_sequences"),
        ({**anthropic_body("hi"), "maxTokens": 5}, "maxTokens"),
        (
            anthropic_body(
                [{"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": PNG_B64}}]
            ),
            "media_type",
        ),
        (
            anthropic_body(
                [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "%%%"}}]
            ),
            "data",
        ),
        ({**anthropic_body("hi"), "messages": [{"role": "assistant", "content": "hi"}]}, "role"),
        ({**anthropic_body("hi"), "tool_choice": {"type": "tool", "name": "nope"}}, "tool_choice"),
    ],
)
def test_anthropic_validation(runtime: Any, body: dict[str, Any], field: str) -> None:
    assert field in validation_error(runtime, CLAUDE, body)


def test_malformed_json_body(runtime: Any) -> None:
    assert "JSON" in validation_error(runtime, CLAUDE, "{not json")


# -- Titan --------------------------------------------------------------------------------------------
def test_titan_text_invoke(runtime: Any) -> None:
    body = {
        "inputText": "埴輪の歴史を一文で",
        "textGenerationConfig": {"maxTokenCount": 100, "temperature": 0.5},
    }
    out = invoke(runtime, TITAN_TEXT, body)
    assert out["inputTextTokenCount"] > 0
    [result] = out["results"]
    assert result["outputText"] == "埴輪の歴史を一文で"
    assert result["completionReason"] == "FINISH"
    assert result["tokenCount"] > 0

    out = invoke(
        runtime, TITAN_TEXT, {"inputText": "a b c d e", "textGenerationConfig": {"maxTokenCount": 2}}
    )
    assert out["results"][0] == {"tokenCount": 2, "outputText": "a b", "completionReason": "LENGTH"}
    out = invoke(
        runtime, TITAN_TEXT, {"inputText": "a b | c", "textGenerationConfig": {"stopSequences": ["|"]}}
    )
    assert out["results"][0]["completionReason"] == "STOP_CRITERIA_MET"


def test_titan_text_conversation_prompt(runtime: Any) -> None:
    out = invoke(runtime, TITAN_TEXT, {"inputText": "User: hi\nBot: hello!\nUser: what is a haniwa?\nBot:"})
    assert out["results"][0]["outputText"] == "what is a haniwa?"


def test_titan_text_stream(runtime: Any) -> None:
    chunks = stream(runtime, TITAN_TEXT, {"inputText": "streaming titan text works"})
    assert "".join(c["outputText"] for c in chunks) == "streaming titan text works"
    assert all(c["index"] == 0 for c in chunks)
    assert chunks[-1]["completionReason"] == "FINISH"
    assert chunks[-1]["inputTextTokenCount"] > 0 and chunks[-1]["totalOutputTextTokenCount"] > 0
    assert all(c["completionReason"] is None for c in chunks[:-1])


def test_titan_text_validation(runtime: Any) -> None:
    assert "inputText" in validation_error(runtime, TITAN_TEXT, {"textGenerationConfig": {}})
    bad = {"inputText": "x", "textGenerationConfig": {"temperature": 2}}
    assert "temperature" in validation_error(runtime, TITAN_TEXT, bad)


def test_titan_embed_v1(runtime: Any) -> None:
    out = invoke(runtime, TITAN_V1, {"inputText": "はにわの作り方"})
    assert len(out["embedding"]) == 1536
    assert all(isinstance(x, float) for x in out["embedding"])
    assert out["inputTextTokenCount"] > 0
    assert "dimensions" in validation_error(runtime, TITAN_V1, {"inputText": "x", "dimensions": 256})


@pytest.mark.parametrize("dims", [256, 512, 1024])
def test_titan_embed_v2_dimensions(runtime: Any, dims: int) -> None:
    out = invoke(runtime, TITAN_V2, {"inputText": "clay figures of the Kofun period", "dimensions": dims})
    assert len(out["embedding"]) == dims
    assert math.isclose(math.sqrt(sum(x * x for x in out["embedding"])), 1.0, rel_tol=1e-6)
    assert "embeddingsByType" not in out


def test_titan_embed_v2_default_and_types(runtime: Any) -> None:
    out = invoke(runtime, TITAN_V2, {"inputText": "haniwa", "embeddingTypes": ["float", "binary"]})
    assert len(out["embedding"]) == 1024
    assert out["embeddingsByType"]["float"] == out["embedding"]
    assert set(out["embeddingsByType"]["binary"]) <= {0, 1}
    assert len(out["embeddingsByType"]["binary"]) == 1024


def test_titan_embed_v2_bad_dimensions(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationException) as info:
        runtime.invoke_model(modelId=TITAN_V2, body=json.dumps({"inputText": "x", "dimensions": 300}))
    assert "dimensions" in info.value.response["Error"]["Message"]


# -- Cohere Embed -------------------------------------------------------------------------------------
def test_cohere_embed(runtime: Any) -> None:
    texts = ["a man walks a white dog", "a person with a dog is walking; the dog is white",
             "the refrigerator is full of vegetables"]  # fmt: skip
    out = invoke(runtime, COHERE_EMBED, {"texts": texts, "input_type": "search_document"})
    assert out["response_type"] == "embeddings_floats"
    assert out["texts"] == texts and out["id"]
    vectors = out["embeddings"]
    assert len(vectors) == 3 and all(len(v) == 1024 for v in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])

    query = invoke(runtime, COHERE_EMBED, {"texts": ["white dog"], "input_type": "search_query"})
    assert len(query["embeddings"][0]) == 1024


def test_cohere_embed_by_type(runtime: Any) -> None:
    body = {
        "texts": ["埴輪", "土偶"],
        "input_type": "clustering",
        "embedding_types": ["float", "int8", "ubinary"],
    }
    out = invoke(runtime, COHERE_EMBED, body)
    assert out["response_type"] == "embeddings_by_type"
    assert [len(v) for v in out["embeddings"]["float"]] == [1024, 1024]
    assert all(-128 <= x <= 127 for v in out["embeddings"]["int8"] for x in v)
    assert [len(v) for v in out["embeddings"]["ubinary"]] == [128, 128]

    out = invoke(
        runtime, COHERE_EMBED, {"texts": ["x"], "input_type": "search_query", "embedding_types": ["float"]}
    )
    assert list(out["embeddings"]) == ["float"]


def test_cohere_embed_validation(runtime: Any) -> None:
    assert "input_type" in validation_error(runtime, COHERE_EMBED, {"texts": ["x"]})
    assert "input_type" in validation_error(runtime, COHERE_EMBED, {"texts": ["x"], "input_type": "query"})
    assert "texts" in validation_error(runtime, COHERE_EMBED, {"texts": "x", "input_type": "search_query"})
    body = {"texts": ["x"], "input_type": "search_query", "embedding_types": ["double"]}
    assert "embedding_types" in validation_error(runtime, COHERE_EMBED, body)


# -- Cohere Command R ---------------------------------------------------------------------------------
def test_command_r_invoke(runtime: Any) -> None:
    body = {
        "message": "How tall are haniwa usually?",
        "chat_history": [{"role": "USER", "message": "Hi"}, {"role": "CHATBOT", "message": "Hello!"}],
        "documents": [{"title": "Haniwa", "snippet": "Haniwa are terracotta figures, often about 1 m tall."}],
        "preamble": "You are a museum guide.",
        "max_tokens": 100,
        "temperature": 0.3,
        "p": 0.75,
        "k": 0,
        "seed": 7,
    }
    out = invoke(runtime, COMMAND_R, body)
    assert out["text"] == "How tall are haniwa usually?"
    assert out["finish_reason"] == "COMPLETE"
    assert out["response_id"] and out["generation_id"]
    assert out["chat_history"][-2:] == [
        {"role": "USER", "message": "How tall are haniwa usually?"},
        {"role": "CHATBOT", "message": "How tall are haniwa usually?"},
    ]
    assert out["chat_history"][0] == {"role": "USER", "message": "Hi"}
    assert out["meta"]["billed_units"]["input_tokens"] > 0

    out = invoke(runtime, COMMAND_R, {"message": "one two three", "max_tokens": 1})
    assert out["text"] == "one" and out["finish_reason"] == "MAX_TOKENS"


def test_command_r_stream(runtime: Any) -> None:
    chunks = stream(runtime, COMMAND_R, {"message": "streamed command r reply"})
    assert chunks[0]["event_type"] == "stream-start" and chunks[0]["is_finished"] is False
    text = "".join(c["text"] for c in chunks if c["event_type"] == "text-generation")
    assert text == "streamed command r reply"
    end = chunks[-1]
    assert end["is_finished"] is True and end["event_type"] == "stream-end"
    assert end["finish_reason"] == "COMPLETE"
    assert end["response"]["text"] == text


def test_command_r_search_queries_only(runtime: Any) -> None:
    out = invoke(
        runtime, COMMAND_R, {"message": "はにわロボットの作り方を教えて", "search_queries_only": True}
    )
    assert out["text"] == ""
    assert out["is_search_required"] is True
    assert out["search_queries"] == [
        {"text": "はにわロボットの作り方を教えて", "generation_id": out["generation_id"]}
    ]

    # earlier turns give the rewrite its context; the echo model hands the latest message back
    history = [
        {"role": "USER", "message": "埴輪について教えて"},
        {"role": "CHATBOT", "message": "古墳の焼き物です。"},
    ]
    body = {"message": "それはいつ頃作られたの？", "chat_history": history, "search_queries_only": True}
    out = invoke(runtime, COMMAND_R, body)
    assert [q["text"] for q in out["search_queries"]] == ["それはいつ頃作られたの"]
    assert out["chat_history"] == history

    chunks = stream(runtime, COMMAND_R, body)
    assert [c["event_type"] for c in chunks] == ["stream-start", "search-queries-generation", "stream-end"]
    assert chunks[-1]["response"]["search_queries"] == chunks[1]["search_queries"]


def test_command_r_tools(runtime: Any) -> None:
    tools = [
        {
            "name": "search_catalog",
            "description": "Search the museum catalog",
            "parameter_definitions": {"query": {"type": "str", "description": "keywords", "required": True}},
        }
    ]
    out = invoke(runtime, COMMAND_R, {"message": "find horse haniwa", "tools": tools})
    assert out["tool_calls"] == [{"name": "search_catalog", "parameters": {"query": "echo"}}]
    results = [{"call": out["tool_calls"][0], "outputs": [{"title": "Horse haniwa, 6th century"}]}]
    out = invoke(runtime, COMMAND_R, {"message": "", "tools": tools, "tool_results": results})
    assert "Horse haniwa, 6th century" in out["text"]


def test_command_r_validation(runtime: Any) -> None:
    assert "message" in validation_error(runtime, COMMAND_R, {"chat_history": []})
    assert "/p" in validation_error(runtime, COMMAND_R, {"message": "x", "p": 1.5})
    bad_history = {"message": "x", "chat_history": [{"role": "BOT", "message": "y"}]}
    assert "role" in validation_error(runtime, COMMAND_R, bad_history)


# -- Meta Llama ---------------------------------------------------------------------------------------
LLAMA3_PROMPT = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a potter.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\n素焼きとは何ですか？<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)


def test_llama_invoke(runtime: Any) -> None:
    out = invoke(
        runtime, LLAMA, {"prompt": LLAMA3_PROMPT, "max_gen_len": 128, "temperature": 0.5, "top_p": 0.9}
    )
    assert out["generation"] == "素焼きとは何ですか？"
    assert out["stop_reason"] == "stop"
    assert out["prompt_token_count"] > 0 and out["generation_token_count"] > 0

    llama2 = "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nhello [/INST] hi </s><s>[INST] what is clay? [/INST]"
    assert invoke(runtime, LLAMA, {"prompt": llama2})["generation"] == "what is clay?"
    out = invoke(runtime, LLAMA, {"prompt": "plain prompt with five words", "max_gen_len": 2})
    assert out["generation"] == "plain prompt" and out["stop_reason"] == "length"


def test_llama_stream(runtime: Any) -> None:
    chunks = stream(runtime, LLAMA, {"prompt": LLAMA3_PROMPT})
    assert "".join(c["generation"] for c in chunks) == "素焼きとは何ですか？"
    assert chunks[-1]["stop_reason"] == "stop"
    assert all(c["stop_reason"] is None for c in chunks[:-1])
    assert chunks[-1]["prompt_token_count"] > 0


def test_llama_validation(runtime: Any) -> None:
    assert "prompt" in validation_error(runtime, LLAMA, {"max_gen_len": 10})
    assert "max_gen_len" in validation_error(runtime, LLAMA, {"prompt": "x", "max_gen_len": "ten"})


# -- Mistral ------------------------------------------------------------------------------------------
def test_mistral_invoke(runtime: Any) -> None:
    body = {
        "prompt": "<s>[INST] 埴輪と土偶の違いは？ [/INST]",
        "max_tokens": 200,
        "temperature": 0.5,
        "top_k": 50,
    }
    out = invoke(runtime, MISTRAL, body)
    assert out == {"outputs": [{"text": "埴輪と土偶の違いは？", "stop_reason": "stop"}]}
    out = invoke(runtime, MISTRAL, {"prompt": "<s>[INST] a b c [/INST]", "max_tokens": 1})
    assert out["outputs"][0] == {"text": "a", "stop_reason": "length"}


def test_mistral_stream(runtime: Any) -> None:
    chunks = stream(runtime, MISTRAL, {"prompt": "<s>[INST] stream me please [/INST]", "stop": ["please"]})
    assert "".join(c["outputs"][0]["text"] for c in chunks) == "stream me "
    assert chunks[-1]["outputs"][0]["stop_reason"] == "stop"


def test_mistral_chat_messages(runtime: Any) -> None:
    body = {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "chat body"}]
    }
    out = invoke(runtime, "mistral.mistral-large-2407-v1:0", body)
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "chat body"}
    assert out["choices"][0]["stop_reason"] == "stop"


def test_mistral_validation(runtime: Any) -> None:
    assert "top_k" in validation_error(runtime, MISTRAL, {"prompt": "[INST] x [/INST]", "top_k": 1000})


# -- local ids: the body tells the format ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("model_id", "body", "key"),
    [
        ("echo:echo", anthropic_body("local"), "content"),
        ("echo:echo", {"inputText": "local"}, "results"),
        ("echo:echo", {"message": "local"}, "text"),
        ("echo:echo", {"prompt": "local", "max_gen_len": 20}, "generation"),
        ("echo:echo", {"prompt": "<s>[INST] local [/INST]"}, "outputs"),
        ("hash:hash-384", {"inputText": "local"}, "embedding"),
        ("hash:hash-384", {"texts": ["local"], "input_type": "search_document"}, "embeddings"),
    ],
)
def test_local_ids_detect_body(runtime: Any, model_id: str, body: dict[str, Any], key: str) -> None:
    assert key in invoke(runtime, model_id, body)


def test_unknown_body_lists_formats(runtime: Any) -> None:
    message = validation_error(runtime, "echo:echo", {"question": "what?"})
    assert "Anthropic Messages" in message and "Titan" in message and "Llama" in message


# -- CountTokens ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model_id", "body"),
    [
        (CLAUDE, anthropic_body("count these tokens please", system="be brief")),
        (TITAN_TEXT, {"inputText": "count these tokens"}),
        (LLAMA, {"prompt": LLAMA3_PROMPT}),
        (COMMAND_R, {"message": "count these tokens"}),
    ],
)
def test_count_tokens_invoke_body(runtime: Any, model_id: str, body: dict[str, Any]) -> None:
    out = runtime.count_tokens(modelId=model_id, input={"invokeModel": {"body": json.dumps(body)}})
    assert out["inputTokens"] > 0


def test_count_tokens_invalid_body(runtime: Any) -> None:
    body = json.dumps(
        {"anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": "x"}]}
    )
    with pytest.raises(ClientError) as info:
        runtime.count_tokens(modelId=CLAUDE, input={"invokeModel": {"body": body}})
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "max_tokens" in info.value.response["Error"]["Message"]


# -- the real model -------------------------------------------------------------------------------------
@pytest.mark.model
def test_command_r_search_queries_real_model(model_runtime: Any) -> None:
    question = "はにわロボットの作り方を教えて"
    body = {"message": question, "search_queries_only": True}
    out = json.loads(model_runtime.invoke_model(modelId=COMMAND_R, body=json.dumps(body))["body"].read())
    queries = [q["text"] for q in out["search_queries"]]
    assert queries and out["is_search_required"] is True
    assert all(len(q) < len(question) for q in queries), queries
    assert all("はにわ" in q or "ロボット" in q for q in queries), queries
