"""``haniwa eval``: evaluation jobs from the shell (create, list, get, stop, compare) and test-set
generation from a knowledge base's documents.

Like ``haniwa kb``, the commands speak the Bedrock API to the running server (or an embedded one for the
duration of the command). Progress, results and comparisons, which Bedrock's shapes have no room for,
come from ``/haniwa/v1/evaluation-jobs/…``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import click
import httpx
from botocore.exceptions import ClientError
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from haniwa.cli._common import bedrock_client, bedrock_server, client_failure, load_settings, out_console
from haniwa.config import Settings

__all__ = ["evaluation"]

_ROLE = "arn:aws:iam::000000000000:role/haniwa"
_DEFAULT_CHAT = "anthropic.claude-3-haiku-20240307-v1:0"


def _headers(settings: Settings) -> dict[str, str]:
    if settings.api_keys:
        return {"authorization": f"Bearer {settings.api_keys[0]}"}
    return {}


def _extra(url: str, settings: Settings, path: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/haniwa/v1/evaluation-jobs/{path}", headers=_headers(settings), timeout=60)
    if r.status_code != 200:
        raise click.ClickException(f"{r.status_code}: {r.text[:300]}")
    data: dict[str, Any] = r.json()
    return data


def _arn(bedrock: Any, name_or_arn: str) -> str:
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    for page in bedrock.get_paginator("list_evaluation_jobs").paginate():
        for s in page["jobSummaries"]:
            if s["jobName"] == name_or_arn or s["jobArn"].endswith("/" + name_or_arn):
                return str(s["jobArn"])
    raise click.ClickException(f"no evaluation job named {name_or_arn!r} (see `haniwa eval list`)")


@click.group("eval")
def evaluation() -> None:
    """Evaluation jobs: metrics with 95% intervals, LLM judges, comparisons, test-set generation."""


@evaluation.command()
@click.argument("name")
@click.option("--dataset", "dataset_uri", required=True, help="s3://bucket/key.jsonl (Bedrock's format).")
@click.option(
    "--task",
    type=click.Choice(["QuestionAndAnswer", "Summarization", "Classification", "Generation", "Custom"]),
    default="QuestionAndAnswer",
    show_default=True,
)
@click.option("--metric", "metrics", multiple=True, default=["Builtin.Accuracy"], show_default=True)
@click.option("--model", "models", multiple=True, help="A served model id to generate the responses.")
@click.option("--responses", "sources", multiple=True, help="modelIdentifier of responses in the dataset.")
@click.option("--judge", "judges", multiple=True, help="A served model id as the LLM judge.")
@click.option("--output", "output_uri", required=True, help="s3://bucket/prefix/ for the results.")
@click.option(
    "--judge-samples",
    type=click.IntRange(1, 10),
    default=None,
    help="Ask the judge each metric N times to show its noise (default: HANIWA_EVAL_JUDGE_SAMPLES).",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the job with a progress bar.")
def create(
    name: str,
    dataset_uri: str,
    task: str,
    metrics: tuple[str, ...],
    models: tuple[str, ...],
    sources: tuple[str, ...],
    judges: tuple[str, ...],
    output_uri: str,
    judge_samples: int | None,
    wait: bool,
) -> None:
    """Create evaluation job NAME and (by default) follow it to its end."""
    settings = load_settings()
    inference = [{"bedrockModel": {"modelIdentifier": m}} for m in models] + [
        {"precomputedInferenceSource": {"inferenceSourceIdentifier": s}} for s in sources
    ]
    if not inference:
        raise click.UsageError("name a --model or --responses")
    automated: dict[str, Any] = {
        "datasetMetricConfigs": [
            {
                "taskType": task,
                "dataset": {
                    "name": Path(dataset_uri).stem or "dataset",
                    "datasetLocation": {"s3Uri": dataset_uri},
                },
                "metricNames": list(metrics),
            }
        ]
    }
    if judges:
        automated["evaluatorModelConfig"] = {
            "bedrockEvaluatorModels": [{"modelIdentifier": j} for j in judges]
        }
    with bedrock_server(settings) as url:
        bedrock = bedrock_client("bedrock", url, settings)
        if judge_samples is not None:
            # not a CreateEvaluationJob member: a haniwa header, signed with the request
            def _add(request: Any, **_: Any) -> None:
                request.headers["x-haniwa-judge-samples"] = str(judge_samples)

            bedrock.meta.events.register("before-sign.bedrock.CreateEvaluationJob", _add)
        try:
            arn = bedrock.create_evaluation_job(
                jobName=name,
                roleArn=_ROLE,
                evaluationConfig={"automated": automated},
                inferenceConfig={"models": inference},
                outputDataConfig={"s3Uri": output_uri},
            )["jobArn"]
        except ClientError as exc:
            raise client_failure(exc) from exc
        out_console().print(f"created evaluation job [bold]{name}[/] {arn}")
        if wait:
            _follow(url, settings, arn)
            _show(url, settings, arn)


def _follow(url: str, settings: Settings, arn: str) -> None:
    job_id = arn.rsplit("/", 1)[-1]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.fields[of]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=out_console(),
    ) as bar:
        task = bar.add_task("scoring", total=None, of="?")
        while True:
            p = _extra(url, settings, job_id)
            total = p["total"]
            bar.update(
                task,
                completed=p["done"],
                total=total,
                of="?" if total is None else f"{total:.0f}",
                description=p["message"] or p["status"],
            )
            if p["status"] not in ("InProgress", "Stopping"):
                break
            time.sleep(0.5)


def _show(url: str, settings: Settings, arn: str) -> None:
    p = _extra(url, settings, arn.rsplit("/", 1)[-1])
    console = out_console()
    console.print(f"[bold]{p['name']}[/] {p['status']} — {p['message'] or ''}")
    for f in p["failures"]:
        console.print(f"  [yellow]reported:[/] {f}")
    for result in (p["summary"] or {}).get("results", []):
        noise = result.get("judgeNoise") or {}
        table = Table(
            "metric",
            "mean",
            "95% interval",
            "n",
            *(["judge noise"] if noise else []),
            title=f"{result['source']} · {result['taskType']} · {result['dataset']}",
        )
        for metric, v in result["metrics"].items():
            jn = noise.get(metric)
            extra = (
                [f"sd {jn['meanStd']:.3f}, {jn['disagreement']:.0%} disagree" if jn else "—"] if noise else []
            )
            if v["mean"] is None:
                table.add_row(metric, "—", "—", "0", *extra)
                continue
            table.add_row(
                metric,
                f"{v['mean']:.3f}",
                f"{v['ci95Low']:.3f} – {v['ci95High']:.3f}",
                str(v["count"]),
                *extra,
            )
        console.print(table)
        if "classification" in result:
            console.print(
                "classification: " + ", ".join(f"{k} {v:.3f}" for k, v in result["classification"].items())
            )
        console.print(f"output: {result['outputUri']}")


@evaluation.command("list")
def list_() -> None:
    """List evaluation jobs, newest first."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        bedrock = bedrock_client("bedrock", url, settings)
        table = Table("name", "status", "created", "tasks", "sources")
        for page in bedrock.get_paginator("list_evaluation_jobs").paginate():
            for s in page["jobSummaries"]:
                table.add_row(
                    s["jobName"],
                    s["status"],
                    s["creationTime"].strftime("%Y-%m-%d %H:%M"),
                    ", ".join(s["evaluationTaskTypes"]),
                    ", ".join(s.get("modelIdentifiers") or s.get("ragIdentifiers") or []),
                )
        out_console().print(table)


