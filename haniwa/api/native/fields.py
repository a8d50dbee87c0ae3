"""The field checks, id and stream helpers every native body format shares; it knows no provider.

Messages name the JSON path of the offending field, as Bedrock's schema errors do
(``Malformed input request: #/messages/0/content: ...``).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any

from haniwa.errors import ValidationError
from haniwa.runtime.base import ChatEvent, ChatRequest, StreamEnd, TextDelta
from haniwa.runtime.registry import strip_arn
from haniwa.runtime.tokens import rough_tokens

__all__ = [
    "family_id",
    "malformed",
    "as_object",
    "check_keys",
    "need",
    "need_str",
    "need_tool_name",
    "opt_str",
    "opt_number",
    "opt_int",
    "opt_bool",
    "opt_str_list",
    "opt_enum",
    "decode_base64",
    "sniff_image",
    "new_id",
    "estimate_tokens",
    "lagged_text",
]

_REGION_PREFIX = re.compile(r"^(?:us-gov|us|eu|apac|global|jp|au|ca)\.")


def family_id(model_id: str) -> str:
    """``arn:…:inference-profile/us.anthropic.claude-…`` → ``anthropic.claude-…``."""
    return _REGION_PREFIX.sub("", strip_arn(model_id), count=1)


# -- field checks (messages name the JSON path, as Bedrock's schema errors do) -----------------------
def malformed(path: str, problem: str) -> ValidationError:
    """``Malformed input request: #/a/b: problem, please reformat your input and try again.``"""
    return ValidationError(
        f"Malformed input request: #{path}: {problem}, please reformat your input and try again.",
        param=path.strip("/").replace("/", ".") or None,
    )


def as_object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise malformed(path, f"expected type: JSONObject, found: {_json_type(value)}")
    return value


def check_keys(body: Mapping[str, Any], allowed: Collection[str], path: str = "") -> None:
    """Bedrock rejects keys a model does not know; so do we (typos then fail loudly, not silently)."""
    extra = sorted(k for k in body if k not in allowed)
    if extra:
        raise malformed(path, f"extraneous key [{extra[0]}] is not permitted")


def need(body: Mapping[str, Any], key: str, path: str = "") -> Any:
    if key not in body or body[key] is None:
        raise malformed(path, f"required key [{key}] not found")
    return body[key]


def need_str(body: Mapping[str, Any], key: str, path: str = "", *, allow_empty: bool = False) -> str:
    value = need(body, key, path)
    if not isinstance(value, str):
        raise malformed(f"{path}/{key}", f"expected type: String, found: {_json_type(value)}")
    if not allow_empty and not value.strip():
        raise malformed(f"{path}/{key}", "expected a non-empty string")
    return value


_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def need_tool_name(body: Mapping[str, Any], path: str = "") -> str:
    """A tool's ``name``, in the form Bedrock's models accept (letters, digits, ``_`` and ``-``, 1-64)."""
    name = need_str(body, "name", path)
    if not _TOOL_NAME.match(name):
        raise malformed(f"{path}/name", "must match ^[a-zA-Z0-9_-]{1,64}$")
    return name


def opt_str(body: Mapping[str, Any], key: str, path: str = "") -> str | None:
    if body.get(key) is None:
        return None
    return need_str(body, key, path, allow_empty=True)


def opt_number(
    body: Mapping[str, Any], key: str, lo: float | None = None, hi: float | None = None, path: str = ""
) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise malformed(f"{path}/{key}", f"expected type: Number, found: {_json_type(value)}")
    _check_range(value, lo, hi, f"{path}/{key}")
    return float(value)


def opt_int(
    body: Mapping[str, Any], key: str, lo: int | None = None, hi: int | None = None, path: str = ""
) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise malformed(f"{path}/{key}", f"expected type: Integer, found: {_json_type(value)}")
    _check_range(value, lo, hi, f"{path}/{key}")
    return value


def opt_bool(body: Mapping[str, Any], key: str, path: str = "") -> bool | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise malformed(f"{path}/{key}", f"expected type: Boolean, found: {_json_type(value)}")
    return value


def opt_str_list(
    body: Mapping[str, Any], key: str, path: str = "", *, max_items: int | None = None
) -> tuple[str, ...]:
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise malformed(f"{path}/{key}", "expected a JSONArray of strings")
    if max_items is not None and len(value) > max_items:
        raise malformed(f"{path}/{key}", f"expected maximum item count: {max_items}, found: {len(value)}")
    return tuple(value)


def opt_enum(body: Mapping[str, Any], key: str, allowed: Collection[str], path: str = "") -> str | None:
    value = opt_str(body, key, path)
    if value is not None and value not in allowed:
        raise malformed(f"{path}/{key}", f"{value} is not a valid enum value (one of {', '.join(allowed)})")
    return value


def _check_range(value: float, lo: float | None, hi: float | None, path: str) -> None:
    if lo is not None and value < lo:
        raise malformed(path, f"{value} is not greater or equal to {lo}")
    if hi is not None and value > hi:
        raise malformed(path, f"{value} is not less or equal to {hi}")


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "JSONArray"
    return "JSONObject" if isinstance(value, Mapping) else type(value).__name__


# -- images ------------------------------------------------------------------------------------------
def decode_base64(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise malformed(path, f"expected a base64 string, found: {_json_type(value)}")
    if value.startswith("data:") and "," in value:  # a data URI is forgiven
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise malformed(path, "the data is not valid base64") from exc


def sniff_image(data: bytes) -> str | None:
    """The media type of PNG/JPEG/GIF/WebP bytes, from their magic numbers."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


# -- ids, counts, streams --------------------------------------------------------------------------
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str = "", length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def estimate_tokens(req: ChatRequest) -> int:
    """A prompt size for stream headers sent before the backend reports the real count."""
    return sum(len(rough_tokens(m.text)) for m in req.messages) + len(rough_tokens(req.system or ""))


async def lagged_text(events: AsyncIterator[ChatEvent]) -> AsyncIterator[tuple[str, int, StreamEnd | None]]:
    """``(text, deltas so far, end)`` with the last text delta held back and paired with the StreamEnd.

    Titan, Llama and Mistral put the stop reason on the chunk carrying the final piece of text, which is
    known to be final only when the next event (the end) arrives. Tool calls have no place in these
    text-only shapes and are dropped.
    """
    held: str | None = None
    count = 0
    async for ev in events:
        if isinstance(ev, TextDelta):
            if held is not None:
                yield held, count, None
            held = ev.text
            count += 1
        elif isinstance(ev, StreamEnd):
            yield held or "", count, ev
            return
