"""Rate limits like Bedrock's: requests and tokens per minute, per key and per model, on both surfaces.

The limiter itself is driven with a hand-moved clock; the surfaces with boto3 and the ``openai`` SDK
against a real haniwa whose limits are small enough to reach in a few calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import openai
import pytest
from botocore.exceptions import ClientError

from haniwa.api.app import create_app
from haniwa.api.ratelimit import caller_key
from haniwa.config import Settings
from haniwa.errors import ThrottledError
from haniwa.runtime.ratelimit import RateLimiter
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs

MSG = [{"role": "user", "content": [{"text": "hi"}]}]
HI = [{"role": "user", "content": "hi"}]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the limiter ------------------------------------------------------------------------------------------
def test_requests_per_minute_refill_evenly_and_say_when_to_retry() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=2, tpm=0, clock=clock)
    limiter.acquire("a", "m", 10)
    limiter.acquire("a", "m", 10)
    with pytest.raises(ThrottledError) as err:
        limiter.acquire("a", "m", 10)
    assert err.value.retry_after == pytest.approx(30.0)  # one request comes back every 60/2 s
    assert "2 requests per minute" in err.value.message
    clock.now += 29.0
    with pytest.raises(ThrottledError) as err:
        limiter.acquire("a", "m", 10)
    assert err.value.retry_after == pytest.approx(1.0)
    clock.now += 1.0
    limiter.acquire("a", "m", 10)


def test_buckets_are_per_caller_and_per_model() -> None:
    limiter = RateLimiter(rpm=1, tpm=0, clock=Clock())
    limiter.acquire("a", "m1", 0)
    with pytest.raises(ThrottledError):
        limiter.acquire("a", "m1", 0)
    limiter.acquire("b", "m1", 0)  # another key
    limiter.acquire("a", "m2", 0)  # another model


def test_tokens_are_reserved_then_settled_with_the_real_usage() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=0, tpm=100, clock=clock)
    ticket = limiter.acquire("a", "m", 90)
    with pytest.raises(ThrottledError) as err:  # 10 left while the call runs
        limiter.acquire("a", "m", 20)
    assert err.value.retry_after == pytest.approx(6.0)  # 10 tokens at 100/60 per s
    ticket.settle(5)  # it used 5: 85 come back
    limiter.acquire("a", "m", 90).settle(5)
    ticket.settle(0)  # settling twice changes nothing
    with pytest.raises(ThrottledError):
        limiter.acquire("a", "m", 95)
    # a call bigger than the whole budget waits for a full bucket, then leaves it in debt
    clock.now += 60
    limiter.acquire("a", "m", 1000).settle(400)
    with pytest.raises(ThrottledError) as err:
        limiter.acquire("a", "m", 1)
    assert err.value.retry_after == pytest.approx(301 * 60 / 100)


def test_a_cancelled_call_gives_its_request_and_tokens_back() -> None:
    limiter = RateLimiter(rpm=1, tpm=10, clock=Clock())
    limiter.acquire("a", "m", 10).cancel()
    limiter.acquire("a", "m", 10)


def test_memory_stays_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=60, tpm=0, max_buckets=100, clock=clock)
    for i in range(1000):
        limiter.acquire(f"key{i}", "m", 0)
        assert len(limiter) <= 100
    clock.now += 61  # every bucket has refilled: holding them tells nothing
    limiter.acquire("new", "m", 0)
    assert len(limiter) == 1


def test_limits_off_by_default() -> None:
    limiter = RateLimiter(rpm=0, tpm=0)
    for _ in range(1000):
        limiter.acquire("a", "m", 10**6).settle(10**6)
    assert len(limiter) == 0


def test_caller_keys() -> None:
    sigv4 = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )
    assert caller_key(sigv4) == "aws:AKIDEXAMPLE"
    assert caller_key("Bearer k1") == caller_key("bearer  k1 ") != caller_key("Bearer k2")
    assert "k1" not in caller_key("Bearer k1")  # the limiter never holds a key itself
    assert caller_key(None) == caller_key("") == caller_key("Basic x") == "anonymous"


# -- on the wire --------------------------------------------------------------------------------------------
def _serve(home: Path, **limits: Any) -> Iterator[str]:
    with serve_in_thread(create_app(Settings(home=home, profile="fast", **limits))) as url:
        yield url


@pytest.fixture
def rpm2(home: Path) -> Iterator[str]:
    yield from _serve(home, rate_limit_rpm=2)


def _throttled(err: ClientError) -> int:
    """The ClientError is Bedrock's ThrottlingException with a Retry-After; returns its seconds."""
    assert err.response["Error"]["Code"] == "ThrottlingException"
    meta = err.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 429
    assert meta["HTTPHeaders"]["x-amzn-errortype"] == "ThrottlingException"
    seconds = int(meta["HTTPHeaders"]["retry-after"])
    assert 1 <= seconds <= 60
    return seconds


