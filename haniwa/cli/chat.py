"""``haniwa invoke`` and ``haniwa chat``: a model answering in-process, streamed to the terminal.

``chat`` saves each conversation (``ConversationStore``) so that it can be continued later.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import click
from rich.table import Table
from rich.text import Text

from haniwa.cli._common import err_console, load_settings, make_registry, out_console, print_json, say
from haniwa.errors import PlatformError
from haniwa.runtime.base import (
    ChatBackend,
    ChatRequest,
    InferenceParams,
    Message,
    StreamEnd,
    TextBlock,
    TextDelta,
)
from haniwa.runtime.registry import ModelRegistry, Resolved
from haniwa.store.conversations import Conversation, ConversationStore
from haniwa.store.db import Database

__all__ = ["chat", "invoke"]


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


@dataclass
class _Answer:
    """One streamed answer as the CLI saw it."""

    parts: list[str] = field(default_factory=list)
    end: StreamEnd | None = None
    latency_ms: int = 0
    first_token_ms: int | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)


async def _stream(
    backend: ChatBackend, req: ChatRequest, answer: _Answer, write: Callable[[str], None]
) -> None:
    """Write text deltas as they arrive; fills ``answer`` (partially, if interrupted)."""
    started = time.perf_counter()
    try:
        async for event in backend.converse_stream(req):
            if isinstance(event, TextDelta):
                if answer.first_token_ms is None:
                    answer.first_token_ms = int((time.perf_counter() - started) * 1000)
                answer.parts.append(event.text)
                write(event.text)
            elif isinstance(event, StreamEnd):
                answer.end = event
    finally:
        answer.latency_ms = int((time.perf_counter() - started) * 1000)


def _write(text: str) -> None:
    click.echo(text, nl=False)


def _usage_line(res: Resolved, answer: _Answer) -> str:
    model = res.info.id if res.requested == res.info.id else f"{res.requested} → {res.info.id}"
    parts = [model]
    if answer.end is not None:
        u = answer.end.usage
        parts += [f"{u.input_tokens} in / {u.output_tokens} out tokens", answer.end.stop_reason]
    first = f" (first token {answer.first_token_ms} ms)" if answer.first_token_ms is not None else ""
    parts.append(f"{answer.latency_ms} ms{first}")
    return " · ".join(parts)


@click.command()
@click.argument("model")
@click.argument("prompt")
@click.option("--system", help="System prompt.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Most tokens to generate.")
@click.option("--temperature", type=click.FloatRange(min=0.0), help="Sampling temperature.")
def invoke(
    model: str, prompt: str, system: str | None, max_tokens: int | None, temperature: float | None
) -> None:
    """Answer PROMPT with MODEL in-process, streaming to stdout ("-" reads the prompt from stdin)."""
    if prompt == "-":
        prompt = sys.stdin.read().rstrip("\n")
    if not prompt.strip():
        raise click.BadParameter("the prompt is empty", param_hint="PROMPT")
    registry = make_registry(load_settings())
    req = ChatRequest(
        (Message("user", (TextBlock(prompt),)),),
        system=system,
        params=InferenceParams(max_tokens=max_tokens, temperature=temperature),
    )

    async def run() -> tuple[Resolved, _Answer]:
        res, backend = await registry.chat(model)
        answer = _Answer()
        await _stream(backend, req, answer, _write)
        return res, answer

    res, answer = asyncio.run(run())
    if not answer.text.endswith("\n"):
        click.echo()
    say(err_console(), _usage_line(res, answer), "dim")


def _print_conversations(convs: list[Conversation]) -> None:
    table = Table(title="Conversations (most recent first)", title_justify="left")
    table.add_column("id", no_wrap=True)
    for col in ("title", "model", "messages", "updated"):
        table.add_column(col, overflow="fold")
    for c in convs:
        table.add_row(*(Text(v) for v in (c.id, c.title, c.model_id, str(c.message_count), _when(c.updated))))
    out_console().print(table)


@dataclass
class _ChatSession:
    """The REPL's state; every turn is one coroutine run on the caller's loop."""

    store: ConversationStore
    registry: ModelRegistry
    model: str
    system: str | None
    turns: int
    conv_id: str | None = None

    async def load(self) -> Resolved:
        res, _ = await self.registry.chat(self.model)
        return res

    async def history(self) -> Conversation | None:
        return await self.store.get(self.conv_id) if self.conv_id else None

    async def turn(self, text: str) -> tuple[Resolved, _Answer]:
        res, backend = await self.registry.chat(self.model)
        if self.conv_id is None:
            self.conv_id = await self.store.create(self.model, self.system)
            say(err_console(), f"conversation {self.conv_id}", "dim")
        await self.store.append(self.conv_id, "user", text)
        req = await self.store.request(self.conv_id, self.turns)
        answer = _Answer()
        try:
            await _stream(backend, req, answer, _write)
        finally:  # keep what was said, even when interrupted
            if answer.end is not None or answer.parts:
                usage = answer.end.usage if answer.end else None
                await self.store.append(
                    self.conv_id,
                    "assistant",
                    answer.text,
                    input_tokens=usage.input_tokens if usage else None,
                    output_tokens=usage.output_tokens if usage else None,
                    latency_ms=answer.latency_ms,
                )
        return res, answer


_CHAT_HELP = "/exit quits (so does EOF), /new starts a new conversation, /history shows this one"


def _repl(runner: asyncio.Runner, session: _ChatSession) -> None:
    interactive = sys.stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):  # line editing and history for input(), where available
            import readline  # noqa: F401
    err = err_console()
    while True:
        try:
            line = input("› " if interactive else "")
        except (EOFError, KeyboardInterrupt):
            break
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            break
        if text == "/new":
            session.conv_id = None
            say(err, "new conversation (saved with its first message)", "dim")
            continue
        if text == "/history":
            conv = runner.run(session.history())
            for m in conv.messages if conv else ():
                say(out_console(), f"{m.role}: {m.content}", "bold" if m.role == "user" else "")
            continue
        if text.startswith("/"):
            say(err, _CHAT_HELP, "dim")
            continue
        try:
            res, answer = runner.run(session.turn(text))
        except PlatformError as exc:  # the model failed this turn; the conversation goes on
            say(err, f"error: {exc.message}", "bold red")
            continue
        except KeyboardInterrupt:
            click.echo()
            say(err, "(interrupted)", "dim")
            continue
        if not answer.text.endswith("\n"):
            click.echo()
        if interactive:
            say(err, _usage_line(res, answer), "dim")


@click.command()
@click.argument("model", required=False)
@click.option("--system", help="System prompt of a new conversation.")
@click.option("--continue", "continue_id", metavar="ID", help="Continue conversation ID.")
@click.option("--resume", is_flag=True, help="Continue the most recent conversation (of MODEL, if given).")
@click.option(
    "--turns",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Turns of history sent with each message.",
)
@click.option("--list", "list_", is_flag=True, help="List saved conversations.")
@click.option("--delete", "delete_id", metavar="ID", help="Delete conversation ID.")
@click.option("--json", "as_json", is_flag=True, help="With --list: print JSON.")
def chat(
    model: str | None,
    system: str | None,
    continue_id: str | None,
    resume: bool,
    turns: int,
    list_: bool,
    delete_id: str | None,
    as_json: bool,
) -> None:
    """Chat with MODEL; conversations are saved and can be continued."""
    if sum((bool(continue_id), resume, list_, bool(delete_id))) > 1:
        raise click.UsageError("use only one of --continue, --resume, --list and --delete")
    if system and (continue_id or resume):
        raise click.UsageError("--system applies to new conversations; a continued one keeps its own")
    settings = load_settings()
    db = Database(settings.db_path)
    store = ConversationStore(db)
    try:
        if list_:
            convs = asyncio.run(store.list(model_id=model))
            if as_json:
                print_json([{k: v for k, v in vars(c).items() if k != "messages"} for c in convs])
            else:
                _print_conversations(convs)
            return
        if delete_id:
            asyncio.run(store.delete(delete_id))
            say(out_console(), f"deleted {delete_id}")
            return
        with asyncio.Runner() as runner:
            conv: Conversation | None = None
            if continue_id:
                conv = runner.run(store.get(continue_id))
            elif resume:
                conv = runner.run(store.latest(model))
                if conv is None:
                    raise click.UsageError("no conversation to resume; start one with `haniwa chat MODEL`")
            if conv is None and model is None:
                raise click.UsageError("give a MODEL (or --continue ID, --resume, --list)")
            session = _ChatSession(
                store,
                make_registry(settings),
                model or (conv.model_id if conv else ""),
                conv.system if conv else system,
                turns,
                conv.id if conv else None,
            )
            res = runner.run(session.load())
            err = err_console()
            if conv is not None:
                say(err, f"continuing {conv.id} ({conv.message_count} messages): {conv.title}", "dim")
            target = res.info.id if res.requested == res.info.id else f"{res.requested} → {res.info.id}"
            say(err, f"chatting with {target}; {_CHAT_HELP}", "dim")
            _repl(runner, session)
    finally:
        db.close()
