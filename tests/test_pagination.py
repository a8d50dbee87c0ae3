"""Every paginated operation goes through one helper (``haniwa/api/pagination.py``): boto3's own
paginators walk more than one page of each, in order and without repeats, and a token haniwa did not issue
(garbage, tampered, from another list, from before a restart) is a ValidationException."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from haniwa.api.app import Platform, create_app
from haniwa.api.pagination import Pager
from haniwa.config import Settings
from haniwa.customization.service import CHEAP_CHECK_BYTES
from haniwa.errors import ValidationError
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
EMBED = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"
AOSS = {
    "type": "OPENSEARCH_SERVERLESS",
    "opensearchServerlessConfiguration": {
        "collectionArn": "arn:aws:aoss:us-east-1:000000000000:collection/x",
        "vectorIndexName": "idx",
        "fieldMapping": {"vectorField": "v", "textField": "t", "metadataField": "m"},
    },
}
PAGE = 2  # every listing below holds at least 3 items, so each takes at least 2 pages


# -- the helper on its own ---------------------------------------------------------------------------
def test_a_page_resumes_after_the_last_item_seen() -> None:
    pager = Pager(b"k" * 32)

    def page(items: list[str], token: str | None) -> tuple[list[str], str | None]:
        got = pager.page(items, scope="list", size=2, token=token, key=str)
        return got.items, got.next_token

    first, token = page(list("abcde"), None)
    assert first == ["a", "b"] and token
    assert page(list("abcde"), token) == (["c", "d"], page(list("abcde"), token)[1])
    # an item added before the position, and one removed: the page still starts after "b"
    assert page(list("xbcde"), token)[0] == ["c", "d"]
    assert page(list("bcde"), token)[0] == ["c", "d"]
    assert page(list("zyxabcde"), token)[0] == ["c", "d"]
    # "b" itself is gone: resume one place before its old offset (a repeat, never a skip)
    assert page(list("acde"), token)[0] == ["c", "d"]
    last, end = page(list("abcde"), page(list("abcde"), token)[1])
    assert (last, end) == (["e"], None)
    assert page(list("ab"), None) == (["a", "b"], None)
    with pytest.raises(ValidationError, match="at least 1"):
        pager.page(["a"], scope="list", size=0, token=None, key=str)


def _tampered(token: str) -> str:
    head, _, mac = token.partition(".")
    position = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    position["o"] = 0
    forged = base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).rstrip(b"=")
    return f"{forged.decode()}.{mac}"


def test_tokens_the_pager_did_not_issue_are_refused() -> None:
    pager = Pager(b"k" * 32)
    token = pager.page(list("abcde"), scope="one", size=2, token=None, key=str).next_token
    assert token is not None
    other_list = pager.page(list("abcde"), scope="two", size=2, token=None, key=str).next_token
    restarted = Pager().page(list("abcde"), scope="one", size=2, token=None, key=str).next_token
    for bad in (
        "garbage",
        "",
        "2",  # what the old offset tokens looked like
        "!!!.!!!",
        "トークン",
        "a.b.c",
        token + "x",
        token[:-2],
        _tampered(token),
        other_list,
        restarted,
    ):
        with pytest.raises(ValidationError, match="nextToken is not a token this server issued"):
            pager.page(list("abcde"), scope="one", size=2, token=bad, key=str)
    assert pager.page(list("abcde"), scope="one", size=2, token=token, key=str).items == ["c", "d"]


# -- every paginated operation, through boto3 against a real server ---------------------------------
@dataclass
class World:
    platform: Platform
    agent: Any  # bedrock-agent
    runtime: Any  # bedrock-agent-runtime
    bedrock: Any  # bedrock (guardrails)
    agent_id: str
    guardrail_id: str
    kb_id: str
    custom_ds: str
    s3_ds: str


def _wait(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def _make_kb(agent: Any, name: str) -> str:
    return str(
        agent.create_knowledge_base(
            name=name,
            roleArn="arn:aws:iam::000000000000:role/kb",
            knowledgeBaseConfiguration={
                "type": "VECTOR",
                "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": EMBED},
            },
            storageConfiguration=AOSS,
        )["knowledgeBase"]["knowledgeBaseId"]
    )


def _sync(agent: Any, kb_id: str, ds_id: str) -> None:
    job = agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id)["ingestionJob"]

    def done() -> bool:
        got = agent.get_ingestion_job(
            knowledgeBaseId=kb_id, dataSourceId=ds_id, ingestionJobId=job["ingestionJobId"]
        )["ingestionJob"]
        return got["status"] in ("COMPLETE", "FAILED", "STOPPED")

    _wait(done, "an ingestion job")


def _document(doc_id: str, text: str) -> dict[str, Any]:
    return {
        "content": {
            "dataSourceType": "CUSTOM",
            "custom": {
                "customDocumentIdentifier": {"id": doc_id},
                "sourceType": "IN_LINE",
                "inlineContent": {"type": "TEXT", "textContent": {"data": text}},
            },
        }
    }


@pytest.fixture
def world(settings: Settings, home: Path) -> Iterator[World]:
    folder = home / "s3" / "docs" / "kb"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_text("Green tea is made from unoxidised leaves.", encoding="utf-8")
    (home / "s3" / "docs" / "batch").mkdir()
    record = {"recordId": "r1", "modelInput": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}}
    (home / "s3" / "docs" / "batch" / "a.jsonl").write_text(json.dumps(record), encoding="utf-8")
    app = create_app(settings)
    platform: Platform = app.state.platform
    with serve_in_thread(app) as url:
        agent = boto3.client("bedrock-agent", **client_kwargs(url))
        runtime = boto3.client("bedrock-agent-runtime", **client_kwargs(url))
        bedrock = boto3.client("bedrock", **client_kwargs(url))
        guardrail_ids = [
            bedrock.create_guardrail(
                name=f"guard-{i}",
                blockedInputMessaging="blocked",
                blockedOutputsMessaging="blocked",
                wordPolicyConfig={"wordsConfig": [{"text": f"word{i}"}]},
            )["guardrailId"]
            for i in range(3)
        ]
        for _ in range(3):
            bedrock.create_guardrail_version(guardrailIdentifier=guardrail_ids[0])
        for i in range(3):  # evaluation jobs of a missing dataset: they fail, and are listed all the same
            bedrock.create_evaluation_job(
                jobName=f"eval-{i}",
                roleArn="arn:aws:iam::123456789012:role/eval",
                evaluationConfig={
                    "automated": {
                        "datasetMetricConfigs": [
                            {
                                "taskType": "QuestionAndAnswer",
                                "dataset": {
                                    "name": "qa",
                                    "datasetLocation": {"s3Uri": "s3://docs/none.jsonl"},
                                },
                                "metricNames": ["Builtin.Toxicity"],
                            }
                        ]
                    }
                },
                inferenceConfig={
                    "models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": "m"}}]
                },
                outputDataConfig={"s3Uri": "s3://docs/out/"},
            )
        kb_ids = [_make_kb(agent, f"kb-{i}") for i in range(3)]
        kb_id = kb_ids[0]
        custom_ds = agent.create_data_source(
            knowledgeBaseId=kb_id, name="uploads", dataSourceConfiguration={"type": "CUSTOM"}
        )["dataSource"]["dataSourceId"]
        s3_ds = agent.create_data_source(
            knowledgeBaseId=kb_id,
            name="docs",
            dataSourceConfiguration={
                "type": "S3",
                "s3Configuration": {"bucketArn": "arn:aws:s3:::docs", "inclusionPrefixes": ["kb/"]},
            },
        )["dataSource"]["dataSourceId"]
        agent.create_data_source(
            knowledgeBaseId=kb_id, name="more", dataSourceConfiguration={"type": "CUSTOM"}
        )
        for _ in range(3):
            _sync(agent, kb_id, s3_ds)
        agent.ingest_knowledge_base_documents(
            knowledgeBaseId=kb_id,
            dataSourceId=custom_ds,
            documents=[_document(f"doc-{i}", f"Document number {i}.") for i in range(3)],
        )
        agent_ids = [
            agent.create_agent(
                agentName=f"bot-{i}",
                foundationModel=MODEL,
                instruction="You are a helpful assistant that answers questions politely.",
            )["agent"]["agentId"]
            for i in range(3)
        ]
        agent_id = agent_ids[0]
        for i in range(3):
            agent.create_agent_action_group(
                agentId=agent_id,
                agentVersion="DRAFT",
                actionGroupName=f"tools-{i}",
                functionSchema={"functions": [{"name": f"ping_{i}", "description": "Ping a host"}]},
                actionGroupExecutor={"customControl": "RETURN_CONTROL"},
            )
            agent.associate_agent_knowledge_base(
                agentId=agent_id, agentVersion="DRAFT", knowledgeBaseId=kb_ids[i], description=f"kb {i}"
            )
        agent.prepare_agent(agentId=agent_id)
        for i in range(2):  # each makes a numbered version: DRAFT, 1, 2 and the test alias + 2
            agent.create_agent_alias(agentId=agent_id, agentAliasName=f"alias-{i}")
        for i in range(3):
            asyncio.run(
                platform.agent_sessions.remember(
                    agent_id, "TSTALIASID", "user-1", f"session-{i}", f"summary {i}", time.time()
                )
            )
        _customizations(platform, bedrock, home)
        _wait(
            lambda: all(
                d["status"] == "INDEXED"
                for d in agent.list_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=custom_ds)[
                    "documentDetails"
                ]
            ),
            "indexing the custom documents",
        )
        for i in range(3):
            bedrock.create_model_invocation_job(
                jobName=f"batch-{i}",
                roleArn="arn:aws:iam::000000000000:role/batch",
                modelId=MODEL,
                modelInvocationType="Converse",
                inputDataConfig={"s3InputDataConfig": {"s3Uri": "s3://docs/batch/"}},
                outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://docs/out/"}},
            )
        _wait(  # a listing of jobs that still move would differ between two calls
            lambda: (
                {j["status"] for j in bedrock.list_model_invocation_jobs()["invocationJobSummaries"]}
                == {"Completed"}
            ),
            "the batch jobs",
        )
        yield World(platform, agent, runtime, bedrock, agent_id, guardrail_ids[0], kb_id, custom_ds, s3_ds)


def _customizations(platform: Platform, bedrock: Any, home: Path) -> None:
    """3 customization jobs (their data fails them while it is read: a bad line past what create reads),
    a custom model listed for each, and 3 provisioned throughputs and 3 deployments of them."""
    folder = home / "s3" / "train"
    folder.mkdir(parents=True)
    filler = json.dumps({"prompt": "p", "completion": "c" * 1000}) + "\n"
    lines = [json.dumps({"prompt": "q", "completion": "a"}), "{bad"] + [filler] * (CHEAP_CHECK_BYTES // 1000)
    (folder / "big.jsonl").write_text("\n".join(lines), encoding="utf-8")
    arns = [
        bedrock.create_model_customization_job(
            jobName=f"job-{i}",
            customModelName=f"model-{i}",
            roleArn="arn:aws:iam::123456789012:role/r",
            baseModelIdentifier="amazon.nova-micro-v1:0:128k",
            trainingDataConfig={"s3Uri": "s3://train/big.jsonl"},
            outputDataConfig={"s3Uri": "s3://train/out/"},
        )["jobArn"]
        for i in range(3)
    ]
    _wait(
        lambda: all(bedrock.get_model_customization_job(jobIdentifier=a)["status"] == "Failed" for a in arns),
        "the customization jobs failing on their data",
    )
    for arn in arns:
        record = asyncio.run(platform.customization.get_job(arn)).record
        asyncio.run(platform.customization.add_model(record, home / "adapter.gguf"))
    for i, model in enumerate(bedrock.list_custom_models()["modelSummaries"]):
        bedrock.create_provisioned_model_throughput(
            modelUnits=1, provisionedModelName=f"pt-{i}", modelId=model["modelArn"]
        )
        bedrock.create_custom_model_deployment(modelDeploymentName=f"dep-{i}", modelArn=model["modelArn"])
    (folder / "m.gguf").write_bytes(b"GGUF" + bytes(16))
    imports = [
        bedrock.create_model_import_job(
            jobName=f"import-{i}",
            importedModelName=f"imported-{i}",
            roleArn="arn:aws:iam::123456789012:role/r",
            modelDataSource={"s3DataSource": {"s3Uri": "s3://train/m.gguf"}},
        )["jobArn"]
        for i in range(3)
    ]
    _wait(
        lambda: all(bedrock.get_model_import_job(jobIdentifier=a)["status"] == "Completed" for a in imports),
        "the model imports",
    )


def _listings(w: World) -> list[tuple[Any, str, dict[str, Any], str]]:
    """(client, operation, arguments, result key) of every paginated operation haniwa serves."""
    agent, kb, ag = w.agent, {"knowledgeBaseId": w.kb_id}, {"agentId": w.agent_id}
    draft = {**ag, "agentVersion": "DRAFT"}
    return [
        (agent, "list_knowledge_bases", {}, "knowledgeBaseSummaries"),
        (agent, "list_data_sources", kb, "dataSourceSummaries"),
        (agent, "list_ingestion_jobs", {**kb, "dataSourceId": w.s3_ds}, "ingestionJobSummaries"),
        (
            agent,
            "list_ingestion_jobs",
            {**kb, "dataSourceId": w.s3_ds, "sortBy": {"attribute": "STARTED_AT", "order": "DESCENDING"}},
            "ingestionJobSummaries",
        ),
        (agent, "list_knowledge_base_documents", {**kb, "dataSourceId": w.custom_ds}, "documentDetails"),
        (agent, "list_agents", {}, "agentSummaries"),
        (agent, "list_agent_action_groups", draft, "actionGroupSummaries"),
        (agent, "list_agent_knowledge_bases", draft, "agentKnowledgeBaseSummaries"),
        (agent, "list_agent_versions", ag, "agentVersionSummaries"),
        (agent, "list_agent_aliases", ag, "agentAliasSummaries"),
        (
            w.runtime,
            "get_agent_memory",
            {**ag, "agentAliasId": "TSTALIASID", "memoryType": "SESSION_SUMMARY", "memoryId": "user-1"},
            "memoryContents",
        ),
        (w.bedrock, "list_guardrails", {}, "guardrails"),
        (w.bedrock, "list_guardrails", {"guardrailIdentifier": w.guardrail_id}, "guardrails"),
        (w.bedrock, "list_evaluation_jobs", {}, "jobSummaries"),
        (w.bedrock, "list_evaluation_jobs", {"sortOrder": "Ascending"}, "jobSummaries"),
        (w.bedrock, "list_model_invocation_jobs", {}, "invocationJobSummaries"),
        (
            w.bedrock,
            "list_model_invocation_jobs",
            {"sortOrder": "Ascending", "nameContains": "batch"},
            "invocationJobSummaries",
        ),
        (w.bedrock, "list_model_customization_jobs", {}, "modelCustomizationJobSummaries"),
        (w.bedrock, "list_custom_models", {}, "modelSummaries"),
        (w.bedrock, "list_provisioned_model_throughputs", {}, "provisionedModelSummaries"),
        (w.bedrock, "list_custom_model_deployments", {}, "modelDeploymentSummaries"),
        (w.bedrock, "list_model_import_jobs", {}, "modelImportJobSummaries"),
        (w.bedrock, "list_imported_models", {}, "modelSummaries"),
    ]


def _limit(op: str) -> str:
    return "maxItems" if op == "get_agent_memory" else "maxResults"


def test_every_paginator_walks_several_pages(world: World) -> None:
    listings = _listings(world)
    # the table holds every operation that haniwa serves and botocore paginates (Retrieve and Rerank
    # answer in one page: the next test)
    session = botocore.session.get_session()
    paginated = {
        (service, xform_name(op))
        for service, op in world.platform.handlers
        if op in session.get_paginator_model(service)._paginator_config
    }
    assert paginated - {(c.meta.service_model.service_name, op) for c, op, _, _ in listings} == {
        ("bedrock-agent-runtime", "retrieve"),
        ("bedrock-agent-runtime", "rerank"),
    }
    for client, op, kwargs, key in listings:
        whole = getattr(client, op)(**kwargs, **{_limit(op): 1000})
        assert "nextToken" not in whole
        assert len(whole[key]) > PAGE, (op, whole[key])
        pages = list(client.get_paginator(op).paginate(**kwargs, PaginationConfig={"PageSize": PAGE}))
        assert len(pages) == -(-len(whole[key]) // PAGE), op
        assert all(len(p[key]) == PAGE for p in pages[:-1]) and "nextToken" not in pages[-1]
        assert [item for p in pages for item in p[key]] == whole[key], op
        # botocore's MaxItems cuts mid-page and resumes from our token
        first = client.get_paginator(op).paginate(
            **kwargs, PaginationConfig={"PageSize": PAGE, "MaxItems": 1}
        )
        cut = first.build_full_result()
        rest = client.get_paginator(op).paginate(
            **kwargs, PaginationConfig={"PageSize": PAGE, "StartingToken": cut["NextToken"]}
        )
        assert cut[key] + rest.build_full_result()[key] == whole[key], op


def _code(call: Callable[..., Any], **kw: Any) -> str:
    with pytest.raises(ClientError) as err:
        call(**kw)
    return str(err.value.response["Error"]["Code"])


def test_a_token_haniwa_did_not_issue_is_a_validation_exception(world: World, settings: Settings) -> None:
    listings = _listings(world)
    tokens = {}
    for client, op, kwargs, _ in listings:
        page = getattr(client, op)(**kwargs, **{_limit(op): PAGE})
        tokens[op, json.dumps(kwargs, sort_keys=True)] = page["nextToken"]
    for client, op, kwargs, _ in listings:
        token = tokens[op, json.dumps(kwargs, sort_keys=True)]
        # a different page size is the same list
        assert getattr(client, op)(**kwargs, nextToken=token, **{_limit(op): 1})
        others = [t for t in tokens.values() if t != token]
        for bad in ("garbage", "0", "2", token + "x", _tampered(token), *others):
            assert _code(getattr(client, op), **kwargs, nextToken=bad) == "ValidationException", (op, bad)
    # the same operation, another parent: data sources of another knowledge base
    other_kb = world.agent.list_knowledge_bases()["knowledgeBaseSummaries"][1]["knowledgeBaseId"]
    token = tokens["list_data_sources", json.dumps({"knowledgeBaseId": world.kb_id})]
    code = _code(world.agent.list_data_sources, knowledgeBaseId=other_kb, nextToken=token)
    assert code == "ValidationException"

    # Retrieve and Rerank answer in one page: haniwa issues them no token, so it accepts none
    query = {"text": "tea"}
    assert world.runtime.retrieve(knowledgeBaseId=world.kb_id, retrievalQuery=query)["retrievalResults"]
    code = _code(world.runtime.retrieve, knowledgeBaseId=world.kb_id, retrievalQuery=query, nextToken="x")
    assert code == "ValidationException"
    rerank = {
        "queries": [{"type": "TEXT", "textQuery": {"text": "tea"}}],
        "sources": [
            {
                "type": "INLINE",
                "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": "green tea"}},
            }
        ],
        "rerankingConfiguration": {
            "type": "BEDROCK_RERANKING_MODEL",
            "bedrockRerankingConfiguration": {
                "modelConfiguration": {
                    "modelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.rerank-v1:0"
                }
            },
        },
    }
    assert (
        _code(world.runtime.rerank, **rerank, nextToken=tokens["list_agents", "{}"]) == "ValidationException"
    )


def test_tokens_end_with_the_server(settings: Settings) -> None:
    """A token from before a restart is refused, not taken as a position in a list that may have changed."""
    token = None
    for _ in range(2):
        with serve_in_thread(create_app(settings)) as url:
            agent = boto3.client("bedrock-agent", **client_kwargs(url))
            if token is None:
                for i in range(3):
                    _make_kb(agent, f"kb-{i}")
                token = agent.list_knowledge_bases(maxResults=PAGE)["nextToken"]
                assert agent.list_knowledge_bases(nextToken=token)["knowledgeBaseSummaries"]
            else:
                assert _code(agent.list_knowledge_bases, nextToken=token) == "ValidationException"
