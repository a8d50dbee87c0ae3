"""Bedrock agent records (the wire dicts CreateAgent, CreateAgentActionGroup and AssociateAgentKnowledgeBase
stored) → the :class:`~haniwa.agents.base.AgentSpec` the orchestration loop runs, with the checks
PrepareAgent makes: a model, registered functions, well-formed schemas, unique tool names. It belongs to the
api layer: the agents package runs :class:`AgentSpec` s and never parses Bedrock's shapes."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter, OrderedDict
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
    if not isinstance(t, str) or t not in _TYPES:
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


# An OpenAPI document is a client's text parsed on the server: its size, and the size YAML aliases can
# expand it to (a 747-byte "billion laughs" of nested aliases or merge keys expands 9x per level), are
# bounded. The limit counts nodes as if every alias were written out in full.
MAX_API_SCHEMA_CHARS = 1024 * 1024
MAX_API_SCHEMA_NODES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses, while composing (before anything is built), a document whose
    aliases would expand it past :data:`MAX_API_SCHEMA_NODES` nodes, and aliases to a node that contains
    them (a cycle). The pure-Python loader on purpose: libyaml's composer recurses in C and crashes the
    process on deep nesting, where this one raises RecursionError."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) → its node count with aliases expanded

    def compose_node(self, parent: Any, index: Any) -> Any:
        alias = self.check_event(yaml.AliasEvent)
        node = super().compose_node(parent, index)
        size = self._sizes.get(id(node))
        if size is None:
            if alias:  # the alias names a node whose composition has not finished: an ancestor
                raise ValidationError("an alias in apiSchema.payload refers to a node that contains it")
            if isinstance(node, yaml.SequenceNode):
                size = 1 + sum(self._sizes[id(child)] for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
            else:
                size = 1
            self._sizes[id(node)] = size
        if size > MAX_API_SCHEMA_NODES:
            raise ValidationError(
                f"apiSchema.payload expands to more than {MAX_API_SCHEMA_NODES} YAML nodes (through aliases"
                " or merge keys); write the schema out, or make it smaller"
            )
        return node


def _load_document(payload: str, group: str) -> Any:
    if len(payload) > MAX_API_SCHEMA_CHARS:
        raise ValidationError(
            f"{group}: apiSchema.payload has {len(payload)} characters; at most {MAX_API_SCHEMA_CHARS} are"
            " accepted"
        )
    if payload.lstrip().startswith("{"):
        # most clients send JSON: C-fast, and it has no aliases to expand (YAML reads it alike)
        try:
            return json.loads(payload)
        except RecursionError:
            raise ValidationError(f"{group}: apiSchema.payload nests too deeply") from None
        except ValueError:
            pass  # YAML flow syntax, or not valid at all: the YAML loader says which
    loader = _BoundedLoader(payload)
    try:
        return loader.get_single_data()
    except ValidationError as e:
        raise ValidationError(f"{group}: {e.message}") from None
    except yaml.YAMLError as e:
        raise ValidationError(f"{group}: apiSchema.payload is not valid JSON or YAML: {e}") from e
    except RecursionError:
        raise ValidationError(f"{group}: apiSchema.payload nests too deeply") from None
    except (ValueError, TypeError, OverflowError) as e:  # e.g. an integer of more than 4300 digits
        raise ValidationError(f"{group}: apiSchema.payload holds a value that cannot be read: {e}") from e
    finally:
        loader.dispose()


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{where} must be an object")
    return value


def _text(value: Any, where: str) -> str:
    # a scalar of any YAML type reads as text; a list or an object (an alias bomb's usual carrier) does not
    if value is None:
        return ""
    if isinstance(value, Mapping | list | tuple | set | bytes):
        raise ValidationError(f"{where} must be a string")
    return str(value)


_TOOLS_CACHED = 32
_tools_cache: OrderedDict[tuple[bytes, str, str, str | None], tuple[Tool, ...]] = OrderedDict()
_tools_lock = threading.Lock()


def openapi_tools(
    payload: str, group: str, execution: Any = "LAMBDA", executor: str | None = None
) -> list[Tool]:
    """One tool per operation of an OpenAPI 3 document (JSON or YAML): path/query/header parameters and
    the JSON request body's top-level properties become the tool's parameters.

    The last few results are kept: InvokeAgent builds its agent's tools on every call, and PrepareAgent
    (which parses on a worker thread) has usually built them already."""
    digest = hashlib.sha256(payload.encode("utf-8", "surrogatepass")).digest()
    key = (digest, group, str(execution), executor)
    with _tools_lock:
        cached = _tools_cache.get(key)
        if cached is not None:
            _tools_cache.move_to_end(key)
            return list(cached)
    tools = _openapi_tools(_load_document(payload, group), group, execution, executor)
    with _tools_lock:
        _tools_cache[key] = tuple(tools)
        while len(_tools_cache) > _TOOLS_CACHED:
            _tools_cache.popitem(last=False)
    return tools


def _openapi_tools(doc: Any, group: str, execution: Any, executor: str | None) -> list[Tool]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("paths"), Mapping):
        raise ValidationError(f"{group}: apiSchema.payload must be an OpenAPI document with 'paths'")
    tools = []
    for path, item in doc["paths"].items():
        path = _text(path, f"{group}: a path")
        item = _mapping(item, f"{group} {path}")
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, Mapping):
                continue
            where = f"{group} {method.upper()} {path}"
            params: list[Parameter] = []
            listed = op.get("parameters") or []
            if not isinstance(listed, list):
                raise ValidationError(f"{where}: parameters must be a list")
            for p in listed:
                p = _mapping(p, f"{where}: a parameter")
                name = _text(p.get("name"), f"{where}: a parameter's name")
                if not name:
                    raise ValidationError(f"{where}: every parameter needs a name")
                schema = _mapping(p.get("schema"), f"{where} {name}: schema")
                location = _text(p.get("in", "query"), f"{where} {name}: in")
                params.append(
                    Parameter(
                        name,
                        _param_type(schema.get("type", "string"), f"{where} {name}"),
                        _text(p.get("description"), f"{where} {name}: description"),
                        bool(p.get("required", location == "path")),
                        location,
                    )
                )
            body = _mapping(op.get("requestBody"), f"{where}: requestBody")
            content = _mapping(body.get("content"), f"{where}: requestBody.content")
            schema = _mapping(
                _mapping(content.get("application/json"), f"{where}: application/json").get("schema"),
                f"{where}: the request body's schema",
            )
            required = schema.get("required") or []
            if not isinstance(required, list):
                raise ValidationError(f"{where}: the request body's required must be a list")
            for name, s in _mapping(schema.get("properties"), f"{where}: properties").items():
                name = _text(name, f"{where}: a property name")
                s = _mapping(s, f"{where} {name}")
                params.append(
                    Parameter(
                        name,
                        _param_type(s.get("type", "string"), f"{where} {name}"),
                        _text(s.get("description"), f"{where} {name}: description"),
                        name in required,
                        "body",
                    )
                )
            name = _text(op.get("operationId"), f"{where}: operationId") or re.sub(
                r"[^A-Za-z0-9_]+", "_", f"{method}{path}"
            ).strip("_")
            description = op.get("description") or op.get("summary")
            tools.append(
                Tool(
                    name=name,
                    description=_text(description, f"{where}: description"),
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
                # the names that are registered are the operator's business, not the caller's
                raise ValidationError(
                    f"action group {g['actionGroupName']!r}: no function named {executor!r} is registered;"
                    " declare it in HANIWA_AGENT_FUNCTIONS or a plugin"
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
    dupes = sorted(n for n, count in Counter(names).items() if count > 1)
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
