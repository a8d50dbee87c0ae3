"""``haniwa batch``: batch inference jobs from the shell (create, list, get, stop, wait with a progress bar).

Like ``haniwa kb``, the commands speak the Bedrock API to the server on ``HANIWA_HOST``/``HANIWA_PORT``,
or to an embedded one for the duration of the command. A job runs inside a server, so without
``haniwa serve`` running, ``create`` waits for its job to end (a job left behind resumes when a server
starts on the same ``HANIWA_HOME``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import ClientError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from haniwa.cli._common import (
    bedrock_client,
    bedrock_server,
    client_failure,
    load_settings,
    local_url,
    out_console,
    print_json,
)

__all__ = ["batch"]

_DEFAULT_CHAT = "anthropic.claude-3-haiku-20240307-v1:0"
_UPLOADS = "haniwa-batch"  # the bucket a local input file is uploaded to
_ENDED = ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired")


def _find(bedrock: Any, name_or_id: str) -> dict[str, Any]:
    if name_or_id.startswith("arn:"):
        return dict(bedrock.get_model_invocation_job(jobIdentifier=name_or_id))
    for j in bedrock.get_paginator("list_model_invocation_jobs").paginate():
        for s in j["invocationJobSummaries"]:
            if name_or_id in (s["jobName"], s["jobArn"].rsplit("/", 1)[-1]):
                return dict(s)
    raise click.ClickException(f"no batch job named {name_or_id!r} (see `haniwa batch list`)")


def _upload(s3: Any, path: Path, name: str) -> str:
    try:
        s3.create_bucket(Bucket=_UPLOADS)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    key = f"{name}/{path.name if path.suffix == '.jsonl' else path.name + '.jsonl'}"
    with path.open("rb") as f:
        s3.put_object(Bucket=_UPLOADS, Key=key, Body=f)
    return f"s3://{_UPLOADS}/{name}/"


def _wait(bedrock: Any, arn: str) -> dict[str, Any]:
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=out_console(),
    ) as progress:
        task = progress.add_task("starting", total=None, stats="")
        while True:
            j = bedrock.get_model_invocation_job(jobIdentifier=arn)
            total = j.get("totalRecordCount") or None
            progress.update(
                task,
                description=j["status"],
                total=total,
                completed=j.get("processedRecordCount", 0),
                stats=f"{j.get('successRecordCount', 0)} ok, {j.get('errorRecordCount', 0)} errors",
            )
            if j["status"] in _ENDED:
                return dict(j)
            time.sleep(0.2)


def _summary(j: dict[str, Any]) -> str:
    out = j["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"].rstrip("/")
    return (
        f"{j['jobName']}: {j['status']} — {j.get('successRecordCount', 0)} answers, "
        f"{j.get('errorRecordCount', 0)} errors of {j.get('totalRecordCount', 0)} records\n"
        f"output: {out}/{j['jobArn'].rsplit('/', 1)[-1]}/ ({j.get('message') or ''})"
    )


@click.group()
def batch() -> None:
    """Batch inference: JSONL records through a model (CreateModelInvocationJob)."""


@batch.command()
@click.argument("name")
@click.option(
    "--input", "input_", required=True, help="s3://bucket/prefix/ of .jsonl files, or a local .jsonl file."
)
@click.option("--output", required=True, help="s3://bucket/prefix/ for the output and manifest.")
@click.option("--model", default=_DEFAULT_CHAT, show_default=True)
@click.option(
    "--type", "kind", type=click.Choice(["InvokeModel", "Converse"]), default="InvokeModel", show_default=True
)
@click.option("--wait/--no-wait", default=False, help="Show a progress bar until the job ends.")
def create(name: str, input_: str, output: str, model: str, kind: str, wait: bool) -> None:
    """Create batch job NAME over the records of INPUT."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        bedrock = bedrock_client("bedrock", url, settings)
        try:
            if not input_.startswith("s3://"):
                path = Path(input_)
                if not path.is_file():
                    raise click.ClickException(f"{input_} is neither an s3:// URI nor a file")
                input_ = _upload(bedrock_client("s3", url, settings), path, name)
            arn = bedrock.create_model_invocation_job(
                jobName=name,
                roleArn="arn:aws:iam::000000000000:role/haniwa",
                modelId=model,
                modelInvocationType=kind,
                inputDataConfig={"s3InputDataConfig": {"s3Uri": input_}},
                outputDataConfig={"s3OutputDataConfig": {"s3Uri": output}},
            )["jobArn"]
            out_console().print(f"created batch job [bold]{name}[/] ({arn.rsplit('/', 1)[-1]}) over {input_}")
            embedded = url != local_url(settings)
            if wait or embedded:
                if embedded and not wait:
                    out_console().print("no haniwa server is running: the job runs here; waiting for it")
                out_console().print(_summary(_wait(bedrock, arn)))
        except ClientError as exc:
            raise client_failure(exc) from exc


@batch.command("list")
@click.option("--status", default=None, help="Only jobs in this status (e.g. InProgress).")
def list_(status: str | None) -> None:
    """List batch jobs, newest first."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        bedrock = bedrock_client("bedrock", url, settings)
        table = Table("id", "name", "model", "status", "records", "ok", "errors", "submitted")
        kwargs = {"statusEquals": status} if status else {}
        for page in bedrock.get_paginator("list_model_invocation_jobs").paginate(**kwargs):
            for j in page["invocationJobSummaries"]:
                table.add_row(
                    j["jobArn"].rsplit("/", 1)[-1],
                    j["jobName"],
                    j["modelId"],
                    j["status"],
                    f"{j.get('processedRecordCount', 0)}/{j.get('totalRecordCount', 0)}",
                    str(j.get("successRecordCount", 0)),
                    str(j.get("errorRecordCount", 0)),
                    j["submitTime"].strftime("%Y-%m-%d %H:%M:%S"),
                )
        out_console().print(table)


@batch.command()
@click.argument("job")
@click.option("--json", "as_json", is_flag=True, help="Print GetModelInvocationJob's answer as JSON.")
def get(job: str, as_json: bool) -> None:
    """Show batch job JOB (name, id or ARN)."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        bedrock = bedrock_client("bedrock", url, settings)
        try:
            j = bedrock.get_model_invocation_job(jobIdentifier=_find(bedrock, job)["jobArn"])
        except ClientError as exc:
            raise client_failure(exc) from exc
        j.pop("ResponseMetadata", None)
        if as_json:
            print_json({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in j.items()})
        else:
            out_console().print(_summary(j))


@batch.command()
@click.argument("job")
def stop(job: str) -> None:
    """Stop batch job JOB; what was written so far is kept, with its manifest."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        bedrock = bedrock_client("bedrock", url, settings)
        try:
            arn = _find(bedrock, job)["jobArn"]
            bedrock.stop_model_invocation_job(jobIdentifier=arn)
            out_console().print(_summary(_wait(bedrock, arn)))
        except ClientError as exc:
            raise client_failure(exc) from exc


@batch.command()
@click.argument("job")
def wait(job: str) -> None:
    """Follow batch job JOB with a progress bar until it ends."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        bedrock = bedrock_client("bedrock", url, settings)
        try:
            out_console().print(_summary(_wait(bedrock, _find(bedrock, job)["jobArn"])))
        except ClientError as exc:
            raise client_failure(exc) from exc
