"""Issue 11, Bedrock surface: every failure is a typed error, validation happens before a stream starts,
service-model constraints and haniwa's caps apply, and messages reveal no server paths or function names.

Real clients throughout (boto3, raw httpx) against a real server; a mid-stream failure is produced by a
native body format registered on the app's ``NativeFormats`` (the registry ``register_formats`` fills).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError, EventStreamError
from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import Route

from haniwa.api.app import create_app
from haniwa.api.wire import MAX_JSON_DEPTH, PATTERN_EXEMPT, PATTERN_MAX_CHARS, Router, _pattern
from haniwa.config import Settings
from haniwa.errors import ValidationError
from haniwa.runtime.base import ChatEvent, ChatRequest, ChatResult, Message, TextBlock, TextDelta
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs

USER = [{"role": "user", "content": [{"text": "hi"}]}]
JSON = {"content-type": "application/json"}


def code_of(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = err.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def assert_typed(r: httpx.Response, status: int, code: str) -> str:
    """A Bedrock-shaped error: status, x-amzn-errortype, a request id and ``{"message"}`` only."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-amzn-errortype"] == code
    assert r.headers["x-amzn-requestid"]
    assert set(r.json()) == {"message"}
    return str(r.json()["message"])


# -- parsing: depth, surrogates, non-objects -------------------------------------------------------------
def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 3000, 100_000])
def test_deeply_nested_json_is_a_validation_error(server: str, depth: int) -> None:
    converse = b'{"messages": [{"role": "user", "content": [{"text": "x"}]}], "additionalModelRequestFields":'
    converse += b'{"a": ' + _nested(depth) + b"}}"
    r = httpx.post(server + "/model/echo:echo/converse", content=converse, headers=JSON)
    assert "deeper than" in assert_typed(r, 400, "ValidationException")
    # an InvokeModel body is JSON inside a blob: parsed by the operation, with the same bound
    invoke = b'{"prompt": "x", "max_gen_len": 5, "images": ' + _nested(depth) + b"}"
    r = httpx.post(server + "/model/echo:echo/invoke", content=invoke, headers=JSON)
    assert "deeper than" in assert_typed(r, 400, "ValidationException")
    # below the bound, nesting is fine
    ok = b'{"messages": [{"role": "user", "content": [{"text": "x"}]}], "additionalModelRequestFields":'
    ok += b'{"a": ' + _nested(MAX_JSON_DEPTH - 2) + b"}}"
    assert httpx.post(server + "/model/echo:echo/converse", content=ok, headers=JSON).status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # the \ud800 escape, and the same surrogate as raw bytes (which Python's decoder lets through)
        ("/model/echo:echo/converse", b'{"messages": [{"role": "user", "content": [{"text": "a\\ud800"}]}]}'),
        (
            "/model/echo:echo/converse",
            b'{"messages": [{"role": "user", "content": [{"text": "a\xed\xa0\x80"}]}]}',
        ),
        (
            "/model/echo:echo/converse-stream",
            b'{"messages": [{"role": "user", "content": [{"text": "\\udc00"}]}]}',
        ),
        (
            "/model/anthropic.claude-3-haiku-20240307-v1:0/invoke",
            b'{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 9, "messages": [{"role": "user",'
            b' "content": "\\ud83d"}]}',
        ),
        # a surrogate escaped twice: harmless text until the Mistral tool call's arguments are parsed
        (
            "/model/mistral.mistral-large-2407-v1:0/invoke",
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": "x"},
                        {
                            "role": "assistant",
                            "content": "",
                            "tool_calls": [
                                {"id": "c1", "function": {"name": "f", "arguments": '{"a": "\\ud800"}'}}
                            ],
                        },
                        {"role": "tool", "tool_call_id": "c1", "content": "r"},
                    ]
                }
            ).encode(),
        ),
        # stored, not echoed: the database would have refused it with a UnicodeEncodeError
        ("/agents/", b'{"agentName": "a1", "description": "\\udfff"}'),
    ],
)
def test_lone_surrogates_are_a_validation_error(server: str, path: str, body: bytes) -> None:
    method = "PUT" if path == "/agents/" else "POST"
    r = httpx.request(method, server + path, content=body, headers=JSON)
    assert "surrogate" in assert_typed(r, 400, "ValidationException")