@evaluation.command()
@click.argument("job")
def get(job: str) -> None:
    """Show JOB (name or ARN): status, reported records, each metric with its 95% interval."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        _show(url, settings, _arn(bedrock_client("bedrock", url, settings), job))


@evaluation.command()
@click.argument("job")
def stop(job: str) -> None:
    """Stop JOB (name or ARN)."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        bedrock = bedrock_client("bedrock", url, settings)
        try:
            bedrock.stop_evaluation_job(jobIdentifier=_arn(bedrock, job))
        except ClientError as exc:
            raise client_failure(exc) from exc
    out_console().print(f"stopping {job}")


@evaluation.command()
@click.argument("baseline")
@click.argument("candidate")
def compare(baseline: str, candidate: str) -> None:
    """Compare CANDIDATE with BASELINE on the same dataset: better, worse or indistinguishable (paired
    bootstrap, 95%)."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        bedrock = bedrock_client("bedrock", url, settings)
        a, b = _arn(bedrock, baseline).rsplit("/", 1)[-1], _arn(bedrock, candidate).rsplit("/", 1)[-1]
        data = _extra(url, settings, f"{a}/compare/{b}")
    table = Table("metric", "difference", "95% interval", "n", "verdict", title=f"{candidate} vs {baseline}")
    style = {"better": "green", "worse": "red", "indistinguishable": "dim"}
    for c in data["comparisons"]:
        table.add_row(
            c["metric"],
            f"{c['difference']:+.3f}",
            f"{c['ci95Low']:+.3f} – {c['ci95High']:+.3f}",
            str(c["count"]),
            f"[{style[c['verdict']]}]{c['verdict']}[/]",
        )
    out_console().print(table)


_GEN_PROMPT = {
    "ja": "次の文書から、文書だけで答えられる質問を一つ作り、その答えも書いてください。"
    'JSON で {"question": "...", "answer": "..."} の形で答えてください。\n\n文書:\n',
    "en": "Write one question that the document below answers, and its answer. "
    'Reply as JSON: {"question": "...", "answer": "..."}.\n\nDocument:\n',
}


def _pair(text: str) -> tuple[str, str] | None:
    m = re.search(r"\{.*\}", text, re.DOTALL)
    if m is None:
        return None
    try:
        data = json.loads(m.group())
    except ValueError:
        return None
    q, a = data.get("question"), data.get("answer")
    return (q, a) if isinstance(q, str) and isinstance(a, str) and q.strip() and a.strip() else None


@evaluation.command()
@click.argument("kb_name_or_id")
@click.option("--model", default=_DEFAULT_CHAT, show_default=True, help="The served model that writes pairs.")
@click.option("--count", type=int, default=20, show_default=True, help="At most this many pairs.")
@click.option("--output", "output", required=True, help="A local .jsonl file or s3://bucket/key.jsonl.")
def generate(kb_name_or_id: str, model: str, count: int, output: str) -> None:
    """Write question/reference pairs (Bedrock's dataset format) from a knowledge base's documents, in each
    document's language."""
    from haniwa.evaluation.text import is_japanese

    settings = load_settings()
    with bedrock_server(settings) as url:
        agent = bedrock_client("bedrock-agent", url, settings)
        runtime = bedrock_client("bedrock-runtime", url, settings)
        s3 = bedrock_client("s3", url, settings)
        kb_id = next(
            (
                k["knowledgeBaseId"]
                for k in agent.list_knowledge_bases(maxResults=1000)["knowledgeBaseSummaries"]
                if kb_name_or_id in (k["knowledgeBaseId"], k["name"])
            ),
            None,
        )
        if kb_id is None:
            raise click.ClickException(f"no knowledge base named {kb_name_or_id!r}")
        docs: list[tuple[str, str]] = []
        for ds in agent.list_data_sources(knowledgeBaseId=kb_id)["dataSourceSummaries"]:
            cfg = agent.get_data_source(knowledgeBaseId=kb_id, dataSourceId=ds["dataSourceId"])["dataSource"]
            s3cfg = cfg["dataSourceConfiguration"].get("s3Configuration")
            if not s3cfg:
                continue
            bucket = s3cfg["bucketArn"].rsplit(":", 1)[-1]
            for prefix in s3cfg.get("inclusionPrefixes") or [""]:
                for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
                    if obj["Key"].endswith((".txt", ".md")):
                        body = (
                            s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
                            .read()
                            .decode("utf-8", "replace")
                        )
                        docs.append((f"s3://{bucket}/{obj['Key']}", body))
        lines = []
        with Progress(
            TextColumn("generating"), BarColumn(), TextColumn("{task.completed}/{task.total}")
        ) as bar:
            task = bar.add_task("generate", total=min(count, len(docs)))
            for uri, body in docs[:count]:
                lang = "ja" if is_japanese(body) else "en"
                out = runtime.converse(
                    modelId=model,
                    messages=[{"role": "user", "content": [{"text": _GEN_PROMPT[lang] + body[:3000]}]}],
                    inferenceConfig={"maxTokens": 256, "temperature": 0},
                )
                text = "".join(b.get("text", "") for b in out["output"]["message"]["content"])
                pair = _pair(text)
                if pair is not None:
                    lines.append({"prompt": pair[0], "referenceResponse": pair[1], "category": uri})
                bar.advance(task)
        data = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode()
        if output.startswith("s3://"):
            bucket, key = output[5:].split("/", 1)
            s3.put_object(Bucket=bucket, Key=key, Body=data)
        else:
            Path(output).write_bytes(data)
    out_console().print(f"wrote {len(lines)} pairs from {len(docs)} documents to {output}")
