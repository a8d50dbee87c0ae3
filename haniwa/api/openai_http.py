"""HTTP details shared by the OpenAI surface and ``/haniwa/v1``: strict JSON bodies and the 404/405 fallback.

Both are used by :class:`haniwa.api.openai.OpenAIRoute` routers; the Bedrock surface has its own parsing
(``api/wire.py``) and answers unknown paths itself.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import Match

from haniwa.api.errors import openai_status_error
from haniwa.api.limits import read_body
from haniwa.api.wire import check_json
from haniwa.errors import ValidationError
from haniwa.runtime.offload import CPU

__all__ = ["strict_json", "read_json", "add_fallback"]

_INT64 = 2**63 - 1


def _no_constant(name: str) -> Any:
    raise ValidationError(f"the request body is not valid JSON: {name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValidationError(f"the request body holds a number too large to represent: {text[:40]}")
    return value


def _int64(text: str) -> int:
    # checked on the digits, before int() spends time on a huge one: SQLite and every backend stop at 64 bits
    if len(text.lstrip("-")) > 19 or abs(value := int(text)) > _INT64:
        raise ValidationError(f"the request body holds an integer beyond 64 bits: {text[:40]}")
    return value


def strict_json(raw: bytes) -> Any:
    """Parse a request body as plain JSON: a ValidationError for invalid JSON, ``NaN``/``Infinity``, a
    number that overflows (``1e400``, ``10**30``), nesting beyond ``MAX_JSON_DEPTH`` or a lone surrogate."""
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite, parse_int=_int64)
    except RecursionError:
        raise ValidationError("the request body nests JSON too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError (a body that is not UTF-8)
        raise ValidationError(f"the request body is not valid JSON: {exc}") from exc
    check_json(value)
    return value


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True  # FastAPI reads a body without a content type as JSON too
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def read_json(request: Request) -> None:
    """Read and check the body before FastAPI does, and hand FastAPI the result.

    FastAPI's own ``json.loads`` accepts NaN and Infinity and answers a RecursionError or a body that is
    not UTF-8 with ``{"detail": ...}``; parsing here first keeps every such body a typed 400. Starlette's
    ``Request.json`` returns ``_json`` when it is set, so the body is parsed once (were that attribute
    ever renamed, FastAPI would simply parse the already-checked bytes again).
    """
    if request.method not in ("POST", "PUT", "PATCH") or not _is_json(request.headers.get("content-type")):
        return
    raw = await read_body(request)
    if raw:
        # a body of megabytes takes tens of milliseconds to parse: off the loop, as on the Bedrock surface
        request._json = strict_json(raw) if len(raw) < 65536 else await CPU.run(strict_json, raw)


_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def add_fallback(on: APIRouter, path: str) -> None:
    """Register, last on ``on``, a route for every other method and path under ``path``: a 405 (with
    ``Allow``) when a route of ``on`` serves the path with other methods, else a 404, both OpenAI-shaped.

    Without it Starlette's plain-text 405 or the Bedrock catch-all's 404 would answer for this surface.
    """

    async def fallback(request: Request) -> Response:
        allowed: set[str] = set()
        probe = {**request.scope, "method": "\x00"}  # a method no route has: what matches is the path
        for route in on.routes:
            own = isinstance(route, APIRoute) and route.endpoint is not fallback
            if own and route.matches(probe)[0] is Match.PARTIAL:
                allowed |= getattr(route, "methods", None) or set()
        if allowed:
            methods = ", ".join(sorted(allowed))
            return openai_status_error(
                405,
                f"{request.method} is not allowed on {request.url.path}; use {methods}",
                {"allow": methods},
            )
        return openai_status_error(404, f"no route answers {request.method} {request.url.path}")

    on.add_api_route(path, fallback, methods=_ALL_METHODS, include_in_schema=False)