def test_non_object_documents_are_validation_errors(runtime: Any) -> None:
    for bad in ("x", 3, ["top_k", 1]):
        with pytest.raises(runtime.exceptions.ValidationException, match="JSON object"):
            runtime.converse(modelId="echo:echo", messages=USER, additionalModelRequestFields=bad)
        # the stream refuses it from the call, as Converse does: no 200 and a dropped connection
        with pytest.raises(runtime.exceptions.ValidationException, match="JSON object"):
            runtime.converse_stream(modelId="echo:echo", messages=USER, additionalModelRequestFields=bad)
    tools = {"tools": [{"toolSpec": {"name": "t", "inputSchema": {"json": "not a schema"}}}]}
    with pytest.raises(runtime.exceptions.ValidationException, match="JSON object"):
        runtime.converse(modelId="echo:echo", messages=USER, toolConfig=tools)
    with pytest.raises(runtime.exceptions.ValidationException, match="seed"):
        runtime.converse(modelId="echo:echo", messages=USER, additionalModelRequestFields={"seed": "x"})


def test_an_empty_tool_schema_works_with_the_echo_model(runtime: Any) -> None:
    tools = {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {}}}}]}
    out = runtime.converse(modelId="echo:echo", messages=USER, toolConfig=tools)
    assert out["stopReason"] == "tool_use"
    assert out["output"]["message"]["content"][0]["toolUse"]["input"] == {}
    events = list(runtime.converse_stream(modelId="echo:echo", messages=USER, toolConfig=tools)["stream"])
    assert any("toolUse" in e.get("contentBlockStart", {}).get("start", {}) for e in events)
    # odd but valid JSON schemas give an example input too, never a crash
    odd = {"type": "object", "properties": {"a": "x", "b": {"enum": []}}, "required": 5}
    tools = {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": odd}}}]}
    out = runtime.converse(modelId="echo:echo", messages=USER, toolConfig=tools)
    assert out["output"]["message"]["content"][0]["toolUse"]["input"] == {"a": "echo", "b": "echo"}


# -- streams validate before the 200 ---------------------------------------------------------------------
def test_converse_stream_validation_errors_come_from_the_call(runtime: Any) -> None:
    assistant_first = [{"role": "assistant", "content": [{"text": "x"}]}, *USER]
    for model_id, messages in (("echo:echo", assistant_first), ("hash:hash-384", USER)):
        with pytest.raises(runtime.exceptions.ValidationException) as err:
            runtime.converse_stream(modelId=model_id, messages=messages)
        assert code_of(err) == ("ValidationException", 400)
        # Converse says the same
        with pytest.raises(runtime.exceptions.ValidationException):
            runtime.converse(modelId=model_id, messages=messages)


# -- a plugin's native format that fails, to see failures the built-ins no longer have -------------------
class _Failing:
    """A chat body ``{"failing": mode}``: ``render`` fails, or ``chunks`` fails after two chunks
    (mid-stream) or refuses the request before its first chunk."""

    name = "failing"
    kind: Literal["chat"] = "chat"

    def __init__(self, mode: str, secret: Path) -> None:
        self.mode = mode
        self.secret = secret

    def parse(self, body: Mapping[str, Any]) -> ChatRequest:
        return ChatRequest((Message("user", (TextBlock("one two three four"),)),))

    def render(self, result: ChatResult, model_id: str) -> dict[str, Any]:
        raise RuntimeError(f"cannot render: {self.secret} is missing")

    async def chunks(self, events: AsyncIterator[ChatEvent], model_id: str) -> AsyncIterator[dict[str, Any]]:
        if self.mode == "refuse":
            raise ValidationError("this body is refused before the stream starts")
        sent = 0
        async for ev in events:
            if isinstance(ev, TextDelta):
                yield {"text": ev.text}
                sent += 1
                if sent == 2:
                    raise RuntimeError(f"lost {self.secret} mid-stream")


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    # conftest's server, on an app the failing format can be registered on
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def failing_format(app: FastAPI, tmp_path: Path) -> Iterator[Path]:
    secret = tmp_path / "private" / "state.db"
    formats = app.state.platform.formats
    formats.register(
        "failing.",
        lambda model_id, body: _Failing(str(body.get("failing")), secret),
        detect=lambda body, kind: "failing" in body,
    )
    try:
        yield secret
    finally:
        formats.unregister("failing.")


def test_an_unexpected_error_is_a_typed_internal_server_exception(
    server: str, failing_format: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="haniwa.api")
    r = httpx.post(server + "/model/echo:echo/invoke", json={"failing": "render"})
    message = assert_typed(r, 500, "InternalServerException")
    request_id = r.headers["x-amzn-requestid"]
    assert request_id in message
    assert str(failing_format) not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    # the server's log has the whole story, under the same request id
    logged = [rec for rec in caplog.records if rec.name == "haniwa.api" and request_id in rec.getMessage()]
    assert logged and logged[0].exc_info is not None
    # and boto3 raises the typed exception
    rt = boto3.client("bedrock-runtime", **client_kwargs(server))
    with pytest.raises(rt.exceptions.InternalServerException):
        rt.invoke_model(modelId="echo:echo", body=json.dumps({"failing": "render"}))


def test_a_mid_stream_failure_ends_with_an_exception_event(
    server: str, failing_format: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="haniwa.api")
    rt = boto3.client("bedrock-runtime", **client_kwargs(server))
    resp = rt.invoke_model_with_response_stream(modelId="echo:echo", body=json.dumps({"failing": "mid"}))
    request_id = resp["ResponseMetadata"]["RequestId"]
    chunks = []
    with pytest.raises(EventStreamError) as err:
        for event in resp["body"]:
            chunks.append(json.loads(event["chunk"]["bytes"]))
    # what was produced arrived, then a typed exception event (not a cut connection)
    assert chunks == [{"text": "one"}]
    assert err.value.response["Error"]["Code"] == "internalServerException"
    assert request_id in err.value.response["Error"]["Message"]
    assert str(failing_format) not in str(err.value)
    assert any(rec.name == "haniwa.api" and request_id in rec.getMessage() for rec in caplog.records)


def test_a_stream_that_fails_before_its_first_event_is_an_ordinary_error(
    runtime: Any, failing_format: Path
) -> None:
    # any error raised before the first event is an HTTP error, for every streaming operation
    with pytest.raises(runtime.exceptions.ValidationException, match="refused before the stream"):
        runtime.invoke_model_with_response_stream(modelId="echo:echo", body=json.dumps({"failing": "refuse"}))


def test_no_route_answers_an_untyped_500(settings: Settings) -> None:
    app = create_app(settings)

    async def broken(request: Request) -> None:
        raise RuntimeError(f"{settings.home} is unreadable")

    # routes that fail outside any surface's own error handling, in front of the catch-all Bedrock route
    app.router.routes.insert(0, Route("/haniwa/v1/broken", broken))
    app.router.routes.insert(0, Route("/v1/broken", broken))
    app.router.routes.insert(0, Route("/broken", broken))
    with serve_in_thread(app) as url:
        for path in ("/v1/broken", "/haniwa/v1/broken"):
            r = httpx.get(url + path)
            assert r.status_code == 500 and r.headers["content-type"].startswith("application/json")
            error = r.json()["error"]
            assert error["type"] == "server_error" and r.headers["x-request-id"] in error["message"]
            assert str(settings.home) not in r.text
        r = httpx.get(url + "/broken")
        assert r.headers["x-amzn-requestid"] in assert_typed(r, 500, "InternalServerException")
        assert str(settings.home) not in r.text


def test_a_path_with_a_newline_gets_a_typed_answer(server: str) -> None:
    # Starlette's catch-all `{path:path}` does not match a decoded newline; the answer is typed anyway
    r = httpx.get(server + "/agents/a%0Ab/")
    assert "pattern" in assert_typed(r, 400, "ValidationException")
    r = httpx.get(server + "/knowledgebases/ABCDEFGHIJ/datasources/a%0Ab")
    assert_typed(r, 400, "ValidationException")
    r = httpx.get(server + "/v1/nothing%0Ahere")
    assert r.status_code == 404 and set(r.json()) == {"error"}


def test_a_204_answer_has_no_body(server: str, caplog: pytest.LogCaptureFixture) -> None:
    agent = boto3.client("bedrock-agent", **client_kwargs(server))
    agent_id = agent.create_agent(agentName="a204", foundationModel="echo:echo")["agent"]["agentId"]
    group = agent.create_agent_action_group(
        agentId=agent_id,
        agentVersion="DRAFT",
        actionGroupName="g",
        actionGroupExecutor={"customControl": "RETURN_CONTROL"},
        functionSchema={"functions": [{"name": "f", "parameters": {}}]},
    )["agentActionGroup"]["actionGroupId"]
    caplog.set_level(logging.ERROR)
    with httpx.Client() as client:
        r = client.delete(f"{server}/agents/{agent_id}/agentversions/DRAFT/actiongroups/{group}/")
        assert r.status_code == 204 and r.content == b"" and r.headers["x-amzn-requestid"]
        # the connection is still good: the server did not break the framing after the headers
        assert client.get(f"{server}/agents/{agent_id}/").status_code == 200
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


# -- service-model constraints -------------------------------------------------------------------------
def test_service_model_patterns_and_maximums_apply(runtime: Any, server: str) -> None:
    bad_name = {"tools": [{"toolSpec": {"name": "bad name!", "inputSchema": {"json": {}}}}]}
    with pytest.raises(runtime.exceptions.ValidationException, match="regular expression pattern"):
        runtime.converse(modelId="echo:echo", messages=USER, toolConfig=bad_name)
    # list max (stopSequences: at most 2500), which botocore's validator leaves to the service
    with pytest.raises(runtime.exceptions.ValidationException, match="less than or equal to"):
        runtime.converse(modelId="echo:echo", messages=USER, inferenceConfig={"stopSequences": ["x"] * 2501})
    agent = boto3.client("bedrock-agent", **client_kwargs(server))
    with pytest.raises(agent.exceptions.ValidationException, match="pattern"):
        agent.get_knowledge_base(knowledgeBaseId="nope")
    with pytest.raises(agent.exceptions.ValidationException, match="pattern"):
        agent.create_agent(agentName="has spaces", foundationModel="echo:echo")
    # JSON true is not an integer, although Python (and botocore's validator) says bool is an int
    with pytest.raises(agent.exceptions.ValidationException, match="boolean"):
        agent.list_knowledge_bases(maxResults=True)
    # haniwa's own ids stay accepted where the patterns know only Bedrock's (wire.PATTERN_EXEMPT)
    for model_id in ("echo:echo", "arn:aws:bedrock:us-east-1::foundation-model/echo:echo"):
        assert runtime.converse(modelId=model_id, messages=USER)["output"]
    bedrock = boto3.client("bedrock", **client_kwargs(server))
    assert bedrock.get_foundation_model(modelIdentifier="echo:echo")["modelDetails"]["modelId"] == "echo:echo"
    created = agent.create_agent(agentName="ok-agent", foundationModel="llamacpp:qwen2.5-coder-1.5b")
    assert created["agent"]["foundationModel"] == "llamacpp:qwen2.5-coder-1.5b"


def _adversarial(n: int) -> list[str]:
    return [
        "a" * n,
        "a" * (n - 1) + "!",
        "-" * (n - 1) + "!",
        ("a-" * n)[: n - 1] + "!",
        ("a/" * n)[: n - 1] + "\n",
        ("aaaaaaaaaa/" * n)[: n - 1] + "\n",
        ("a." * n)[: n - 1] + "!",
        ("1:" * n)[: n - 1] + "!",
        ("arn:aws:" + "a:" * n)[: n - 1] + "!",
    ]


def test_every_applied_pattern_compiles_and_stays_fast() -> None:
    """Patterns run on the event loop: each one served operations apply must stay fast on a value as long
    as its shape allows (a pattern that backtracks badly needs an entry in wire._REWRITES)."""
    from haniwa.api import (
        bedrock,
        bedrock_agent,
        bedrock_agent_agents,
        bedrock_agent_invoke,
        bedrock_agent_runtime,
        bedrock_runtime,
    )

    served = set()
    for module in (bedrock, bedrock_agent, bedrock_agent_agents, bedrock_agent_invoke, bedrock_agent_runtime):
        served |= set(module.OPERATIONS)
    served |= set(bedrock_runtime.OPERATIONS)
    router = Router()
    shapes: dict[tuple[str, str], Any] = {}

    def walk(service: str, shape: Any, seen: frozenset[str]) -> None:
        if shape.type_name == "structure" and shape.name not in seen:
            for member in shape.members.values():
                walk(service, member, seen | {shape.name})
        elif shape.type_name == "list":
            walk(service, shape.member, seen)
        elif shape.type_name == "map":
            walk(service, shape.key, seen)
            walk(service, shape.value, seen)
        elif shape.type_name == "string" and shape.metadata.get("pattern"):
            shapes[(service, shape.name)] = shape

    for service, name in served:
        walk(service, router.find(service, name).model.input_shape, frozenset())
    assert len(shapes) > 50
    slow = []
    for key, shape in shapes.items():
        compiled = _pattern(shape.metadata["pattern"])
        assert compiled is not None, key
        if key in PATTERN_EXEMPT:
            continue
        n = min(shape.metadata.get("max", PATTERN_MAX_CHARS), PATTERN_MAX_CHARS)
        started = time.perf_counter()
        for value in _adversarial(max(n, 2)):
            compiled.fullmatch(value)
        if time.perf_counter() - started > 0.05:
            slow.append(key)
    assert slow == []


# -- haniwa's caps ---------------------------------------------------------------------------------------
def test_max_tokens_beyond_the_context_window_is_refused(runtime: Any) -> None:
    for max_tokens in (10**30, 4097):  # echo:echo has a 4096-token context
        with pytest.raises(runtime.exceptions.ValidationException, match="context window"):
            runtime.converse(modelId="echo:echo", messages=USER, inferenceConfig={"maxTokens": max_tokens})
        with pytest.raises(runtime.exceptions.ValidationException, match="context window"):
            runtime.converse_stream(
                modelId="echo:echo", messages=USER, inferenceConfig={"maxTokens": max_tokens}
            )
    bodies = {
        "anthropic.claude-3-haiku-20240307-v1:0": {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 10**30,
            "messages": [{"role": "user", "content": "hi"}],
        },
        "mistral.mistral-large-2407-v1:0": {
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 10**30,
        },
        "cohere.command-r-v1:0": {"message": "hi", "max_tokens": 10**30},
    }
    for model_id, body in bodies.items():
        with pytest.raises(runtime.exceptions.ValidationException, match="context window"):
            runtime.invoke_model(modelId=model_id, body=json.dumps(body))
        with pytest.raises(runtime.exceptions.ValidationException, match="context window"):
            runtime.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body))
    out = runtime.converse(modelId="echo:echo", messages=USER, inferenceConfig={"maxTokens": 4096})
    assert out["output"]["message"]["content"][0]["text"] == "hi"


