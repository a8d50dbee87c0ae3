"""Bedrock metadata filters: the reference semantics, their SQLite translation and validation.

:func:`matches` is the definition every store must agree with (the conformance suite in
``haniwa.testing.vectorstore`` checks each store against it); :func:`to_sqlite` is the same predicate as a
SQL expression so the local store filters inside SQLite, before ranking.

Semantics:

* ``equals`` / ``notEquals`` compare a string, number or bool with a scalar metadata value of the same
  kind; numbers compare numerically (``1 == 1.0``) and a bool is never a number.
* ``greaterThan`` / ``greaterThanOrEquals`` / ``lessThan`` / ``lessThanOrEquals``: numbers only; a
  metadata value that is not a number never matches.
* ``in`` / ``notIn``: the metadata value equals (as above) one of a list of scalars.
* ``startsWith``: the metadata string starts with the value.
* ``listContains``: the metadata value is a list holding an element equal to the value.
* ``stringContains``: the metadata string contains the value, or some string in a metadata list does.
* A missing key (or a JSON ``null``) fails every operator except ``notEquals`` and ``notIn``, which are
  the exact negations of ``equals`` and ``in``.
* ``AllOf`` holds when every part does (an empty one always), ``AnyOf`` when some part does.

Comparisons are case-sensitive, as in Bedrock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from haniwa.errors import ValidationError
from haniwa.knowledge.base import FILTER_OPERATORS, AllOf, AnyOf, Condition, Filter

__all__ = ["matches", "to_sqlite", "validate"]

_ORDER = {"greaterThan": ">", "greaterThanOrEquals": ">=", "lessThan": "<", "lessThanOrEquals": "<="}


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_scalar(v: Any) -> bool:
    return isinstance(v, str | bool) or _is_number(v)


def validate(where: Filter | None) -> None:
    """Raise :class:`~haniwa.errors.ValidationError` for an unknown operator, a key that is not a
    non-empty string, or a value of the wrong type (``in`` without a list, ``greaterThan`` with a string)."""
    if where is None:
        return
    if isinstance(where, AllOf | AnyOf):
        for part in where.filters:
            validate(part)
        return
    if not isinstance(where, Condition):
        raise ValidationError(f"not a filter: {where!r}")
    op, value = where.op, where.value
    if op not in FILTER_OPERATORS:
        raise ValidationError(
            f"unknown filter operator {op!r}; expected one of {', '.join(FILTER_OPERATORS)}"
        )
    if not isinstance(where.key, str) or not where.key:
        raise ValidationError(f"filter {op}: the key must be a non-empty string")
    if op in _ORDER:
        ok, need = _is_number(value), "a number"
    elif op in ("in", "notIn"):
        ok = isinstance(value, list | tuple) and all(_is_scalar(v) for v in value)
        need = "a list of strings, numbers or booleans"
    elif op in ("startsWith", "stringContains"):
        ok, need = isinstance(value, str), "a string"
    else:  # equals, notEquals, listContains
        ok, need = _is_scalar(value), "a string, number or boolean"
    if not ok:
        raise ValidationError(f"filter {op} on {where.key!r}: the value must be {need}, not {value!r}")


# -- reference semantics ---------------------------------------------------------------------------------
def _equal(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool):
        return isinstance(actual, bool) and actual is wanted
    if _is_number(wanted):
        return _is_number(actual) and actual == wanted
    return isinstance(wanted, str) and isinstance(actual, str) and actual == wanted


def _condition(c: Condition, metadata: Mapping[str, Any]) -> bool:
    op = c.op
    if op == "notEquals":
        return not _condition(Condition("equals", c.key, c.value), metadata)
    if op == "notIn":
        return not _condition(Condition("in", c.key, c.value), metadata)
    v = metadata.get(c.key)
    if v is None:
        return False
    if op == "equals":
        return _equal(v, c.value)
    if op == "in":
        return any(_equal(v, w) for w in c.value)
    if op in _ORDER:
        if not _is_number(v):
            return False
        w = c.value
        return bool({">": v > w, ">=": v >= w, "<": v < w, "<=": v <= w}[_ORDER[op]])
    if op == "startsWith":
        return isinstance(v, str) and v.startswith(c.value)
    if op == "listContains":
        return isinstance(v, list | tuple) and any(_equal(e, c.value) for e in v)
    if op == "stringContains":
        if isinstance(v, str):
            return c.value in v
        return isinstance(v, list | tuple) and any(isinstance(e, str) and c.value in e for e in v)
    raise ValidationError(f"unknown filter operator {op!r}")


def matches(where: Filter | None, metadata: Mapping[str, Any]) -> bool:
    """Whether ``metadata`` satisfies ``where`` (``None`` matches everything)."""
    if where is None:
        return True
    if isinstance(where, AllOf):
        return all(matches(f, metadata) for f in where.filters)
    if isinstance(where, AnyOf):
        return any(matches(f, metadata) for f in where.filters)
    return _condition(where, metadata)


# -- SQLite ----------------------------------------------------------------------------------------------
# Keys are looked up with json_each(...).key = ?, never spliced into a JSON path: a path cannot spell a key
# holding '"', and SQLite 3.40 compares path labels with the raw (escaped) JSON text.
def _eq_sql(t: str, v: str, wanted: Any, params: list[Any]) -> str:
    """SQL for "the JSON value with type column ``t`` and value column ``v`` equals ``wanted``"."""
    if isinstance(wanted, bool):
        return f"{t} = '{'true' if wanted else 'false'}'"
    params.append(wanted)
    if isinstance(wanted, str):
        return f"({t} = 'text' AND {v} = ?)"
    return f"({t} IN ('integer', 'real') AND {v} = ?)"


def _in_sql(t: str, v: str, values: Any, params: list[Any]) -> str:
    parts: list[str] = []
    strings = [w for w in values if isinstance(w, str)]
    numbers = [w for w in values if _is_number(w)]
    if strings:
        parts.append(f"({t} = 'text' AND {v} IN ({', '.join('?' * len(strings))}))")
        params.extend(strings)
    if numbers:
        parts.append(f"({t} IN ('integer', 'real') AND {v} IN ({', '.join('?' * len(numbers))}))")
        params.extend(numbers)
    if any(w is True for w in values):
        parts.append(f"{t} = 'true'")
    if any(w is False for w in values):
        parts.append(f"{t} = 'false'")
    return "(" + " OR ".join(parts) + ")" if parts else "0"


def _condition_sql(c: Condition, column: str, params: list[Any]) -> str:
    op = c.op
    if op == "notEquals":
        return f"NOT {_condition_sql(Condition('equals', c.key, c.value), column, params)}"
    if op == "notIn":
        return f"NOT {_condition_sql(Condition('in', c.key, c.value), column, params)}"
    params.append(c.key)
    t, v = "_j.type", "_j.value"
    if op == "equals":
        test = _eq_sql(t, v, c.value, params)
    elif op == "in":
        test = _in_sql(t, v, c.value, params)
    elif op in _ORDER:
        test = f"({t} IN ('integer', 'real') AND {v} {_ORDER[op]} ?)"
        params.append(c.value)
    elif op == "startsWith":
        test = f"({t} = 'text' AND substr({v}, 1, ?) = ?)"
        params += [len(c.value), c.value]
    elif op == "listContains":
        inner = _eq_sql("_e.type", "_e.value", c.value, params)
        test = f"({t} = 'array' AND EXISTS (SELECT 1 FROM json_each({v}) AS _e WHERE {inner}))"
    elif op == "stringContains":
        test = (
            f"(({t} = 'text' AND instr({v}, ?) > 0) OR ({t} = 'array' AND EXISTS "
            f"(SELECT 1 FROM json_each({v}) AS _e WHERE _e.type = 'text' AND instr(_e.value, ?) > 0)))"
        )
        params += [c.value, c.value]
    else:
        raise ValidationError(f"unknown filter operator {op!r}")
    return f"EXISTS (SELECT 1 FROM json_each({column}) AS _j WHERE _j.key = ? AND {test})"


def _to_sql(where: Filter, column: str, params: list[Any]) -> str:
    if isinstance(where, AllOf | AnyOf):
        if not where.filters:
            return "1" if isinstance(where, AllOf) else "0"
        joiner = " AND " if isinstance(where, AllOf) else " OR "
        return "(" + joiner.join(_to_sql(f, column, params) for f in where.filters) + ")"
    return _condition_sql(where, column, params)


def to_sqlite(where: Filter | None, column: str = "metadata") -> tuple[str, list[Any]]:
    """``where`` as a SQLite boolean expression over the JSON-object text column ``column`` (a trusted
    identifier), with its bound parameters; ``("1", [])`` for ``None``. Validates ``where`` first."""
    if where is None:
        return "1", []
    validate(where)
    params: list[Any] = []
    return _to_sql(where, column, params), params
