"""``haniwa customize``: model customization jobs from the shell (create, list, get, stop, wait).

Like ``haniwa kb``, the commands speak the Bedrock API to the server on ``HANIWA_HOST``/``HANIWA_PORT``.
Training outlives a command only on a running ``haniwa serve``: with an embedded server, ``create
--wait`` keeps it up until the job ends (a later start resumes an interrupted job from its checkpoint).
"""

from __future__ import annotations

import json
import time
from typing import Any

import click
import httpx
from botocore.exceptions import ClientError
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from haniwa.cli._common import bedrock_client, bedrock_server, client_failure, load_settings, out_console

__all__ = ["customize"]

_TERMINAL = ("Completed", "Failed", "Stopped")


@click.group()
def customize() -> None:
    """Fine-tune, continue pre-training or distil a bundled model on JSONL data in S3."""


@customize.command()
@click.argument("job_name")
@click.option("--base-model", default="amazon.titan-text-express-v1:0:8k", show_default=True)
@click.option("--model-name", default=None, help="Custom model name (default: JOB_NAME-model).")
@click.option(
    "--type",
    "kind",
    type=click.Choice(["FINE_TUNING", "CONTINUED_PRE_TRAINING", "DISTILLATION"]),
    default="FINE_TUNING",
    show_default=True,
)
@click.option("--training", required=True, help="s3://bucket/key of the training JSONL.")
@click.option("--validation", default=None, help="s3://bucket/key of the validation JSONL.")
@click.option("--output", required=True, help="s3://bucket/prefix for the outputs.")
@click.option("--teacher", default=None, help="Teacher model id (DISTILLATION).")
@click.option("-p", "--param", "params", multiple=True, help="Hyperparameter NAME=VALUE (repeatable).")
@click.option("--wait/--no-wait", default=True, show_default=True)
def create(
    job_name: str,
    base_model: str,
    model_name: str | None,
    kind: str,
    training: str,
    validation: str | None,
    output: str,
    teacher: str | None,
    params: tuple[str, ...],
    wait: bool,
) -> None:
    """Create a customization job (and follow it with a progress bar)."""
    hyper = dict(p.split("=", 1) for p in params)
    kwargs: dict[str, Any] = {
        "jobName": job_name,
        "customModelName": model_name or f"{job_name}-model",
        "roleArn": "arn:aws:iam::000000000000:role/haniwa",
        "baseModelIdentifier": base_model,
        "customizationType": kind,
        "trainingDataConfig": {"s3Uri": training},
        "outputDataConfig": {"s3Uri": output},
        "hyperParameters": hyper,
    }
    if validation:
        kwargs["validationDataConfig"] = {"validators": [{"s3Uri": validation}]}
    if teacher:
        kwargs["customizationConfig"] = {
            "distillationConfig": {"teacherModelConfig": {"teacherModelIdentifier": teacher}}
        }
    settings = load_settings()
    with bedrock_server(settings) as url:
        bedrock = bedrock_client("bedrock", url, settings)
        try:
            arn = bedrock.create_model_customization_job(**kwargs)["jobArn"]
        except ClientError as exc:
            raise client_failure(exc) from exc
        out_console().print(arn)
        if wait:
            _follow(bedrock, url, arn)


@customize.command(name="list")
def list_() -> None:
    """Customization jobs and their status."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        bedrock = bedrock_client("bedrock", url, settings)
        table = Table("name", "status", "type", "custom model", "created")
        for j in bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"]:
            table.add_row(
                j["jobName"],
                j["status"],
                j.get("customizationType", ""),
                j.get("customModelName", ""),
                j["creationTime"].isoformat(timespec="seconds"),
            )
        out_console().print(table)


@customize.command()
@click.argument("job")
def get(job: str) -> None:
    """A job as GetModelCustomizationJob returns it, plus haniwa's progress and comparison."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        bedrock = bedrock_client("bedrock", url, settings)
        try:
            out = bedrock.get_model_customization_job(jobIdentifier=job)
        except ClientError as exc:
            raise client_failure(exc) from exc
        out.pop("ResponseMetadata", None)
        out["haniwa"] = _details(url, settings, out["jobArn"])
        out_console().print_json(json.dumps(out, default=str, ensure_ascii=False))


@customize.command()
@click.argument("job")
def stop(job: str) -> None:
    """Stop a job (it ends Stopped at its next step)."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        bedrock = bedrock_client("bedrock", url, settings)
        try:
            bedrock.stop_model_customization_job(jobIdentifier=job)
        except ClientError as exc:
            raise client_failure(exc) from exc
        out_console().print("stopping")


@customize.command(name="wait")
@click.argument("job")
def wait_(job: str) -> None:
    """Follow a job to its end with a progress bar and the live loss."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        _follow(bedrock_client("bedrock", url, settings), url, job)


def _details(url: str, settings: Any, arn: str) -> dict[str, Any]:
    headers = {}
    key = settings.api_keys[0] if settings.api_keys else None
    if key is None and settings.secret_access_key is not None:
        key = settings.secret_access_key.get_secret_value()
    if key:
        headers["authorization"] = f"Bearer {key}"
    r = httpx.get(f"{url}/haniwa/v1/customization/jobs/{arn.rsplit('/', 1)[-1]}", headers=headers, timeout=30)
    return dict(r.json()) if r.status_code == 200 else {}


def _follow(bedrock: Any, url: str, job: str) -> None:
    settings = load_settings()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total}"),
        TextColumn("{task.fields[loss]}"),
        TimeRemainingColumn(),
        console=out_console(),
    ) as progress:
        task = progress.add_task(job.rsplit("/", 1)[-1], total=None, loss="")
        while True:
            j = bedrock.get_model_customization_job(jobIdentifier=job)
            d = _details(url, settings, j["jobArn"])
            figures = d.get("figures", {})
            loss = f"loss {figures['loss']:.4f}" if "loss" in figures else (d.get("message") or "")
            progress.update(task, total=d.get("totalSteps"), completed=d.get("step", 0), loss=loss)
            if j["status"] in _TERMINAL:
                break
            time.sleep(1.0)
    out_console().print(f"{j['jobName']}: {j['status']}")
    if j.get("failureMessage"):
        out_console().print(f"  [red]✗[/] {j['failureMessage']}")
    if j["status"] != "Completed":
        raise click.exceptions.Exit(1)
    comparison = (d.get("comparison") or {}).get("rows", [])
    if comparison:
        table = Table("prompt", "base", "custom", "flags")
        for row in comparison:
            table.add_row(row["prompt"][:40], row["base"][:60], row["custom"][:60], ", ".join(row["flags"]))
        out_console().print(table)