def test_messages_and_tools_are_capped(home: Path) -> None:
    settings = Settings(home=home, profile="fast", max_messages=3, max_tools=2)
    with serve_in_thread(create_app(settings)) as url:
        rt = boto3.client("bedrock-runtime", **client_kwargs(url))
        turns = [*USER, {"role": "assistant", "content": [{"text": "a"}]}]
        with pytest.raises(rt.exceptions.ValidationException, match="HANIWA_MAX_MESSAGES"):
            rt.converse(modelId="echo:echo", messages=turns * 2)
        with pytest.raises(rt.exceptions.ValidationException, match="HANIWA_MAX_MESSAGES"):
            rt.converse_stream(modelId="echo:echo", messages=turns * 2)
        three = {"tools": [{"toolSpec": {"name": f"t{i}", "inputSchema": {"json": {}}}} for i in range(3)]}
        with pytest.raises(rt.exceptions.ValidationException, match="HANIWA_MAX_TOOLS"):
            rt.converse(modelId="echo:echo", messages=USER, toolConfig=three)
        native = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": ["x"] * 0}
        native["messages"] = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}] * 2
        with pytest.raises(rt.exceptions.ValidationException, match="HANIWA_MAX_MESSAGES"):
            rt.invoke_model(modelId="anthropic.claude-3-haiku-20240307-v1:0", body=json.dumps(native))
        assert rt.converse(modelId="echo:echo", messages=[*turns, *USER])["output"]


