"""The walkthrough the project was born from, word for word, on the bundled default model: a "haniwa robot"
factory agent with a knowledge base and a stock function, set up through boto3 the way a new user does.
It must look the knowledge base up, call the stock function once per material the knowledge base names
(never with the parameter's description as the value), and report the numbers the function returned."""

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
from tests import agent_tools
from tests.conftest import client_kwargs
from tests.test_agents_invoke import invoke, orch
from tests.test_knowledge_api import sync

pytestmark = pytest.mark.model

CHAT = "anthropic.claude-3-haiku-20240307-v1:0"
E5 = "amazon.titan-embed-text-v2:0"
INSTRUCTION = (
    "あなたは「はにわロボット」工場のアシスタントです。はにわロボットの情報はナレッジベースから探すこと。"
    "材料の在庫は get_material_stock 関数で材料ごとに取得できる。"
)
QUESTION = "はにわロボットの材料の在庫はどれくらいある？"
SHEET = """# はにわロボット 製品仕様書

はにわロボットは、古墳時代の埴輪をモチーフにした家庭用の見守りロボットです。

## 材料

はにわロボットの材料は、アルミニウム 12 kg と銅線 3 m です。

## 製造方法

アルミニウムの外装をプレスで成形し、銅線で配線してから組み立てます。

## 法的事項

販売には電気用品安全法の届出が必要です。
"""


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("haniwa-walkthrough-home")
    models = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))
    models.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(models)
    folder = home / "s3" / "haniwa" / "docs"
    folder.mkdir(parents=True)
    (folder / "haniwa-robot.md").write_text(SHEET, encoding="utf-8")
    settings = Settings(
        home=home,
        profile=os.environ.get("HANIWA_TEST_PROFILE", "default"),
        agent_functions={"stock": "tests.agent_tools:get_material_stock"},
    )
    with serve_in_thread(create_app(settings)) as url:
        agent = boto3.client("bedrock-agent", **client_kwargs(url))
        kb_id = agent.create_knowledge_base(
            name="haniwa-robot",
            roleArn="arn:aws:iam::000000000000:role/kb",
            knowledgeBaseConfiguration={
                "type": "VECTOR",
                "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": E5},
            },
        )["knowledgeBase"]["knowledgeBaseId"]
        ds_id = agent.create_data_source(
            knowledgeBaseId=kb_id,
            name="docs",
            dataSourceConfiguration={"type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::haniwa"}},
        )["dataSource"]["dataSourceId"]
        assert sync(agent, kb_id, ds_id, timeout=300)["status"] == "COMPLETE"
        agent_id = agent.create_agent(
            agentName="haniwa-factory", foundationModel=CHAT, instruction=INSTRUCTION
        )["agent"]["agentId"]
        agent.create_agent_action_group(
            agentId=agent_id,
            agentVersion="DRAFT",
            actionGroupName="stock",
            actionGroupExecutor={"lambda": "arn:aws:lambda:us-east-1:000000000000:function:stock"},
            functionSchema={
                "functions": [
                    {
                        "name": "get_material_stock",
                        "description": "材料の在庫数を返す",
                        "parameters": {
                            "material_name": {"type": "string", "description": "材料名", "required": True}
                        },
                    }
                ]
            },
        )
        agent.associate_agent_knowledge_base(
            agentId=agent_id,
            agentVersion="DRAFT",
            knowledgeBaseId=kb_id,
            description="はにわロボットの仕様・材料・製造方法・法規制",
        )
        agent.prepare_agent(agentId=agent_id)
        yield {"rt": boto3.client("bedrock-agent-runtime", **client_kwargs(url)), "agent_id": agent_id}


def test_the_walkthrough_agent_looks_up_then_checks_each_material(walkthrough: dict[str, Any]) -> None:
    agent_tools.CALLS.clear()
    out = invoke(walkthrough["rt"], walkthrough["agent_id"], QUESTION, enableTrace=True)
    inputs = orch(out["traces"], "invocationInput")
    assert inputs and inputs[0]["invocationType"] == "KNOWLEDGE_BASE", inputs
    materials = sorted(a["material_name"] for _, a in agent_tools.CALLS)
    assert materials == ["アルミニウム", "銅線"], agent_tools.CALLS  # once each, never "材料名"
    assert "120" in out["text"] and "45" in out["text"], out["text"]
    assert "0です" not in out["text"]
