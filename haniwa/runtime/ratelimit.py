"""Requests and tokens per minute, per caller and per model, the way Bedrock's quotas work.

:class:`RateLimiter` keeps one token bucket pair per ``(caller, model)``: a bucket of ``rpm`` requests and
one of ``tpm`` tokens, each refilled evenly over a minute (so a full bucket is one minute's budget, and
an idle caller may spend it in a burst). A call is admitted when one request and its estimated tokens are
available; otherwise it fails at once with :class:`~haniwa.errors.ThrottledError`, whose ``retry_after``
says when the same call would pass. Nothing waits in the server.

Tokens follow Bedrock's accounting: a call reserves its estimate (the prompt plus ``max_tokens``) when it
is admitted, and :meth:`Reservation.settle` replaces the estimate with the usage the model reported, giving
back what was not used or charging what went over. A bucket may go below zero that way; later calls then
wait until it has refilled.

Memory stays bounded: a bucket that has refilled completely holds nothing a new bucket would not, so idle
buckets are dropped as calls go by, and past ``max_buckets`` the least recently used one goes too.

Example::

    limiter = RateLimiter(rpm=60, tpm=10_000)
    ticket = limiter.acquire("aws:AKID", "echo:echo", tokens=estimate)   # may raise ThrottledError
    ...                                                                  # call the model
    ticket.settle(result.usage.total_tokens)
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from haniwa.errors import ThrottledError
from haniwa.runtime.base import ChatRequest, TextBlock, ToolResultBlock

__all__ = [
    "RateLimiter",
    "Reservation",
    "estimate_chat_tokens",
    "estimate_text_tokens",
    "DEFAULT_OUTPUT_RESERVE",
]

# What a call without max_tokens reserves for its answer; settle() corrects it once the usage is known.
DEFAULT_OUTPUT_RESERVE = 512
_WINDOW_S = 60.0


def estimate_text_tokens(texts: Sequence[str]) -> int:
    """A cheap upper-ish guess of the tokens in ``texts``: a quarter of the characters, at least one each.

    Counting with a tokenizer would cost as much as the prompt itself on the event loop; the estimate
    only sizes the reservation, and the model's own count replaces it when the call ends."""
    return sum(len(t) // 4 + 1 for t in texts)


def estimate_chat_tokens(req: ChatRequest) -> tuple[int, int]:
    """(prompt estimate, output reserve) of a chat request."""
    texts: list[str] = [req.system or ""]
    for m in req.messages:
        for b in m.content:
            if isinstance(b, TextBlock):
                texts.append(b.text)
            elif isinstance(b, ToolResultBlock):
                texts.append(b.content)
    return estimate_text_tokens(texts), req.params.max_tokens or DEFAULT_OUTPUT_RESERVE


@dataclass
class _Bucket:
    requests: float
    tokens: float
    stamp: float  # when the levels above were last brought up to date


class Reservation:
    """What one admitted call holds: one request and ``tokens`` tokens of its caller's budget."""

    def __init__(self, limiter: RateLimiter | None, bucket: _Bucket | None, tokens: int) -> None:
        self._limiter = limiter
        self._bucket = bucket
        self.tokens = tokens
        self._open = bucket is not None

    def settle(self, actual_tokens: int) -> None:
        """Replace the estimate with what the call really used (once; later calls do nothing)."""
        if self._open and self._limiter is not None and self._bucket is not None:
            self._open = False
            self._limiter._adjust(self._bucket, requests=0, tokens=self.tokens - max(0, actual_tokens))

    def cancel(self) -> None:
        """Give back the request and the tokens: the call never reached the model."""
        if self._open and self._limiter is not None and self._bucket is not None:
            self._open = False
            self._limiter._adjust(self._bucket, requests=1, tokens=self.tokens)


_UNLIMITED = Reservation(None, None, 0)


class RateLimiter:
    """Token buckets of requests/min and tokens/min per (caller, model); 0 turns a limit off.

    Not thread-safe by design: every method runs on the event loop without awaiting, so calls cannot
    interleave.
    """

    def __init__(
        self,
        rpm: int,
        tpm: int,
        *,
        max_buckets: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm = max(0, rpm)
        self.tpm = max(0, tpm)
        self._max = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return bool(self.rpm or self.tpm)

    def __len__(self) -> int:
        return len(self._buckets)

    def _refill(self, b: _Bucket, now: float) -> None:
        elapsed = max(0.0, now - b.stamp)
        b.requests = min(float(self.rpm), b.requests + elapsed * self.rpm / _WINDOW_S)
        b.tokens = min(float(self.tpm), b.tokens + elapsed * self.tpm / _WINDOW_S)
        b.stamp = now

    def _full(self, b: _Bucket) -> bool:
        return b.requests >= self.rpm and b.tokens >= self.tpm

    def _evict(self, now: float) -> None:
        """Make room for one more bucket: drop idle (full) buckets, least recently used first, and the
        least recently used one regardless while there are ``max_buckets`` or more."""
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if len(self._buckets) < self._max:
                self._refill(oldest, now)
                if not self._full(oldest):
                    return
            del self._buckets[key]

    def _bucket(self, caller: str, model: str, now: float) -> _Bucket:
        key = (caller, model)
        b = self._buckets.get(key)
        if b is None:
            self._evict(now)
            b = self._buckets[key] = _Bucket(float(self.rpm), float(self.tpm), now)
        else:
            self._refill(b, now)
            self._buckets.move_to_end(key)
        return b

    def acquire(self, caller: str, model: str, tokens: int) -> Reservation:
        """Admit one call of ``caller`` to ``model`` that may use ``tokens`` tokens, or raise ThrottledError.

        A call estimated above the whole per-minute token budget is admitted once the bucket is full
        (it could never pass otherwise) and leaves the bucket in debt.
        """
        if not self.enabled:
            return _UNLIMITED
        now = self._clock()
        b = self._bucket(caller, model, now)
        wait = 0.0
        if self.rpm and b.requests < 1:
            wait = (1 - b.requests) * _WINDOW_S / self.rpm
        if self.tpm:
            need = min(float(max(0, tokens)), float(self.tpm))
            if b.tokens < need:
                wait = max(wait, (need - b.tokens) * _WINDOW_S / self.tpm)
        if wait > 0:
            what = "requests" if self.rpm and b.requests < 1 else "tokens"
            raise ThrottledError(
                f"Too many {what} for model {model}: this caller's limit is "
                + (f"{self.rpm} requests" if what == "requests" else f"{self.tpm} tokens")
                + f" per minute; retry in {math.ceil(wait)} s",
                retry_after=wait,
            )
        b.requests -= 1 if self.rpm else 0
        b.tokens -= max(0, tokens) if self.tpm else 0
        return Reservation(self, b, max(0, tokens) if self.tpm else 0)

    def _adjust(self, b: _Bucket, *, requests: int, tokens: int) -> None:
        self._refill(b, self._clock())
        if self.rpm:
            b.requests = min(float(self.rpm), b.requests + requests)
        if self.tpm:
            b.tokens = min(float(self.tpm), b.tokens + tokens)
