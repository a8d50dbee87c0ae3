"""Values on their way into and out of the database: refused when they could not be stored or served back,
repaired when a row already holds one.

A row must always be readable and renderable as JSON, or one bad row breaks a whole list forever. So:

- :func:`check_storable` / :func:`dumps` refuse (ValidationError) what SQLite or a JSON response cannot
  carry: ``NaN`` and infinities, integers beyond 64 bits, lone UTF-16 surrogates;
- :func:`repaired` / :func:`loads` turn what an older version (or another tool) may have left in a row
  into values that serialise: non-finite floats become None, bytes and broken strings become text, and
  a JSON column that does not parse becomes the default.

Example::

    await db.execute("INSERT INTO t (params) VALUES (?)", (dumps(params, "params"),))
    params = loads(row["params"], {})     # {} when the column is not valid JSON
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from haniwa.errors import ValidationError

__all__ = ["check_storable", "dumps", "loads", "repaired"]

_INT64 = 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")
T = TypeVar("T")


def check_storable(value: Any, what: str) -> None:
    """Raise ValidationError naming ``what`` when ``value`` (or anything inside it) cannot be stored."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise ValidationError(f"{what} holds a lone UTF-16 surrogate, which is not valid Unicode")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > _INT64:
                raise ValidationError(f"{what} holds an integer beyond 64 bits")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValidationError(f"{what} holds {item}, which is not a JSON number")
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def dumps(value: Any, what: str) -> str:
    """JSON text for a column, after :func:`check_storable`."""
    check_storable(value, what)
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def repaired(value: Any) -> Any:
    """``value`` with everything a JSON response cannot carry replaced (see the module docstring)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(repaired(k)): repaired(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [repaired(v) for v in value]
    return value


def loads(text: Any, default: T) -> T:
    """A JSON column read back: ``default`` when it is missing, unparsable or not of ``default``'s type."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str) or not text:
        return default
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return default
    if not isinstance(value, type(default)):
        return default
    return cast(T, repaired(value))
