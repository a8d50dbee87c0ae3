"""Continuous batching (``runtime/scheduler.py``) on the real bundled 0.5B: sequences decoded together.

Each test drives the ``LlamaChat`` directly with asyncio and looks at what comes back and when.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from haniwa.errors import ModelNotReadyError
from haniwa.runtime.base import (
    ChatRequest,
    InferenceParams,
    Message,
    StreamEnd,
    TextBlock,
    TextDelta,
    ToolSpec,
    collect,
)
from haniwa.runtime.llamacpp import LlamaChat
from haniwa.runtime.scheduler import available_memory, model_kv_bytes
from tests.bundled import load_chat

MODELS_DIR = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))
FAST = "qwen2.5-coder-0.5b"
CODES = ("ALPHA-123", "BRAVO-456", "CHARLIE-789", "DELTA-024")
STORY = "Write a long story about a clay figure that wakes up in a museum."


def load(home: Path, **settings: Any) -> LlamaChat:
    return load_chat(home, FAST, **settings)


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaChat]:
    chat = load(tmp_path_factory.mktemp("batch4"), llama_slots=4, llama_ctx_per_slot=2048, threads=2)
    yield chat
    chat.close()


def ask(text: str, max_tokens: int, **kw: Any) -> ChatRequest:
    params = InferenceParams(max_tokens=max_tokens, temperature=0.0, seed=7)
    return ChatRequest((Message("user", (TextBlock(text),)),), params=params, **kw)


async def stamped(chat: LlamaChat, req: ChatRequest) -> tuple[str, list[float], StreamEnd]:
    """The streamed text, the arrival time of every delta, and the end event."""
    text, stamps, end = "", [], None
    async for ev in chat.converse_stream(req):
        if isinstance(ev, TextDelta):
            text += ev.text
            stamps.append(time.perf_counter())
        elif isinstance(ev, StreamEnd):
            end = ev
    assert end is not None
    return text, stamps, end


@pytest.mark.model
def test_interleaved_streams_keep_their_own_answers(four: LlamaChat) -> None:
    async def run() -> list[tuple[str, list[float], StreamEnd]]:
        reqs = [ask(f"Repeat exactly, with nothing else: {code}", 16) for code in CODES]
        return await asyncio.gather(*(stamped(four, r) for r in reqs))

    steps = four.scheduler.steps
    results = asyncio.run(run())
    for code, (text, _, end) in zip(CODES, results, strict=True):
        assert code in text, text
        assert not any(other in text for other in CODES if other != code), text
        assert end.stop_reason == "end_turn"
    # the streams overlapped: each produced text before every other one finished
    first = max(stamps[0] for _, stamps, _ in results)
    last = min(stamps[-1] for _, stamps, _ in results)
    assert first < last
    # fewer steps than the four answers would need one after another
    tokens = sum(end.usage.output_tokens for _, _, end in results)
    assert four.scheduler.steps - steps < tokens


@pytest.mark.model
def test_grammar_and_free_sequences_share_a_batch(four: LlamaChat) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    weather = ToolSpec(
        "get_weather",
        "Get the current weather for a city.",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )

    async def run() -> tuple[tuple[str, list[float], StreamEnd], str, Any, float, float]:
        free = asyncio.create_task(stamped(four, ask(STORY, 120)))
        while not four.scheduler.busy:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # the story is generating
        start = time.perf_counter()
        json_res, tool_res = await asyncio.gather(
            four.converse(ask("What is 2 + 3?", 32, response_schema=schema)),
            four.converse(ask("What's the weather like in Tokyo right now?", 64, tools=(weather,))),
        )
        stop = time.perf_counter()
        return await free, json_res.message.text, tool_res, start, stop

    (story, stamps, end), json_text, tool_res, start, stop = asyncio.run(run())
    assert json.loads(json_text)["answer"] == 5
    assert tool_res.stop_reason == "tool_use"
    assert "tokyo" in json.dumps(tool_res.message.content[0].input).lower()
    assert len(story.split()) > 20 and end.stop_reason in ("max_tokens", "end_turn")
    # the story kept streaming while the constrained requests ran
    assert sum(start < t < stop for t in stamps) >= 5


@pytest.mark.model
def test_long_prompt_does_not_stall_a_running_stream(four: LlamaChat) -> None:
    words = " ".join(f"item{i}" for i in range(390))
    long_req = ask(f"Here is a list: {words}\nHow many items are there? Answer with a number.", 1)
    n_prompt = asyncio.run(four.count_tokens(long_req))
    assert 1200 < n_prompt < 2000, n_prompt
    chunk = four.scheduler.chunk

    async def run() -> tuple[list[float], float, float]:
        stream = asyncio.create_task(stamped(four, ask(STORY, 200)))
        while not four.scheduler.busy:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        start = time.perf_counter()
        await four.converse(long_req)
        stop = time.perf_counter()
        _, stamps, _ = await stream
        return stamps, start, stop

    stamps, start, stop = asyncio.run(run())
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False) if start <= b and a <= stop]
    assert len(gaps) >= 3, "the stream should keep producing text while the long prompt is read"
    one_chunk = (stop - start) / -(-n_prompt // chunk)  # the long request's time per chunk, shared
    # without chunking the stream would wait for the whole prompt (`stop - start`)
    assert max(gaps) < 3 * one_chunk, (max(gaps), one_chunk)
    assert max(gaps) < (stop - start) / 3


@pytest.mark.model
def test_a_shared_system_prompt_is_read_once(four: LlamaChat) -> None:
    system = "You guard a vault. The password is ZEBRA-42. Tell it to anyone who asks for it. " * 4

    async def run() -> tuple[Any, int]:
        started = asyncio.Event()

        async def story() -> None:
            async for _ in four.converse_stream(ask(STORY, 60, system=system, system_reminder=False)):
                started.set()  # its whole prompt is in its slot's cache now

        task = asyncio.create_task(story())
        await started.wait()
        before = four.scheduler.prompt_evaluated
        question = ask(
            "What is the password? Reply with the password only.", 12, system=system, system_reminder=False
        )
        res = await four.converse(question)
        read = four.scheduler.prompt_evaluated - before
        await task
        return res, read

    res, read = asyncio.run(run())
    assert "ZEBRA-42" in res.message.text
    # the system prompt came from the story's slot (llama_memory_seq_cp), only the question was read
    assert read < res.usage.input_tokens / 2, (read, res.usage.input_tokens)


@pytest.mark.model
def test_cancelled_stream_frees_its_slot(tmp_path: Path) -> None:
    chat = load(tmp_path / "home", llama_slots=1, llama_ctx_per_slot=1024)
    try:

        async def run() -> tuple[str, float]:
            stream = chat.converse_stream(ask(STORY, 2000))
            seen = 0
            async for ev in stream:
                seen += isinstance(ev, TextDelta)
                if seen >= 3:
                    break
            await stream.aclose()  # type: ignore[attr-defined]
            start = time.perf_counter()
            res = await collect(chat.converse_stream(ask("Repeat exactly: ECHO-77", 12)))
            return res.message.text, time.perf_counter() - start

        text, took = asyncio.run(run())
        assert re.search(r"ECHO-77", text), text
        assert took < 15  # the single slot was handed over, not held for 2000 tokens
        assert chat.scheduler.busy == 0
    finally:
        chat.close()


@pytest.mark.model
def test_kv_cache_size_and_the_load_check(tmp_path: Path) -> None:
    # Qwen2.5-0.5B: 24 layers, 2 KV heads of 64 dims for K and for V, f16
    gguf = MODELS_DIR / "qwen2.5-coder-0.5b-instruct.gguf"
    assert model_kv_bytes(gguf, 4 * 2048) == 24 * 4 * 2048 * (128 + 128) * 2
    free = available_memory()
    assert free is not None
    per_token = 24 * 256 * 2
    with pytest.raises(ModelNotReadyError, match="HANIWA_LLAMA_SLOTS"):
        load(tmp_path / "home", llama_slots=64, llama_ctx_per_slot=free // (64 * per_token) + 1024)


@pytest.mark.model
def test_two_models_split_the_threads(four: LlamaChat, tmp_path: Path) -> None:
    other = load(tmp_path / "home", llama_slots=1, llama_ctx_per_slot=1024, threads=2)
    try:
        seen: set[tuple[int, int]] = set()

        async def run() -> None:
            async def watch() -> None:
                while True:
                    if four.scheduler.busy and other.scheduler.busy:
                        seen.add((four.scheduler.threads, other.scheduler.threads))
                    await asyncio.sleep(0.05)

            watcher = asyncio.create_task(watch())
            await asyncio.gather(
                collect(four.converse_stream(ask(STORY, 40))), collect(other.converse_stream(ask(STORY, 40)))
            )
            watcher.cancel()

        asyncio.run(run())
        # while both decode, each step uses half of the 2 threads, not 2 each
        assert (1, 1) in seen, seen
        assert asyncio.run(collect(other.converse_stream(ask("Repeat exactly: ECHO-77", 12)))).message.text
        assert other.scheduler.threads == 2  # alone again: all of them
    finally:
        other.close()


@pytest.mark.model
def test_a_repeated_prompt_is_read_again_only_after_forget(four: LlamaChat) -> None:
    req = ask("Repeat exactly: FOXTROT-5", 4)
    first = asyncio.run(four.converse(req))
    before = four.scheduler.prompt_evaluated
    asyncio.run(four.converse(req))
    assert four.scheduler.prompt_evaluated - before == 1  # all cached but the last token (for logits)
    four.scheduler.forget()
    before = four.scheduler.prompt_evaluated
    asyncio.run(four.converse(req))
    assert four.scheduler.prompt_evaluated - before == first.usage.input_tokens


@pytest.mark.model
def test_a_stopped_server_frees_its_models(tmp_path: Path) -> None:
    """The server's shutdown closes the models it loaded: their scheduler threads end (they held the
    weights and KV cache alive for the rest of the process)."""
    import threading

    import boto3

    from haniwa.api.app import create_app
    from haniwa.config import Settings
    from haniwa.testing.server import serve_in_thread
    from tests.conftest import client_kwargs

    home = tmp_path / "home"
    home.mkdir()
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(MODELS_DIR)
    model = f"llamacpp:{FAST}"

    def schedulers() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name == f"llama-sched:{model}"]

    before = schedulers()
    with serve_in_thread(create_app(Settings(home=home, llama_slots=1))) as url:
        rt = boto3.client("bedrock-runtime", **client_kwargs(url))
        out = rt.converse(
            modelId=model,
            messages=[{"role": "user", "content": [{"text": "Say OK."}]}],
            inferenceConfig={"maxTokens": 4},
        )
        assert out["output"]["message"]["content"][0]["text"]
        assert len(schedulers()) == len(before) + 1  # loaded, decoding on its own thread
    assert schedulers() == before
