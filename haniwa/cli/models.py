"""``haniwa models``: the catalog and its aliases, and what one id resolves to."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from rich.text import Text

from haniwa.cli._common import load_settings, make_registry, out_console, print_json, say
from haniwa.errors import PlatformError
from haniwa.runtime.registry import ModelRegistry

__all__ = ["models"]


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


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List catalog models and aliases (`haniwa models resolve ID` for one id)."""
    if ctx.invoked_subcommand is not None:
        return
    registry = make_registry(load_settings())
    model_rows, alias_rows = _model_rows(registry), _alias_rows(registry)
    if as_json:
        print_json({"models": model_rows, "aliases": alias_rows})
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
    out = out_console()
    out.print(table)
    out.print(aliases)


@models.command()
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def resolve(model_id: str, as_json: bool) -> None:
    """Show what a model id, ARN or alias resolves to."""
    res = make_registry(load_settings()).resolve(model_id)
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
        print_json(data)
        return
    out = out_console()
    say(out, f"{res.requested} → {res.info.id}", "bold")
    say(out, f"  backend     {res.info.backend}")
    say(out, f"  kind        {res.info.kind}")
    if res.alias:
        say(out, f"  via alias   {res.alias.pattern} ({'pattern' if res.alias.is_pattern else 'exact'})")
    if res.dimensions is not None:
        also = f" (allowed: {', '.join(map(str, allowed))})" if allowed else ""
        say(out, f"  dimensions  {res.dimensions}{also}")
