"""``bedrock-agent`` agent operations: agents, action groups, knowledge-base associations, PrepareAgent,
versions and aliases. Wire shapes ↔ ``haniwa.agents.service`` objects, plus the checks Bedrock makes
beyond the service model (which members an action group combines)."""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Mapping
from typing import Any

from haniwa.agents.base import DRAFT
from haniwa.agents.service import (
    ActionGroup,
    Agent,
    AgentAlias,
    AgentKnowledgeBase,
    AgentVersion,
    require_draft,
)
from haniwa.api.context import Call
from haniwa.api.pagination import paginate
from haniwa.api.wire import service_model
from haniwa.errors import ValidationError

__all__ = ["OPERATIONS", "agent_arn", "alias_arn", "check_action_group", "check_agent"]

# Bedrock requires a role; haniwa runs no IAM, so an agent created without one shows this.
_PLACEHOLDER_ROLE = "arn:aws:iam::000000000000:role/service-role/AmazonBedrockExecutionRoleForAgents_haniwa"
_DEFAULT_TTL = 600
# the members of an action group that define what it does (rather than how it is named or switched)
_SCHEMA_KEYS = (
    "functionSchema",
    "apiSchema",
    "parentActionGroupSignature",
    "parentActionGroupSignatureParams",
)


def _ts(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


@functools.cache
def _members(shape: str) -> frozenset[str]:
    return frozenset(service_model("bedrock-agent").shape_for(shape).members)


def _pick(shape: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The members of ``spec`` that the output ``shape`` has (create-only inputs such as tags drop out)."""
    keep = _members(shape)
    return {k: v for k, v in spec.items() if k in keep}


def _request(p: Mapping[str, Any], *path: str) -> dict[str, Any]:
    """The body fields of a request: what is stored as the spec."""
    return {k: v for k, v in p.items() if k not in path and k != "skipResourceInUseCheck"}


def agent_arn(call: Call, agent_id: str) -> str:
    return f"arn:aws:bedrock:{call.platform.settings.region}:000000000000:agent/{agent_id}"


def alias_arn(call: Call, agent_id: str, alias_id: str) -> str:
    return f"arn:aws:bedrock:{call.platform.settings.region}:000000000000:agent-alias/{agent_id}/{alias_id}"


# -- checks beyond the service model -----------------------------------------------------------------
def check_agent(spec: Mapping[str, Any]) -> None:
    """Bedrock's minimum instruction length (the ``Instruction`` shape's ``min``)."""
    instruction = spec.get("instruction")
    least = int(service_model("bedrock-agent").shape_for("Instruction").metadata.get("min", 0))
    if instruction is not None and len(instruction) < least:
        raise ValidationError(
            f"instruction must be at least {least} characters long (got {len(instruction)}):"
            " say what the agent is for and how it should act"
        )


def check_action_group(spec: Mapping[str, Any]) -> None:
    """An action group is a built-in signature (e.g. AMAZON.UserInput) with nothing else, or exactly one
    of functionSchema/apiSchema run by exactly one executor (a Lambda ARN or RETURN_CONTROL)."""
    signature = spec.get("parentActionGroupSignature")
    schemas = [k for k in ("functionSchema", "apiSchema") if spec.get(k)]
    executor = spec.get("actionGroupExecutor") or {}
    if signature:
        extra = [*schemas, *(["actionGroupExecutor"] if executor else [])]
        if extra:
            raise ValidationError(
                f"an action group with parentActionGroupSignature {signature} takes no {' or '.join(extra)}"
            )
        return
    if len(schemas) != 1:
        raise ValidationError(
            "an action group needs exactly one of functionSchema and apiSchema"
            f" (or a parentActionGroupSignature); got {' and '.join(schemas) or 'neither'}"
        )
    ways = [k for k in ("lambda", "customControl") if executor.get(k)]
    if len(ways) != 1:
        raise ValidationError(
            "actionGroupExecutor needs exactly one of lambda (a Lambda function ARN) and"
            f" customControl (RETURN_CONTROL); got {' and '.join(ways) or 'neither'}"
        )
    if schemas[0] == "functionSchema":
        functions = spec["functionSchema"].get("functions") or []
        if not functions:
            raise ValidationError("functionSchema.functions must define at least one function")
        names = [f["name"] for f in functions]
        dupes = sorted(n for n, count in Counter(names).items() if count > 1)
        if dupes:
            raise ValidationError(f"function names must be unique within an action group: {', '.join(dupes)}")
    else:
        api = spec["apiSchema"]
        given = [k for k in ("payload", "s3") if api.get(k)]
        if len(given) != 1:
            raise ValidationError("apiSchema needs exactly one of payload (an OpenAPI document) and s3")
        s3 = api.get("s3")
        if s3 and not (s3.get("s3BucketName") and s3.get("s3ObjectKey")):
            raise ValidationError("apiSchema.s3 needs s3BucketName and s3ObjectKey")


# -- agents --------------------------------------------------------------------------------------------
def _agent_wire(call: Call, a: Agent) -> dict[str, Any]:
    return {
        **_pick("Agent", a.spec),
        "agentId": a.id,
        "agentName": a.name,
        "agentArn": agent_arn(call, a.id),
        "agentVersion": DRAFT,
        "agentStatus": a.status,
        "idleSessionTTLInSeconds": a.spec.get("idleSessionTTLInSeconds", _DEFAULT_TTL),
        "agentResourceRoleArn": a.spec.get("agentResourceRoleArn") or _PLACEHOLDER_ROLE,
        "createdAt": _ts(a.created),
        "updatedAt": _ts(a.updated),
        "preparedAt": _ts(a.prepared) if a.prepared is not None else None,
    }


async def create_agent(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    spec = _request(p)
    check_agent(spec)
    agent = await call.platform.agents.create_agent(name=p["agentName"], spec=spec)
    return {"agent": _agent_wire(call, agent)}


async def get_agent(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    return {"agent": _agent_wire(call, await call.platform.agents.get_agent(p["agentId"]))}


async def list_agents(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.agents
    page = paginate(call, p, await svc.list_agents(), key=lambda a: a.id)
    items = []
    for a in page.items:
        versions = await svc.list_versions(a.id)
        items.append(
            {
                "agentId": a.id,
                "agentName": a.name,
                "agentStatus": a.status,
                "description": a.spec.get("description"),
                "updatedAt": _ts(a.updated),
                "latestAgentVersion": versions[-1].version if versions else DRAFT,
                "guardrailConfiguration": a.spec.get("guardrailConfiguration"),
            }
        )
    return page.wire("agentSummaries", items)


async def update_agent(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.agents
    old = await svc.get_agent(p["agentId"])
    # absent members keep their values (tags and clientToken are CreateAgent-only)
    spec = {**old.spec, **_request(p, "agentId")}
    check_agent(spec)
    agent = await svc.update_agent(old.id, name=p["agentName"], spec=spec)
    return {"agent": _agent_wire(call, agent)}


async def delete_agent(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    agent = await call.platform.agents.delete_agent(p["agentId"])
    return {"agentId": agent.id, "agentStatus": agent.status}


async def prepare_agent(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.agents
    agent = await svc.get_agent(p["agentId"])
    missing = [k for k in ("foundationModel", "instruction") if not agent.spec.get(k)]
    if missing:
        raise ValidationError(f"agent {agent.id} needs {' and '.join(missing)} before it can be prepared")
    agent = await svc.prepare(agent.id)
    return {
        "agentId": agent.id,
        "agentStatus": agent.status,
        "agentVersion": DRAFT,
        "preparedAt": _ts(agent.prepared or agent.updated),
    }


# -- action groups -----------------------------------------------------------------------------------
def _group_wire(g: ActionGroup) -> dict[str, Any]:
    return {
        **_pick("AgentActionGroup", g.spec),
        "agentId": g.agent_id,
        "agentVersion": g.version,
        "actionGroupId": g.id,
        "actionGroupName": g.name,
        "parentActionSignature": g.spec.get("parentActionGroupSignature"),
        "actionGroupState": g.spec.get("actionGroupState", "ENABLED"),
        "createdAt": _ts(g.created),
        "updatedAt": _ts(g.updated),
    }


async def create_agent_action_group(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    require_draft(p["agentVersion"])
    spec = {"actionGroupState": "ENABLED", **_request(p, "agentId", "agentVersion")}
    check_action_group(spec)
    group = await call.platform.agents.create_action_group(
        p["agentId"], p["agentVersion"], name=p["actionGroupName"], spec=spec
    )
    return {"agentActionGroup": _group_wire(group)}


async def get_agent_action_group(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    group = await call.platform.agents.get_action_group(p["agentId"], p["agentVersion"], p["actionGroupId"])
    return {"agentActionGroup": _group_wire(group)}


async def list_agent_action_groups(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    groups = await call.platform.agents.list_action_groups(p["agentId"], p["agentVersion"])
    page = paginate(call, p, groups, key=lambda g: g.id)
    items = [
        {
            "actionGroupId": g.id,
            "actionGroupName": g.name,
            "actionGroupState": g.spec.get("actionGroupState", "ENABLED"),
            "description": g.spec.get("description"),
            "updatedAt": _ts(g.updated),
        }
        for g in page.items
    ]
    return page.wire("actionGroupSummaries", items)


async def update_agent_action_group(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    require_draft(p["agentVersion"])
    svc = call.platform.agents
    old = await svc.get_action_group(p["agentId"], DRAFT, p["actionGroupId"])
    changes = _request(p, "agentId", "agentVersion", "actionGroupId")
    spec = dict(old.spec)
    # Absent members keep their values; a new definition (schema or signature) replaces the old one
    # whole, and a signature group has no executor.
    if any(k in changes for k in _SCHEMA_KEYS):
        for k in _SCHEMA_KEYS:
            spec.pop(k, None)
        if changes.get("parentActionGroupSignature"):
            spec.pop("actionGroupExecutor", None)
    spec.update(changes)
    check_action_group(spec)
    group = await svc.update_action_group(old.agent_id, DRAFT, old.id, name=p["actionGroupName"], spec=spec)
    return {"agentActionGroup": _group_wire(group)}


async def delete_agent_action_group(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    await call.platform.agents.delete_action_group(p["agentId"], p["agentVersion"], p["actionGroupId"])
    return {}


# -- knowledge-base associations ---------------------------------------------------------------------
def _kb_wire(k: AgentKnowledgeBase) -> dict[str, Any]:
    return {
        "agentId": k.agent_id,
        "agentVersion": k.version,
        "knowledgeBaseId": k.kb_id,
        "description": k.spec.get("description", ""),
        "knowledgeBaseState": k.spec.get("knowledgeBaseState", "ENABLED"),
        "createdAt": _ts(k.created),
        "updatedAt": _ts(k.updated),
    }


async def associate_agent_knowledge_base(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    spec = {"knowledgeBaseState": "ENABLED", **_request(p, "agentId", "agentVersion")}
    assoc = await call.platform.agents.associate_kb(
        p["agentId"], p["agentVersion"], p["knowledgeBaseId"], spec
    )
    return {"agentKnowledgeBase": _kb_wire(assoc)}


async def get_agent_knowledge_base(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    assoc = await call.platform.agents.get_agent_kb(p["agentId"], p["agentVersion"], p["knowledgeBaseId"])
    return {"agentKnowledgeBase": _kb_wire(assoc)}


async def list_agent_knowledge_bases(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    kbs = await call.platform.agents.list_agent_kbs(p["agentId"], p["agentVersion"])
    page = paginate(call, p, kbs, key=lambda k: k.kb_id)
    items = [
        {
            "knowledgeBaseId": k.kb_id,
            "description": k.spec.get("description"),
            "knowledgeBaseState": k.spec.get("knowledgeBaseState", "ENABLED"),
            "updatedAt": _ts(k.updated),
        }
        for k in page.items
    ]
    return page.wire("agentKnowledgeBaseSummaries", items)


async def update_agent_knowledge_base(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    require_draft(p["agentVersion"])
    svc = call.platform.agents
    old = await svc.get_agent_kb(p["agentId"], DRAFT, p["knowledgeBaseId"])
    spec = {**old.spec, **_request(p, "agentId", "agentVersion")}
    assoc = await svc.update_agent_kb(old.agent_id, DRAFT, old.kb_id, spec)
    return {"agentKnowledgeBase": _kb_wire(assoc)}


async def disassociate_agent_knowledge_base(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    await call.platform.agents.disassociate_kb(p["agentId"], p["agentVersion"], p["knowledgeBaseId"])
    return {}


# -- versions ----------------------------------------------------------------------------------------
def _version_wire(call: Call, v: AgentVersion) -> dict[str, Any]:
    return {
        **_pick("AgentVersion", v.spec),
        "agentId": v.agent_id,
        "agentName": v.name,
        "agentArn": agent_arn(call, v.agent_id),
        "version": v.version,
        "agentStatus": "PREPARED",
        "idleSessionTTLInSeconds": v.spec.get("idleSessionTTLInSeconds", _DEFAULT_TTL),
        "agentResourceRoleArn": v.spec.get("agentResourceRoleArn") or _PLACEHOLDER_ROLE,
        "createdAt": _ts(v.created),
        "updatedAt": _ts(v.created),
    }


def _numbered(version: str) -> str:
    if version == DRAFT:
        raise ValidationError("agentVersion must be a numbered version; GetAgent describes the DRAFT")
    return version


async def get_agent_version(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    v = await call.platform.agents.get_version(p["agentId"], _numbered(p["agentVersion"]))
    return {"agentVersion": _version_wire(call, v)}


async def list_agent_versions(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.agents
    agent = await svc.get_agent(p["agentId"])
    items: list[dict[str, Any]] = [
        {
            "agentName": agent.name,
            "agentStatus": agent.status,
            "agentVersion": DRAFT,
            "createdAt": _ts(agent.created),
            "updatedAt": _ts(agent.updated),
            "description": agent.spec.get("description"),
            "guardrailConfiguration": agent.spec.get("guardrailConfiguration"),
        }
    ]
    items += [
        {
            "agentName": v.name,
            "agentStatus": "PREPARED",
            "agentVersion": v.version,
            "createdAt": _ts(v.created),
            "updatedAt": _ts(v.created),
            "description": v.spec.get("description"),
            "guardrailConfiguration": v.spec.get("guardrailConfiguration"),
        }
        for v in await svc.list_versions(agent.id)
    ]
    page = paginate(call, p, items, key=lambda v: str(v["agentVersion"]))
    return page.wire("agentVersionSummaries", page.items)


async def delete_agent_version(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    v = await call.platform.agents.delete_version(
        p["agentId"], _numbered(p["agentVersion"]), force=bool(p.get("skipResourceInUseCheck"))
    )
    return {"agentId": v.agent_id, "agentVersion": v.version, "agentStatus": "DELETING"}


# -- aliases -----------------------------------------------------------------------------------------
def _alias_wire(call: Call, a: AgentAlias) -> dict[str, Any]:
    return {
        **_pick("AgentAlias", a.spec),
        "agentId": a.agent_id,
        "agentAliasId": a.id,
        "agentAliasName": a.name,
        "agentAliasArn": alias_arn(call, a.agent_id, a.id),
        "routingConfiguration": a.routing,
        "agentAliasHistoryEvents": [
            {
                "routingConfiguration": e["routingConfiguration"],
                "startDate": _ts(e["startDate"]),
                "endDate": _ts(e["endDate"]) if e.get("endDate") is not None else None,
            }
            for e in a.history
        ],
        "agentAliasStatus": "PREPARED",
        "aliasInvocationState": a.spec.get("aliasInvocationState", "ACCEPT_INVOCATIONS"),
        "createdAt": _ts(a.created),
        "updatedAt": _ts(a.updated),
    }


async def create_agent_alias(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    spec = _request(p, "agentId", "routingConfiguration")
    alias = await call.platform.agents.create_alias(
        p["agentId"], name=p["agentAliasName"], spec=spec, routing=p.get("routingConfiguration")
    )
    return {"agentAlias": _alias_wire(call, alias)}


async def get_agent_alias(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    alias = await call.platform.agents.get_alias(p["agentId"], p["agentAliasId"])
    return {"agentAlias": _alias_wire(call, alias)}


async def list_agent_aliases(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    page = paginate(call, p, await call.platform.agents.list_aliases(p["agentId"]), key=lambda a: a.id)
    items = [
        {
            "agentAliasId": a.id,
            "agentAliasName": a.name,
            "description": a.spec.get("description"),
            "routingConfiguration": a.routing,
            "agentAliasStatus": "PREPARED",
            "aliasInvocationState": a.spec.get("aliasInvocationState", "ACCEPT_INVOCATIONS"),
            "createdAt": _ts(a.created),
            "updatedAt": _ts(a.updated),
        }
        for a in page.items
    ]
    return page.wire("agentAliasSummaries", items)


async def update_agent_alias(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.agents
    old = await svc.get_alias(p["agentId"], p["agentAliasId"])
    spec = {**old.spec, **_request(p, "agentId", "agentAliasId", "routingConfiguration")}
    alias = await svc.update_alias(
        old.agent_id, old.id, name=p["agentAliasName"], spec=spec, routing=p.get("routingConfiguration")
    )
    return {"agentAlias": _alias_wire(call, alias)}


async def delete_agent_alias(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    alias = await call.platform.agents.delete_alias(p["agentId"], p["agentAliasId"])
    return {"agentId": alias.agent_id, "agentAliasId": alias.id, "agentAliasStatus": "DELETING"}


OPERATIONS = {
    ("bedrock-agent", "CreateAgent"): create_agent,
    ("bedrock-agent", "GetAgent"): get_agent,
    ("bedrock-agent", "ListAgents"): list_agents,
    ("bedrock-agent", "UpdateAgent"): update_agent,
    ("bedrock-agent", "DeleteAgent"): delete_agent,
    ("bedrock-agent", "PrepareAgent"): prepare_agent,
    ("bedrock-agent", "CreateAgentActionGroup"): create_agent_action_group,
    ("bedrock-agent", "GetAgentActionGroup"): get_agent_action_group,
    ("bedrock-agent", "ListAgentActionGroups"): list_agent_action_groups,
    ("bedrock-agent", "UpdateAgentActionGroup"): update_agent_action_group,
    ("bedrock-agent", "DeleteAgentActionGroup"): delete_agent_action_group,
    ("bedrock-agent", "AssociateAgentKnowledgeBase"): associate_agent_knowledge_base,
    ("bedrock-agent", "GetAgentKnowledgeBase"): get_agent_knowledge_base,
    ("bedrock-agent", "ListAgentKnowledgeBases"): list_agent_knowledge_bases,
    ("bedrock-agent", "UpdateAgentKnowledgeBase"): update_agent_knowledge_base,
    ("bedrock-agent", "DisassociateAgentKnowledgeBase"): disassociate_agent_knowledge_base,
    ("bedrock-agent", "GetAgentVersion"): get_agent_version,
    ("bedrock-agent", "ListAgentVersions"): list_agent_versions,
    ("bedrock-agent", "DeleteAgentVersion"): delete_agent_version,
    ("bedrock-agent", "CreateAgentAlias"): create_agent_alias,
    ("bedrock-agent", "GetAgentAlias"): get_agent_alias,
    ("bedrock-agent", "ListAgentAliases"): list_agent_aliases,
    ("bedrock-agent", "UpdateAgentAlias"): update_agent_alias,
    ("bedrock-agent", "DeleteAgentAlias"): delete_agent_alias,
}
