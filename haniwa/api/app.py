"""``create_app(settings)``: builds the platform (registry, database) once and mounts every surface."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.staticfiles import StaticFiles

from haniwa.agents.functions import FunctionRegistry
from haniwa.agents.service import AgentService
from haniwa.agents.sessions import SessionStore
from haniwa.agents.spec import validator
from haniwa.api import bedrock as bedrock_ops
from haniwa.api import (
    bedrock_agent,
    bedrock_agent_agents,
    bedrock_agent_invoke,
    bedrock_agent_runtime,
    bedrock_runtime,
    eventstream,
    haniwa_rest,
)
from haniwa.api import openai as openai_api
from haniwa.api.auth import verify_sigv4
from haniwa.api.errors import bedrock_error
from haniwa.api.wire import (
    EventStream,
    Handler,
    Operation,
    Router,
    parse_input,
    serialize_output,
    stream_member,
    to_wire,
)
from haniwa.config import Settings
from haniwa.errors import (
    NotFoundError,
    NotImplementedOperationError,
    PlatformError,
    UsageError,
    ValidationError,
)
from haniwa.knowledge.base import VectorStoreFactory
from haniwa.knowledge.parse import ParserSet
from haniwa.knowledge.service import KnowledgeService
from haniwa.playground import STATIC
from haniwa.plugins import make_plugin_manager
from haniwa.runtime.registry import ModelRegistry
from haniwa.store.db import Database

__all__ = ["create_app", "Platform", "Call"]


@dataclass
class Platform:
    """Everything a request handler may use; lives on ``app.state.platform``."""

    settings: Settings
    registry: ModelRegistry
    db: Database
    knowledge: KnowledgeService
    agents: AgentService
    functions: FunctionRegistry = field(default_factory=FunctionRegistry)
    router: Router = field(default_factory=Router)
    handlers: dict[tuple[str, str], Handler] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    agent_sessions: SessionStore = field(init=False)

    def __post_init__(self) -> None:
        self.agent_sessions = SessionStore(self.db)

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
    ) -> None:
        await self.db.execute(
            "INSERT INTO invocations (request_id, ts, surface, operation, model_requested, model_id,"
            " input_tokens, output_tokens, latency_ms, first_token_ms, status, error_code)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                request_id,
                time.time(),
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

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)


def _platform(request: Request) -> Platform:
    p: Platform = request.app.state.platform
    return p


async def _encode(op: Operation, stream: EventStream) -> AsyncIterator[bytes]:
    try:
        async for name, payload in stream.events:
            yield eventstream.event(name, to_wire(payload))
    except PlatformError as exc:
        # exception events are members of the stream union, named in lowerCamelCase
        union = op.model.output_shape.members[stream_member(op) or ""]
        code = exc.code[0].lower() + exc.code[1:]
        yield eventstream.exception_event(
            code if code in union.members else "internalServerException", exc.message
        )


async def _dispatch(request: Request) -> Response:
    platform = _platform(request)
    request_id = str(uuid.uuid4())
    raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    found = platform.router.match(request.method, raw_path)
    if found is None:
        return JSONResponse(
            {"message": f"no Bedrock operation answers {request.method} {request.url.path}"},
            status_code=404,
            headers={"x-amzn-errortype": "UnknownOperationException", "x-amzn-requestid": request_id},
        )
    op, path_params = found
    try:
        body = await request.body()
        if len(body) > platform.settings.max_body_bytes:
            raise ValidationError(
                f"request body of {len(body)} bytes exceeds the limit of {platform.settings.max_body_bytes}"
            )
        query_string = request.scope.get("query_string", b"").decode("latin-1")
        signed_url = f"{request.url.scheme}://{request.url.netloc}{raw_path}" + (
            f"?{query_string}" if query_string else ""
        )
        verify_sigv4(platform.settings, request.method, signed_url, list(request.headers.items()), body)
        query = parse_qs(query_string, keep_blank_values=True)
        headers = {k.lower(): v for k, v in request.headers.items()}
        params = parse_input(op, path_params, query, headers, body)
        handler = platform.handlers.get((op.service, op.name))
        if handler is None:
            raise NotImplementedOperationError(
                f"{op.service} {op.name} is not served by this haniwa version yet"
            )
        call = Call(platform, op, request_id, headers)
        result = await handler(call, params)
        status, out_headers, payload = serialize_output(op, result)
    except PlatformError as exc:
        return bedrock_error(op.service, exc, request_id)
    out_headers["x-amzn-requestid"] = request_id
    if isinstance(payload, EventStream):
        return StreamingResponse(
            _encode(op, payload),
            status_code=status,
            headers=out_headers,
            media_type=eventstream.CONTENT_TYPE,
        )
    media = out_headers.pop("Content-Type", None) or out_headers.pop("content-type", None)
    return Response(payload, status_code=status, headers=out_headers, media_type=media or "application/json")


def _known_model(registry: ModelRegistry) -> Callable[[str], bool]:
    def known(model_id: str) -> bool:
        try:
            registry.resolve(model_id)
        except NotFoundError:
            return False
        return True

    return known


# The page runs only its own modules and talks only to this server: model output is rendered as text, and
# the CSP makes sure nothing injected could load or send anything elsewhere. Panels add their own <style>
# elements, hence 'unsafe-inline' for styles only; pictures are attachments (data:) and downloads (blob:).
_PLAYGROUND_HEADERS = {
    "cache-control": "no-cache",
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app: plugins, model registry, database, then the OpenAI and Bedrock surfaces."""
    settings = settings or Settings()
    # llama.cpp/OpenMP collapse 10-20x on a busy machine when idle threads spin (see README).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    pm = make_plugin_manager(settings.load_plugins)
    registry = ModelRegistry.from_plugins(settings, pm)
    db = Database(settings.db_path)
    stores: dict[str, VectorStoreFactory] = {}
    pm.hook.register_vector_stores(register=lambda f: stores.__setitem__(f.name, f))
    if settings.vector_store not in stores:
        raise UsageError(
            f"HANIWA_VECTOR_STORE={settings.vector_store!r} is not installed;"
            f" known: {', '.join(sorted(stores))}"
        )
    if not stores[settings.vector_store].available(settings):
        raise UsageError(f"HANIWA_VECTOR_STORE={settings.vector_store!r} needs HANIWA_PG_URL")
    knowledge = KnowledgeService(
        settings, registry, db, ParserSet.from_plugins(pm), stores, bedrock_agent.planner(settings)
    )
    functions = FunctionRegistry.from_plugins(pm, settings)
    agents = AgentService(db, knowledge, validator(functions, _known_model(registry)))
    platform = Platform(settings, registry, db, knowledge, agents, functions)
    for module in (
        bedrock_runtime,
        bedrock_ops,
        bedrock_agent,
        bedrock_agent_agents,
        bedrock_agent_runtime,
        bedrock_agent_invoke,
    ):
        for name, handler in module.OPERATIONS.items():
            platform.handlers[name] = handler

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await knowledge.recover()
        yield
        await knowledge.close()
        db.close()

    app = FastAPI(
        title="haniwa", docs_url="/docs", redoc_url=None, openapi_url="/openapi.json", lifespan=lifespan
    )
    app.state.platform = platform

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "loaded": dict(platform.registry.loaded()),
            "uptime_s": time.time() - platform.started,
        }

    @app.get("/", include_in_schema=False)
    async def playground() -> Response:
        # the page is static; every action in it calls the public APIs below
        return FileResponse(STATIC / "index.html", headers=_PLAYGROUND_HEADERS)

    app.mount("/playground", StaticFiles(directory=STATIC), name="playground")
    app.include_router(openai_api.router)
    app.include_router(haniwa_rest.router)
    app.add_api_route(
        "/{path:path}", _dispatch, methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False
    )
    return app