# -- what messages may say, and which bucket a data source reads ------------------------------------------
EMBED = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"
AOSS = {
    "type": "OPENSEARCH_SERVERLESS",
    "opensearchServerlessConfiguration": {
        "collectionArn": "arn:aws:aoss:us-east-1:000000000000:collection/x",
        "vectorIndexName": "idx",
        "fieldMapping": {"vectorField": "v", "textField": "t", "metadataField": "m"},
    },
}


def _kb(agent: Any) -> str:
    return str(
        agent.create_knowledge_base(
            name="kb",
            roleArn="arn:aws:iam::000000000000:role/kb",
            knowledgeBaseConfiguration={
                "type": "VECTOR",
                "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": EMBED},
            },
            storageConfiguration=AOSS,
        )["knowledgeBase"]["knowledgeBaseId"]
    )


def test_error_messages_hold_no_server_path(server: str, settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "outside-the-s3-root"
    outside.mkdir()
    settings.s3_folder.mkdir(parents=True, exist_ok=True)
    (settings.s3_folder / "escaping").symlink_to(outside, target_is_directory=True)
    agent = boto3.client("bedrock-agent", **client_kwargs(server))
    kb_id = _kb(agent)
    with pytest.raises(agent.exceptions.ValidationException) as err:
        agent.create_data_source(
            knowledgeBaseId=kb_id,
            name="escaping",
            dataSourceConfiguration={"type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::escaping"}},
        )
    message = err.value.response["Error"]["Message"]
    assert "escaping" in message
    assert str(tmp_path) not in message and not re.search(r"(^|[\s'\"(])/[\w.-]+/", message)


