"""The done-when of knowledge bases with the real bundled models: multilingual-e5-small embeds, the
default chat model answers from a Japanese product sheet it never saw, with citations to that sheet."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs
from tests.test_knowledge_api import BIKES_EN, ROBOT_JA, TEA_EN, WEATHER_JA, sync, uris

pytestmark = pytest.mark.model

E5 = "amazon.titan-embed-text-v2:0"  # served by the bundled multilingual-e5-small


@pytest.fixture(scope="module")
def kb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    home = tmp_path_factory.mktemp("haniwa-kb-model-home")
    models = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))
    models.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(models)
    folder = home / "s3" / "factory-docs" / "kb"
    folder.mkdir(parents=True)
    for name, text in (
        ("robot.md", ROBOT_JA),
        ("tea.txt", TEA_EN),
        ("weather.txt", WEATHER_JA),
        ("bikes.txt", BIKES_EN),
    ):
        (folder / name).write_text(text, encoding="utf-8")
    settings = Settings(home=home, profile=os.environ.get("HANIWA_TEST_PROFILE", "default"))
    with serve_in_thread(create_app(settings)) as url:
        agent = boto3.client("bedrock-agent", **client_kwargs(url))
        kb_id = agent.create_knowledge_base(
            name="factory",
            roleArn="arn:aws:iam::000000000000:role/kb",
            knowledgeBaseConfiguration={
                "type": "VECTOR",
                "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": E5},
            },
        )["knowledgeBase"]["knowledgeBaseId"]
        ds_id = agent.create_data_source(
            knowledgeBaseId=kb_id,
            name="docs",
            dataSourceConfiguration={
                "type": "S3",
                "s3Configuration": {"bucketArn": "arn:aws:s3:::factory-docs"},
            },
        )["dataSource"]["dataSourceId"]
        job = sync(agent, kb_id, ds_id, timeout=300)
        assert job["statistics"]["numberOfNewDocumentsIndexed"] == 4, job
        yield url, kb_id, ds_id


def test_retrieve_with_real_embeddings(kb_server: tuple[str, str, str]) -> None:
    url, kb_id, _ = kb_server
    rt = boto3.client("bedrock-agent-runtime", **client_kwargs(url))
    ja = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "ロボットを作るのに必要な材料は？"})
    assert uris(ja["retrievalResults"])[0] == "s3://factory-docs/kb/robot.md"
    assert "アルミニウム" in ja["retrievalResults"][0]["content"]["text"]
    for kind in ("SEMANTIC", "HYBRID"):
        en = rt.retrieve(
            knowledgeBaseId=kb_id,
            retrievalQuery={"text": "How often should I oil my bike chain?"},
            retrievalConfiguration={"vectorSearchConfiguration": {"overrideSearchType": kind}},
        )
        assert uris(en["retrievalResults"])[0] == "s3://factory-docs/kb/bikes.txt", kind


def test_answer_lists_materials_with_quantities_and_cites_the_sheet(kb_server: tuple[str, str, str]) -> None:
    url, kb_id, _ = kb_server
    rt = boto3.client("bedrock-agent-runtime", **client_kwargs(url))
    out: dict[str, Any] = rt.retrieve_and_generate(
        input={"text": "ハニワロボ HR-7 の材料とその数量を教えてください。"},
        retrieveAndGenerateConfiguration={
            "type": "KNOWLEDGE_BASE",
            "knowledgeBaseConfiguration": {
                "knowledgeBaseId": kb_id,
                "modelArn": "anthropic.claude-3-haiku-20240307-v1:0",
                "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 3}},
            },
        },
    )
    text = out["output"]["text"]
    for material, quantity in (("アルミニウム", "12"), ("銅線", "3"), ("強化ガラス", "2")):
        assert material in text and quantity in text, text
    cited = {r["location"]["s3Location"]["uri"] for c in out["citations"] for r in c["retrievedReferences"]}
    assert "s3://factory-docs/kb/robot.md" in cited, out["citations"]
