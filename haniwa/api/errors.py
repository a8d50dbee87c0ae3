"""Rendering the one error hierarchy, once per surface.

Bedrock: status from the service model, ``x-amzn-errortype``, ``x-amzn-requestid``, ``{"message": ...}``
(what botocore needs to raise ``client.exceptions.<Code>``). OpenAI: ``{"error": {message, type, param,
code}}`` with the status the OpenAI SDK maps to its exception classes.

A :class:`~haniwa.errors.ThrottledError` that knows when to retry carries ``Retry-After`` (whole seconds)
on both surfaces. :data:`OPENAI_RESPONSES` declares the OpenAI shapes in ``/openapi.json``.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel
from starlette.responses import JSONResponse

from haniwa.api.wire import error_status
from haniwa.errors import PlatformError, ThrottledError

__all__ = [
    "bedrock_error",
    "openai_error",
    "openai_status_error",
    "retry_after_headers",
    "OPENAI_STATUS",
    "OPENAI_RESPONSES",
    "OpenAIErrorBody",
]

OPENAI_STATUS: dict[str, tuple[int, str]] = {
    "ValidationException": (400, "invalid_request_error"),
    "ResourceNotFoundException": (404, "not_found_error"),
    "ConflictException": (409, "invalid_request_error"),
    "AccessDeniedException": (401, "authentication_error"),
    "ThrottlingException": (429, "rate_limit_error"),
    "ServiceQuotaExceededException": (429, "rate_limit_error"),
    "ModelNotReadyException": (503, "server_error"),
    "ModelTimeoutException": (504, "server_error"),
    "ModelErrorException": (500, "server_error"),
    "NotImplementedException": (501, "invalid_request_error"),
}


def retry_after_headers(exc: PlatformError) -> dict[str, str]:
    """``Retry-After`` in whole seconds (at least 1) for a throttled call that knows when to come back."""
    if isinstance(exc, ThrottledError) and exc.retry_after is not None:
        return {"retry-after": str(max(1, math.ceil(exc.retry_after)))}
    return {}


def bedrock_error(service: str, exc: PlatformError, request_id: str) -> JSONResponse:
    return JSONResponse(
        {"message": exc.message},
        status_code=error_status(service, exc.code),
        headers={"x-amzn-errortype": exc.code, "x-amzn-requestid": request_id, **retry_after_headers(exc)},
    )


def openai_error(exc: PlatformError) -> JSONResponse:
    status, kind = OPENAI_STATUS.get(exc.code, (500, "server_error"))
    code = {404: "model_not_found", 401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
    return JSONResponse(
        {"error": {"message": exc.message, "type": kind, "param": exc.param, "code": code}},
        status_code=status,
        headers=retry_after_headers(exc),
    )


def openai_status_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An OpenAI-shaped answer for a status no PlatformError stands for (405, or a framework's 4xx)."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    code = {404: "not_found", 405: "method_not_allowed"}.get(status)
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status_code=status,
        headers=headers,
    )


# -- the OpenAPI declaration of these answers ---------------------------------------------------------
class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    """Every error of ``/v1`` and ``/haniwa/v1``."""

    error: OpenAIErrorDetail


def _declared(description: str, **extra: Any) -> dict[str, Any]:
    return {"model": OpenAIErrorBody, "description": description, **extra}


# Declared on every OpenAI and /haniwa/v1 route. "4XX" covers the rarer client errors (405, 408, 413) and
# also stops FastAPI from declaring its own 422, which these routes never answer: validation is a 400.
OPENAI_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _declared("The request is malformed or a value is out of range (invalid_request_error)."),
    401: _declared("The API key is missing or wrong (authentication_error)."),
    404: _declared("The model or resource does not exist (not_found_error)."),
    429: _declared(
        "A rate limit is spent or the model's queue is full (rate_limit_error).",
        headers={
            "Retry-After": {
                "description": "Seconds after which the same request would be admitted.",
                "schema": {"type": "integer"},
            }
        },
    ),
    "4XX": _declared("Another client error: 405 wrong method, 408 body too slow, 413 body too large."),
    "5XX": _declared("A failure on the server's side (server_error), with the request id to report."),
}
