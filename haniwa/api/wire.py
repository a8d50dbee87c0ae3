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
import math
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.utils import parse_timestamp
from botocore.validate import ParamValidator

from haniwa.errors import ValidationError

__all__ = [
    "SERVICES",
    "to_wire",
    "Operation",
    "Router",
    "EventStream",
    "service_model",
    "parse_input",
    "serialize_output",
    "error_status",
    "stream_member",
    "load_json",
    "check_json",
    "check_constraints",
    "MAX_JSON_DEPTH",
    "PATTERN_EXEMPT",
    "PATTERN_MAX_CHARS",
    "OBJECT_DOCUMENTS",
]

SERVICES = ("bedrock-runtime", "bedrock", "bedrock-agent", "bedrock-agent-runtime")


@functools.cache
def service_model(name: str) -> ServiceModel:
    return ServiceModel(Loader().load_service_model(name, "service-2"), service_name=name)


@dataclass
class EventStream:
    """A handler's streaming answer: (event name, JSON payload) pairs, encoded by the app."""

    events: AsyncIterator[tuple[str, Mapping[str, Any]]]


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
        if t == "timestamp":
            return parse_timestamp(value)
    except (ValueError, OverflowError, RuntimeError) as exc:
        # botocore's timestamp parser raises RuntimeError for "Infinity" or "1e400"
        raise ValidationError(f"{value[:100]!r} is not a valid {t}") from exc
    if t == "string" and shape.serialization.get("jsonvalue"):
        try:
            decoded = base64.b64decode(value)
        except ValueError as exc:
            raise ValidationError(f"{value[:100]!r} is not base64-encoded JSON") from exc
        return load_json(decoded, "a JSON header")
    return value


def parse_input(
    op: Operation,
    path_params: Mapping[str, str],
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
    *,
    patterns: bool = True,
) -> dict[str, Any]:
    """Rebuild the parameters boto3 was called with, then validate them against the input shape
    (``patterns``: see :func:`check_constraints`)."""
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
    try:
        report = ParamValidator().validate(params, shape)
    except (ValueError, OverflowError, RuntimeError) as exc:
        # a timestamp in the body that botocore's parser cannot read ("Infinity", 1e400)
        raise ValidationError("a timestamp in the request is not a valid date") from exc
    if report.has_errors():
        text = report.generate_report().replace("Invalid parameters:", "").strip() or "invalid"
        # the report quotes the values it refuses; a huge one is not worth sending back in full
        raise ValidationError(text if len(text) <= 2000 else text[:2000] + " …")
    check_constraints(op.service, params, shape, patterns=patterns)
    return params


# -- constraints botocore's ParamValidator leaves to the service -----------------------------------
# Shapes whose pattern is not applied (their length limits still are), by (service, shape name); the
# README's security section lists them too.
# - Every shape that holds a model id in a served operation: haniwa's ids are ``backend:model``
#   (``echo:echo``, ``llamacpp:qwen2.5-coder-1.5b``), optionally inside a foundation-model ARN, or a
#   user's alias from models.toml; Bedrock's patterns know only Bedrock's own ids.
# - The OpenSearch collection ARN: haniwa keeps vectors itself and never reads it, and the README's
#   example (like scripts written for haniwa) passes the short placeholder ``collection/x``.
PATTERN_EXEMPT: frozenset[tuple[str, str]] = frozenset(
    {
        ("bedrock", "GetFoundationModelIdentifier"),
        ("bedrock", "ModelId"),
        ("bedrock-runtime", "ConversationalModelId"),
        ("bedrock-runtime", "InvokeModelIdentifier"),
        ("bedrock-runtime", "FoundationModelVersionIdentifier"),
        ("bedrock-agent", "ModelIdentifier"),
        ("bedrock-agent", "BedrockModelArn"),
        ("bedrock-agent", "BedrockEmbeddingModelArn"),
        ("bedrock-agent-runtime", "ModelIdentifier"),
        ("bedrock-agent-runtime", "BedrockModelArn"),
        ("bedrock-agent-runtime", "BedrockRerankingModelArn"),
        ("bedrock-agent", "OpenSearchServerlessCollectionArn"),
    }
)

# Document members that Bedrock reads as JSON objects (a JSON schema, a tool's input, model fields):
# any other JSON value there is a ValidationException, not a crash in the handler.
OBJECT_DOCUMENTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("ConverseRequest", "additionalModelRequestFields"),
        ("ConverseStreamRequest", "additionalModelRequestFields"),
        ("ConverseTokensRequest", "additionalModelRequestFields"),
        ("ToolInputSchema", "json"),
        ("ToolUseBlock", "input"),
        ("PromptConfiguration", "additionalModelRequestFields"),
        ("PromptFlowNodeInlineConfiguration", "additionalModelRequestFields"),
        ("PromptVariant", "additionalModelRequestFields"),
    }
)


# A patterned string whose shape gives no ``max`` is refused beyond this many characters: the patterns
# are for ids, names, ARNs, URLs and media types, and a bound keeps every match cheap.
PATTERN_MAX_CHARS = 2048
# Patterns that backtrack badly in Python's engine, each with an equivalent that does not (a test checks
# that every applied pattern stays fast on adversarial input). ``.*[a-z]{1,20}/.{1,20}.*`` takes 0.2 s
# on 2,000 characters: it means "one line with a letter, a slash and at least one more character".
_REWRITES = {".*[a-z]{1,20}/.{1,20}.*": r"(?=[^\n]*\Z).*?[a-z]/.+"}


