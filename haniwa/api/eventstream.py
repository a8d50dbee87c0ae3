"""AWS event-stream encoding (``application/vnd.amazon.eventstream``).

botocore ships only the decoder (``botocore.eventstream``); no maintained library encodes the framing on
the server side, so this is written by hand from the format botocore decodes:
``[total len u32][headers len u32][prelude crc32][headers][payload][message crc32]``, big-endian, with
string headers of type 7.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any

__all__ = ["encode_message", "event", "exception_event", "CONTENT_TYPE"]

CONTENT_TYPE = "application/vnd.amazon.eventstream"


def _headers(headers: Mapping[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        n = name.encode()
        v = value.encode()
        out += struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v
    return bytes(out)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    h = _headers(headers)
    total = 12 + len(h) + len(payload) + 4
    prelude = struct.pack(">II", total, len(h))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + h + payload
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def event(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """One ``:message-type: event`` message with a JSON payload."""
    return encode_message(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(),
    )


def exception_event(exception_type: str, message: str) -> bytes:
    """An in-stream error: botocore raises it as ``EventStreamError`` with this code."""
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"message": message}, ensure_ascii=False).encode(),
    )
