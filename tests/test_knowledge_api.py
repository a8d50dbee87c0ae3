"""Knowledge bases end to end through boto3: bedrock-agent (KBs, data sources, ingestion jobs, documents)
and bedrock-agent-runtime (Retrieve, RetrieveAndGenerate(+Stream), Rerank) against a real server, with
the deterministic echo chat model and hash embedder (the bundled models run in test_knowledge_models)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs

ROBOT_JA = """# ハニワロボ HR-7 製品仕様書

ハニワロボ HR-7 は家庭用の掃除ロボットです。

## 材料

| 材料 | 数量 |
|---|---|
| アルミニウム | 12 kg |
| 銅線 | 3 m |
| 強化ガラス | 2 枚 |

## 製造手順

まずアルミニウムの骨格を溶接します。次に銅線で配線します。最後に強化ガラスを取り付けます。

## 法的事項

販売には電気用品安全法の届出が必要です。
"""
TEA_EN = """Green tea

Green tea is made from unoxidised leaves of Camellia sinensis. It contains catechins and caffeine.
Matcha is a powdered green tea used in the Japanese tea ceremony.
"""
WEATHER_JA = "東京の天気\n\n東京の天気は晴れのち曇りです。明日の最高気温は二十度の予報です。"
BIKES_EN = "Bicycle maintenance\n\nOil the chain every month. Check tyre pressure before each ride."

EMBED = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"
CHAT = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
AOSS = {
    "type": "OPENSEARCH_SERVERLESS",
    "opensearchServerlessConfiguration": {
        "collectionArn": "arn:aws:aoss:us-east-1:000000000000:collection/x",
        "vectorIndexName": "idx",
        "fieldMapping": {"vectorField": "v", "textField": "t", "metadataField": "m"},
    },
}


@pytest.fixture
def corpus(home: Path) -> Path:
    folder = home / "s3" / "factory-docs" / "kb"
    folder.mkdir(parents=True)
    (folder / "robot.md").write_text(ROBOT_JA, encoding="utf-8")
    (folder / "robot.md.metadata.json").write_text(
        json.dumps({"metadataAttributes": {"category": "product", "year": 2026, "tags": ["robot", "ja"]}}),
        encoding="utf-8",
    )
    (folder / "tea.txt").write_text(TEA_EN, encoding="utf-8")
    (folder / "tea.txt.metadata.json").write_text(
        json.dumps({"metadataAttributes": {"category": "food", "year": 2024}}), encoding="utf-8"
    )
    (folder / "weather.txt").write_text(WEATHER_JA, encoding="utf-8")
    (folder / "sub").mkdir()
    (folder / "sub" / "bikes.txt").write_text(BIKES_EN, encoding="utf-8")
    return folder


@pytest.fixture
def agent(server: str) -> Any:
    return boto3.client("bedrock-agent", **client_kwargs(server))


@pytest.fixture
def agent_rt(server: str) -> Any:
    return boto3.client("bedrock-agent-runtime", **client_kwargs(server))


def make_kb(agent: Any, name: str = "factory", storage: dict[str, Any] | None = None) -> str:
    kb = agent.create_knowledge_base(
        name=name,
        roleArn="arn:aws:iam::000000000000:role/kb",
        knowledgeBaseConfiguration={
            "type": "VECTOR",
            "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": EMBED},
        },
        storageConfiguration=storage or AOSS,
    )["knowledgeBase"]
    assert kb["status"] == "ACTIVE"
    return str(kb["knowledgeBaseId"])


def make_s3_source(agent: Any, kb_id: str, **extra: Any) -> str:
    ds = agent.create_data_source(
        knowledgeBaseId=kb_id,
        name="docs",
        dataSourceConfiguration={
            "type": "S3",
            "s3Configuration": {"bucketArn": "arn:aws:s3:::factory-docs", "inclusionPrefixes": ["kb/"]},
        },
        **extra,
    )["dataSource"]
    return str(ds["dataSourceId"])


def sync(agent: Any, kb_id: str, ds_id: str, timeout: float = 60) -> dict[str, Any]:
    job = agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id)["ingestionJob"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = agent.get_ingestion_job(
            knowledgeBaseId=kb_id, dataSourceId=ds_id, ingestionJobId=job["ingestionJobId"]
        )["ingestionJob"]
        if job["status"] in ("COMPLETE", "FAILED", "STOPPED"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"ingestion job still {job['status']} after {timeout}s")


@pytest.fixture
def synced(agent: Any, corpus: Path) -> tuple[str, str]:
    kb_id = make_kb(agent)
    ds_id = make_s3_source(agent, kb_id)
    job = sync(agent, kb_id, ds_id)
    assert job["status"] == "COMPLETE", job
    return kb_id, ds_id


def uris(results: list[dict[str, Any]]) -> list[str]:
    return [r["location"]["s3Location"]["uri"] for r in results]


def test_ingest_and_retrieve_japanese_and_english(agent: Any, agent_rt: Any, synced: tuple[str, str]) -> None:
    kb_id, ds_id = synced
    jobs = agent.list_ingestion_jobs(knowledgeBaseId=kb_id, dataSourceId=ds_id)["ingestionJobSummaries"]
    stats = jobs[0]["statistics"]
    assert stats["numberOfDocumentsScanned"] == 4
    assert stats["numberOfNewDocumentsIndexed"] == 4
    assert stats["numberOfDocumentsFailed"] == 0

    ja = agent_rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "材料の数量は？"})
    top = ja["retrievalResults"][0]
    assert top["location"] == {"type": "S3", "s3Location": {"uri": "s3://factory-docs/kb/robot.md"}}
    assert "アルミニウム" in top["content"]["text"] and "12 kg" in top["content"]["text"]
    assert top["metadata"]["category"] == "product" and top["metadata"]["tags"] == ["robot", "ja"]
    assert top["metadata"]["x-amz-bedrock-kb-source-uri"] == "s3://factory-docs/kb/robot.md"
    assert all(0.0 <= r["score"] <= 1.0 for r in ja["retrievalResults"])

    weather = agent_rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "東京の天気"})
    assert uris(weather["retrievalResults"])[0] == "s3://factory-docs/kb/weather.txt"

    en = agent_rt.retrieve(
        knowledgeBaseId=kb_id,
        retrievalQuery={"text": "What is matcha?"},
        retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 2}},
    )
    assert len(en["retrievalResults"]) == 2
    assert uris(en["retrievalResults"])[0] == "s3://factory-docs/kb/tea.txt"


def test_semantic_and_hybrid_search_types(agent_rt: Any, synced: tuple[str, str]) -> None:
    kb_id, _ = synced
    for kind in ("SEMANTIC", "HYBRID"):
        res = agent_rt.retrieve(
            knowledgeBaseId=kb_id,
            retrievalQuery={"text": "tyre pressure chain"},
            retrievalConfiguration={
                "vectorSearchConfiguration": {"numberOfResults": 3, "overrideSearchType": kind}
            },
        )["retrievalResults"]
        assert uris(res)[0] == "s3://factory-docs/kb/sub/bikes.txt", kind
        scores = [r["score"] for r in res]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    hybrid = agent_rt.retrieve(
        knowledgeBaseId=kb_id,
        retrievalQuery={"text": "tyre pressure chain"},
        retrievalConfiguration={
            "vectorSearchConfiguration": {"numberOfResults": 1, "overrideSearchType": "HYBRID"}
        },
    )["retrievalResults"]
    # first in both the keyword and the dense list: the fused score is exactly 1
    assert hybrid[0]["score"] == pytest.approx(1.0)


def test_metadata_filters(agent_rt: Any, synced: tuple[str, str]) -> None:
    kb_id, _ = synced

    def ask(flt: dict[str, Any]) -> list[str]:
        res = agent_rt.retrieve(
            knowledgeBaseId=kb_id,
            retrievalQuery={"text": "材料 tea weather chain"},
            retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 10, "filter": flt}},
        )["retrievalResults"]
        return sorted(set(uris(res)))

    assert ask({"equals": {"key": "category", "value": "food"}}) == ["s3://factory-docs/kb/tea.txt"]
    assert ask({"greaterThan": {"key": "year", "value": 2025}}) == ["s3://factory-docs/kb/robot.md"]
    assert ask({"listContains": {"key": "tags", "value": "robot"}}) == ["s3://factory-docs/kb/robot.md"]
    assert ask(
        {
            "orAll": [
                {"equals": {"key": "category", "value": "food"}},
                {"startsWith": {"key": "x-amz-bedrock-kb-source-uri", "value": "s3://factory-docs/kb/sub/"}},
            ]
        }
    ) == ["s3://factory-docs/kb/sub/bikes.txt", "s3://factory-docs/kb/tea.txt"]
    assert ask({"in": {"key": "category", "value": ["nothing"]}}) == []
    with pytest.raises(ClientError) as err:
        ask({"greaterThan": {"key": "year", "value": "recent"}})
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_incremental_resync(agent: Any, agent_rt: Any, corpus: Path, synced: tuple[str, str]) -> None:
    kb_id, ds_id = synced
    again = sync(agent, kb_id, ds_id)["statistics"]
    assert again["numberOfDocumentsScanned"] == 4
    assert again["numberOfNewDocumentsIndexed"] == again["numberOfModifiedDocumentsIndexed"] == 0
    assert again["numberOfDocumentsDeleted"] == 0

    (corpus / "tea.txt").write_text(
        TEA_EN + "\nGyokuro is shaded for three weeks before harvest.\n", encoding="utf-8"
    )
    (corpus / "weather.txt").unlink()
    (corpus / "sub" / "bikes.txt").touch()  # a newer mtime, same content: read and hashed, not re-indexed
    stats = sync(agent, kb_id, ds_id)["statistics"]
    assert stats["numberOfDocumentsScanned"] == 3
    assert stats["numberOfModifiedDocumentsIndexed"] == 1
    assert stats["numberOfDocumentsDeleted"] == 1
    assert stats["numberOfNewDocumentsIndexed"] == 0

    res = agent_rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "Gyokuro shaded harvest"})
    assert "Gyokuro" in res["retrievalResults"][0]["content"]["text"]
    res = agent_rt.retrieve(
        knowledgeBaseId=kb_id,
        retrievalQuery={"text": "東京の天気"},
        retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 10}},
    )
    assert "s3://factory-docs/kb/weather.txt" not in uris(res["retrievalResults"])


def test_retrieve_and_generate_cites_the_document(agent_rt: Any, synced: tuple[str, str]) -> None:
    kb_id, _ = synced
    config = {
        "type": "KNOWLEDGE_BASE",
        "knowledgeBaseConfiguration": {"knowledgeBaseId": kb_id, "modelArn": CHAT},
    }
    out = agent_rt.retrieve_and_generate(
        input={"text": "ハニワロボの材料を教えて"}, retrieveAndGenerateConfiguration=config
    )
    text = out["output"]["text"]
    assert text  # the echo model answers with the question itself
    cited = [c for c in out["citations"] if c["retrievedReferences"]]
    assert cited
    for c in cited:
        part = c["generatedResponsePart"]["textResponsePart"]
        assert text[part["span"]["start"] : part["span"]["end"] + 1] == part["text"]
    refs = [r["location"]["s3Location"]["uri"] for c in cited for r in c["retrievedReferences"]]
    assert "s3://factory-docs/kb/robot.md" in refs

    session = out["sessionId"]
    follow = agent_rt.retrieve_and_generate(
        input={"text": "製造手順は？"}, retrieveAndGenerateConfiguration=config, sessionId=session
    )
    assert follow["sessionId"] == session
    with pytest.raises(ClientError) as err:
        agent_rt.retrieve_and_generate(
            input={"text": "?"}, retrieveAndGenerateConfiguration=config, sessionId="no-such-session"
        )
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"

    decomposed = agent_rt.retrieve_and_generate(
        input={"text": "材料と製造手順を教えて"},
        retrieveAndGenerateConfiguration={
            "type": "KNOWLEDGE_BASE",
            "knowledgeBaseConfiguration": {
                "knowledgeBaseId": kb_id,
                "modelArn": CHAT,
                "orchestrationConfiguration": {
                    "queryTransformationConfiguration": {"type": "QUERY_DECOMPOSITION"}
                },
                "generationConfiguration": {
                    "promptTemplate": {"textPromptTemplate": "Use these: $search_results$ to answer $query$"}
                },
            },
        },
    )
    assert decomposed["output"]["text"]


def test_retrieve_and_generate_stream(agent_rt: Any, synced: tuple[str, str]) -> None:
    kb_id, _ = synced
    out = agent_rt.retrieve_and_generate_stream(
        input={"text": "ハニワロボの材料を教えて"},
        retrieveAndGenerateConfiguration={
            "type": "KNOWLEDGE_BASE",
            "knowledgeBaseConfiguration": {"knowledgeBaseId": kb_id, "modelArn": CHAT},
        },
    )
    assert out["sessionId"]
    events = list(out["stream"])
    text = "".join(e["output"]["text"] for e in events if "output" in e)
    assert text
    citations = [e["citation"] for e in events if "citation" in e]
    assert citations
    refs = {r["location"]["s3Location"]["uri"] for c in citations for r in c["retrievedReferences"]}
    assert "s3://factory-docs/kb/robot.md" in refs


def test_rerank(agent_rt: Any) -> None:
    docs = [
        "Oil the bicycle chain monthly.",
        "ハニワロボの材料はアルミニウムです。",
        "Matcha is powdered green tea.",
    ]
    out = agent_rt.rerank(
        queries=[{"type": "TEXT", "textQuery": {"text": "green tea matcha"}}],
        sources=[
            {"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": d}}}
            for d in docs
        ],
        rerankingConfiguration={
            "type": "BEDROCK_RERANKING_MODEL",
            "bedrockRerankingConfiguration": {
                "numberOfResults": 2,
                "modelConfiguration": {
                    "modelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.rerank-v1:0"
                },
            },
        },
    )
    assert [r["index"] for r in out["results"]][0] == 2
    assert len(out["results"]) == 2
    assert out["results"][0]["relevanceScore"] >= out["results"][1]["relevanceScore"]


def test_retrieve_with_reranking(agent_rt: Any, synced: tuple[str, str]) -> None:
    kb_id, _ = synced
    res = agent_rt.retrieve(
        knowledgeBaseId=kb_id,
        retrievalQuery={"text": "matcha tea ceremony"},
        retrievalConfiguration={
            "vectorSearchConfiguration": {
                "numberOfResults": 2,
                "rerankingConfiguration": {
                    "type": "BEDROCK_RERANKING_MODEL",
                    "bedrockRerankingConfiguration": {
                        "modelConfiguration": {"modelArn": "amazon.rerank-v1:0"},
                        "numberOfRerankedResults": 4,
                    },
                },
            }
        },
    )["retrievalResults"]
    assert uris(res)[0] == "s3://factory-docs/kb/tea.txt"


def test_custom_documents(agent: Any, agent_rt: Any) -> None:
    kb_id = make_kb(agent, "custom")
    ds_id = agent.create_data_source(
        knowledgeBaseId=kb_id, name="uploads", dataSourceConfiguration={"type": "CUSTOM"}
    )["dataSource"]["dataSourceId"]
    out = agent.ingest_knowledge_base_documents(
        knowledgeBaseId=kb_id,
        dataSourceId=ds_id,
        documents=[
            {
                "content": {
                    "dataSourceType": "CUSTOM",
                    "custom": {
                        "customDocumentIdentifier": {"id": "faq-1"},
                        "sourceType": "IN_LINE",
                        "inlineContent": {
                            "type": "TEXT",
                            "textContent": {"data": "返品は購入後30日以内に受け付けます。"},
                        },
                    },
                },
                "metadata": {
                    "type": "IN_LINE_ATTRIBUTE",
                    "inlineAttributes": [{"key": "lang", "value": {"type": "STRING", "stringValue": "ja"}}],
                },
            },
            {
                "content": {
                    "dataSourceType": "CUSTOM",
                    "custom": {
                        "customDocumentIdentifier": {"id": "notes.md"},
                        "sourceType": "IN_LINE",
                        "inlineContent": {
                            "type": "BYTE",
                            "byteContent": {
                                "mimeType": "text/markdown",
                                "data": b"# Shipping\n\nWe ship worldwide.",
                            },
                        },
                    },
                }
            },
        ],
    )
    assert {d["status"] for d in out["documentDetails"]} <= {"STARTING", "IN_PROGRESS", "INDEXED"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        docs = agent.list_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id)[
            "documentDetails"
        ]
        if all(d["status"] == "INDEXED" for d in docs):
            break
        time.sleep(0.05)
    assert sorted(d["identifier"]["custom"]["id"] for d in docs) == ["faq-1", "notes.md"]
    assert all(d["status"] == "INDEXED" for d in docs)

    res = agent_rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "返品"})["retrievalResults"]
    assert res[0]["location"] == {"type": "CUSTOM", "customDocumentLocation": {"id": "faq-1"}}
    assert res[0]["metadata"]["lang"] == "ja"

    with pytest.raises(ClientError) as err:
        agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id)
    assert err.value.response["Error"]["Code"] == "ValidationException"

    agent.delete_knowledge_base_documents(
        knowledgeBaseId=kb_id,
        dataSourceId=ds_id,
        documentIdentifiers=[{"dataSourceType": "CUSTOM", "custom": {"id": "faq-1"}}],
    )
    res = agent_rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "返品"})["retrievalResults"]
    assert all(r["location"]["customDocumentLocation"]["id"] != "faq-1" for r in res)


def test_crud_and_bad_input(agent: Any, agent_rt: Any, corpus: Path) -> None:
    kb_id = make_kb(agent)
    assert agent.get_knowledge_base(knowledgeBaseId=kb_id)["knowledgeBase"]["storageConfiguration"] == AOSS
    names = [k["name"] for k in agent.list_knowledge_bases()["knowledgeBaseSummaries"]]
    assert names == ["factory"]

    def code(fn: Any, **kw: Any) -> tuple[str, int]:
        with pytest.raises(ClientError) as err:
            fn(**kw)
        return err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]

    assert code(make_kb, agent=agent) == ("ConflictException", 409)
    assert code(agent_rt.retrieve, knowledgeBaseId="NOPE000000", retrievalQuery={"text": "x"}) == (
        "ResourceNotFoundException",
        404,
    )
    assert code(agent.get_knowledge_base, knowledgeBaseId="NOPE000000")[0] == "ResourceNotFoundException"
    # an id of the wrong form fails the service model's pattern ([0-9a-zA-Z]{10}), as on Bedrock
    assert code(agent.get_knowledge_base, knowledgeBaseId="NOPE") == ("ValidationException", 400)
    assert (
        code(agent_rt.retrieve, knowledgeBaseId=kb_id, retrievalQuery={"text": "   "})[0]
        == "ValidationException"
    )
    for prefix in ("../other-bucket/", "/etc/"):
        err = code(
            agent.create_data_source,
            knowledgeBaseId=kb_id,
            name="escape",
            dataSourceConfiguration={
                "type": "S3",
                "s3Configuration": {"bucketArn": "arn:aws:s3:::factory-docs", "inclusionPrefixes": [prefix]},
            },
        )
        assert err == ("ValidationException", 400), prefix
    assert (
        code(
            agent.create_data_source,
            knowledgeBaseId=kb_id,
            name="bad-arn",
            dataSourceConfiguration={"type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::../etc"}},
        )[0]
        == "ValidationException"
    )
    assert (
        code(
            agent.create_knowledge_base,
            name="chatty",
            roleArn="arn:aws:iam::000000000000:role/kb",
            knowledgeBaseConfiguration={
                "type": "VECTOR",
                "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": CHAT},
            },
        )[0]
        == "ValidationException"
    )

    ds_id = make_s3_source(
        agent,
        kb_id,
        vectorIngestionConfiguration={
            "chunkingConfiguration": {
                "chunkingStrategy": "HIERARCHICAL",
                "hierarchicalChunkingConfiguration": {
                    "levelConfigurations": [{"maxTokens": 200}, {"maxTokens": 40}],
                    "overlapTokens": 10,
                },
            }
        },
    )
    assert sync(agent, kb_id, ds_id)["status"] == "COMPLETE"
    res = agent_rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "強化ガラス"})["retrievalResults"]
    # hierarchical: a small child matched, its parent section is returned
    assert "強化ガラス" in res[0]["content"]["text"]
    assert "アルミニウム" in res[0]["content"]["text"]

    assert agent.delete_data_source(knowledgeBaseId=kb_id, dataSourceId=ds_id)["status"] == "DELETING"
    assert (
        code(agent.get_data_source, knowledgeBaseId=kb_id, dataSourceId=ds_id)[0]
        == "ResourceNotFoundException"
    )
    assert (
        agent_rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "強化ガラス"})["retrievalResults"]
        == []
    )
    assert agent.delete_knowledge_base(knowledgeBaseId=kb_id)["status"] == "DELETING"
    assert code(agent.get_knowledge_base, knowledgeBaseId=kb_id)[0] == "ResourceNotFoundException"


def test_s3_endpoint_data_source(home: Path) -> None:
    """HANIWA_S3_ENDPOINT: the same data source reads a real S3-protocol server (moto) instead of a folder."""
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="t",
            aws_secret_access_key="t",
        )
        s3.create_bucket(Bucket="factory-docs")
        s3.put_object(Bucket="factory-docs", Key="kb/robot.md", Body=ROBOT_JA.encode())
        s3.put_object(Bucket="factory-docs", Key="kb/tea.txt", Body=TEA_EN.encode())
        settings = Settings(
            home=home, profile="fast", s3_endpoint=endpoint, s3_access_key_id="t", s3_secret_access_key="t"
        )
        with serve_in_thread(create_app(settings)) as url:
            agent = boto3.client("bedrock-agent", **client_kwargs(url))
            rt = boto3.client("bedrock-agent-runtime", **client_kwargs(url))
            kb_id = make_kb(agent)
            ds_id = make_s3_source(agent, kb_id)
            job = sync(agent, kb_id, ds_id)
            assert job["statistics"]["numberOfNewDocumentsIndexed"] == 2, job
            res = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "ハニワロボの材料"})[
                "retrievalResults"
            ]
            assert uris(res)[0] == "s3://factory-docs/kb/robot.md"
            s3.delete_object(Bucket="factory-docs", Key="kb/tea.txt")
            assert sync(agent, kb_id, ds_id)["statistics"]["numberOfDocumentsDeleted"] == 1
    finally:
        moto.stop()


RDS = {
    "type": "RDS",
    "rdsConfiguration": {
        "resourceArn": "arn:aws:rds:us-east-1:000000000000:cluster:kb",
        "credentialsSecretArn": "arn:aws:secretsmanager:us-east-1:000000000000:secret:kb",
        "databaseName": "kb",
        "tableName": "bedrock_kb",
        "fieldMapping": {
            "primaryKeyField": "id",
            "vectorField": "embedding",
            "textField": "chunks",
            "metadataField": "metadata",
        },
    },
}


def test_rds_knowledge_base_runs_on_pgvector(home: Path, corpus: Path, pg_url: str) -> None:
    """The same calls, with RDS storage and HANIWA_PG_URL set: the chunks live in PostgreSQL + pgvector."""
    import psycopg
    from pydantic import SecretStr

    settings = Settings(home=home, profile="fast", pg_url=SecretStr(pg_url))
    with serve_in_thread(create_app(settings)) as url:
        agent = boto3.client("bedrock-agent", **client_kwargs(url))
        rt = boto3.client("bedrock-agent-runtime", **client_kwargs(url))
        kb_id = make_kb(agent, "on-pg", storage=RDS)
        ds_id = make_s3_source(agent, kb_id)
        assert sync(agent, kb_id, ds_id)["statistics"]["numberOfNewDocumentsIndexed"] == 4
        res = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "材料の数量は？"})[
            "retrievalResults"
        ]
        assert uris(res)[0] == "s3://factory-docs/kb/robot.md"
        flt = {"equals": {"key": "category", "value": "food"}}
        res = rt.retrieve(
            knowledgeBaseId=kb_id,
            retrievalQuery={"text": "材料"},
            retrievalConfiguration={"vectorSearchConfiguration": {"filter": flt}},
        )["retrievalResults"]
        assert uris(res) == ["s3://factory-docs/kb/tea.txt"]
        (corpus / "weather.txt").unlink()
        assert sync(agent, kb_id, ds_id)["statistics"]["numberOfDocumentsDeleted"] == 1
        with psycopg.connect(pg_url) as conn:
            tables = [
                r[0]
                for r in conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'haniwa_kb_%'")
            ]
            rows = sum(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)  # type: ignore[index]
        assert tables and rows >= 3
        agent.delete_knowledge_base(knowledgeBaseId=kb_id)
        with psycopg.connect(pg_url) as conn:
            left = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'haniwa_kb_%'"
            ).fetchone()
        assert left is not None and left[0] == len(tables) - 1


def test_stop_ingestion_job(agent: Any, home: Path) -> None:
    """StopIngestionJob on a running job: STOPPING, then STOPPED part-way; a stopped job cannot be stopped
    again, and the next job finishes what it left."""
    folder = home / "s3" / "factory-docs" / "kb"
    folder.mkdir(parents=True)
    for i in range(400):
        (folder / f"part{i:03d}.txt").write_text(
            f"Part P{i:03d} is stored in bin {i % 13}.\n", encoding="utf-8"
        )
    kb_id = make_kb(agent)
    ds_id = make_s3_source(agent, kb_id)
    ids = {"knowledgeBaseId": kb_id, "dataSourceId": ds_id}
    job = agent.start_ingestion_job(**ids)["ingestionJob"]
    assert job["status"] in ("STARTING", "IN_PROGRESS")
    stopping = agent.stop_ingestion_job(**ids, ingestionJobId=job["ingestionJobId"])["ingestionJob"]
    assert stopping["status"] in ("STOPPING", "STOPPED")
    deadline = time.monotonic() + 30
    while (job := agent.get_ingestion_job(**ids, ingestionJobId=job["ingestionJobId"])["ingestionJob"])[
        "status"
    ] == "STOPPING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job["status"] == "STOPPED"
    assert job["statistics"]["numberOfDocumentsScanned"] < 400
    with pytest.raises(ClientError) as err:
        agent.stop_ingestion_job(**ids, ingestionJobId=job["ingestionJobId"])
    assert err.value.response["Error"]["Code"] == "ConflictException"
    done = sync(agent, kb_id, ds_id)
    assert done["status"] == "COMPLETE"
    assert done["statistics"]["numberOfDocumentsScanned"] == 400
    assert (
        job["statistics"]["numberOfNewDocumentsIndexed"] + done["statistics"]["numberOfNewDocumentsIndexed"]
        == 400
    )


def test_data_sources_from_before_the_domain_config_are_upgraded(home: Path, corpus: Path) -> None:
    """A data source written when the service still read the wire spec (no ``config``) gets its domain
    config at the next start, from the api layer's conversion, and keeps its bucket, prefixes and
    chunking: its next sync indexes the same documents the same way."""
    import sqlite3

    settings = Settings(home=home, profile="fast")
    hierarchical = {
        "chunkingConfiguration": {
            "chunkingStrategy": "HIERARCHICAL",
            "hierarchicalChunkingConfiguration": {
                "levelConfigurations": [{"maxTokens": 600}, {"maxTokens": 120}],
                "overlapTokens": 30,
            },
        }
    }
    with serve_in_thread(create_app(settings)) as url:
        agent = boto3.client("bedrock-agent", **client_kwargs(url))
        kb_id = make_kb(agent)
        ds_id = make_s3_source(agent, kb_id, vectorIngestionConfiguration=hierarchical)
    db = sqlite3.connect(settings.db_path)
    (config,) = db.execute("SELECT config FROM data_sources WHERE id = ?", (ds_id,)).fetchone()
    db.execute("UPDATE data_sources SET config = NULL")  # as a database from before m008 holds it
    db.commit()
    db.close()
    with serve_in_thread(create_app(settings)) as url:
        agent = boto3.client("bedrock-agent", **client_kwargs(url))
        job = sync(agent, kb_id, ds_id)
        assert job["status"] == "COMPLETE", job
        # the four documents under the inclusion prefix kb/ (kb/sub/ included), none twice
        assert job["statistics"]["numberOfNewDocumentsIndexed"] == 4, job
        got = agent.get_data_source(knowledgeBaseId=kb_id, dataSourceId=ds_id)["dataSource"]
        assert got["vectorIngestionConfiguration"] == hierarchical
    db = sqlite3.connect(settings.db_path)
    assert db.execute("SELECT config FROM data_sources WHERE id = ?", (ds_id,)).fetchone() == (config,)
    db.close()
    assert '"strategy": "Hierarchical"' in config and "arn:aws:s3:::factory-docs" in config
