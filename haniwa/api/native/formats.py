"""Choosing the native body format of an InvokeModel call, and the field checks every format shares.

A format is chosen by the requested model id's family (after stripping an ARN and a cross-region
prefix such as ``us.``); ids of no known family (local ids like ``echo:echo``, custom aliases) are
recognised by their body's keys. The table is open: a plugin adds a provider with
:func:`register_format`, exactly as the built-ins below are added::

    from haniwa.api.native.formats import register_format

    register_format(
        "acme.",                                   # model ids acme.* use this format
        lambda model_id, body: AcmeFormat(),       # a ChatFormat or EmbedFormat
        detect=lambda body, kind: "acme_prompt" in body,   # and so do local ids sent this body
        shape="Acme {acme_prompt}",
    )
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from haniwa.api.native.base import ChatFormat, EmbedFormat
from haniwa.errors import ValidationError
from haniwa.runtime.base import ChatEvent, ChatRequest, StreamEnd, TextDelta
from haniwa.runtime.registry import strip_arn
from haniwa.runtime.tokens import rough_tokens

__all__ = [
    "AnyFormat",
    "FormatFactory",
    "Detector",
    "register_format",
    "unregister_format",
    "pick_format",
    "family_id",
    "malformed",
    "as_object",
    "check_keys",
    "need",
    "need_str",
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

AnyFormat = ChatFormat | EmbedFormat
# (requested model id, body) → a format object; it may keep what it needs from the body for render.
FormatFactory = Callable[[str, Mapping[str, Any]], AnyFormat]
# (body, model kind "chat" | "embedding") → whether this body is this format's, for ids of no family.
Detector = Callable[[Mapping[str, Any], str], bool]

_REGION_PREFIX = re.compile(r"^(?:us-gov|us|eu|apac|global|jp|au|ca)\.")


@dataclass(frozen=True)
class _Entry:
    prefix: str
    factory: FormatFactory
    detect: Detector | None
    shape: str


_TABLE: list[_Entry] = []


def register_format(
    prefix: str, factory: FormatFactory, *, detect: Detector | None = None, shape: str = ""
) -> None:
    """Serve model ids starting with ``prefix`` (and bodies ``detect`` accepts) with ``factory``'s format.

    A later registration of the same prefix replaces the earlier one; registered formats are asked
    before the built-ins when a body is recognised by its keys.
    """
    unregister_format(prefix)
    _TABLE.insert(0, _Entry(prefix, factory, detect, shape))


def unregister_format(prefix: str) -> None:
    """Forget the format registered for ``prefix`` (tests and plugins that unload)."""
    _TABLE[:] = [e for e in _TABLE if e.prefix != prefix]


def family_id(model_id: str) -> str:
    """``arn:…:inference-profile/us.anthropic.claude-…`` → ``anthropic.claude-…``."""
    return _REGION_PREFIX.sub("", strip_arn(model_id), count=1)


def pick_format(model_id: str, kind: str, body: Mapping[str, Any]) -> AnyFormat:
    """The format for this call: by model family, else by the body's keys; ValidationError if neither."""
    fid = family_id(model_id)
    by_prefix = [e for e in _TABLE if e.prefix and fid.startswith(e.prefix)]
    if by_prefix:
        return max(by_prefix, key=lambda e: len(e.prefix)).factory(model_id, body)
    for entry in _TABLE:
        if entry.detect is not None and entry.detect(body, kind):
            return entry.factory(model_id, body)
    shapes = "; ".join(e.shape for e in _TABLE if e.shape)
    raise ValidationError(
        f"Malformed input request: the body does not match any model provider's format for {model_id}. "
        f"Send one of: {shapes}."
    )


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


# -- the built-in formats, registered like any plugin's ---------------------------------------------
# Imports are local: the format modules use the field checks above.
def _anthropic(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    from haniwa.api.native.anthropic import AnthropicMessages

    return AnthropicMessages(body)


def _nova(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    from haniwa.api.native.nova import NovaMessages

    return NovaMessages()


def _is_nova(body: Mapping[str, Any], kind: str) -> bool:
    from haniwa.api.native.nova import looks_like_nova

    return looks_like_nova(body)


def _titan_text(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    from haniwa.api.native.titan import TitanText

    return TitanText()


def _titan_embed(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    from haniwa.api.native.titan import TitanEmbed

    return TitanEmbed.for_model(family_id(model_id))


def _cohere_embed(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    from haniwa.api.native.cohere import CohereEmbed

    return CohereEmbed()


def _command_r(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    from haniwa.api.native.cohere import command_r_format

    return command_r_format(body)


def _llama(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    from haniwa.api.native.meta import LlamaFormat

    return LlamaFormat()


def _mistral(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    from haniwa.api.native.mistral import MistralChat, MistralPrompt

    return MistralChat() if "messages" in body and "prompt" not in body else MistralPrompt()


def _is_mistral_prompt(body: Mapping[str, Any], kind: str) -> bool:
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        return False
    if "max_gen_len" in body:
        return False
    if any(k in body for k in ("max_tokens", "stop", "top_k")):
        return True
    return "[INST]" in prompt and "<|start_header_id|>" not in prompt and "<<SYS>>" not in prompt


_BUILTINS: tuple[tuple[str, FormatFactory, Detector, str], ...] = (
    (
        "amazon.nova-",
        _nova,
        _is_nova,
        "Amazon Nova {schemaVersion: messages-v1, messages: [{role, content: [{text}]}], inferenceConfig}",
    ),
    (
        "anthropic.",
        _anthropic,
        lambda b, k: "anthropic_version" in b or "messages" in b,
        "Anthropic Messages {anthropic_version, max_tokens, messages}",
    ),
    (
        "amazon.titan-embed",
        _titan_embed,
        lambda b, k: "inputText" in b and k == "embedding",
        "Titan Embeddings {inputText}",
    ),
    (
        "amazon.titan-",
        _titan_text,
        lambda b, k: "inputText" in b,
        "Titan Text {inputText, textGenerationConfig}",
    ),
    ("cohere.embed", _cohere_embed, lambda b, k: "texts" in b, "Cohere Embed {texts, input_type}"),
    ("cohere.command-r", _command_r, lambda b, k: "message" in b, "Cohere Command R {message}"),
    ("mistral.", _mistral, _is_mistral_prompt, "Mistral {prompt: '<s>[INST] ... [/INST]'}"),
    ("meta.", _llama, lambda b, k: isinstance(b.get("prompt"), str), "Meta Llama {prompt, max_gen_len}"),
)

for _prefix, _factory, _detect, _shape in reversed(_BUILTINS):
    register_format(_prefix, _factory, detect=_detect, shape=_shape)
