"""``create_app(settings)``: builds the platform (registry, database) once and mounts every surface."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.staticfiles import StaticFiles

from haniwa.agents.functions import FunctionRegistry
from haniwa.agents.service import AgentService
from haniwa.api import bedrock as bedrock_ops
from haniwa.api import (
    bedrock_agent,
    bedrock_agent_agents,
    bedrock_agent_invoke,
    bedrock_agent_runtime,
    bedrock_batch,
    bedrock_customization,
    bedrock_evaluation,
    bedrock_guardrails,
    bedrock_imports,
    bedrock_logging,
    bedrock_runtime,
    eventstream,
    haniwa_rest,
    openai_batch,
)
from haniwa.api import openai as openai_api
from haniwa.api.auth import authenticate_headers, verify_signature
from haniwa.api.bedrock_agent_spec import validator
from haniwa.api.context import Call, Platform
from haniwa.api.deadline import ClientGone, bounded, gone_response
from haniwa.api.errors import bedrock_error, openai_error, openai_status_error
from haniwa.api.limits import BodyLimits, read_body
from haniwa.api.native.formats import NativeFormats
from haniwa.api.s3 import S3Surface
from haniwa.api.wire import (
    EventStream,
    Operation,
    parse_input,
    serialize_output,
    stream_member,
    to_wire,
)
from haniwa.config import Settings
from haniwa.errors import (
    ModelTimeoutError,
    NotFoundError,
    NotImplementedOperationError,
    PlatformError,
    UsageError,
)
from haniwa.jobs.engine import JobEngine
from haniwa.knowledge.base import VectorStoreFactory
from haniwa.knowledge.parse import ParserSet
from haniwa.knowledge.service import KnowledgeService
from haniwa.playground import STATIC
from haniwa.plugins import make_plugin_manager
from haniwa.runtime.offload import CPU
from haniwa.runtime.registry import ModelRegistry
from haniwa.store.db import Database

__all__ = ["create_app", "Platform", "Call"]  # Platform and Call re-exported from api/context.py

logger = logging.getLogger("haniwa.api")


def _platform(request: Request) -> Platform:
    p: Platform = request.app.state.platform
    return p


def internal_error(request_id: str) -> PlatformError:
    """What a client learns of a failure that is not its own: the request id to report, nothing more."""
    return PlatformError(f"The server could not complete the request (request id {request_id}).")


_Event = tuple[str, Mapping[str, Any]]


async def _first_event(stream: EventStream) -> _Event | None:
    """Run a stream up to its first event, so that errors raised before it (validation, an unknown or
    wrong model, a missing resource) become an ordinary error response instead of a 200 that fails."""
    try:
        return await anext(aiter(stream.events))
    except StopAsyncIteration:
        return None


async def _encode(
    op: Operation, stream: EventStream, request_id: str, first: _Event | None
) -> AsyncIterator[bytes]:
    try:
        if first is not None:
            yield eventstream.event(first[0], to_wire(first[1]))
        async for name, payload in stream.events:
            yield eventstream.event(name, to_wire(payload))
    except Exception as raised:  # noqa: BLE001 - a stream must end with an exception event, never a cut
        if isinstance(raised, PlatformError):
            exc = raised
        else:
            logger.exception("%s %s failed mid-stream (request id %s)", op.service, op.name, request_id)
            exc = internal_error(request_id)
        # exception events are members of the stream union, named in lowerCamelCase
        union = op.model.output_shape.members[stream_member(op) or ""]
        code = exc.code[0].lower() + exc.code[1:]
        yield eventstream.exception_event(
            code if code in union.members else "internalServerException", exc.message
        )


# bodies up to this size are parsed and validated on the event loop (well under a millisecond)
_INLINE_PARSE_BYTES = 64 * 1024

# the data planes, whose operations run models; the control planes' operations are quick and, as they
# write, are better left to finish than cancelled halfway
_MODEL_SERVICES = ("bedrock-runtime", "bedrock-agent-runtime")


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
        raw_headers = list(request.headers.items())
        # authenticate from the headers before reading a byte; BodyLimits caps the read itself
        signed = authenticate_headers(platform.settings, raw_headers)
        body = await read_body(request)
        query_string = request.scope.get("query_string", b"").decode("latin-1")
        signed_url = f"{request.url.scheme}://{request.url.netloc}{raw_path}" + (
            f"?{query_string}" if query_string else ""
        )
        if signed is not None:
            verify_signature(platform.settings, signed, request.method, signed_url, raw_headers, body)
        query = parse_qs(query_string, keep_blank_values=True)
        headers = {k.lower(): v for k, v in request.headers.items()}
        handler = platform.handlers.get((op.service, op.name))
        # patterns are applied where an operation is served (wire.check_constraints says why)
        parse = functools.partial(
            parse_input, op, path_params, query, headers, body, patterns=handler is not None
        )
        # validating a large body walks every value (seconds for 20 MB): off the event loop
        params = await CPU.run(parse) if len(body) > _INLINE_PARSE_BYTES else parse()
        if handler is None:
            raise NotImplementedOperationError(
                f"{op.service} {op.name} is not served by this haniwa version yet"
            )
        call = Call(platform, op, request_id, headers)
        if op.service in _MODEL_SERVICES and stream_member(op) is None:
            # answered in one piece: a deadline, and cancelled when the client goes (api/deadline.py)
            timeout = platform.settings.request_timeout
            try:
                result = await bounded(handler(call, params), request.receive, timeout)
            except (ClientGone, ModelTimeoutError) as exc:
                # the handler was cancelled before it could log the call: the usage log still shows it
                if op.service == "bedrock-runtime":
                    code = exc.code if isinstance(exc, PlatformError) else "ClientClosedRequest"
                    await bedrock_runtime.log_cut_short(call, params, code)
                raise
        else:
            result = await handler(call, params)
        status, out_headers, payload = serialize_output(op, result)
        out_headers.update(call.response_headers)
        first = await _first_event(payload) if isinstance(payload, EventStream) else None
    except ClientGone:
        return gone_response()
    except PlatformError as exc:
        return bedrock_error(op.service, exc, request_id)
    except Exception:  # noqa: BLE001 - any other failure is ours: typed, logged, no trace to the client
        logger.exception("%s %s failed (request id %s)", op.service, op.name, request_id)
        return bedrock_error(op.service, internal_error(request_id), request_id)
    out_headers["x-amzn-requestid"] = request_id
    if isinstance(payload, EventStream):
        return StreamingResponse(
            _encode(op, payload, request_id, first),
            status_code=status,
            headers=out_headers,
            media_type=eventstream.CONTENT_TYPE,
        )
    media = out_headers.pop("Content-Type", None) or out_headers.pop("content-type", None)
    if status == 204:
        # a 204 has no body (DeleteAgentActionGroup, DisassociateAgentKnowledgeBase): sending "{}" broke
        # the HTTP framing after the headers had gone
        return Response(status_code=status, headers=out_headers)
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
# the CSP makes sure nothing injected could load or send anything elsewhere. Styles come only from the
# playground's .css files (no inline <style> or style=""; scripts set sizes through CSSOM); pictures are
# attachments (data:) and downloads (blob:).
_PLAYGROUND_HEADERS = {
    "cache-control": "no-cache",
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
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
    # Worker threads (embedders, JSON encoding, agent functions) share the GIL with the event loop, which
    # waits up to the switch interval each time it wants it back: 1 ms instead of CPython's 5 keeps
    # /health and small requests quick while they compute (p95 15 ms instead of 50 under load).
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
    pm = make_plugin_manager(settings.load_plugins)
    registry = ModelRegistry.from_plugins(settings, pm)
    db = Database(settings.db_path)
    jobs = JobEngine(db, limits=settings.job_limits)
    stores: dict[str, VectorStoreFactory] = {}
    pm.hook.register_vector_stores(register=lambda f: stores.__setitem__(f.name, f))
    if settings.vector_store not in stores:
        raise UsageError(
            f"HANIWA_VECTOR_STORE={settings.vector_store!r} is not installed;"
            f" known: {', '.join(sorted(stores))}"
        )
    if not stores[settings.vector_store].available(settings):
        raise UsageError(f"HANIWA_VECTOR_STORE={settings.vector_store!r} needs HANIWA_PG_URL")
    knowledge = KnowledgeService(settings, registry, db, ParserSet.from_plugins(pm), stores, jobs)
    functions = FunctionRegistry.from_plugins(pm, settings)
    agents = AgentService(db, knowledge, validator(functions, _known_model(registry)))
    formats = NativeFormats.from_plugins(pm)
    platform = Platform(settings, registry, db, jobs, knowledge, agents, functions, formats)
    for module in (
        bedrock_runtime,
        bedrock_ops,
        bedrock_agent,
        bedrock_agent_agents,
        bedrock_agent_runtime,
        bedrock_agent_invoke,
        bedrock_guardrails,
        bedrock_evaluation,
        bedrock_batch,
        bedrock_logging,
        bedrock_customization,
        bedrock_imports,
    ):
        for name, handler in module.OPERATIONS.items():
            platform.handlers[name] = handler
    records = bedrock_batch.BedrockRecords(platform)
    openai_batch.bind(platform, records)
    platform.batch.bind(records)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await knowledge.upgrade(functools.partial(bedrock_agent.data_source_config, settings))
        await knowledge.recover()
        await platform.customization.recover()
        await platform.imports.recover()
        await jobs.recover()  # once every capability has registered its kinds of job
        yield
        await jobs.close()
        await knowledge.close()
        db.close()
        await asyncio.to_thread(registry.close)  # joins the models' scheduler threads

    app = FastAPI(
        title="haniwa", docs_url="/docs", redoc_url=None, openapi_url="/openapi.json", lifespan=lifespan
    )
    app.state.platform = platform
    # size and pace limits hold before any route reads a byte (api/limits.py)
    app.add_middleware(BodyLimits, settings=settings)
    # S3 requests (SigV4 scope "s3") are answered before BodyLimits: objects have their own size limit
    app.add_middleware(S3Surface, settings=settings)

    async def unexpected(request: Request, exc: Exception) -> Response:
        # the last resort for a failure no surface caught: its shape, never Starlette's text/plain 500
        request_id = str(uuid.uuid4())
        logger.error(
            "%s %s failed (request id %s)", request.method, request.url.path, request_id, exc_info=exc
        )
        path = request.url.path
        if path in ("/v1", "/haniwa/v1") or path.startswith(("/v1/", "/haniwa/v1/")):
            response = openai_error(internal_error(request_id))
            response.headers["x-request-id"] = request_id
            return response
        return bedrock_error("bedrock-runtime", internal_error(request_id), request_id)

    app.add_exception_handler(Exception, unexpected)

    async def unrouted(request: Request, exc: Exception) -> Response:
        # Starlette's `{path:path}` is `.*`, which a decoded newline (`/agents/a%0Ab/`) defeats: no route
        # matches and the answer would be an untyped {"detail"} 404. The Bedrock router reads the raw path.
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path
        openai_path = path in ("/v1", "/haniwa/v1") or path.startswith(("/v1/", "/haniwa/v1/"))
        if openai_path:
            return openai_status_error(exc.status_code, str(exc.detail), dict(exc.headers or {}))
        if exc.status_code == 404 and not path.startswith("/playground/"):
            return await _dispatch(request)
        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, unrouted)

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
    app.include_router(openai_batch.router)  # before openai_api's /v1 fallback
    app.include_router(openai_api.router)
    # before haniwa_rest: its fallback answers every other /haniwa/v1 path
    app.include_router(bedrock_evaluation.router)
    app.include_router(haniwa_rest.router)
    app.add_api_route(
        "/{path:path}", _dispatch, methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False
    )
    return app
