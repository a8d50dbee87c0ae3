"""Continuous batching for one loaded GGUF model: one llama.cpp context, ``slots`` sequences in it.

The context is created with ``n_seq_max = slots`` and a KV cache split per sequence (``kv_unified``
off), ``ctx_per_slot`` tokens each. One scheduler thread per model runs *steps*; a step is one
``llama_decode`` of one batch that holds

* the next token of every sequence that is generating, and
* up to ``chunk`` prompt tokens of newly admitted sequences (first come, first served), or, while more
  sequences wait for their first token than generate, as many as the batch holds (:meth:`Scheduler._budget`),

so a long prompt delays the running streams by at most one chunk per step instead of its whole length,
and requests that arrive together are read together.
Each sequence samples from its own llama.cpp sampler chain (repeat penalty, grammar, top-k, top-p,
temperature, seed), keeps its own stop strings and token limit, and hands text to its caller as soon as
it is safe (UTF-8 complete, not the start of a stop string). A cancelled sequence leaves its slot at the
next step. llama-server (``tools/server``) works the same way; llama-cpp-python has no such loop, so it
is written here on its low-level API.

Slots keep what they evaluated (prefix reuse): see :meth:`Scheduler._pick` and
:meth:`Scheduler._borrow`. Models decoding at the same time split the configured threads between them
(``llama_set_n_threads`` before each step) instead of each taking all of them.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from haniwa.errors import ModelError, PlatformError
from haniwa.runtime.base import StopReason
from haniwa.runtime.phrases import Processor

__all__ = ["Out", "Sampling", "Scheduler", "available_memory", "kv_cache_bytes", "model_kv_bytes"]

COPY_MIN_GAIN = 16  # prompt tokens a copy from another slot must save (see Scheduler._borrow)
PENALTY_LAST_N = 64  # llama-cpp-python's last_n_tokens_size, which the single-stream path used

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    seed: int
    repeat_penalty: float = 1.0


@dataclass(frozen=True)
class Out:
    text: str
    prompt_tokens: int
    tokens: int
    stop_reason: StopReason
    stop_sequence: str | None = None


def stop_at(text: str, stops: Sequence[str], start: int) -> tuple[int, str] | None:
    """The earliest stop string found in ``text[start:]``: (index, stop)."""
    best: tuple[int, str] | None = None
    for s in stops:
        i = text.find(s, start)
        if i != -1 and (best is None or i < best[0]):
            best = (i, s)
    return best


def held(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters could still start a stop string (and must not be sent yet)."""
    n = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), n, -1):
            if text.endswith(s[:k]):
                n = k
                break
    return n


# -- memory ------------------------------------------------------------------------------------------
def kv_cache_bytes(n_layer: int, n_ctx: int, k_dims: int, v_dims: int, bytes_per: int = 2) -> int:
    """The KV cache of ``n_ctx`` tokens: ``n_layer * n_ctx * (k + v dims per token) * bytes`` (f16: 2)."""
    return n_layer * n_ctx * (k_dims + v_dims) * bytes_per


