"""A schema-constrained judge for denied topics: a local chat model, asked only where the embedding
detector is unsure.

The topic detector (``topics.py``) scores a text against each topic; a score well above the topic cut
is a finding, one well below is not, and one inside the unsure band around the cut is sent here. The
judge shows the model the topic's name, definition and examples and the text, and the model must answer
``{"matches": true|false}`` (``ChatRequest.response_schema``: constrained decoding, so a small model
cannot answer anything else). Its answer decides the topic for that text. It costs a model call (the
bundled 1.5B: about 2 s at the median, 5 s at p95, on the shared 2-core machine), so it is off unless
``HANIWA_GUARDRAIL_JUDGE`` names a chat model; rulings are cached by (text, topic), and a failed or late
call falls back to the detector's cut. Off by default because, measured on ``bench/guardrails.py``'s
dev and held-out v1 splits, the bundled 1.5B asked on 7% of texts changed five topic decisions for one
error fewer in all: a small model is not a sharper judge of these texts than the embeddings; a larger
local model (any chat model id, e.g. through the OpenAI-compatible backend) may be.

Detectors run on worker threads (``CPU``) while models run on the server's event loop, so :meth:`rule`
is synchronous: it hands the call to ``loop`` and waits for it. It must not be called on that loop's
own thread (it refuses, rather than deadlock)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from haniwa.guardrails.base import TopicRule
from haniwa.runtime.base import ChatRequest, ChatResult, InferenceParams, Message, TextBlock

__all__ = ["Converse", "Ruling", "TopicJudge", "SCHEMA", "request_for"]

log = logging.getLogger(__name__)

Converse = Callable[[ChatRequest], Coroutine[Any, Any, ChatResult]]

SCHEMA = {
    "type": "object",
    "properties": {"matches": {"type": "boolean"}},
    "required": ["matches"],
    "additionalProperties": False,
}

_SYSTEM = "You classify texts for a content policy."
_CACHE = 2048
_MAX_TEXT = 1000  # characters of the text shown to the model


@dataclass(frozen=True)
class Ruling:
    """One answer of the judge: whether the text matches the topic, and what asking cost."""

    matched: bool
    ms: float
    model: str
    cached: bool = False


def request_for(text: str, topic: TopicRule) -> ChatRequest:
    """The constrained request the judge sends for ``text`` and ``topic``."""
    examples = "\n".join(f"- {e}" for e in topic.examples) or "- (none)"
    prompt = (
        f"Topic: {topic.definition}\nExamples of texts on this topic:\n{examples}\n\n"
        f"Text:\n<<<\n{text[:_MAX_TEXT]}\n>>>\n\n"
        "Is this text on the topic above (asking for it or giving it)? Answer in JSON."
    )
    return ChatRequest(
        messages=(Message("user", (TextBlock(prompt),)),),
        system=_SYSTEM,
        params=InferenceParams(max_tokens=16, temperature=0.0, seed=0),
        response_schema=SCHEMA,
        system_reminder=False,
    )


def _parse(result: ChatResult) -> bool | None:
    text = "".join(b.text for b in result.message.content if isinstance(b, TextBlock)).strip()
    try:
        value = json.loads(text)
    except ValueError:
        return None
    matched = value.get("matches") if isinstance(value, dict) else None
    return matched if isinstance(matched, bool) else None


class TopicJudge:
    """Asks ``model`` (through ``converse``, run on ``loop``) whether a text matches a topic; counts
    its calls and their time (``calls``, ``ms``) for benchmarks and logs."""

    def __init__(
        self, model: str, converse: Converse, loop: asyncio.AbstractEventLoop, timeout_s: float = 60.0
    ) -> None:
        self.model = model
        self._converse = converse
        self._loop = loop
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, TopicRule], bool] = OrderedDict()
        self.calls = 0
        self.ms = 0.0
        self.failures = 0

    def rule(self, text: str, topic: TopicRule) -> Ruling | None:
        """The model's ruling on ``text`` for ``topic``; None when the model failed or was late (the
        caller then keeps the detector's own decision)."""
        key = (text, topic)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return Ruling(self._cache[key], 0.0, self.model, cached=True)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError("the topic judge waits on its event loop: call it from a worker thread")
        started = time.perf_counter()
        future = asyncio.run_coroutine_threadsafe(self._converse(request_for(text, topic)), self._loop)
        matched: bool | None
        try:
            matched = _parse(future.result(self.timeout_s))
        except Exception as exc:  # a model error or timeout must not fail the guardrail: fall back
            future.cancel()
            log.warning("guardrail topic judge %s failed: %s", self.model, exc)
            matched = None
        ms = (time.perf_counter() - started) * 1000
        with self._lock:
            self.calls += 1
            self.ms += ms
            if matched is None:
                self.failures += 1
                return None
            self._cache[key] = matched
            if len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        log.info("guardrail topic judge %s on %r: %s (%.0f ms)", self.model, topic.name, matched, ms)
        return Ruling(matched, ms, self.model)
