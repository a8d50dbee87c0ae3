"""Small pieces checked against real peers: botocore's event-stream decoder, numpy for dims."""

from __future__ import annotations

import math

from botocore.eventstream import EventStreamBuffer

from haniwa.api.eventstream import event, exception_event
from haniwa.runtime.dims import adapt
from haniwa.runtime.echo import HashEmbedder
from haniwa.runtime.registry import strip_arn


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def test_event_stream_frames_decode_with_botocore() -> None:
    buf = EventStreamBuffer()
    buf.add_data(
        event("chunk", {"bytes": "eyJhIjogMX0="}) + exception_event("throttlingException", "slow down")
    )
    first, second = list(buf)
    assert first.headers[":event-type"] == "chunk" and first.payload == b'{"bytes":"eyJhIjogMX0="}'
    assert second.headers[":message-type"] == "exception"
    assert second.headers[":exception-type"] == "throttlingException"


def test_zero_padding_keeps_cosine_exactly() -> None:
    import asyncio

    emb = HashEmbedder("h", 384)
    a, b = asyncio.run(emb.embed(["a white dog walks", "the dog is white"]))
    assert len(adapt(a, 1536)) == 1536
    assert math.isclose(cos(adapt(a, 1536), adapt(b, 1536)), cos(a, b), rel_tol=1e-12)


def test_projection_is_deterministic_and_roughly_keeps_similarity() -> None:
    import asyncio

    emb = HashEmbedder("h", 384)
    a, b, c = asyncio.run(emb.embed(["a man walks a white dog", "a white dog walks with a man", "冷蔵庫"]))
    pa, pb, pc = adapt(a, 256), adapt(b, 256), adapt(c, 256)
    assert pa == adapt(a, 256) and len(pa) == 256
    assert math.isclose(sum(x * x for x in pa), 1.0, rel_tol=1e-9)
    assert cos(pa, pb) > cos(pa, pc)


def test_strip_arn() -> None:
    assert strip_arn("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0") == (
        "amazon.titan-embed-text-v2:0"
    )
    assert strip_arn("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.x-v1:0") == (
        "us.anthropic.x-v1:0"
    )
    assert strip_arn("echo:echo") == "echo:echo"