def test_errors_do_not_list_registered_functions(home: Path) -> None:
    settings = Settings(
        home=home,
        profile="fast",
        agent_functions={"get_material_stock": "tests.agent_tools:get_material_stock"},
    )
    with serve_in_thread(create_app(settings)) as url:
        agent = boto3.client("bedrock-agent", **client_kwargs(url))
        agent_id = agent.create_agent(
            agentName="fn-agent",
            foundationModel="echo:echo",
            instruction="You answer questions about the stock of materials in the factory.",
        )["agent"]["agentId"]
        agent.create_agent_action_group(
            agentId=agent_id,
            agentVersion="DRAFT",
            actionGroupName="g",
            actionGroupExecutor={"lambda": "arn:aws:lambda:us-east-1:000000000000:function:rm_rf"},
            functionSchema={"functions": [{"name": "f", "parameters": {}}]},
        )
        with pytest.raises(agent.exceptions.ValidationException) as err:
            agent.prepare_agent(agentId=agent_id)
        message = err.value.response["Error"]["Message"]
        assert "rm_rf" in message and "get_material_stock" not in message


def test_an_s3_data_source_ingests_only_its_own_bucket(server: str, settings: Settings) -> None:
    for bucket, text in (("bucket-a", "# A\nalpha"), ("bucket-b", "# B\nsecret of another bucket")):
        (settings.s3_folder / bucket).mkdir(parents=True, exist_ok=True)
        (settings.s3_folder / bucket / "doc.md").write_text(text, encoding="utf-8")
    agent = boto3.client("bedrock-agent", **client_kwargs(server))
    kb_id = _kb(agent)
    ds_id = agent.create_data_source(
        knowledgeBaseId=kb_id,
        name="a",
        dataSourceConfiguration={"type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::bucket-a"}},
    )["dataSource"]["dataSourceId"]

    def ingest(uri: str) -> Any:
        return agent.ingest_knowledge_base_documents(
            knowledgeBaseId=kb_id,
            dataSourceId=ds_id,
            documents=[{"content": {"dataSourceType": "S3", "s3": {"s3Location": {"uri": uri}}}}],
        )

    with pytest.raises(agent.exceptions.ValidationException, match="bucket-a"):
        ingest("s3://bucket-b/doc.md")
    assert ingest("s3://bucket-a/doc.md")["documentDetails"][0]["status"] in (
        "STARTING",
        "IN_PROGRESS",
        "INDEXED",
    )
    # an identifier without the member its dataSourceType names is the caller's mistake, not a KeyError
    with pytest.raises(agent.exceptions.ValidationException, match="s3.uri"):
        agent.get_knowledge_base_documents(
            knowledgeBaseId=kb_id, dataSourceId=ds_id, documentIdentifiers=[{"dataSourceType": "S3"}]
        )


