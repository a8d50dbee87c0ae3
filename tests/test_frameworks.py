"""The frameworks users already have, pointed at a live haniwa (echo chat backend, hash embedder):
LangChain through ``langchain-aws`` and LlamaIndex through its Bedrock packages, each handed a boto3
client made with ``client_kwargs`` exactly as a user would point it at ``endpoint_url``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import client_kwargs
from tests.test_knowledge_api import TEA_EN, make_kb, make_s3_source, sync

CHAT = "anthropic.claude-3-haiku-20240307-v1:0"
META = "meta.llama3-8b-instruct-v1:0"
EMBED = "amazon.titan-embed-text-v2:0"


def haniwa_dimension(runtime: Any, text: str = "dimension probe") -> int:
    body = runtime.invoke_model(modelId=EMBED, body=json.dumps({"inputText": text}))["body"].read()
    return len(json.loads(body)["embedding"])


# -- LangChain (langchain-aws) ---------------------------------------------------------------------------
def test_langchain_converse_invoke_and_stream(runtime: Any) -> None:
    from langchain_aws import ChatBedrockConverse

    llm = ChatBedrockConverse(model=CHAT, client=runtime, region_name="us-east-1", max_tokens=50)
    out = llm.invoke("haniwa は 埴輪 of clay")
    assert out.content == "haniwa は 埴輪 of clay"
    assert out.usage_metadata is not None and out.usage_metadata["output_tokens"] > 0
    chunks = list(llm.stream("haniwa は 埴輪 of clay"))
    assert len([c for c in chunks if c.content]) > 1
    assert "".join(c.text for c in chunks) == out.content


def test_langchain_converse_bind_tools(runtime: Any) -> None:
    from langchain_aws import ChatBedrockConverse

    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return "sunny"

    llm = ChatBedrockConverse(model=CHAT, client=runtime, region_name="us-east-1")
    out = llm.bind_tools([get_weather]).invoke("What's the weather in Osaka?")
    assert len(out.tool_calls) == 1
    call = out.tool_calls[0]
    assert call["name"] == "get_weather" and set(call["args"]) == {"city"} and call["id"]
    assert out.response_metadata["stopReason"] == "tool_use"
    chunks = list(llm.bind_tools([get_weather], tool_choice="get_weather").stream("Weather in Osaka?"))
    streamed = sum(chunks[1:], chunks[0])
    assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [("get_weather", call["args"])]


@pytest.mark.parametrize("model", [CHAT, META])
def test_langchain_chat_bedrock_invoke_model(runtime: Any, model: str) -> None:
    from langchain_aws import ChatBedrock

    ops: list[str] = []
    runtime.meta.events.register("before-call.bedrock-runtime.*", lambda model, **_: ops.append(model.name))
    llm = ChatBedrock(
        model_id=model, client=runtime, region_name="us-east-1", model_kwargs={"max_tokens": 50}
    )
    out = llm.invoke([("system", "be brief"), ("user", "clay figures of Kofun Japan")])
    assert out.content == "clay figures of Kofun Japan"
    # usage from InvokeModel's X-Amzn-Bedrock-*-Token-Count headers
    assert out.usage_metadata is not None and out.usage_metadata["output_tokens"] == 5
    assert out.usage_metadata["input_tokens"] > 0
    chunks = list(llm.stream("clay figures of Kofun Japan"))
    assert len([c for c in chunks if c.content]) > 1
    assert "".join(c.text for c in chunks) == out.content
    assert ops == ["InvokeModel", "InvokeModelWithResponseStream"]


def test_langchain_embeddings(runtime: Any) -> None:
    from langchain_aws import BedrockEmbeddings

    emb = BedrockEmbeddings(model_id=EMBED, client=runtime, region_name="us-east-1")
    dim = haniwa_dimension(runtime)
    query = emb.embed_query("green tea")
    docs = emb.embed_documents(["green tea leaves", "bicycle chain oil"])
    assert len(query) == dim == 1024 and [len(d) for d in docs] == [dim, dim]
    dot = [sum(a * b for a, b in zip(query, d, strict=True)) for d in docs]
    assert dot[0] > dot[1]  # the hash embedder: shared words score closer


def test_langchain_knowledge_base_retriever(server: str, home: Path) -> None:
    from langchain_aws import AmazonKnowledgeBasesRetriever

    folder = home / "s3" / "factory-docs" / "kb"
    folder.mkdir(parents=True)
    (folder / "tea.txt").write_text(TEA_EN, encoding="utf-8")
    (folder / "bikes.txt").write_text("Bicycle maintenance\n\nOil the chain every month.", encoding="utf-8")
    agent = boto3.client("bedrock-agent", **client_kwargs(server))
    kb_id = make_kb(agent)
    assert sync(agent, kb_id, make_s3_source(agent, kb_id))["status"] == "COMPLETE"

    retriever = AmazonKnowledgeBasesRetriever(
        knowledge_base_id=kb_id,
        client=boto3.client("bedrock-agent-runtime", **client_kwargs(server)),
        region_name="us-east-1",
        retrieval_config={"vectorSearchConfiguration": {"numberOfResults": 2}},
    )
    docs = retriever.invoke("What is matcha green tea?")
    assert docs and "Matcha" in docs[0].page_content
    meta = docs[0].metadata
    assert meta["location"] == {"type": "S3", "s3Location": {"uri": "s3://factory-docs/kb/tea.txt"}}
    assert meta["source_metadata"]["x-amz-bedrock-kb-source-uri"] == "s3://factory-docs/kb/tea.txt"
    assert isinstance(meta["score"], float)


# -- LlamaIndex --------------------------------------------------------------------------------------------
def test_llamaindex_converse_complete_chat_stream(runtime: Any) -> None:
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.bedrock_converse import BedrockConverse

    llm = BedrockConverse(model=CHAT, client=runtime, max_tokens=50, max_retries=1)
    done = llm.complete("haniwa は 埴輪 of clay")
    assert done.text == "haniwa は 埴輪 of clay"
    chat = llm.chat(
        [ChatMessage(role="system", content="be brief"), ChatMessage(role="user", content="hi there")]
    )
    assert chat.message.role == "assistant" and chat.message.content == "hi there"
    deltas = [r.delta or "" for r in llm.stream_complete("haniwa は 埴輪 of clay")]
    assert len([d for d in deltas if d]) > 1 and "".join(deltas) == done.text
    chat_deltas = [
        r.delta or "" for r in llm.stream_chat([ChatMessage(role="user", content="one two three")])
    ]
    assert "".join(chat_deltas) == "one two three"


def test_llamaindex_converse_tools(runtime: Any) -> None:
    from llama_index.core.tools import FunctionTool
    from llama_index.llms.bedrock_converse import BedrockConverse

    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return "sunny"

    llm = BedrockConverse(model=CHAT, client=runtime, max_retries=1)
    tool = FunctionTool.from_defaults(fn=get_weather)
    resp = llm.chat_with_tools([tool], user_msg="What's the weather in Osaka?")
    [sel] = llm.get_tool_calls_from_response(resp)
    assert sel.tool_name == "get_weather" and set(sel.tool_kwargs) == {"city"} and sel.tool_id


def test_llamaindex_embeddings(runtime: Any) -> None:
    from llama_index.embeddings.bedrock import BedrockEmbedding

    emb = BedrockEmbedding(model_name=EMBED, client=runtime, max_retries=1)
    dim = haniwa_dimension(runtime)
    query = emb.get_query_embedding("green tea")
    docs = emb.get_text_embedding_batch(["green tea leaves", "bicycle chain oil"])
    assert len(query) == dim == 1024 and [len(d) for d in docs] == [dim, dim]
    assert emb.similarity(query, docs[0]) > emb.similarity(query, docs[1])
