"""Agents through boto3 ``bedrock-agent`` against a real server: agents, action groups, knowledge-base
associations, PrepareAgent, versions and aliases, and the snapshots the runtime resolves aliases to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from haniwa.agents.base import DRAFT, TEST_ALIAS_ID, AgentSnapshot
from haniwa.agents.service import AgentService
from haniwa.api.app import Platform, create_app
from haniwa.config import Settings
from haniwa.errors import NotFoundError, ValidationError
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
ROLE = "arn:aws:iam::000000000000:role/agent"
EMBED = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"
INSTRUCTION = "You are a weather assistant. Answer questions about the weather forecast politely."
WEATHER = {
    "functions": [
        {
            "name": "get_forecast",
            "description": "The forecast for a city",
            "parameters": {
                "city": {"type": "string", "description": "City name", "required": True},
                "days": {"type": "integer", "description": "How many days ahead", "required": True},
                "metric": {"type": "boolean", "required": False},
            },
            "requireConfirmation": "ENABLED",
        }
    ]
}
RETURN_CONTROL = {"customControl": "RETURN_CONTROL"}


@pytest.fixture
def agents(server: str) -> Any:
    return boto3.client("bedrock-agent", **client_kwargs(server))


@pytest.fixture
def raw(server: str) -> Any:
    """A client that skips botocore's own checks, to reach the server's (as a non-boto3 client would)."""
    kw = client_kwargs(server)
    kw["config"] = kw["config"].merge(Config(parameter_validation=False))
    return boto3.client("bedrock-agent", **kw)


def error(fn: Callable[..., Any], **kw: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as err:
        fn(**kw)
    return err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]


def make_agent(agents: Any, name: str = "weather-bot", **extra: Any) -> str:
    out = agents.create_agent(
        agentName=name,
        foundationModel=MODEL,
        instruction=INSTRUCTION,
        agentResourceRoleArn=ROLE,
        **extra,
    )["agent"]
    return str(out["agentId"])


def make_group(agents: Any, agent_id: str, name: str = "weather", **extra: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {"functionSchema": WEATHER, "actionGroupExecutor": RETURN_CONTROL, **extra}
    out: dict[str, Any] = agents.create_agent_action_group(
        agentId=agent_id, agentVersion="DRAFT", actionGroupName=name, **kw
    )["agentActionGroup"]
    return out


def make_kb(agents: Any, name: str = "forecasts") -> str:
    kb = agents.create_knowledge_base(
        name=name,
        roleArn="arn:aws:iam::000000000000:role/kb",
        knowledgeBaseConfiguration={
            "type": "VECTOR",
            "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": EMBED},
        },
        storageConfiguration={
            "type": "OPENSEARCH_SERVERLESS",
            "opensearchServerlessConfiguration": {
                "collectionArn": "arn:aws:aoss:us-east-1:000000000000:collection/x",
                "vectorIndexName": "idx",
                "fieldMapping": {"vectorField": "v", "textField": "t", "metadataField": "m"},
            },
        },
    )["knowledgeBase"]
    return str(kb["knowledgeBaseId"])


def test_agent_lifecycle(agents: Any) -> None:
    prompt = {
        "promptConfigurations": [
            {
                "promptType": "ORCHESTRATION",
                "promptCreationMode": "OVERRIDDEN",
                "basePromptTemplate": "$instruction$ $tools$",
                "inferenceConfiguration": {"temperature": 0.0, "maximumLength": 256},
            }
        ]
    }
    created = agents.create_agent(
        agentName="weather-bot",
        foundationModel=MODEL,
        instruction=INSTRUCTION,
        description="forecasts",
        idleSessionTTLInSeconds=900,
        promptOverrideConfiguration=prompt,
        tags={"team": "weather"},
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    a = created["agent"]
    agent_id = a["agentId"]
    assert len(agent_id) == 10 and agent_id.isalnum()
    assert a["agentArn"] == f"arn:aws:bedrock:us-east-1:000000000000:agent/{agent_id}"
    assert (a["agentStatus"], a["agentVersion"], a["idleSessionTTLInSeconds"]) == (
        "NOT_PREPARED",
        "DRAFT",
        900,
    )
    assert a["agentResourceRoleArn"].startswith("arn:aws:iam::000000000000:role/")
    assert a["promptOverrideConfiguration"] == prompt
    assert a["instruction"] == INSTRUCTION and "preparedAt" not in a

    group = make_group(agents, agent_id, description="weather tools")
    assert group["agentVersion"] == "DRAFT" and group["actionGroupState"] == "ENABLED"
    assert group["functionSchema"] == WEATHER
    assert group["actionGroupExecutor"] == RETURN_CONTROL
    ask = agents.create_agent_action_group(
        agentId=agent_id,
        agentVersion="DRAFT",
        actionGroupName="UserInput",
        parentActionGroupSignature="AMAZON.UserInput",
        actionGroupState="DISABLED",
    )["agentActionGroup"]
    assert (ask["parentActionSignature"], ask["actionGroupState"]) == ("AMAZON.UserInput", "DISABLED")

    kb_id = make_kb(agents)
    assoc = agents.associate_agent_knowledge_base(
        agentId=agent_id, agentVersion="DRAFT", knowledgeBaseId=kb_id, description="Past forecasts"
    )["agentKnowledgeBase"]
    assert (assoc["knowledgeBaseId"], assoc["knowledgeBaseState"]) == (kb_id, "ENABLED")
    got = agents.get_agent_knowledge_base(agentId=agent_id, agentVersion="DRAFT", knowledgeBaseId=kb_id)
    assert got["agentKnowledgeBase"]["description"] == "Past forecasts"

    prepared = agents.prepare_agent(agentId=agent_id)
    assert (prepared["agentStatus"], prepared["agentVersion"]) == ("PREPARED", "DRAFT")
    a = agents.get_agent(agentId=agent_id)["agent"]
    assert a["agentStatus"] == "PREPARED" and a["preparedAt"] == prepared["preparedAt"]

    live = agents.create_agent_alias(agentId=agent_id, agentAliasName="live", description="production")[
        "agentAlias"
    ]
    assert live["routingConfiguration"] == [{"agentVersion": "1"}]
    assert live["agentAliasArn"].endswith(f":agent-alias/{agent_id}/{live['agentAliasId']}")
    assert live["agentAliasStatus"] == "PREPARED"
    v1 = agents.get_agent_version(agentId=agent_id, agentVersion="1")["agentVersion"]
    assert (v1["version"], v1["agentName"], v1["instruction"]) == ("1", "weather-bot", INSTRUCTION)
    assert v1["promptOverrideConfiguration"] == prompt
    frozen = agents.get_agent_action_group(
        agentId=agent_id, agentVersion="1", actionGroupId=group["actionGroupId"]
    )["agentActionGroup"]
    assert frozen["agentVersion"] == "1" and frozen["functionSchema"] == WEATHER
    assert frozen["description"] == "weather tools"
    listed = agents.list_agent_action_groups(agentId=agent_id, agentVersion="1")["actionGroupSummaries"]
    assert {g["actionGroupName"]: g["actionGroupState"] for g in listed} == {
        "weather": "ENABLED",
        "UserInput": "DISABLED",
    }
    kbs = agents.list_agent_knowledge_bases(agentId=agent_id, agentVersion="1")
    assert [k["knowledgeBaseId"] for k in kbs["agentKnowledgeBaseSummaries"]] == [kb_id]

    # editing the DRAFT leaves version 1 alone
    agents.update_agent_action_group(
        agentId=agent_id,
        agentVersion="DRAFT",
        actionGroupId=group["actionGroupId"],
        actionGroupName="weather",
        description="weather tools, v2",
    )
    draft = agents.get_agent_action_group(
        agentId=agent_id, agentVersion="DRAFT", actionGroupId=group["actionGroupId"]
    )["agentActionGroup"]
    assert draft["description"] == "weather tools, v2" and draft["functionSchema"] == WEATHER
    assert agents.get_agent(agentId=agent_id)["agent"]["agentStatus"] == "NOT_PREPARED"
    frozen = agents.get_agent_action_group(
        agentId=agent_id, agentVersion="1", actionGroupId=group["actionGroupId"]
    )["agentActionGroup"]
    assert frozen["description"] == "weather tools"
    # a new version needs the edit prepared first
    assert error(agents.create_agent_alias, agentId=agent_id, agentAliasName="beta") == (
        "ValidationException",
        400,
    )

    agents.prepare_agent(agentId=agent_id)
    beta = agents.create_agent_alias(agentId=agent_id, agentAliasName="beta")["agentAlias"]
    assert beta["routingConfiguration"] == [{"agentVersion": "2"}]
    moved = agents.update_agent_alias(
        agentId=agent_id,
        agentAliasId=live["agentAliasId"],
        agentAliasName="live",
        routingConfiguration=[{"agentVersion": "2"}],
    )["agentAlias"]
    assert moved["routingConfiguration"] == [{"agentVersion": "2"}]
    assert moved["description"] == "production"
    history = moved["agentAliasHistoryEvents"]
    assert [h["routingConfiguration"] for h in history] == [[{"agentVersion": "2"}], [{"agentVersion": "1"}]]
    assert "endDate" not in history[0] and history[1]["endDate"] >= history[1]["startDate"]

    versions = agents.list_agent_versions(agentId=agent_id)["agentVersionSummaries"]
    assert [v["agentVersion"] for v in versions] == ["DRAFT", "1", "2"]
    aliases = agents.list_agent_aliases(agentId=agent_id)["agentAliasSummaries"]
    assert [(x["agentAliasName"], x["routingConfiguration"]) for x in aliases] == [
        ("AgentTestAlias", [{"agentVersion": "DRAFT"}]),
        ("live", [{"agentVersion": "2"}]),
        ("beta", [{"agentVersion": "2"}]),
    ]
    assert aliases[0]["agentAliasId"] == TEST_ALIAS_ID
    summary = agents.list_agents()["agentSummaries"]
    assert [(s["agentId"], s["latestAgentVersion"]) for s in summary] == [(agent_id, "2")]

    # an alias's version cannot go while routed to; version 1 no longer is
    assert error(agents.delete_agent_version, agentId=agent_id, agentVersion="2") == (
        "ConflictException",
        409,
    )
    gone = agents.delete_agent_version(agentId=agent_id, agentVersion="1")
    assert (gone["agentVersion"], gone["agentStatus"]) == ("1", "DELETING")
    assert error(agents.get_agent_version, agentId=agent_id, agentVersion="1") == (
        "ResourceNotFoundException",
        404,
    )

    agents.disassociate_agent_knowledge_base(agentId=agent_id, agentVersion="DRAFT", knowledgeBaseId=kb_id)
    assert (
        agents.list_agent_knowledge_bases(agentId=agent_id, agentVersion="DRAFT")[
            "agentKnowledgeBaseSummaries"
        ]
        == []
    )
    agents.delete_agent_action_group(
        agentId=agent_id, agentVersion="DRAFT", actionGroupId=ask["actionGroupId"]
    )
    deleted = agents.delete_agent_alias(agentId=agent_id, agentAliasId=beta["agentAliasId"])
    assert deleted["agentAliasStatus"] == "DELETING"
    assert agents.delete_agent(agentId=agent_id)["agentStatus"] == "DELETING"
    assert error(agents.get_agent, agentId=agent_id) == ("ResourceNotFoundException", 404)
    assert agents.list_agents()["agentSummaries"] == []


def test_update_agent_and_pagination(agents: Any) -> None:
    ids = [make_agent(agents, f"bot-{i}") for i in range(3)]
    page = agents.list_agents(maxResults=2)
    assert len(page["agentSummaries"]) == 2 and page["nextToken"]
    rest = agents.list_agents(maxResults=2, nextToken=page["nextToken"])
    assert [s["agentId"] for s in page["agentSummaries"] + rest["agentSummaries"]] == ids
    assert "nextToken" not in rest

    agents.prepare_agent(agentId=ids[0])
    updated = agents.update_agent(
        agentId=ids[0],
        agentName="renamed",
        foundationModel=MODEL,
        agentResourceRoleArn=ROLE,
        description="now described",
    )["agent"]
    assert (updated["agentName"], updated["description"], updated["instruction"]) == (
        "renamed",
        "now described",
        INSTRUCTION,
    )
    assert updated["agentStatus"] == "NOT_PREPARED"
    assert error(
        agents.update_agent,
        agentId=ids[1],
        agentName="renamed",
        foundationModel=MODEL,
        agentResourceRoleArn=ROLE,
    ) == ("ConflictException", 409)

    kb_id = make_kb(agents)
    agents.associate_agent_knowledge_base(
        agentId=ids[1], agentVersion="DRAFT", knowledgeBaseId=kb_id, description="Old forecasts"
    )
    off = agents.update_agent_knowledge_base(
        agentId=ids[1], agentVersion="DRAFT", knowledgeBaseId=kb_id, knowledgeBaseState="DISABLED"
    )["agentKnowledgeBase"]
    assert (off["knowledgeBaseState"], off["description"]) == ("DISABLED", "Old forecasts")


def test_bad_input(agents: Any, raw: Any) -> None:
    assert error(agents.get_agent, agentId="ABCDEFGHIJ") == ("ResourceNotFoundException", 404)
    agent_id = make_agent(agents)
    assert error(make_agent, agents=agents) == ("ConflictException", 409)
    short = {"agentName": "terse", "instruction": "Be helpful.", "foundationModel": MODEL}
    assert error(raw.create_agent, **short) == ("ValidationException", 400)

    # action groups change on the DRAFT only
    assert error(
        raw.create_agent_action_group,
        agentId=agent_id,
        agentVersion="1",
        actionGroupName="weather",
        functionSchema=WEATHER,
        actionGroupExecutor=RETURN_CONTROL,
    ) == ("ValidationException", 400)
    assert error(make_group, agents=agents, agent_id="ABCDEFGHIJ") == ("ResourceNotFoundException", 404)
    api = {"payload": '{"openapi": "3.0.0", "paths": {}}'}
    assert error(make_group, agents=agents, agent_id=agent_id, apiSchema=api) == ("ValidationException", 400)
    assert error(
        agents.create_agent_action_group, agentId=agent_id, agentVersion="DRAFT", actionGroupName="empty"
    ) == ("ValidationException", 400)
    assert error(make_group, agents=raw, agent_id=agent_id, actionGroupExecutor={}) == (
        "ValidationException",
        400,
    )
    assert error(
        agents.create_agent_action_group,
        agentId=agent_id,
        agentVersion="DRAFT",
        actionGroupName="ask",
        parentActionGroupSignature="AMAZON.UserInput",
        functionSchema=WEATHER,
    ) == ("ValidationException", 400)
    bad_type = {"functions": [{"name": "f", "parameters": {"x": {"type": "date"}}}]}
    assert error(make_group, agents=agents, agent_id=agent_id, functionSchema=bad_type) == (
        "ValidationException",
        400,
    )
    make_group(agents, agent_id)
    assert error(make_group, agents=agents, agent_id=agent_id) == ("ConflictException", 409)
    assert error(
        agents.get_agent_action_group, agentId=agent_id, agentVersion="DRAFT", actionGroupId="ABCDEFGHIJ"
    ) == ("ResourceNotFoundException", 404)

    assert error(
        agents.associate_agent_knowledge_base,
        agentId=agent_id,
        agentVersion="DRAFT",
        knowledgeBaseId="NOSUCHKB01",
        description="missing",
    ) == ("ResourceNotFoundException", 404)

    # aliases need a prepared agent, and routing names an existing numbered version
    assert error(agents.create_agent_alias, agentId=agent_id, agentAliasName="live") == (
        "ValidationException",
        400,
    )
    agents.prepare_agent(agentId=agent_id)
    assert error(
        agents.create_agent_alias,
        agentId=agent_id,
        agentAliasName="live",
        routingConfiguration=[{"agentVersion": "7"}],
    ) == ("ResourceNotFoundException", 404)
    assert error(
        agents.create_agent_alias,
        agentId=agent_id,
        agentAliasName="live",
        routingConfiguration=[{"agentVersion": "DRAFT"}],
    ) == ("ValidationException", 400)
    agents.create_agent_alias(agentId=agent_id, agentAliasName="live")
    assert error(agents.create_agent_alias, agentId=agent_id, agentAliasName="live") == (
        "ConflictException",
        409,
    )
    assert error(agents.delete_agent_alias, agentId=agent_id, agentAliasId=TEST_ALIAS_ID) == (
        "ValidationException",
        400,
    )
    assert error(agents.get_agent_alias, agentId=agent_id, agentAliasId="ABCDEFGHIJ") == (
        "ResourceNotFoundException",
        404,
    )

    # an agent without a model cannot be prepared
    bare = agents.create_agent(agentName="bare")["agent"]["agentId"]
    assert error(agents.prepare_agent, agentId=bare) == ("ValidationException", 400)


def test_resolve_snapshots(settings: Settings) -> None:
    app = create_app(settings)
    platform: Platform = app.state.platform
    svc = platform.agents
    with serve_in_thread(app) as url:
        agents = boto3.client("bedrock-agent", **client_kwargs(url))
        agent_id = make_agent(agents)
        group = make_group(agents, agent_id)
        with pytest.raises(ValidationError, match="not prepared; call PrepareAgent"):
            asyncio.run(svc.resolve(agent_id, TEST_ALIAS_ID))
        agents.prepare_agent(agentId=agent_id)
        alias_id = agents.create_agent_alias(agentId=agent_id, agentAliasName="live")["agentAlias"][
            "agentAliasId"
        ]
        agents.update_agent(
            agentId=agent_id,
            agentName="weather-bot",
            foundationModel=MODEL,
            agentResourceRoleArn=ROLE,
            instruction=INSTRUCTION + " Use metric units.",
        )

        test = asyncio.run(svc.resolve(agent_id, TEST_ALIAS_ID))
        live = asyncio.run(svc.resolve(agent_id, alias_id))
        assert (test.version, live.version) == (DRAFT, "1")
        # the test alias runs the DRAFT as last prepared, not the unprepared edit
        assert test.agent["instruction"] == live.agent["instruction"] == INSTRUCTION
        assert live.agent["agentId"] == agent_id and live.agent["foundationModel"] == MODEL
        (ag,) = live.action_groups
        assert ag["actionGroupId"] == group["actionGroupId"]
        assert ag["functionSchema"] == WEATHER and ag["actionGroupState"] == "ENABLED"
        with pytest.raises(NotFoundError):
            asyncio.run(svc.resolve(agent_id, "ABCDEFGHIJ"))

        agents.update_agent_alias(
            agentId=agent_id,
            agentAliasId=alias_id,
            agentAliasName="live",
            routingConfiguration=[{"agentVersion": "1"}],
            aliasInvocationState="REJECT_INVOCATIONS",
        )
        with pytest.raises(ValidationError, match="rejects invocations"):
            asyncio.run(svc.resolve(agent_id, alias_id))

        # PrepareAgent runs the engine's check on the DRAFT snapshot and refuses what it rejects
        seen: list[AgentSnapshot] = []

        def refuse(snap: AgentSnapshot) -> None:
            seen.append(snap)
            raise ValidationError("action group weather: unknown executor")

        checked = AgentService(platform.db, platform.knowledge, validate=refuse)
        with pytest.raises(ValidationError, match="unknown executor"):
            asyncio.run(checked.prepare(agent_id))
        assert seen[0].version == DRAFT
        assert seen[0].agent["instruction"] == INSTRUCTION + " Use metric units."
        assert agents.get_agent(agentId=agent_id)["agent"]["agentStatus"] == "NOT_PREPARED"
