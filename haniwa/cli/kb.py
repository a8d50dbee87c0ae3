"""``haniwa kb``: knowledge bases from the shell.

The commands speak the Bedrock API (botocore clients, exactly what a boto3 user sends) to the server
running on ``HANIWA_HOST``/``HANIWA_PORT``; when none answers, they start an embedded one for the
duration of the command, so ``haniwa kb sync`` works with or without ``haniwa serve``. Going through the
server (never opening the store in-process beside it) keeps one writer per knowledge base.
"""

from __future__ import annotations

import time
from typing import Any

import click
from botocore.exceptions import ClientError
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from haniwa.cli._common import bedrock_client, bedrock_server, client_failure, load_settings, out_console

__all__ = ["kb"]

_DEFAULT_EMBEDDING = "amazon.titan-embed-text-v2:0"
_DEFAULT_CHAT = "anthropic.claude-3-haiku-20240307-v1:0"


def _find(agent: Any, name_or_id: str) -> dict[str, Any]:
    for kb_ in agent.list_knowledge_bases(maxResults=1000)["knowledgeBaseSummaries"]:
        if name_or_id in (kb_["knowledgeBaseId"], kb_["name"]):
            return dict(kb_)
    raise click.ClickException(f"no knowledge base named {name_or_id!r} (see `haniwa kb list`)")


@click.group()
def kb() -> None:
    """Knowledge bases: create, sync (ingest), query (retrieve) and ask (retrieve and generate)."""


@kb.command("list")
def list_() -> None:
    """List knowledge bases and their data sources."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        agent = bedrock_client("bedrock-agent", url, settings)
        table = Table("id", "name", "status", "data sources")
        for k in agent.list_knowledge_bases(maxResults=1000)["knowledgeBaseSummaries"]:
            dss = agent.list_data_sources(knowledgeBaseId=k["knowledgeBaseId"])["dataSourceSummaries"]
            table.add_row(k["knowledgeBaseId"], k["name"], k["status"], ", ".join(d["name"] for d in dss))
        out_console().print(table)


@kb.command()
@click.argument("name")
@click.option("--bucket", required=True, help="Bucket: a folder under HANIWA_S3_ROOT (or a real bucket).")
@click.option("--prefix", default="", help="Only keys under this prefix (e.g. docs/).")
@click.option("--embedding-model", default=_DEFAULT_EMBEDDING, show_default=True)
@click.option(
    "--chunking",
    type=click.Choice(["fixed", "hierarchical", "semantic", "none"]),
    default="fixed",
    show_default=True,
)
@click.option(
    "--max-tokens", type=int, default=300, show_default=True, help="Chunk size (child size if hierarchical)."
)
@click.option("--overlap", type=int, default=20, show_default=True, help="Overlap percentage (fixed).")
def create(
    name: str, bucket: str, prefix: str, embedding_model: str, chunking: str, max_tokens: int, overlap: int
) -> None:
    """Create knowledge base NAME with one S3 data source reading BUCKET/PREFIX."""
    settings = load_settings()
    configs: dict[str, dict[str, Any]] = {
        "fixed": {
            "chunkingStrategy": "FIXED_SIZE",
            "fixedSizeChunkingConfiguration": {"maxTokens": max_tokens, "overlapPercentage": overlap},
        },
        "hierarchical": {
            "chunkingStrategy": "HIERARCHICAL",
            "hierarchicalChunkingConfiguration": {
                "levelConfigurations": [{"maxTokens": max_tokens * 5}, {"maxTokens": max_tokens}],
                "overlapTokens": max(1, max_tokens // 5),
            },
        },
        "semantic": {
            "chunkingStrategy": "SEMANTIC",
            "semanticChunkingConfiguration": {
                "maxTokens": max_tokens,
                "bufferSize": 0,
                "breakpointPercentileThreshold": 95,
            },
        },
        "none": {"chunkingStrategy": "NONE"},
    }
    chunk_cfg = configs[chunking]
    with bedrock_server(settings) as url:
        agent = bedrock_client("bedrock-agent", url, settings)
        try:
            created = agent.create_knowledge_base(
                name=name,
                roleArn="arn:aws:iam::000000000000:role/haniwa",
                knowledgeBaseConfiguration={
                    "type": "VECTOR",
                    "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": embedding_model},
                },
            )["knowledgeBase"]
            s3: dict[str, Any] = {"bucketArn": f"arn:aws:s3:::{bucket}"}
            if prefix:
                s3["inclusionPrefixes"] = [prefix]
            ds = agent.create_data_source(
                knowledgeBaseId=created["knowledgeBaseId"],
                name=f"{bucket}-{prefix}".strip("-/").replace("/", "-") or bucket,
                dataSourceConfiguration={"type": "S3", "s3Configuration": s3},
                vectorIngestionConfiguration={"chunkingConfiguration": chunk_cfg},
            )["dataSource"]
        except ClientError as exc:
            raise client_failure(exc) from exc
    out_console().print(
        f"created knowledge base [bold]{name}[/] ({created['knowledgeBaseId']}), data source "
        f"{ds['dataSourceId']} → s3://{bucket}/{prefix}\nnext: haniwa kb sync {name}"
    )


@kb.command()
@click.argument("name_or_id")
def sync(name_or_id: str) -> None:
    """Ingest (incrementally) every data source of a knowledge base, with a progress bar."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        agent = bedrock_client("bedrock-agent", url, settings)
        found = _find(agent, name_or_id)
        kb_id = found["knowledgeBaseId"]
        failed = False
        for ds in agent.list_data_sources(knowledgeBaseId=kb_id)["dataSourceSummaries"]:
            try:
                job = agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds["dataSourceId"])
            except ClientError as exc:
                raise client_failure(exc) from exc
            job_id = job["ingestionJob"]["ingestionJobId"]
            with Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                console=out_console(),
            ) as progress:
                task = progress.add_task(ds["name"], total=None, stats="")
                while True:
                    j = agent.get_ingestion_job(
                        knowledgeBaseId=kb_id, dataSourceId=ds["dataSourceId"], ingestionJobId=job_id
                    )["ingestionJob"]
                    s = j.get("statistics", {})
                    done = s.get("numberOfDocumentsScanned", 0)
                    progress.update(
                        task,
                        completed=done,
                        stats=(
                            f"scanned {done} · new {s.get('numberOfNewDocumentsIndexed', 0)} · modified "
                            f"{s.get('numberOfModifiedDocumentsIndexed', 0)} · deleted "
                            f"{s.get('numberOfDocumentsDeleted', 0)} · "
                            f"failed {s.get('numberOfDocumentsFailed', 0)}"
                        ),
                    )
                    if j["status"] in ("COMPLETE", "FAILED", "STOPPED"):
                        progress.update(task, total=max(done, 1), completed=max(done, 1))
                        break
                    time.sleep(0.2)
            out_console().print(f"{ds['name']}: {j['status']}")
            for reason in j.get("failureReasons") or []:
                out_console().print(f"  [red]✗[/] {reason}")
            failed = failed or j["status"] == "FAILED"
        if failed:
            raise click.exceptions.Exit(1)


