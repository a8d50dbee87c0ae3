"""``haniwa guardrail test``: run a set of texts through a guardrail's DRAFT and a version (the latest by
default) side by side and list every decision that flips, with its spans, before you create a version.

The configurations come from the server (GetGuardrail, as a boto3 user reads them; an embedded server
when none answers); the texts are checked in this process with the same detectors the server runs, so
each finding's span in the text is known (the wire assessment carries no offsets for content filters or
topics). Content filters and topics load the bundled embedding model (a few seconds, once)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import ClientError
from rich.table import Table

from haniwa.api.bedrock_guardrails import policy_of
from haniwa.cli._common import bedrock_client, bedrock_server, client_failure, load_settings, out_console
from haniwa.guardrails.base import Finding
from haniwa.guardrails.diff import compare

__all__ = ["guardrail", "config_of"]

_POLICIES = (
    "topicPolicy",
    "contentPolicy",
    "wordPolicy",
    "sensitiveInformationPolicy",
    "contextualGroundingPolicy",
)


def config_of(got: dict[str, Any]) -> dict[str, Any]:
    """GetGuardrail's answer back in CreateGuardrail's names (``wordPolicy.words`` → ``wordPolicyConfig
    .wordsConfig``): the inverse of the server's mapping, for :func:`policy_of`."""
    out: dict[str, Any] = {
        "blockedInputMessaging": got.get("blockedInputMessaging", ""),
        "blockedOutputsMessaging": got.get("blockedOutputsMessaging", ""),
    }
    for name in _POLICIES:
        if name in got:
            out[name + "Config"] = {
                (k + "Config" if isinstance(v, list) else k): v for k, v in got[name].items()
            }
    return out


def _texts(path: Path) -> list[str]:
    lines = [line for line in path.read_text("utf-8").splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in lines]
        return [r["text"] for r in rows if isinstance(r, dict) and "text" in r]
    return lines


def _spans(findings: tuple[Finding, ...]) -> str:
    parts = []
    for f in findings:
        where = f"[{f.start}:{f.end}] {f.match!r}" if f.end > f.start else "(whole text)"
        extra = f" {f.confidence}" if f.confidence else f" {f.score:.2f}" if f.score is not None else ""
        parts.append(f"{f.kind}/{f.label} {f.action}{extra} {where}")
    return "\n".join(parts)


@click.group()
def guardrail() -> None:
    """Guardrails: try a DRAFT against a version before shipping it."""


@guardrail.command("test")
@click.argument("guardrail_ref")
@click.argument("texts", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--version", default=None, help="The version to compare with (default: the latest).")
@click.option("--source", type=click.Choice(["INPUT", "OUTPUT"]), default="INPUT", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the flips as JSON.")
def test(guardrail_ref: str, texts: Path, version: str | None, source: str, as_json: bool) -> None:
    """Run TEXTS (one per line, or .jsonl with a "text" field) through GUARDRAIL_REF's DRAFT and a
    version, and list every decision that flips, with its spans."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        client = bedrock_client("bedrock", url, settings)
        try:
            found = [
                g
                for g in client.list_guardrails(maxResults=1000)["guardrails"]
                if guardrail_ref in (g["id"], g["name"])
            ]
            if not found:
                raise click.ClickException(f"no guardrail named {guardrail_ref!r}")
            gid = found[0]["id"]
            versions = [
                g["version"]
                for g in client.list_guardrails(guardrailIdentifier=gid, maxResults=1000)["guardrails"]
                if g["version"] != "DRAFT"
            ]
            old_version = version or (max(versions, key=int) if versions else None)
            if old_version is None:
                raise click.ClickException("the guardrail has no version yet: create one to compare with")
            draft = client.get_guardrail(guardrailIdentifier=gid, guardrailVersion="DRAFT")
            old = client.get_guardrail(guardrailIdentifier=gid, guardrailVersion=old_version)
        except ClientError as exc:
            raise client_failure(exc) from None
    items = _texts(texts)
    flips = compare(policy_of(config_of(old)), policy_of(config_of(draft)), items, source)  # type: ignore[arg-type]
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "index": f.index,
                        "text": f.text,
                        old_version: f.old.outcome,
                        "DRAFT": f.new.outcome,
                        "added": [_finding(x) for x in f.added],
                        "removed": [_finding(x) for x in f.removed],
                    }
                    for f in flips
                ],
                ensure_ascii=False,
                indent=1,
            )
        )
        return
    console = out_console()
    console.print(f"{len(items)} texts, {len(flips)} decisions flip between version {old_version} and DRAFT")
    if flips:
        table = Table("#", "text", f"v{old_version}", "DRAFT", "only in DRAFT", f"only in v{old_version}")
        for f in flips:
            table.add_row(
                str(f.index), f.text, f.old.outcome, f.new.outcome, _spans(f.added), _spans(f.removed)
            )
        console.print(table)


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "policy": f.kind,
        "label": f.label,
        "action": f.action,
        "start": f.start,
        "end": f.end,
        "match": f.match,
        "confidence": f.confidence,
        "score": f.score,
    }