@functools.cache
def _pattern(source: str) -> re.Pattern[str] | None:
    """A service-model pattern, compiled once. They are Java regexes; every one botocore ships today
    compiles in Python, and one that some day does not is skipped rather than failing every request."""
    try:
        return re.compile(_REWRITES.get(source, source))
    except re.error:
        return None


def _violation(path: str, rule: str) -> ValidationError:
    where = path.lstrip(".") or "input"
    return ValidationError(
        f"1 validation error detected: Value at '{where}' failed to satisfy constraint: Member must {rule}",
        param=where,
    )


def _check_length(n: int, shape: Shape, path: str, what: str) -> None:
    lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
    if lo is not None and n < lo:
        raise _violation(path, f"have {what} greater than or equal to {lo}")
    if hi is not None and n > hi:
        raise _violation(path, f"have {what} less than or equal to {hi}")


def check_constraints(
    service: str, value: Any, shape: Shape, path: str = "", *, patterns: bool = True
) -> None:
    """Apply the ``enum``, ``pattern``, ``min`` and ``max`` of the shapes (botocore's ParamValidator
    checks types, required members and most minimums; the service checks the rest, so do we).

    ``patterns=False`` skips the patterns: operations haniwa does not serve are answered
    NotImplementedException after the cheap checks, and some of their patterns (``JobName``'s
    ``[a-zA-Z0-9](-*[a-zA-Z0-9\\+\\-\\.])*``) backtrack exponentially in Python's engine.
    """
    t = shape.type_name
    if t == "string" and isinstance(value, str):
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            raise ValidationError(
                f"Value '{value[:100]}' at '{path.lstrip('.')}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]",
                param=path.lstrip(".") or None,
            )
        _check_length(len(value), shape, path, "length")
        source = shape.metadata.get("pattern")
        if patterns and source and (service, shape.name) not in PATTERN_EXEMPT:
            if shape.metadata.get("max") is None and len(value) > PATTERN_MAX_CHARS:
                raise _violation(path, f"have length less than or equal to {PATTERN_MAX_CHARS}")
            # the whole value must match (Java's String.matches), as Bedrock applies them: a tool named
            # "bad name!" fails [a-zA-Z0-9_-]+ there, although the pattern has no ^ or $
            compiled = _pattern(source)
            if compiled is not None and compiled.fullmatch(value) is None:
                raise _violation(path, f"satisfy regular expression pattern: {source}")
    elif t == "blob" and isinstance(value, bytes | str):
        _check_length(len(value), shape, path, "length")
    elif t in ("integer", "long", "float", "double") and isinstance(value, int | float):
        if isinstance(value, bool):  # an int to Python (and to botocore's validator), not to JSON
            raise _violation(path, "be a number, not a boolean")
        if isinstance(value, float) and not math.isfinite(value):
            raise _violation(path, "be a finite number")
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        if lo is not None and value < lo:
            raise _violation(path, f"have value greater than or equal to {lo}")
        if hi is not None and value > hi:
            raise _violation(path, f"have value less than or equal to {hi}")
    elif t == "structure" and isinstance(value, dict):
        if shape.metadata.get("document"):
            return
        for name, member in shape.members.items():
            if name not in value:
                continue
            if (shape.name, name) in OBJECT_DOCUMENTS and not isinstance(value[name], dict):
                raise _violation(f"{path}.{name}", "be a JSON object")
            check_constraints(service, value[name], member, f"{path}.{name}", patterns=patterns)
    elif t == "list" and isinstance(value, list):
        _check_length(len(value), shape, path, "length")
        for i, item in enumerate(value):
            check_constraints(service, item, shape.member, f"{path}[{i}]", patterns=patterns)
    elif t == "map" and isinstance(value, dict):
        _check_length(len(value), shape, path, "size")
        for k, v in value.items():
            check_constraints(service, k, shape.key, f"{path}.{k}", patterns=patterns)
            check_constraints(service, v, shape.value, f"{path}.{k}", patterns=patterns)


# -- JSON bodies -------------------------------------------------------------------------------------
# Deeper documents than this are refused before any handler or recursive validator sees them: real
# Bedrock bodies (JSON schemas included) stay far below it, and it keeps every recursive walk over the
# value (validation, to_wire, json.dumps) far from Python's recursion limit.
MAX_JSON_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_constant(name: str) -> Any:
    raise ValidationError(f"the request body is not valid JSON: {name} is not a JSON value")


def check_json(value: Any, what: str = "the request body") -> None:
    """Refuse JSON nested deeper than :data:`MAX_JSON_DEPTH` and strings holding a lone surrogate
    (``"\\ud800"``, or the raw bytes, which Python's decoder lets through): such a string cannot be
    encoded as UTF-8 again, so it would fail later in a response, a log or the database."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise ValidationError(f"{what} holds a lone UTF-16 surrogate, which is not valid Unicode")
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ValidationError(f"{what} nests JSON deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(item, dict):
                stack.extend((k, depth) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(f"{what} holds a number too large to represent")


def load_json(data: bytes | str, what: str = "the request body") -> Any:
    """``json.loads`` for anything a client sends: a ValidationError (never RecursionError, NaN,
    Infinity or a lone surrogate) when it is not plain, valid JSON within :data:`MAX_JSON_DEPTH`."""
    try:
        value = json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise ValidationError(f"{what} nests JSON deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc}") from exc
    check_json(value, what)
    return value


def _json(body: bytes) -> Any:
    return load_json(body)


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
        # the request deadline on services whose model lacks it: bedrock-runtime's status, which botocore
        # does not retry (a 500 would be retried, each try running to the deadline again)
        "ModelTimeoutException": 408,
        "NotImplementedException": 501,
        "UnrecognizedClientException": 403,
    }.get(code, 500)
