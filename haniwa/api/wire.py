"""The Bedrock wire format, read from botocore's service models.

Routes, input locations, validation, output locations and error statuses all come from
``botocore/data/<service>/<version>/service-2.json``. botocore only implements the client half of
rest-json (serialise requests, parse responses); the server half (parse requests, serialise responses)
is the mirror image and is written here by hand, driven entirely by the shapes.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

from haniwa.errors import ValidationError

__all__ = [
    "SERVICES",
    "to_wire",
    "Operation",
    "Router",
    "EventStream",
    "Handler",
    "service_model",
    "parse_input",
    "serialize_output",
    "error_status",
    "stream_member",
]

SERVICES = ("bedrock-runtime", "bedrock", "bedrock-agent", "bedrock-agent-runtime")


@functools.cache
def service_model(name: str) -> ServiceModel:
    return ServiceModel(Loader().load_service_model(name, "service-2"), service_name=name)


@dataclass
class EventStream:
    """A handler's streaming answer: (event name, JSON payload) pairs, encoded by the app."""

    events: AsyncIterator[tuple[str, Mapping[str, Any]]]


Handler = Callable[[Any, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class Operation:
    service: str
    name: str
    model: OperationModel
    method: str
    regex: re.Pattern[str]
    literal_len: int
    fixed_query: dict[str, str] = field(default_factory=dict)


def _compile(uri: str) -> tuple[re.Pattern[str], int, dict[str, str]]:
    path, _, query = uri.partition("?")
    fixed = dict(p.partition("=")[::2] for p in query.split("&") if p)
    pattern, literal, pos = "", 0, 0
    for m in re.finditer(r"\{([^}]+)\}", path):
        lit = path[pos : m.start()]
        pattern += re.escape(lit)
        literal += len(lit)
        name = m.group(1)
        if name.endswith("+"):
            pattern += f"(?P<{name[:-1]}>.+)"
        else:
            pattern += f"(?P<{name}>[^/]+)"
        pos = m.end()
    pattern += re.escape(path[pos:])
    literal += len(path) - pos
    return re.compile(f"^{pattern}$"), literal, fixed


class Router:
    """Maps (method, raw path) to an operation of one of the four Bedrock services."""

    def __init__(self, services: tuple[str, ...] = SERVICES) -> None:
        self.ops: list[Operation] = []
        for svc in services:
            sm = service_model(svc)
            for name in sm.operation_names:
                om = sm.operation_model(name)
                regex, literal, fixed = _compile(om.http["requestUri"])
                self.ops.append(Operation(svc, name, om, om.http["method"], regex, literal, fixed))
        # literal segments beat parameters (e.g. /agents/ before /agents/{sessionId})
        self.ops.sort(key=lambda o: -o.literal_len)

    def match(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]] | None:
        for op in self.ops:
            if op.method != method:
                continue
            m = op.regex.match(raw_path)
            if m:
                return op, {k: unquote(v) for k, v in m.groupdict().items()}
        return None

    def find(self, service: str, name: str) -> Operation:
        return next(o for o in self.ops if o.service == service and o.name == name)


def _scalar(value: str, shape: Shape) -> Any:
    t = shape.type_name
    try:
        if t in ("integer", "long"):
            return int(value)
        if t in ("float", "double"):
            return float(value)
        if t == "boolean":
            return value.lower() == "true"
    except ValueError as exc:
        raise ValidationError(f"{value!r} is not a valid {t}") from exc
    if t == "string" and shape.serialization.get("jsonvalue"):
        return json.loads(base64.b64decode(value))
    return value


def parse_input(
    op: Operation,
    path_params: Mapping[str, str],
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """Rebuild the parameters boto3 was called with, then validate them against the input shape."""
    shape = op.model.input_shape
    params: dict[str, Any] = {}
    if shape is None:
        return params
    payload_name = shape.serialization.get("payload")
    body_members: dict[str, Shape] = {}
    for name, member in shape.members.items():
        loc = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if loc == "uri":
            if wire in path_params:
                params[name] = _scalar(path_params[wire], member)
        elif loc == "querystring":
            if member.type_name == "list":
                if wire in query:
                    params[name] = [_scalar(v, member.member) for v in query[wire]]
            elif member.type_name == "map":
                continue
            elif wire in query:
                params[name] = _scalar(query[wire][0], member)
        elif loc == "header":
            value = headers.get(wire.lower())
            if value is not None:
                params[name] = _scalar(value, member)
        elif loc == "headers":
            prefix = wire.lower()
            found = {k[len(prefix) :]: v for k, v in headers.items() if k.startswith(prefix)}
            if found:
                params[name] = found
        elif name != payload_name:
            body_members[name] = member
    if payload_name:
        member = shape.members[payload_name]
        if member.type_name == "blob":
            params[payload_name] = body
        elif body:
            params[payload_name] = _json(body)
    elif body_members and body:
        data = _json(body)
        if not isinstance(data, dict):
            raise ValidationError("the request body must be a JSON object")
        for name, member in body_members.items():
            wire = member.serialization.get("name", name)
            if wire in data:
                params[name] = data[wire]
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ValidationError(
            report.generate_report().replace("Invalid parameters:", "").strip() or "invalid"
        )
    _check_enums(params, shape, "")
    return params


def _check_enums(value: Any, shape: Shape, path: str) -> None:
    """botocore's ParamValidator skips enum and max checks (the service does them); so do we, here."""
    t = shape.type_name
    if t == "string" and isinstance(value, str):
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            raise ValidationError(
                f"Value '{value}' at '{path.lstrip('.')}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]"
            )
        limit = shape.metadata.get("max")
        if limit is not None and len(value) > limit:
            raise ValidationError(f"'{path.lstrip('.')}' is longer than {limit} characters")
    elif t in ("integer", "long", "float", "double") and isinstance(value, int | float):
        limit = shape.metadata.get("max")
        if limit is not None and value > limit:
            raise ValidationError(
                f"Value '{value}' at '{path.lstrip('.')}' failed to satisfy constraint: "
                f"Member must have value less than or equal to {limit}"
            )
    elif t == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _check_enums(value[name], member, f"{path}.{name}")
    elif t == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            _check_enums(item, shape.member, f"{path}[{i}]")
    elif t == "map" and isinstance(value, dict):
        for k, v in value.items():
            _check_enums(v, shape.value, f"{path}.{k}")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"the request body is not valid JSON: {exc}") from exc


def to_wire(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return value


def stream_member(op: Operation) -> str | None:
    shape = op.model.output_shape
    if shape is None:
        return None
    payload = shape.serialization.get("payload")
    if payload and shape.members[payload].serialization.get("eventstream"):
        return str(payload)
    return None


def serialize_output(
    op: Operation, result: Mapping[str, Any]
) -> tuple[int, dict[str, str], bytes | EventStream]:
    """Split a handler's result into status, headers and body as the output shape places them."""
    status = int(op.model.http.get("responseCode", 200))
    headers: dict[str, str] = {}
    shape = op.model.output_shape
    if shape is None:
        return status, headers, b"{}"
    payload_name = shape.serialization.get("payload")
    body: dict[str, Any] = {}
    for name, member in shape.members.items():
        if name not in result or result[name] is None:
            continue
        loc = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        value = result[name]
        if loc == "header":
            headers[wire] = str(value).lower() if isinstance(value, bool) else str(value)
        elif loc == "statusCode":
            status = int(value)
        elif name != payload_name:
            body[wire] = to_wire(value)
    if payload_name:
        value = result.get(payload_name)
        if isinstance(value, EventStream):
            return status, headers, value
        if isinstance(value, bytes):
            return status, headers, value
        return status, headers, json.dumps(to_wire(value or {}), ensure_ascii=False).encode()
    return status, headers, json.dumps(body, ensure_ascii=False).encode()


def error_status(service: str, code: str) -> int:
    """The HTTP status the service model gives ``code`` (``ConflictException`` is 400 or 409, ...)."""
    sm = service_model(service)
    try:
        shape = sm.shape_for(code)
    except Exception:  # noqa: BLE001 - botocore raises NoShapeFoundError for codes this service lacks
        shape = None
    if shape is not None:
        status = shape.metadata.get("error", {}).get("httpStatusCode")
        if status:
            return int(status)
    return {
        "ValidationException": 400,
        "ResourceNotFoundException": 404,
        "AccessDeniedException": 403,
        "ThrottlingException": 429,
        "NotImplementedException": 501,
        "UnrecognizedClientException": 403,
    }.get(code, 500)