def test_renaming_a_data_source_to_a_taken_name_is_a_conflict(server: str) -> None:
    # found by bench/fuzz.py: the UNIQUE constraint surfaced as an untyped 500
    agent = boto3.client("bedrock-agent", **client_kwargs(server))
    kb_id = _kb(agent)
    s3 = {"type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::bucket-a"}}
    agent.create_data_source(knowledgeBaseId=kb_id, name="first", dataSourceConfiguration=s3)
    second = agent.create_data_source(knowledgeBaseId=kb_id, name="second", dataSourceConfiguration=s3)
    ds_id = second["dataSource"]["dataSourceId"]
    with pytest.raises(agent.exceptions.ConflictException, match="first"):
        agent.update_data_source(
            knowledgeBaseId=kb_id, dataSourceId=ds_id, name="first", dataSourceConfiguration=s3
        )
    kept = agent.update_data_source(
        knowledgeBaseId=kb_id, dataSourceId=ds_id, name="second", dataSourceConfiguration=s3
    )
    assert kept["dataSource"]["name"] == "second"


def test_many_functions_with_one_name_are_refused_quickly(server: str) -> None:
    # found by bench/fuzz.py: a quadratic duplicate check held the event loop for 22 s on 10,000 functions
    agent = boto3.client("bedrock-agent", **client_kwargs(server))
    agent_id = agent.create_agent(agentName="dupes", foundationModel="echo:echo", instruction="x" * 40)[
        "agent"
    ]["agentId"]
    functions = [{"name": "same", "description": "d"}] * 10_000
    started = time.perf_counter()
    with pytest.raises(agent.exceptions.ValidationException, match="unique"):
        agent.create_agent_action_group(
            agentId=agent_id,
            agentVersion="DRAFT",
            actionGroupName="g",
            actionGroupExecutor={"customControl": "RETURN_CONTROL"},
            functionSchema={"functions": functions},
        )
    assert time.perf_counter() - started < 5