def model_kv_bytes(path: Path, n_ctx: int) -> int:
    """:func:`kv_cache_bytes` of a GGUF file, read from its metadata (a vocabulary-only load, ~0.5 s)."""
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr  # what Llama(verbose=False) loads under

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    with suppress_stdout_stderr(disable=False):
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        raise ModelError(f"llama.cpp could not read {path.name}")
    try:
        buf = ctypes.create_string_buffer(256)

        def meta(key: str) -> int | None:
            if llama_cpp.llama_model_meta_val_str(model, key.encode(), buf, len(buf)) < 0:
                return None
            return int(buf.value.decode().split(",")[0].strip("[] "))  # per-layer arrays: the first

        if llama_cpp.llama_model_meta_val_str(model, b"general.architecture", buf, len(buf)) < 0:
            raise ModelError(f"{path.name} names no architecture")
        arch = buf.value.decode()
        n_layer = meta(f"{arch}.block_count") or 0
        n_head = meta(f"{arch}.attention.head_count") or 1
        n_head_kv = meta(f"{arch}.attention.head_count_kv") or n_head
        head = (meta(f"{arch}.embedding_length") or 0) // n_head
        k = meta(f"{arch}.attention.key_length") or head
        v = meta(f"{arch}.attention.value_length") or head
        return kv_cache_bytes(n_layer, n_ctx, n_head_kv * k, n_head_kv * v)
    finally:
        llama_cpp.llama_model_free(model)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    """The length of the common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


# -- threads shared between models -----------------------------------------------------------------
_ACTIVE_LOCK = threading.Lock()
_ACTIVE: set[int] = set()  # ids of the schedulers that have work right now


def _share(sched_id: int, busy: bool) -> int:
    """Mark a scheduler busy or idle; the number of busy schedulers (threads are split among them)."""
    with _ACTIVE_LOCK:
        if busy:
            _ACTIVE.add(sched_id)
        else:
            _ACTIVE.discard(sched_id)
        return max(1, len(_ACTIVE))


# -- sequences ---------------------------------------------------------------------------------------
@dataclass
class _Slot:
    id: int
    tokens: list[int] = field(default_factory=list)  # what this sequence's KV cache holds
    busy: bool = False


class _Seq:
    """One request's generation: its prompt, sampler chain, stops and output."""

    def __init__(
        self,
        prompt: list[int],
        sampling: Sampling,
        limit: int,
        stops: Sequence[str],
        ends: Sequence[str],
        grammar: tuple[str, str] | None,
        cancel: threading.Event,
        on_text: Callable[[str], None] | None,
        script: Processor | None,
    ) -> None:
        self.prompt = prompt
        self.sampling = sampling
        self.limit = limit
        self.user_stops = [s for s in stops if s]
        self.stops = self.user_stops + [s for s in ends if s and s not in self.user_stops]
        self.longest = max((len(s) for s in self.stops), default=0)
        self.grammar = grammar
        self.cancel = cancel
        self.on_text = on_text
        self.script = script
        self.slot: _Slot | None = None
        self.todo: list[int] = []  # prompt tokens still to evaluate
        self.pos = 0  # position of the next token to evaluate
        self.next: int | None = None  # a sampled token, evaluated at the next step
        self.generated: list[int] = []
        self.text, self.sent = "", 0
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.chain: Any = None
        self.done = threading.Event()
        self.result: Out | None = None
        self.error: BaseException | None = None

    def finish(self, reason: StopReason, stop_seq: str | None = None, *, signal: bool = True) -> None:
        """Record the result; ``signal``: wake the caller now (else the scheduler does, once the slot is
        free, so that a caller never sees its slot still taken)."""
        if stop_seq is None:
            self.text += self.decoder.decode(b"", final=True)
        if self.on_text is not None and len(self.text) > self.sent and not self.cancel.is_set():
            self.on_text(self.text[self.sent :])
        self.result = Out(self.text, len(self.prompt), len(self.generated), reason, stop_seq)
        if signal:
            self.done.set()

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        self.done.set()

    def take(self, token: int, piece: bytes, is_eog: bool) -> bool:
        """Account for a sampled token; True when the sequence is finished."""
        if is_eog:
            self.finish("end_turn", signal=False)
            return True
        self.generated.append(token)
        before = len(self.text)
        self.text += self.decoder.decode(piece)
        hit = stop_at(self.text, self.stops, max(0, before - self.longest + 1)) if self.stops else None
        if hit is not None:
            self.text = self.text[: hit[0]]
            if hit[1] in self.user_stops:
                self.finish("stop_sequence", hit[1], signal=False)
            else:
                self.finish("end_turn", signal=False)
            return True
        safe = len(self.text) - held(self.text, self.stops)
        if self.on_text is not None and safe > self.sent:
            self.on_text(self.text[self.sent : safe])
            self.sent = safe
        if len(self.generated) >= self.limit:
            self.finish("max_tokens", signal=False)
            return True
        return False


