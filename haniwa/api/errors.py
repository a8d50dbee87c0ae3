"""Rendering the one error hierarchy, once per surface.

Bedrock: status from the service model, ``x-amzn-errortype``, ``x-amzn-requestid``, ``{"message": ...}``
(what botocore needs to raise ``client.exceptions.<Code>``). OpenAI: ``{"error": {message, type, param,
code}}`` with the status the OpenAI SDK maps to its exception classes.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from haniwa.api.wire import error_status
from haniwa.errors import PlatformError

__all__ = ["bedrock_error", "openai_error", "OPENAI_STATUS"]

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


def bedrock_error(service: str, exc: PlatformError, request_id: str) -> JSONResponse:
    return JSONResponse(
        {"message": exc.message},
        status_code=error_status(service, exc.code),
        headers={"x-amzn-errortype": exc.code, "x-amzn-requestid": request_id},
    )


def openai_error(exc: PlatformError) -> JSONResponse:
    status, kind = OPENAI_STATUS.get(exc.code, (500, "server_error"))
    code = {404: "model_not_found", 401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
    return JSONResponse(
        {"error": {"message": exc.message, "type": kind, "param": exc.param, "code": code}},
        status_code=status,
    )
