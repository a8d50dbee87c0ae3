"""A stored agent (wire dicts) → the :class:`AgentSpec` the orchestration loop runs, with the checks
PrepareAgent makes: a model, registered functions, well-formed schemas, unique tool names."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, cast

import yaml

from haniwa.agents.base import (
    AgentSnapshot,
    AgentSpec,
    KnowledgeBaseRef,
    Parameter,
    ParamType,
    PromptSettings,
    Tool,
)
from haniwa.agents.functions import FunctionRegistry, function_name
from haniwa.errors import ValidationError

__all__ = ["build_spec", "validator", "openapi_tools", "KB_TOOL"]

KB_TOOL = "search_knowledge_base"
_TYPES = {"string", "number", "integer", "boolean", "array"}
_METHODS = ("get", "post", "put", "patch", "delete")


def _param_type(t: Any, where: str) -> ParamType:
    if t not in _TYPES:
        raise ValidationError(f"{where}: type must be one of {sorted(_TYPES)}, got {t!r}")
    return cast(ParamType, t)


def _function_tools(group: Mapping[str, Any], execution: Any, executor: str | None) -> list[Tool]:
    tools = []
    for fn in group["functionSchema"].get("functions", []):
        params = tuple(
            Parameter(
                name,
                _param_type(d.get("type"), f"{group['actionGroupName']}.{fn['name']}.{name}"),
                d.get("description", ""),
                bool(d.get("required", False)),
            )
            for name, d in (fn.get("parameters") or {}).items()
        )
        tools.append(
            Tool(
                name=fn["name"],
                description=fn.get("description", ""),
                parameters=params,
                action_group=group["actionGroupName"],
                function=fn["name"],
                execution=execution,
                executor=executor,
                require_confirmation=fn.get("requireConfirmation") == "ENABLED",
            )
        )
    return tools


def openapi_tools(
    payload: str, group: str, execution: Any = "LAMBDA", executor: str | None = None
) -> list[Tool]:
    """One tool per operation of an OpenAPI 3 document (JSON or YAML): path/query/header parameters and
    the JSON request body's top-level properties become the tool's parameters."""
    try:
        doc = yaml.safe_load(payload)
    except yaml.YAMLError as e:
        raise ValidationError(f"{group}: apiSchema.payload is not valid JSON or YAML: {e}") from e
    if not isinstance(doc, Mapping) or not isinstance(doc.get("paths"), Mapping):
        raise ValidationError(f"{group}: apiSchema.payload must be an OpenAPI document with 'paths'")
    tools = []
    for path, item in doc["paths"].items():
        for method in _METHODS:
            op = (item or {}).get(method)
            if not isinstance(op, Mapping):
                continue
            params: list[Parameter] = []
            for p in op.get("parameters", []):
                schema = p.get("schema") or {}
                params.append(
                    Parameter(
                        p["name"],
                        _param_type(
                            schema.get("type", "string"), f"{group} {method.upper()} {path} {p['name']}"
                        ),
                        p.get("description", ""),
                        bool(p.get("required", p.get("in") == "path")),
                        p.get("in", "query"),
                    )
                )
            body = ((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
            schema = body.get("schema") or {}
            required = set(schema.get("required", []))
            for name, s in (schema.get("properties") or {}).items():
                params.append(
                    Parameter(
                        name,
                        _param_type(s.get("type", "string"), f"{group} {method.upper()} {path} {name}"),
                        s.get("description", ""),
                        name in required,
                        "body",
                    )
                )
            name = op.get("operationId") or re.sub(r"[^A-Za-z0-9_]+", "_", f"{method}{path}").strip("_")
            tools.append(
                Tool(
                    name=name,
                    description=op.get("description") or op.get("summary") or "",
                    parameters=tuple(params),
                    action_group=group,
                    api_path=path,
                    http_method=method.upper(),
                    execution=execution,
                    executor=executor,
                )
            )
    return tools


def _prompt(agent: Mapping[str, Any]) -> PromptSettings:
    for pc in (agent.get("promptOverrideConfiguration") or {}).get("promptConfigurations", []):
        if pc.get("promptType") != "ORCHESTRATION":
            continue
        ic = pc.get("inferenceConfiguration") or {}
        template = pc.get("basePromptTemplate") if pc.get("promptCreationMode") == "OVERRIDDEN" else None
        return PromptSettings(
            template=template,
            temperature=ic.get("temperature", 0.0),
            top_p=ic.get("topP"),
            top_k=ic.get("topK"),
            max_tokens=int(ic.get("maximumLength", 512)),
            stop_sequences=tuple(ic.get("stopSequences", ())),
        )
    return PromptSettings()


def build_spec(snap: AgentSnapshot, alias_id: str, functions: FunctionRegistry | None = None) -> AgentSpec:
    agent = snap.agent
    model = agent.get("foundationModel")
    if not model:
        raise ValidationError(f"agent {agent.get('agentName')!r} has no foundationModel")
    tools: list[Tool] = []
    for g in snap.action_groups:
        if g.get("actionGroupState", "ENABLED") != "ENABLED" or g.get("parentActionGroupSignature"):
            continue  # AMAZON.UserInput & co. need no tool: the model can always answer with a question
        ex = g.get("actionGroupExecutor") or {}
        execution = "RETURN_CONTROL" if ex.get("customControl") == "RETURN_CONTROL" else "LAMBDA"
        executor = function_name(ex["lambda"]) if ex.get("lambda") else None
        if execution == "LAMBDA":
            if executor is None:
                raise ValidationError(f"action group {g['actionGroupName']!r} has no actionGroupExecutor")
            if functions is not None and executor not in functions:
                known = ", ".join(functions.names()) or "none"
                raise ValidationError(
                    f"action group {g['actionGroupName']!r}: no function named {executor!r} is registered"
                    f" (registered: {known}); declare it in HANIWA_AGENT_FUNCTIONS or a plugin"
                )
        if g.get("functionSchema"):
            tools += _function_tools(g, execution, executor)
        elif (g.get("apiSchema") or {}).get("payload"):
            tools += openapi_tools(g["apiSchema"]["payload"], g["actionGroupName"], execution, executor)
        else:
            raise ValidationError(
                f"action group {g['actionGroupName']!r}: send functionSchema or apiSchema.payload"
            )
    kbs = tuple(
        KnowledgeBaseRef(k["knowledgeBaseId"], k.get("description", ""))
        for k in snap.knowledge_bases
        if k.get("knowledgeBaseState", "ENABLED") == "ENABLED"
    )
    for i, kb in enumerate(kbs):
        tools.append(
            Tool(
                name=KB_TOOL if len(kbs) == 1 else f"{KB_TOOL}_{i + 1}",
                description=kb.description or "Search the knowledge base.",
                parameters=(Parameter("query", "string", "what to look for", True),),
                kind="knowledge_base",
                kb_id=kb.kb_id,
            )
        )
    names = [t.name for t in tools]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValidationError(f"agent {agent.get('agentName')!r}: tool names must be unique: {dupes}")
    memory = agent.get("memoryConfiguration") or {}
    return AgentSpec(
        agent_id=str(agent.get("agentId", "")),
        alias_id=alias_id,
        version=snap.version,
        name=str(agent.get("agentName", "")),
        instruction=str(agent.get("instruction", "")),
        model_id=str(model),
        tools=tuple(tools),
        knowledge_bases=kbs,
        prompt=_prompt(agent),
        idle_ttl_s=int(agent.get("idleSessionTTLInSeconds", 600)),
        memory_enabled="SESSION_SUMMARY" in memory.get("enabledMemoryTypes", []),
        memory_days=int(memory.get("storageDays", 30)),
    )


def validator(
    functions: FunctionRegistry, known_model: Callable[[str], bool] | None = None
) -> Callable[[AgentSnapshot], None]:
    """What PrepareAgent runs: the snapshot must build, and its model must be in the catalog."""

    def validate(snap: AgentSnapshot) -> None:
        spec = build_spec(snap, "DRAFT", functions)
        if known_model is not None and not known_model(spec.model_id):
            raise ValidationError(f"unknown foundationModel {spec.model_id!r}")
        json.dumps([t.input_schema() for t in spec.tools])  # schemas must serialise

    return validate