class Scheduler:
    """Decodes every active sequence of one ``llama_cpp.Llama`` together (see the module docstring)."""

    def __init__(self, name: str, llm: Any, *, slots: int, chunk: int, threads: int) -> None:
        import llama_cpp

        self._lc = llama_cpp
        self.name = name
        self._llm = llm
        self._ctx = llm.ctx
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self.slots = [_Slot(i) for i in range(slots)]
        self.chunk = max(1, chunk)
        self._threads = threads
        self._threads_now = threads
        # the context's n_batch (what llama_decode takes at once), at least a chunk and a token a slot
        self._batch_cap = max(self.chunk + slots, int(llama_cpp.llama_n_batch(self._ctx)))
        self._batch = llama_cpp.llama_batch_init(self._batch_cap, 0, 1)
        self._waiting: deque[_Seq] = deque()
        self._running: list[_Seq] = []
        self._cond = threading.Condition()
        self._closed = False
        self._forget = False
        self._piece = ctypes.create_string_buffer(256)
        self.steps = 0  # decoded batches, for tests and benchmarks
        self.prompt_evaluated = 0  # prompt tokens decoded (those not found in a slot's cache)
        self._thread = threading.Thread(target=self._loop, name=f"llama-sched:{name}", daemon=True)
        self._thread.start()

    # -- callers (any thread) ----------------------------------------------------------------------
    def generate(
        self,
        prompt: list[int],
        sampling: Sampling,
        limit: int,
        stops: Sequence[str],
        ends: Sequence[str],
        grammar: tuple[str, str] | None,
        cancel: threading.Event,
        on_text: Callable[[str], None] | None,
        script: Processor | None = None,
    ) -> Out:
        """Queue a sequence and block until it ends (or ``cancel`` is set: then it ends at the next step)."""
        seq = _Seq(prompt, sampling, limit, stops, ends, grammar, cancel, on_text, script)
        with self._cond:
            if self._closed:
                raise ModelError(f"{self.name} is unloaded")
            self._waiting.append(seq)
            self._cond.notify()
        seq.done.wait()
        if seq.error is not None:
            raise seq.error
        assert seq.result is not None
        return seq.result

    def forget(self) -> None:
        """Drop what the free slots hold before the next admission, so that the next request reads its
        whole prompt (benchmarks that compare runs need the same batches each time)."""
        with self._cond:
            self._forget = True

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify()
        self._thread.join()
        self._lc.llama_batch_free(self._batch)

    @property
    def threads(self) -> int:
        """The threads the last step used (the configured ones, split between busy models)."""
        return self._threads_now

    @property
    def busy(self) -> int:
        """How many slots hold a running sequence."""
        return sum(s.busy for s in self.slots)

    # -- the scheduler thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._closed and not self._waiting and not self._running:
                        _share(id(self), False)
                        self._cond.wait()
                    if self._closed:
                        break
                    for seq in [s for s in self._waiting if s.cancel.is_set()]:
                        self._waiting.remove(seq)  # gone before it got a slot
                        seq.finish("end_turn")
                    self._admit()
                if self._running:
                    try:
                        self._step()
                    except Exception as exc:  # our bug or llama.cpp's: fail this batch, keep serving
                        _log.exception("%s: a decoding step failed", self.name)
                        self._fail_running(ModelError(f"{self.name} failed: {exc}"))
        finally:
            _share(id(self), False)
            err = ModelError(f"{self.name} was unloaded")
            for seq in [*self._running, *self._waiting]:
                self._release(seq)
                seq.fail(err)
            self._running.clear()
            self._waiting.clear()

    def _pick(self, prompt: Sequence[int]) -> tuple[_Slot, int]:
        """The free slot for ``prompt`` and how many of its cached tokens can be kept.

        Rule: the free slot whose cached tokens share the longest common prefix with the prompt (as
        llama-server's ``--slot-prompt-similarity``, without a threshold), except that the lowest free slot
        id wins unless the longest prefix is ``COPY_MIN_GAIN`` tokens longer than its own: busy slots then
        stay next to each other, which keeps a step one ubatch (see :meth:`_step`), and a short prefix is
        not worth splitting it (:meth:`_borrow` still copies a long one). At least one prompt token is
        always evaluated again, so that the step has logits.
        """
        free = [
            (min(_common(slot.tokens, prompt), len(prompt) - 1), slot) for slot in self.slots if not slot.busy
        ]
        assert free
        best = max(free, key=lambda item: item[0])
        lowest = free[0]  # self.slots is in id order
        keep, slot = lowest if lowest[0] + COPY_MIN_GAIN > best[0] else best
        return slot, keep

    def _borrow(self, slot: _Slot, prompt: Sequence[int], keep: int) -> int:
        """When another slot (running or not) holds a longer prefix of ``prompt`` than ``slot`` does, copy
        that slot's cache into ``slot`` (``llama_memory_seq_cp``) and return the longer prefix; else
        ``keep``. Requests that share a system prompt then read it once. Between the per-sequence caches
        llama.cpp copies whole buffers (a memcpy of the slot's KV), so short gains are not worth it."""
        donor, best = None, keep + COPY_MIN_GAIN
        for other in self.slots:
            if other is not slot:
                common = min(_common(other.tokens, prompt), len(prompt) - 1)
                if common >= best:
                    donor, best = other, common
        if donor is None:
            return keep
        self._lc.llama_memory_seq_rm(self._mem, slot.id, -1, -1)
        self._lc.llama_memory_seq_cp(self._mem, donor.id, slot.id, -1, -1)
        slot.tokens = donor.tokens[:]
        return best

    def _admit(self) -> None:
        """Move waiting sequences into free slots (called with the lock held)."""
        if self._forget:
            self._forget = False
            for slot in self.slots:
                if not slot.busy:
                    self._lc.llama_memory_seq_rm(self._mem, slot.id, -1, -1)
                    slot.tokens.clear()
        while self._waiting and any(not s.busy for s in self.slots):
            seq = self._waiting.popleft()
            if seq.cancel.is_set():
                seq.finish("end_turn")
                continue
            slot, keep = self._pick(seq.prompt)
            keep = self._borrow(slot, seq.prompt, keep)
            if not self._lc.llama_memory_seq_rm(self._mem, slot.id, keep, -1):
                keep = 0  # a partial removal is refused (recurrent models): drop the whole sequence
                self._lc.llama_memory_seq_rm(self._mem, slot.id, -1, -1)
            del slot.tokens[keep:]
            slot.busy = True
            seq.slot, seq.pos, seq.todo = slot, keep, seq.prompt[keep:]
            try:
                seq.chain = self._chain(seq)
            except PlatformError as exc:
                self._release(seq)
                seq.fail(exc)
                continue
            self._running.append(seq)

    def _chain(self, seq: _Seq) -> Any:
        """The sequence's sampler chain, built as llama-cpp-python builds one (``Llama._init_sampler``)."""
        lc, s = self._lc, seq.sampling
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        add = lc.llama_sampler_chain_add
        add(chain, lc.llama_sampler_init_penalties(self._n_vocab, PENALTY_LAST_N, s.repeat_penalty, 0.0, 0.0))
        if seq.grammar is not None:
            grammar = lc.llama_sampler_init_grammar(self._vocab, *(g.encode() for g in seq.grammar))
            if not grammar:
                lc.llama_sampler_free(chain)
                raise ModelError(f"{self.name}: llama.cpp rejected the grammar of this request")
            add(chain, grammar)
        if s.temperature == 0.0:
            add(chain, lc.llama_sampler_init_greedy())
        else:
            add(chain, lc.llama_sampler_init_top_k(s.top_k))
            add(chain, lc.llama_sampler_init_top_p(s.top_p, 1))
            add(chain, lc.llama_sampler_init_temp(s.temperature))
            add(chain, lc.llama_sampler_init_dist(s.seed))
        return chain

    def _release(self, seq: _Seq) -> None:
        if seq.chain is not None:
            self._lc.llama_sampler_free(seq.chain)
            seq.chain = None
        if seq.slot is not None:
            seq.slot.busy = False
            seq.slot = None

    def _step(self) -> None:
        lc, batch = self._lc, self._batch
        for seq in [s for s in self._running if s.cancel.is_set()]:
            self._running.remove(seq)
            self._release(seq)
            seq.finish("end_turn")
        if not self._running:
            return
        threads = max(1, self._threads // _share(id(self), True))
        if threads != self._threads_now:
            lc.llama_set_n_threads(self._ctx, threads, threads)
            self._threads_now = threads
        n = 0
        outputs: list[tuple[_Seq, int]] = []
        evaluated: list[tuple[_Seq, list[int]]] = []

        def put(token: int, pos: int, seq_id: int, logits: bool) -> None:
            nonlocal n
            batch.token[n], batch.pos[n], batch.n_seq_id[n] = token, pos, 1
            batch.seq_id[n][0], batch.logits[n] = seq_id, logits
            n += 1

        for seq in self._running:  # one token each for the generating sequences
            if seq.next is not None and seq.slot is not None:
                evaluated.append((seq, [seq.next]))
        budget = self._budget(len(evaluated))
        for seq in self._running:  # then a chunk of prompt, first come first served
            if not seq.todo or budget == 0 or seq.slot is None:
                continue
            part, seq.todo = seq.todo[:budget], seq.todo[budget:]
            evaluated.append((seq, part))
            budget -= len(part)
            self.prompt_evaluated += len(part)
        # in slot order: with a KV cache per sequence, llama_decode splits a batch into ubatches of
        # sequences with consecutive ids in batch order (llama_batch_allocr::split_equal, sequential), and
        # every ubatch is one more pass over the weights
        evaluated.sort(key=lambda item: item[0].slot.id if item[0].slot is not None else -1)
        for seq, tokens in evaluated:
            assert seq.slot is not None
            last = len(tokens) - 1
            for i, token in enumerate(tokens):
                put(token, seq.pos + i, seq.slot.id, i == last and not seq.todo)
            if not seq.todo:  # a generating sequence's token, or the end of a prompt: sample after it
                outputs.append((seq, n - 1))
        batch.n_tokens = n
        rc = lc.llama_decode(self._ctx, batch)
        self.steps += 1
        if rc != 0:
            self._fail_running(
                ModelError(f"{self.name}: llama_decode failed ({rc}); the KV cache may be full")
            )
            return
        for seq, tokens in evaluated:
            assert seq.slot is not None
            seq.slot.tokens.extend(tokens)
            seq.pos += len(tokens)
            seq.next = None
        for seq, idx in outputs:
            try:
                token = self._sample(seq, idx)
                finished = seq.take(token, self._piece_of(token), lc.llama_vocab_is_eog(self._vocab, token))
            except Exception as exc:  # a sampler or a caller's callback failed: this sequence ends
                self._running.remove(seq)
                self._release(seq)
                seq.fail(exc if isinstance(exc, PlatformError) else ModelError(f"{self.name}: {exc}"))
                continue
            if finished:
                self._running.remove(seq)
                self._release(seq)
                seq.done.set()
            else:
                seq.next = token

    def _budget(self, generating: int) -> int:
        """Prompt tokens this step may read. ``chunk`` while at least as many streams generate as wait for
        their first token, so a long prompt delays each running stream by about one chunk per step; when
        the waiting ones outnumber them (a burst of requests, a server that was idle) the whole batch, so
        that prompts which arrived together are read in one step and get their first tokens together."""
        prompting = sum(1 for s in self._running if s.todo)
        if prompting > generating:
            return max(self.chunk, self._batch_cap - generating)
        return self.chunk

    def _fail_running(self, err: PlatformError) -> None:
        """End every running sequence with ``err``; their slots forget what they held."""
        for seq in list(self._running):
            self._running.remove(seq)
            if seq.slot is not None:
                self._lc.llama_memory_seq_rm(self._mem, seq.slot.id, -1, -1)
                seq.slot.tokens.clear()
            self._release(seq)
            seq.fail(err)

    def _sample(self, seq: _Seq, idx: int) -> int:
        if seq.script is not None:  # the Japanese-script mask, phrase bans: they edit the logits first
            logits = np.ctypeslib.as_array(self._lc.llama_get_logits_ith(self._ctx, idx), (self._n_vocab,))
            seq.script(np.asarray(seq.generated, dtype=np.intc), logits)
        return int(self._lc.llama_sampler_sample(seq.chain, self._ctx, idx))

    def _piece_of(self, token: int) -> bytes:
        n = self._lc.llama_token_to_piece(self._vocab, token, self._piece, len(self._piece), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lc.llama_token_to_piece(self._vocab, token, buf, -n, 0, False)
            return buf.raw[:n]
        return self._piece.raw[:n]
