"""What a request handler works with: the :class:`Platform` (every service, built once by ``create_app``)
and the :class:`Call` (one Bedrock operation call), and the type of a handler, ``Handler``.

The ``bedrock_*`` modules import this at run time; ``app.py`` builds the platform and dispatches to
handlers, so no handler module needs ``app.py`` and no import goes in a circle."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from haniwa.agents.functions import FunctionRegistry
from haniwa.agents.service import AgentService
from haniwa.agents.sessions import SessionStore
from haniwa.api.native.formats import NativeFormats
from haniwa.api.pagination import Pager
from haniwa.api.wire import Operation, Router
from haniwa.batch.service import BatchService
from haniwa.config import Settings
from haniwa.customization.imports import ImportService
from haniwa.customization.service import CustomizationService
from haniwa.evaluation.service import EvaluationService
from haniwa.guardrails.service import GuardrailService
from haniwa.invocations.service import InvocationLogs, LogEntry
from haniwa.jobs.engine import JobEngine
from haniwa.knowledge.service import KnowledgeService
from haniwa.runtime.registry import ModelRegistry
from haniwa.s3.jobs import open_job_store
from haniwa.store.db import Database
from haniwa.store.usage import Invocation, record

__all__ = ["Platform", "Call", "Handler"]


@dataclass
class Platform:
    """Everything a request handler may use; lives on ``app.state.platform``."""

    settings: Settings
    registry: ModelRegistry
    db: Database
    jobs: JobEngine
    knowledge: KnowledgeService
    agents: AgentService
    functions: FunctionRegistry = field(default_factory=FunctionRegistry)
    formats: NativeFormats = field(default_factory=NativeFormats)
    router: Router = field(default_factory=Router)
    handlers: dict[tuple[str, str], Handler] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    pages: Pager = field(default_factory=Pager)  # its key signs nextTokens until the app stops
    agent_sessions: SessionStore = field(init=False)
    guardrails: GuardrailService = field(init=False)
    evaluation: EvaluationService = field(init=False)
    batch: BatchService = field(init=False)
    invocation_logs: InvocationLogs = field(init=False)
    customization: CustomizationService = field(init=False)
    imports: ImportService = field(init=False)

    def __post_init__(self) -> None:
        self.agent_sessions = SessionStore(self.db)
        self.guardrails = GuardrailService(self.db)
        # registers the evaluation job kind: before create_app's lifespan recovers jobs
        store = open_job_store(self.settings)  # HANIWA_S3_ENDPOINT's store when set, else the local folder
        self.evaluation = EvaluationService(
            self.settings, self.registry, self.db, self.jobs, self.knowledge, store
        )
        self.invocation_logs = InvocationLogs(self.db, store, self.settings.region)
        self.batch = BatchService(
            self.db,
            self.jobs,
            store,
            self.settings.home / "batch",
            max_line_bytes=self.settings.max_body_bytes,
        )
        # registers the "training" job kind, so it exists before the engine's recover() at start-up
        self.customization = CustomizationService(self.settings, self.registry, self.db, self.jobs, store)
        self.imports = ImportService(self.settings, self.registry, self.db, self.jobs, store)

    async def log_invocation(
        self,
        *,
        request_id: str,
        surface: str,
        operation: str,
        model_requested: str | None,
        model_id: str | None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        latency_ms: int | None = None,
        first_token_ms: int | None = None,
        status: str = "ok",
        error_code: str | None = None,
        request: Any = None,
        response: Any = None,
        kind: str = "text",
        error_message: str | None = None,
    ) -> None:
        """One row in the invocation log (``store/usage.py``), which the usage tab reads; with ``request``
        (a runtime call's body) also a record in the S3 invocation log, when one is configured."""
        if request is not None:
            await self.invocation_logs.write(
                LogEntry(
                    request_id,
                    operation,
                    model_requested or model_id or "",
                    kind,
                    request,
                    response,
                    input_tokens,
                    output_tokens,
                    error_code,
                    error_message,
                )
            )
        await record(
            self.db,
            Invocation(
                request_id,
                surface,
                operation,
                model_requested,
                model_id,
                input_tokens,
                output_tokens,
                latency_ms,
                first_token_ms,
                status,
                error_code,
            ),
        )


@dataclass
class Call:
    """One Bedrock operation call, as a handler sees it."""

    platform: Platform
    op: Operation
    request_id: str
    headers: Mapping[str, str]
    started: float = field(default_factory=time.perf_counter)
    # HTTP headers a handler adds beyond its output shape's (InvokeModel's token-count headers)
    response_headers: dict[str, str] = field(default_factory=dict)

    @property
    def pages(self) -> Pager:
        return self.platform.pages

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)


# A Bedrock operation's implementation: the call and its parsed input → its output members (an
# ``EventStream`` value for the streaming member, which ``wire.serialize_output`` recognises).
Handler = Callable[[Call, dict[str, Any]], Awaitable[dict[str, Any]]]