def test_bedrock_converse_is_throttled_with_retry_after(rpm2: str) -> None:
    runtime = boto3.client("bedrock-runtime", **client_kwargs(rpm2))
    for _ in range(2):
        runtime.converse(modelId="echo:echo", messages=MSG)
    with pytest.raises(ClientError) as err:
        runtime.converse(modelId="echo:echo", messages=MSG)
    assert _throttled(err.value) >= 20  # the next request is 30 s away
    # boto3 users get the exception from the call itself, not a 200 whose stream fails
    with pytest.raises(ClientError) as err:
        runtime.converse_stream(modelId="echo:echo", messages=MSG)
    _throttled(err.value)
    with pytest.raises(ClientError) as err:
        runtime.invoke_model_with_response_stream(
            modelId="anthropic.claude-3-haiku-20240307-v1:0",
            body=json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20, "messages": HI}),
        )
    _throttled(err.value)
    # CountTokens is no model call: it is never throttled
    for _ in range(5):
        out = runtime.count_tokens(modelId="echo:echo", input={"converse": {"messages": MSG}})
        assert out["inputTokens"] > 0


def test_bedrock_streams_and_embeddings_count_too(rpm2: str) -> None:
    runtime = boto3.client("bedrock-runtime", **client_kwargs(rpm2))
    for _ in range(2):
        stream = runtime.converse_stream(modelId="echo:echo", messages=MSG)["stream"]
        assert [e for e in stream if "messageStop" in e]
    with pytest.raises(ClientError) as err:
        runtime.invoke_model(
            modelId="anthropic.claude-3-haiku-20240307-v1:0",
            body=json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20, "messages": HI}),
        )
    _throttled(err.value)
    embed = {"inputText": "埴輪"}
    for _ in range(2):
        runtime.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=json.dumps(embed))
    with pytest.raises(ClientError) as err:
        runtime.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=json.dumps(embed))
    _throttled(err.value)


def _rate_limited(err: openai.RateLimitError) -> int:
    assert err.status_code == 429
    assert err.body["type"] == "rate_limit_error" and err.body["code"] == "rate_limit_exceeded"
    seconds = int(err.response.headers["retry-after"])
    assert 1 <= seconds <= 60
    return seconds


def test_openai_chat_and_embeddings_are_throttled_with_retry_after(rpm2: str) -> None:
    oai = openai.OpenAI(base_url=rpm2 + "/v1", api_key="unused", max_retries=0)
    oai.chat.completions.create(model="echo:echo", messages=HI)
    assert list(oai.chat.completions.create(model="echo:echo", messages=HI, stream=True))
    for stream in (False, True):
        with pytest.raises(openai.RateLimitError) as err:
            oai.chat.completions.create(model="echo:echo", messages=HI, stream=stream)
        _rate_limited(err.value)
    for _ in range(2):
        oai.embeddings.create(model="hash:hash-384", input=["a", "b"])
    with pytest.raises(openai.RateLimitError) as err:
        oai.embeddings.create(model="hash:hash-384", input="a")
    _rate_limited(err.value)


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "models.toml").write_text('[models."echo:blind"]\nbackend = "echo"\nkind = "chat"\n')
    settings = Settings(
        home=tmp_path,
        access_key_id="AKIDEXAMPLE",
        secret_access_key="secret-example",
        api_keys=["k1", "k2"],
        rate_limit_rpm=1,
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url


def test_limits_are_per_key_and_per_model(keyed: str) -> None:
    k1 = openai.OpenAI(base_url=keyed + "/v1", api_key="k1", max_retries=0)
    k2 = openai.OpenAI(base_url=keyed + "/v1", api_key="k2", max_retries=0)
    k1.chat.completions.create(model="echo:echo", messages=HI)
    with pytest.raises(openai.RateLimitError) as err:
        k1.chat.completions.create(model="echo:echo", messages=HI)
    _rate_limited(err.value)
    k2.chat.completions.create(model="echo:echo", messages=HI)  # two keys do not share a budget
    k1.chat.completions.create(model="echo:blind", messages=HI)  # nor two models
    runtime = boto3.client("bedrock-runtime", **client_kwargs(keyed))
    runtime.converse(modelId="echo:echo", messages=MSG)  # the SigV4 key has its own
    with pytest.raises(ClientError) as bedrock_err:
        runtime.converse(modelId="echo:echo", messages=MSG)
    _throttled(bedrock_err.value)


@pytest.fixture
def tpm300(home: Path) -> Iterator[str]:
    yield from _serve(home, rate_limit_tpm=300)


def test_tokens_per_minute_charge_the_real_usage(tpm300: str) -> None:
    oai = openai.OpenAI(base_url=tpm300 + "/v1", api_key="unused", max_retries=0)
    words = " ".join(f"w{i}" for i in range(50))  # the echo model answers 50 tokens for 50 in
    big = [{"role": "user", "content": words}]
    for _ in range(2):  # each reserves ~150 (prompt estimate + max_tokens) and uses 100
        out = oai.chat.completions.create(model="echo:echo", messages=big, max_tokens=100)
        assert out.usage.total_tokens == 100
    # 100 are left because each call gave back what it reserved and did not use; without that, 2 would be
    oai.chat.completions.create(model="echo:echo", messages=HI, max_tokens=60)
    with pytest.raises(openai.RateLimitError) as err:
        oai.chat.completions.create(model="echo:echo", messages=big, max_tokens=100)
    assert _rate_limited(err.value) >= 5
    assert "300 tokens per minute" in err.value.body["message"]
