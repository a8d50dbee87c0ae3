"""Agents' state in SQLite: the DRAFT being edited, its prepared snapshot, numbered versions and aliases.

Editing happens on the DRAFT rows (``agents``, ``agent_action_groups``, ``agent_knowledge_bases``) and
every edit marks the agent NOT_PREPARED. :meth:`AgentService.prepare` freezes the DRAFT into
``agent_snapshots`` under version ``"DRAFT"``: that is what the test alias ``TSTALIASID`` runs. An alias
created or updated without a routing configuration freezes the prepared DRAFT again under the next number
(1, 2, …); numbered versions never change, so an alias keeps running what it was pointed at.

As in the knowledge service, ``spec`` columns keep the wire configuration as the client sent it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from haniwa.agents.base import DRAFT, TEST_ALIAS_ID, AgentSnapshot
from haniwa.errors import ConflictError, NotFoundError, ValidationError
from haniwa.knowledge.service import KnowledgeService
from haniwa.runtime.offload import CPU
from haniwa.store.db import Database

__all__ = [
    "Agent",
    "ActionGroup",
    "AgentKnowledgeBase",
    "AgentVersion",
    "AgentAlias",
    "AgentService",
    "require_draft",
    "TEST_ALIAS_NAME",
    "HISTORY_LIMIT",
]

TEST_ALIAS_NAME = "AgentTestAlias"
HISTORY_LIMIT = 10  # agentAliasHistoryEvents holds at most 10 events (service model)


@dataclass(frozen=True)
class Agent:
    """The DRAFT of an agent. ``spec`` holds the CreateAgent/UpdateAgent fields as sent."""

    id: str
    name: str
    status: str
    spec: dict[str, Any]
    next_version: int
    prepared: float | None
    created: float
    updated: float


@dataclass(frozen=True)
class ActionGroup:
    id: str
    agent_id: str
    version: str
    name: str
    spec: dict[str, Any]
    created: float
    updated: float


@dataclass(frozen=True)
class AgentKnowledgeBase:
    agent_id: str
    version: str
    kb_id: str
    spec: dict[str, Any]
    created: float
    updated: float


@dataclass(frozen=True)
class AgentVersion:
    """An agent frozen at one version: the prepared DRAFT or a numbered version."""

    agent_id: str
    version: str
    name: str
    spec: dict[str, Any]
    action_groups: tuple[ActionGroup, ...]
    knowledge_bases: tuple[AgentKnowledgeBase, ...]
    created: float

    def snapshot(self) -> AgentSnapshot:
        return AgentSnapshot(
            agent={**self.spec, "agentId": self.agent_id},
            version=self.version,
            action_groups=tuple({**g.spec, "actionGroupId": g.id} for g in self.action_groups),
            knowledge_bases=tuple({**k.spec, "knowledgeBaseId": k.kb_id} for k in self.knowledge_bases),
        )


@dataclass(frozen=True)
class AgentAlias:
    """An alias. ``routing`` is the wire routingConfiguration (one item naming ``agentVersion``);
    ``history`` the routing events, newest first, each with ``startDate`` and (once ended) ``endDate``."""

    id: str
    agent_id: str
    name: str
    spec: dict[str, Any]
    routing: list[dict[str, Any]]
    history: list[dict[str, Any]]
    created: float
    updated: float

    @property
    def version(self) -> str:
        return str(self.routing[0]["agentVersion"])


def require_draft(version: str) -> None:
    """Only the DRAFT is edited; numbered versions are frozen."""
    if version != DRAFT:
        raise ValidationError(
            f"agent version {version!r} is frozen: only the DRAFT version can be changed"
            " (create an alias to freeze a new version)"
        )


def _new_id() -> str:
    return uuid.uuid4().hex[:10].upper()


def _agent(row: Mapping[str, Any]) -> Agent:
    return Agent(**{**row, "spec": json.loads(row["spec"])})


def _group(row: Mapping[str, Any], version: str = DRAFT) -> ActionGroup:
    return ActionGroup(
        row["id"], row["agent_id"], version, row["name"], _spec(row["spec"]), row["created"], row["updated"]
    )


def _kb(row: Mapping[str, Any], version: str = DRAFT) -> AgentKnowledgeBase:
    return AgentKnowledgeBase(
        row["agent_id"], version, row["kb_id"], _spec(row["spec"]), row["created"], row["updated"]
    )


def _spec(value: str | Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


def _alias(row: Mapping[str, Any]) -> AgentAlias:
    return AgentAlias(
        **{
            **row,
            "spec": json.loads(row["spec"]),
            "routing": json.loads(row["routing"]),
            "history": json.loads(row["history"]),
        }
    )


def _version(agent_id: str, version: str, snapshot: str, created: float) -> AgentVersion:
    data = json.loads(snapshot)
    return AgentVersion(
        agent_id,
        version,
        data["name"],
        data["spec"],
        tuple(_group({**g, "agent_id": agent_id}, version) for g in data["action_groups"]),
        tuple(_kb({**k, "agent_id": agent_id}, version) for k in data["knowledge_bases"]),
        created,
    )


def _dump(v: AgentVersion) -> str:
    return json.dumps(
        {
            "name": v.name,
            "spec": v.spec,
            "action_groups": [
                {"id": g.id, "name": g.name, "spec": g.spec, "created": g.created, "updated": g.updated}
                for g in v.action_groups
            ],
            "knowledge_bases": [
                {"kb_id": k.kb_id, "spec": k.spec, "created": k.created, "updated": k.updated}
                for k in v.knowledge_bases
            ],
        }
    )


class AgentService:
    """Owns agent state. One per app, built by ``create_app``.

    ``validate`` is called with the DRAFT's snapshot by :meth:`prepare`; it raises
    :class:`~haniwa.errors.ValidationError` to refuse an agent the engine could not run.
    """

    def __init__(
        self,
        db: Database,
        knowledge: KnowledgeService,
        validate: Callable[[AgentSnapshot], None] | None = None,
    ) -> None:
        self.db = db
        self.knowledge = knowledge
        self.validate = validate
        # check-then-write sequences (unique names, version numbers) must not interleave
        self._lock = asyncio.Lock()

    # -- agents --------------------------------------------------------------------------------------
    async def create_agent(self, *, name: str, spec: Mapping[str, Any]) -> Agent:
        async with self._lock:
            if await self.db.query("SELECT 1 FROM agents WHERE name = ?", (name,)):
                raise ConflictError(f"an agent named {name!r} already exists")
            agent_id = _new_id()
            now = time.time()
            await self.db.execute(
                "INSERT INTO agents (id, name, status, spec, created, updated) VALUES (?,?,?,?,?,?)",
                (agent_id, name, "NOT_PREPARED", json.dumps(spec), now, now),
            )
        return await self.get_agent(agent_id)

    async def get_agent(self, agent_id: str) -> Agent:
        rows = await self.db.query("SELECT * FROM agents WHERE id = ?", (agent_id,))
        if not rows:
            raise NotFoundError(f"agent {agent_id!r} does not exist")
        return _agent(rows[0])

    async def list_agents(self) -> list[Agent]:
        return [_agent(r) for r in await self.db.query("SELECT * FROM agents ORDER BY created")]

    async def update_agent(self, agent_id: str, *, name: str, spec: Mapping[str, Any]) -> Agent:
        async with self._lock:
            await self.get_agent(agent_id)
            if await self.db.query("SELECT 1 FROM agents WHERE name = ? AND id != ?", (name, agent_id)):
                raise ConflictError(f"an agent named {name!r} already exists")
            await self.db.execute(
                "UPDATE agents SET name = ?, spec = ?, status = 'NOT_PREPARED', updated = ? WHERE id = ?",
                (name, json.dumps(spec), time.time(), agent_id),
            )
        return await self.get_agent(agent_id)

    async def delete_agent(self, agent_id: str) -> Agent:
        """Delete an agent with its action groups, knowledge-base associations, versions and aliases."""
        async with self._lock:
            agent = await self.get_agent(agent_id)
            await self.db.execute("DELETE FROM agents WHERE id = ?", (agent_id,))
        return Agent(**{**agent.__dict__, "status": "DELETING"})

    async def _edited(self, agent_id: str) -> None:
        await self.db.execute(
            "UPDATE agents SET status = 'NOT_PREPARED', updated = ? WHERE id = ?", (time.time(), agent_id)
        )

    # -- action groups -------------------------------------------------------------------------------
    async def create_action_group(
        self, agent_id: str, version: str, *, name: str, spec: Mapping[str, Any]
    ) -> ActionGroup:
        require_draft(version)
        async with self._lock:
            await self.get_agent(agent_id)
            await self._unique_group_name(agent_id, name, None)
            group_id = _new_id()
            now = time.time()
            await self.db.execute(
                "INSERT INTO agent_action_groups VALUES (?,?,?,?,?,?)",
                (group_id, agent_id, name, json.dumps(spec), now, now),
            )
            await self._edited(agent_id)
        return await self.get_action_group(agent_id, DRAFT, group_id)

    async def _unique_group_name(self, agent_id: str, name: str, group_id: str | None) -> None:
        clash = await self.db.query(
            "SELECT 1 FROM agent_action_groups WHERE agent_id = ? AND name = ? AND id != ?",
            (agent_id, name, group_id or ""),
        )
        if clash:
            raise ConflictError(f"agent {agent_id} already has an action group named {name!r}")

    async def get_action_group(self, agent_id: str, version: str, group_id: str) -> ActionGroup:
        for group in await self.list_action_groups(agent_id, version):
            if group.id == group_id:
                return group
        raise NotFoundError(
            f"action group {group_id!r} does not exist in version {version} of agent {agent_id}"
        )

    async def list_action_groups(self, agent_id: str, version: str) -> list[ActionGroup]:
        if version != DRAFT:
            return list((await self.get_version(agent_id, version)).action_groups)
        await self.get_agent(agent_id)
        rows = await self.db.query(
            "SELECT * FROM agent_action_groups WHERE agent_id = ? ORDER BY created", (agent_id,)
        )
        return [_group(r) for r in rows]

    async def update_action_group(
        self, agent_id: str, version: str, group_id: str, *, name: str, spec: Mapping[str, Any]
    ) -> ActionGroup:
        require_draft(version)
        async with self._lock:
            await self.get_action_group(agent_id, DRAFT, group_id)
            await self._unique_group_name(agent_id, name, group_id)
            await self.db.execute(
                "UPDATE agent_action_groups SET name = ?, spec = ?, updated = ? WHERE id = ?",
                (name, json.dumps(spec), time.time(), group_id),
            )
            await self._edited(agent_id)
        return await self.get_action_group(agent_id, DRAFT, group_id)

    async def delete_action_group(self, agent_id: str, version: str, group_id: str) -> ActionGroup:
        require_draft(version)
        async with self._lock:
            group = await self.get_action_group(agent_id, DRAFT, group_id)
            await self.db.execute("DELETE FROM agent_action_groups WHERE id = ?", (group_id,))
            await self._edited(agent_id)
        return group

    # -- knowledge-base associations -----------------------------------------------------------------
    async def associate_kb(
        self, agent_id: str, version: str, kb_id: str, spec: Mapping[str, Any]
    ) -> AgentKnowledgeBase:
        require_draft(version)
        async with self._lock:
            await self.get_agent(agent_id)
            await self.knowledge.get_kb(kb_id)
            if await self.db.query(
                "SELECT 1 FROM agent_knowledge_bases WHERE agent_id = ? AND kb_id = ?", (agent_id, kb_id)
            ):
                raise ConflictError(f"knowledge base {kb_id} is already associated with agent {agent_id}")
            now = time.time()
            await self.db.execute(
                "INSERT INTO agent_knowledge_bases VALUES (?,?,?,?,?)",
                (agent_id, kb_id, json.dumps(spec), now, now),
            )
            await self._edited(agent_id)
        return await self.get_agent_kb(agent_id, DRAFT, kb_id)

    async def get_agent_kb(self, agent_id: str, version: str, kb_id: str) -> AgentKnowledgeBase:
        for assoc in await self.list_agent_kbs(agent_id, version):
            if assoc.kb_id == kb_id:
                return assoc
        raise NotFoundError(
            f"knowledge base {kb_id!r} is not associated with version {version} of agent {agent_id}"
        )

    async def list_agent_kbs(self, agent_id: str, version: str) -> list[AgentKnowledgeBase]:
        if version != DRAFT:
            return list((await self.get_version(agent_id, version)).knowledge_bases)
        await self.get_agent(agent_id)
        rows = await self.db.query(
            "SELECT * FROM agent_knowledge_bases WHERE agent_id = ? ORDER BY created", (agent_id,)
        )
        return [_kb(r) for r in rows]

    async def update_agent_kb(
        self, agent_id: str, version: str, kb_id: str, spec: Mapping[str, Any]
    ) -> AgentKnowledgeBase:
        require_draft(version)
        async with self._lock:
            await self.get_agent_kb(agent_id, DRAFT, kb_id)
            await self.db.execute(
                "UPDATE agent_knowledge_bases SET spec = ?, updated = ? WHERE agent_id = ? AND kb_id = ?",
                (json.dumps(spec), time.time(), agent_id, kb_id),
            )
            await self._edited(agent_id)
        return await self.get_agent_kb(agent_id, DRAFT, kb_id)

    async def disassociate_kb(self, agent_id: str, version: str, kb_id: str) -> AgentKnowledgeBase:
        require_draft(version)
        async with self._lock:
            assoc = await self.get_agent_kb(agent_id, DRAFT, kb_id)
            await self.db.execute(
                "DELETE FROM agent_knowledge_bases WHERE agent_id = ? AND kb_id = ?", (agent_id, kb_id)
            )
            await self._edited(agent_id)
        return assoc

    # -- prepare and versions ------------------------------------------------------------------------
    async def prepare(self, agent_id: str) -> Agent:
        """Validate the DRAFT and freeze it as the prepared DRAFT (what TSTALIASID runs)."""
        async with self._lock:
            agent = await self.get_agent(agent_id)
            now = time.time()
            draft = AgentVersion(
                agent.id,
                DRAFT,
                agent.name,
                agent.spec,
                tuple(await self.list_action_groups(agent_id, DRAFT)),
                tuple(await self.list_agent_kbs(agent_id, DRAFT)),
                now,
            )
            if self.validate is not None:
                # off the event loop: it parses OpenAPI documents (YAML) the client sent
                await CPU.run(self.validate, draft.snapshot())
            await self.db.execute(
                "INSERT OR REPLACE INTO agent_snapshots VALUES (?,?,?,?)",
                (agent_id, DRAFT, _dump(draft), now),
            )
            await self.db.execute(
                "UPDATE agents SET status = 'PREPARED', prepared = ?, updated = ? WHERE id = ?",
                (now, now, agent_id),
            )
        return await self.get_agent(agent_id)

    async def prepared_draft(self, agent_id: str) -> AgentVersion:
        """The DRAFT as last prepared."""
        await self.get_agent(agent_id)
        rows = await self.db.query(
            "SELECT * FROM agent_snapshots WHERE agent_id = ? AND version = ?", (agent_id, DRAFT)
        )
        if not rows:
            raise ValidationError(f"agent {agent_id} is not prepared; call PrepareAgent")
        return _version(agent_id, DRAFT, rows[0]["snapshot"], rows[0]["created"])

    async def get_version(self, agent_id: str, version: str) -> AgentVersion:
        """A numbered version (the DRAFT is read with :meth:`get_agent` or :meth:`prepared_draft`)."""
        await self.get_agent(agent_id)
        rows = await self.db.query(
            "SELECT * FROM agent_snapshots WHERE agent_id = ? AND version = ? AND version != ?",
            (agent_id, version, DRAFT),
        )
        if not rows:
            raise NotFoundError(f"version {version!r} of agent {agent_id} does not exist")
        return _version(agent_id, version, rows[0]["snapshot"], rows[0]["created"])

    async def list_versions(self, agent_id: str) -> list[AgentVersion]:
        """The numbered versions, oldest first."""
        await self.get_agent(agent_id)
        rows = await self.db.query(
            "SELECT * FROM agent_snapshots WHERE agent_id = ? AND version != ?"
            " ORDER BY CAST(version AS INTEGER)",
            (agent_id, DRAFT),
        )
        return [_version(agent_id, r["version"], r["snapshot"], r["created"]) for r in rows]

    async def delete_version(self, agent_id: str, version: str, *, force: bool = False) -> AgentVersion:
        """Delete a numbered version; refused (ConflictError) while an alias routes to it unless ``force``."""
        if version == DRAFT:
            raise ValidationError("the DRAFT version cannot be deleted; delete the agent instead")
        async with self._lock:
            found = await self.get_version(agent_id, version)
            users = [a for a in await self._aliases(agent_id) if a.version == version]
            if users and not force:
                names = ", ".join(f"{a.name} ({a.id})" for a in users)
                raise ConflictError(
                    f"version {version} of agent {agent_id} is used by alias {names}; route the alias"
                    " elsewhere first or pass skipResourceInUseCheck"
                )
            await self.db.execute(
                "DELETE FROM agent_snapshots WHERE agent_id = ? AND version = ?", (agent_id, version)
            )
        return found

    async def _freeze(self, agent_id: str) -> str:
        """Copy the prepared DRAFT to the next numbered version; the caller holds the lock."""
        agent = await self.get_agent(agent_id)
        if agent.status != "PREPARED":
            raise ValidationError(
                f"agent {agent_id} is {agent.status}: call PrepareAgent before creating a version"
                " (an alias without routingConfiguration creates one)"
            )
        draft = await self.prepared_draft(agent_id)
        version = str(agent.next_version)
        frozen = AgentVersion(
            agent_id, version, draft.name, draft.spec, draft.action_groups, draft.knowledge_bases, time.time()
        )
        await self.db.execute(
            "INSERT INTO agent_snapshots VALUES (?,?,?,?)", (agent_id, version, _dump(frozen), frozen.created)
        )
        await self.db.execute("UPDATE agents SET next_version = next_version + 1 WHERE id = ?", (agent_id,))
        return version

    async def _route(
        self, agent_id: str, routing: Sequence[Mapping[str, Any]] | None
    ) -> list[dict[str, Any]]:
        """The routing an alias gets: a new version when none is given, else the named one (checked)."""
        if not routing:
            return [{"agentVersion": await self._freeze(agent_id)}]
        if len(routing) != 1 or not routing[0].get("agentVersion"):
            raise ValidationError("routingConfiguration takes exactly one item naming an agentVersion")
        version = str(routing[0]["agentVersion"])
        if version == DRAFT:
            raise ValidationError(
                f"an alias routes to a numbered version; the test alias {TEST_ALIAS_ID} runs the DRAFT"
            )
        await self.get_version(agent_id, version)
        return [dict(routing[0])]

    # -- aliases -------------------------------------------------------------------------------------
    async def create_alias(
        self,
        agent_id: str,
        *,
        name: str,
        spec: Mapping[str, Any],
        routing: Sequence[Mapping[str, Any]] | None = None,
    ) -> AgentAlias:
        async with self._lock:
            agent = await self.get_agent(agent_id)
            await self._unique_alias_name(agent, name, None)
            route = await self._route(agent_id, routing)
            alias_id = _new_id()
            now = time.time()
            history = [{"routingConfiguration": route, "startDate": now}]
            await self.db.execute(
                "INSERT INTO agent_aliases VALUES (?,?,?,?,?,?,?,?)",
                (
                    alias_id,
                    agent_id,
                    name,
                    json.dumps(spec),
                    json.dumps(route),
                    json.dumps(history),
                    now,
                    now,
                ),
            )
        return await self.get_alias(agent_id, alias_id)

    async def _unique_alias_name(self, agent: Agent, name: str, alias_id: str | None) -> None:
        clash = await self.db.query(
            "SELECT 1 FROM agent_aliases WHERE agent_id = ? AND name = ? AND id != ?",
            (agent.id, name, alias_id or ""),
        )
        if clash or name == TEST_ALIAS_NAME:
            raise ConflictError(f"agent {agent.id} already has an alias named {name!r}")

    def _test_alias(self, agent: Agent) -> AgentAlias:
        route = [{"agentVersion": DRAFT}]
        return AgentAlias(
            TEST_ALIAS_ID,
            agent.id,
            TEST_ALIAS_NAME,
            {"description": "Runs the prepared DRAFT"},
            route,
            [{"routingConfiguration": route, "startDate": agent.created}],
            agent.created,
            agent.updated,
        )

    async def _aliases(self, agent_id: str) -> list[AgentAlias]:
        rows = await self.db.query(
            "SELECT * FROM agent_aliases WHERE agent_id = ? ORDER BY created", (agent_id,)
        )
        return [_alias(r) for r in rows]

    async def get_alias(self, agent_id: str, alias_id: str) -> AgentAlias:
        agent = await self.get_agent(agent_id)
        if alias_id == TEST_ALIAS_ID:
            return self._test_alias(agent)
        rows = await self.db.query(
            "SELECT * FROM agent_aliases WHERE id = ? AND agent_id = ?", (alias_id, agent_id)
        )
        if not rows:
            raise NotFoundError(f"alias {alias_id!r} of agent {agent_id} does not exist")
        return _alias(rows[0])

    async def list_aliases(self, agent_id: str) -> list[AgentAlias]:
        """The test alias first, then the agent's aliases, oldest first."""
        agent = await self.get_agent(agent_id)
        return [self._test_alias(agent), *await self._aliases(agent_id)]

    async def update_alias(
        self,
        agent_id: str,
        alias_id: str,
        *,
        name: str,
        spec: Mapping[str, Any],
        routing: Sequence[Mapping[str, Any]] | None = None,
    ) -> AgentAlias:
        """Rename/redescribe an alias and route it: to a new version when ``routing`` is empty."""
        if alias_id == TEST_ALIAS_ID:
            raise ValidationError(f"the test alias {TEST_ALIAS_ID} cannot be changed")
        async with self._lock:
            agent = await self.get_agent(agent_id)
            alias = await self.get_alias(agent_id, alias_id)
            await self._unique_alias_name(agent, name, alias_id)
            route = await self._route(agent_id, routing)
            now = time.time()
            history = alias.history
            if route != alias.routing:
                ended = [{**history[0], "endDate": now}, *history[1:]] if history else []
                history = [{"routingConfiguration": route, "startDate": now}, *ended][:HISTORY_LIMIT]
            await self.db.execute(
                "UPDATE agent_aliases SET name = ?, spec = ?, routing = ?, history = ?, updated = ?"
                " WHERE id = ?",
                (name, json.dumps(spec), json.dumps(route), json.dumps(history), now, alias_id),
            )
        return await self.get_alias(agent_id, alias_id)

    async def delete_alias(self, agent_id: str, alias_id: str) -> AgentAlias:
        if alias_id == TEST_ALIAS_ID:
            raise ValidationError(f"the test alias {TEST_ALIAS_ID} cannot be deleted")
        async with self._lock:
            alias = await self.get_alias(agent_id, alias_id)
            await self.db.execute("DELETE FROM agent_aliases WHERE id = ?", (alias_id,))
        return alias

    # -- runtime -------------------------------------------------------------------------------------
    async def resolve(self, agent_id: str, alias_id: str) -> AgentSnapshot:
        """What an alias runs: the prepared DRAFT for TSTALIASID, else the alias's routed version."""
        if alias_id == TEST_ALIAS_ID:
            return (await self.prepared_draft(agent_id)).snapshot()
        alias = await self.get_alias(agent_id, alias_id)
        if alias.spec.get("aliasInvocationState") == "REJECT_INVOCATIONS":
            raise ValidationError(f"alias {alias_id} of agent {agent_id} rejects invocations")
        try:
            version = await self.get_version(agent_id, alias.version)
        except NotFoundError as exc:
            raise NotFoundError(
                f"alias {alias_id} routes to version {alias.version} of agent {agent_id}, which was deleted"
            ) from exc
        return version.snapshot()
