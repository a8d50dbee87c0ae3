"""``haniwa agent``: list agents and ask one a question, optionally drawing its reasoning as a tree.

Like ``haniwa kb``, the commands speak the Bedrock API (botocore clients) to the server on
``HANIWA_HOST``/``HANIWA_PORT``, or to an embedded one started for the command when none answers. The
orchestration runs in the server; this module only renders what InvokeAgent streams back: the answer
(``chunk``), the trace parts (``trace``, with ``--trace``) and a return of control (``returnControl``).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import click
from botocore.exceptions import ClientError
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from haniwa.cli._common import bedrock_client, bedrock_server, client_failure, load_settings, out_console

__all__ = ["agent"]

TEST_ALIAS = "TSTALIASID"  # Bedrock's test alias: it runs the DRAFT
_SESSION_ID = re.compile(r"[0-9a-zA-Z._:-]{2,100}")  # InvokeAgent's sessionId (service model)
_PREVIEW = 80  # characters of a retrieved passage shown in the tree
_RESULT = 400  # characters of an action's result shown in the tree


@click.group()
def agent() -> None:
    """Agents: list them and invoke one (with --trace, see each step it took)."""


def _alias_line(a: Mapping[str, Any]) -> str:
    routes = [r.get("agentVersion") for r in a.get("routingConfiguration") or [] if r.get("agentVersion")]
    target = f" → {', '.join(routes)}" if routes else (" → DRAFT" if a["agentAliasId"] == TEST_ALIAS else "")
    return f"{a['agentAliasName']} ({a['agentAliasId']}){target}"


@agent.command("list")
def list_() -> None:
    """List agents with their status, latest version and aliases."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        client = bedrock_client("bedrock-agent", url, settings)
        table = Table("id", "name", "status", "latest version", "aliases")
        try:
            for page in client.get_paginator("list_agents").paginate():
                for a in page["agentSummaries"]:
                    aliases = [
                        _alias_line(x)
                        for p in client.get_paginator("list_agent_aliases").paginate(agentId=a["agentId"])
                        for x in p["agentAliasSummaries"]
                    ]
                    table.add_row(
                        Text(a["agentId"]),
                        Text(a["agentName"]),
                        Text(a["agentStatus"]),
                        Text(a.get("latestAgentVersion") or "-"),
                        Text(", ".join(aliases)),
                    )
        except ClientError as exc:
            raise client_failure(exc) from exc
    console = out_console()
    if table.row_count:
        console.print(table)
    else:
        console.print(Text("no agents yet (create one with bedrock-agent CreateAgent)", style="dim"))