def _retrieval(k: int, search_type: str | None) -> dict[str, Any]:
    vsc: dict[str, Any] = {"numberOfResults": k}
    if search_type:
        vsc["overrideSearchType"] = search_type.upper()
    return {"vectorSearchConfiguration": vsc}


@kb.command()
@click.argument("name_or_id")
@click.argument("text")
@click.option("-k", "--results", "k", type=int, default=5, show_default=True)
@click.option("--search-type", type=click.Choice(["hybrid", "semantic"]), default=None)
def query(name_or_id: str, text: str, k: int, search_type: str | None) -> None:
    """Retrieve the chunks that best match TEXT."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        kb_id = _find(bedrock_client("bedrock-agent", url, settings), name_or_id)["knowledgeBaseId"]
        rt = bedrock_client("bedrock-agent-runtime", url, settings)
        try:
            res = rt.retrieve(
                knowledgeBaseId=kb_id,
                retrievalQuery={"text": text},
                retrievalConfiguration=_retrieval(k, search_type),
            )
        except ClientError as exc:
            raise client_failure(exc) from exc
    console = out_console()
    for i, r in enumerate(res["retrievalResults"], 1):
        loc = r["location"].get("s3Location", {}).get("uri") or r["location"].get(
            "customDocumentLocation", {}
        ).get("id")
        console.print(f"[bold]{i}.[/] {r['score']:.3f}  [cyan]{loc}[/]")
        console.print("   " + r["content"]["text"][:400].replace("\n", "\n   "))


@kb.command()
@click.argument("name_or_id")
@click.argument("question")
@click.option("--model", default=_DEFAULT_CHAT, show_default=True, help="Bedrock model id answering.")
@click.option("--session", default=None, help="Session id of an earlier answer (follow-up question).")
@click.option("-k", "--results", "k", type=int, default=5, show_default=True)
def ask(name_or_id: str, question: str, model: str, session: str | None, k: int) -> None:
    """Answer QUESTION from the knowledge base, with numbered sources."""
    settings = load_settings()
    with bedrock_server(settings) as url:
        kb_id = _find(bedrock_client("bedrock-agent", url, settings), name_or_id)["knowledgeBaseId"]
        rt = bedrock_client("bedrock-agent-runtime", url, settings)
        kwargs: dict[str, Any] = {"sessionId": session} if session else {}
        try:
            out = rt.retrieve_and_generate(
                input={"text": question},
                retrieveAndGenerateConfiguration={
                    "type": "KNOWLEDGE_BASE",
                    "knowledgeBaseConfiguration": {
                        "knowledgeBaseId": kb_id,
                        "modelArn": model,
                        "retrievalConfiguration": _retrieval(k, None),
                    },
                },
                **kwargs,
            )
        except ClientError as exc:
            raise client_failure(exc) from exc
    console = out_console()
    console.print(out["output"]["text"])
    sources: list[str] = []
    for c in out.get("citations", []):
        for ref in c.get("retrievedReferences", []):
            loc = ref["location"].get("s3Location", {}).get("uri") or ref["location"].get(
                "customDocumentLocation", {}
            ).get("id")
            if loc not in sources:
                sources.append(loc)
    if sources:
        console.print("\n[bold]sources[/]")
        for i, s in enumerate(sources, 1):
            console.print(f"  [{i}] {s}")
    console.print(f"[dim]session: {out['sessionId']}[/]")
