"""The done-when of agents on the bundled default model (Qwen2.5-Coder-1.5B, e5-small embeddings): the
robot-factory agent looks the materials up in the knowledge base, checks each one's stock with a
registered function, and answers in Japanese with both stocks — with a Bedrock-shaped trace."""

from __future__ import annotations

import json
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
from tests.test_agents_invoke import INSTRUCTION, ROBOT_SHEET, invoke, orch
from tests.test_knowledge_api import sync

pytestmark = pytest.mark.model

CHAT = "anthropic.claude-3-haiku-20240307-v1:0"  # the bundled default chat model behind a Bedrock id
E5 = "amazon.titan-embed-text-v2:0"  # the bundled multilingual-e5-small


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("haniwa-agent-model-home")
    models = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))
    models.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(models)
    folder = home / "s3" / "factory" / "docs"
    folder.mkdir(parents=True)
    (folder / "robot.md").write_text(ROBOT_SHEET, encoding="utf-8")
    (folder / "tea.txt").write_text(
        "Green tea is made from unoxidised leaves of Camellia sinensis.", encoding="utf-8"
    )
    settings = Settings(
        home=home,
        profile=os.environ.get("HANIWA_TEST_PROFILE", "default"),
        agent_functions={"stock": "tests.agent_tools:get_material_stock"},
    )
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
            dataSourceConfiguration={"type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::factory"}},
        )["dataSource"]["dataSourceId"]
        assert sync(agent, kb_id, ds_id, timeout=300)["status"] == "COMPLETE"
        agent_id = agent.create_agent(
            agentName="robot-factory", foundationModel=CHAT, instruction=INSTRUCTION
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
                        "description": "Returns the stock of one material",
                        "parameters": {
                            "material_name": {
                                "type": "string",
                                "description": "the material's name",
                                "required": True,
                            }
                        },
                    }
                ]
            },
        )
        agent.associate_agent_knowledge_base(
            agentId=agent_id,
            agentVersion="DRAFT",
            knowledgeBaseId=kb_id,
            description="Product sheets: materials, manufacturing, legal notes",
        )
        agent.prepare_agent(agentId=agent_id)
        alias_id = agent.create_agent_alias(agentId=agent_id, agentAliasName="prod")["agentAlias"][
            "agentAliasId"
        ]
        yield {
            "rt": boto3.client("bedrock-agent-runtime", **client_kwargs(url)),
            "agent_id": agent_id,
            "alias_id": alias_id,
            "kb_id": kb_id,
        }


def test_robot_factory_agent_on_the_bundled_model(factory: dict[str, Any]) -> None:
    agent_tools.CALLS.clear()
    out = invoke(
        factory["rt"],
        factory["agent_id"],
        "ロボットの材料の在庫はどれくらいありますか？",
        alias=factory["alias_id"],
        enableTrace=True,
    )
    traces = out["traces"]
    kb = [i for i in orch(traces, "invocationInput") if i["invocationType"] == "KNOWLEDGE_BASE"]
    assert kb and kb[0]["knowledgeBaseLookupInput"]["knowledgeBaseId"] == factory["kb_id"]
    refs = orch(traces, "observation")[0]["knowledgeBaseLookupOutput"]["retrievedReferences"]
    assert refs[0]["location"]["s3Location"]["uri"] == "s3://factory/docs/robot.md"
    # one action call per material, each the registered function, answered with its stock
    assert sorted(a["material_name"] for _, a in agent_tools.CALLS) == ["アルミニウム", "銅線"], (
        agent_tools.CALLS
    )
    actions = [i for i in orch(traces, "invocationInput") if i["invocationType"] == "ACTION_GROUP"]
    assert len(actions) == 2
    assert "120" in out["text"] and "45" in out["text"], out["text"]
    assert orch(traces, "observation")[-1]["type"] == "FINISH"
    assert {t["agentVersion"] for t in traces} == {"1"}
    print(
        json.dumps(
            {"answer": out["text"], "steps": len(orch(traces, "modelInvocationOutput"))}, ensure_ascii=False
        )
    )