# -- the trace tree ------------------------------------------------------------------------------------
def _one_line(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _duration(ms: int) -> str:
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def _params(params: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{p.get('name')}={p.get('value')}" for p in params)


def _call(inv: Mapping[str, Any]) -> str:
    """``group › function(a=1)`` or ``group › GET /path(a=1)``, for a trace part or a returnControl input."""
    params = list(inv.get("parameters") or [])
    for body in ((inv.get("requestBody") or {}).get("content") or {}).values():
        params += body.get("properties", []) if isinstance(body, Mapping) else body
    group = inv.get("actionGroupName") or inv.get("actionGroup") or "?"
    target = (
        inv.get("function")
        or f"{(inv.get('verb') or inv.get('httpMethod') or '').upper()} {inv.get('apiPath')}"
    )
    return f"{group} › {target.strip()}({_params(params)})"


def _source(ref: Mapping[str, Any]) -> str:
    for loc in (ref.get("location") or {}).values():
        if isinstance(loc, Mapping):
            for key in ("uri", "url", "id"):
                if loc.get(key):
                    return str(loc[key])
    return "?"


def _trace_id(body: Mapping[str, Any]) -> str:
    if body.get("traceId"):
        return str(body["traceId"])
    for value in body.values():  # orchestrationTrace: {member: {"traceId": …, …}}
        if isinstance(value, Mapping) and value.get("traceId"):
            return str(value["traceId"])
    return "-"


class _TraceView:
    """The trace parts of one invocation as a tree: one branch per step (parts grouped by traceId)."""

    def __init__(self, title: Text) -> None:
        self.tree = Tree(title)
        self.current: Tree = self.tree
        self.calls = self.input_tokens = self.output_tokens = self.ms = 0
        self._steps: dict[str, Tree] = {}
        self._model: dict[str, tuple[Tree, str]] = {}  # the step's model call awaiting its output
        self._invocation: dict[str, Tree] = {}  # the step's lookup or action: its observation goes under it

    def add(self, trace: Mapping[str, Any]) -> None:
        for kind, body in trace.items():
            if not isinstance(body, Mapping):
                continue
            step = self._step(_trace_id(body))
            if kind == "failureTrace":
                step.add(Text(f"failure: {body.get('failureReason', '')}", style="bold red"))
            elif kind == "guardrailTrace":
                step.add(Text(f"guardrail: {body.get('action', '?')}", style="magenta"))
            else:  # orchestrationTrace, preProcessingTrace, postProcessingTrace: {member: value}
                for member, value in body.items():
                    if isinstance(value, Mapping):
                        self._member(step, member, value)

    def totals(self) -> str:
        return (
            f"{self.calls} model call{'s' if self.calls != 1 else ''} · {self.input_tokens:,} in / "
            f"{self.output_tokens:,} out tokens · {_duration(self.ms)}"
        )

    def _step(self, trace_id: str) -> Tree:
        if trace_id not in self._steps:
            label = Text.assemble((f"step {len(self._steps) + 1}", "bold"), (f"  {trace_id}", "dim"))
            self._steps[trace_id] = self.tree.add(label)
        self.current = self._steps[trace_id]
        return self.current

    def _member(self, step: Tree, member: str, v: Mapping[str, Any]) -> None:
        tid = _trace_id(v)
        if member == "modelInvocationInput":
            name = f"model {v.get('foundationModel') or v.get('type', '').lower()}"
            self._model[tid] = (step.add(Text(f"{name} …", style="dim")), name)
        elif member == "modelInvocationOutput":
            meta = v.get("metadata") or {}
            usage = meta.get("usage") or {}
            n_in, n_out = usage.get("inputTokens", 0), usage.get("outputTokens", 0)
            ms = meta.get("totalTimeMs", 0)
            self.calls, self.ms = self.calls + 1, self.ms + ms
            self.input_tokens, self.output_tokens = self.input_tokens + n_in, self.output_tokens + n_out
            pending = self._model.pop(tid, None)
            node, name = pending if pending is not None else (step.add(""), "model")
            node.label = Text(f"{name} · {n_in:,} in / {n_out:,} out tokens · {_duration(ms)}", style="dim")
        elif member == "rationale":
            step.add(Text(f"thought: {v.get('text', '')}", style="italic"))
        elif member == "invocationInput":
            self._invocation[tid] = step.add(self._invocation_label(v))
        elif member == "observation":
            self._observation(step, tid, v)
        else:  # e.g. parsedResponse: shown as sent
            step.add(Text(f"{member}: {_one_line(json.dumps(v, ensure_ascii=False), 200)}", style="dim"))

    def _invocation_label(self, v: Mapping[str, Any]) -> Text:
        if "knowledgeBaseLookupInput" in v:
            kb = v["knowledgeBaseLookupInput"]
            return Text.assemble(
                ("knowledge base ", "bold cyan"),
                f"{kb.get('knowledgeBaseId')}: ",
                (kb.get("text", ""), "cyan"),
            )
        if "actionGroupInvocationInput" in v:
            agi = v["actionGroupInvocationInput"]
            return Text.assemble(("action ", "bold blue"), _call(agi))
        other = {k: x for k, x in v.items() if k != "traceId"}
        return Text(f"invocation: {_one_line(json.dumps(other, ensure_ascii=False), 200)}")

    def _observation(self, step: Tree, tid: str, v: Mapping[str, Any]) -> None:
        parent = self._invocation.pop(tid, step)
        if "knowledgeBaseLookupOutput" in v:
            refs = v["knowledgeBaseLookupOutput"].get("retrievedReferences") or []
            for ref in refs:
                text = _one_line((ref.get("content") or {}).get("text", ""), _PREVIEW)
                parent.add(Text.assemble((_source(ref), "cyan"), "  ", text))
            if not refs:
                parent.add(Text("no results", style="dim"))
        elif "actionGroupInvocationOutput" in v:
            parent.add(
                Text(f"result: {_one_line(v['actionGroupInvocationOutput'].get('text', ''), _RESULT)}")
            )
        elif "repromptResponse" in v:
            step.add(Text(f"reprompt: {v['repromptResponse'].get('text', '')}", style="yellow"))
        elif "finalResponse" in v:
            step.add(Text(f"final response: {v['finalResponse'].get('text', '')}", style="bold green"))
        else:
            other = {k: x for k, x in v.items() if k != "traceId"}
            step.add(Text(f"observation: {_one_line(json.dumps(other, ensure_ascii=False), 200)}"))


# -- invoke --------------------------------------------------------------------------------------------
def _check_session(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _SESSION_ID.fullmatch(value):
        raise click.BadParameter("2 to 100 characters: letters, digits and . _ : -")
    return value


def _resolve(client: Any, ref: str) -> tuple[str, str]:
    """AGENT (an agent id or name) as ``(id, name)``, looked up with ListAgents."""
    for page in client.get_paginator("list_agents").paginate():
        for a in page["agentSummaries"]:
            if ref in (a["agentId"], a["agentName"]):
                return str(a["agentId"]), str(a["agentName"])
    # ListAgents lists every agent: what it lacks does not exist (the code InvokeAgent would answer)
    raise click.ClickException(
        f"ResourceNotFoundException: no agent has the id or name {ref!r} (see `haniwa agent list`)"
    )


@contextlib.contextmanager
def _progress(console: Console, view: _TraceView | None, what: str) -> Iterator[Live | None]:
    """While the stream runs: the step in progress (with --trace) or a spinner, both erased after."""
    if view is None:
        with console.status(what):
            yield None
        return
    live = Live(console=console, get_renderable=lambda: view.current, auto_refresh=False, transient=True)
    try:
        with live:
            yield live
    finally:  # the whole tree, also when the stream failed half way
        if view.tree.children:
            console.print(view.tree)
            console.print(Text(f"total: {view.totals()}", style="dim"))


def _print_control(console: Console, control: Mapping[str, Any]) -> None:
    console.print(
        Text("returned control: run this and send the result back in sessionState", style="bold yellow")
    )
    console.print(Text(f"invocationId: {control.get('invocationId')}"))
    for member in control.get("invocationInputs") or []:
        for inv in member.values():
            kind = inv.get("actionInvocationType", "RESULT")
            console.print(Text.assemble("  ", (_call(inv), "bold"), (f"  [{kind}]", "dim")))


@agent.command()
@click.argument("agent_ref", metavar="AGENT")
@click.argument("question")
@click.option("--alias", default=TEST_ALIAS, show_default=True, help="Alias id (TSTALIASID runs the DRAFT).")
@click.option("--session", callback=_check_session, help="Session id to continue (default: a new one).")
@click.option("--trace", is_flag=True, help="Draw each step: thoughts, lookups, actions, tokens.")
@click.option("--end-session", is_flag=True, help="End the session after this answer.")
def invoke(
    agent_ref: str, question: str, alias: str, session: str | None, trace: bool, end_session: bool
) -> None:
    """Ask AGENT (an agent id or name) QUESTION ("-" reads it from stdin)."""
    if question == "-":
        question = sys.stdin.read().rstrip("\n")
    session = session or str(uuid.uuid4())
    settings = load_settings()
    console = out_console()
    answer: list[str] = []
    sources: list[str] = []
    control: Mapping[str, Any] | None = None
    with bedrock_server(settings) as url:
        try:
            agent_id, name = _resolve(bedrock_client("bedrock-agent", url, settings), agent_ref)
            title = Text.assemble(
                ("agent ", "bold"), f"{name} ({agent_id})", (f" · alias {alias} · session {session}", "dim")
            )
            view = _TraceView(title) if trace else None
            rt = bedrock_client("bedrock-agent-runtime", url, settings)
            with _progress(console, view, f"asking {name}…") as live:
                resp = rt.invoke_agent(
                    agentId=agent_id,
                    agentAliasId=alias,
                    sessionId=session,
                    inputText=question,
                    enableTrace=trace,
                    endSession=end_session,
                )
                for ev in resp["completion"]:
                    if "chunk" in ev:
                        answer.append(ev["chunk"]["bytes"].decode("utf-8"))
                        for c in ev["chunk"].get("attribution", {}).get("citations", []):
                            sources += [_source(r) for r in c.get("retrievedReferences", [])]
                    elif "trace" in ev and view is not None and live is not None:
                        view.add(ev["trace"].get("trace") or {})
                        live.refresh()
                    elif "returnControl" in ev:
                        control = ev["returnControl"]
        except ClientError as exc:
            raise client_failure(exc) from exc
    if control is not None:
        _print_control(console, control)
    if answer:
        console.print(Text("".join(answer)))
    if sources:
        console.print(Text("\nsources", style="bold"))
        for i, s in enumerate(dict.fromkeys(sources), 1):
            console.print(Text(f"  [{i}] {s}"))
    ended = end_session and control is None
    console.print(Text(f"session: {session}" + (" (ended)" if ended else ""), style="dim"))
