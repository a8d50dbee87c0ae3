"""The format of one orchestration step: the JSON schema a step is constrained to, how a model's text is
read as a step, and how its arguments are checked against the tool they call.

A step is ``{"thought": …, "action": {"tool": <a tool>, "input": {…}}}`` or
``{"thought": …, "action": {"tool": "final_answer", "answer": …}}``. What cannot be used raises
:class:`StepError` or :class:`ArgumentError`, whose message the loop shows the model as an observation.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from haniwa.agents.base import Tool

__all__ = [
    "FINAL",
    "THOUGHT_MAX",
    "BARE",
    "Step",
    "StepError",
    "ArgumentError",
    "step_schema",
    "parse_step",
    "check_arguments",
    "signature",
    "render_tools",
    "call_key",
]

FINAL = "final_answer"
THOUGHT_MAX = 200  # characters: a rationale, not an essay (each token costs ~0.2 s on the bundled model)


def step_schema(tools: Sequence[Tool], only: Collection[str] | None = None) -> dict[str, Any]:
    """The JSON schema of one step: a short thought, then one tool call or the final answer. ``only``:
    the tools the step may call (None: every tool; empty: it may only answer)."""
    actions: list[dict[str, Any]] = []
    if only is None or only:
        actions = [
            {
                "type": "object",
                "properties": {"tool": {"const": t.name}, "input": t.input_schema()},
                "required": ["tool", "input"],
                "additionalProperties": False,
            }
            for t in tools
            if only is None or t.name in only
        ]
    actions.append(
        {
            "type": "object",
            "properties": {"tool": {"const": FINAL}, "answer": {"type": "string", "minLength": 1}},
            "required": ["tool", "answer"],
            "additionalProperties": False,
        }
    )
    return {
        "type": "object",
        "properties": {
            "thought": {"type": "string", "maxLength": THOUGHT_MAX},
            "action": actions[0] if len(actions) == 1 else {"anyOf": actions},
        },
        "required": ["thought", "action"],
        "additionalProperties": False,
    }


class StepError(Exception):
    """The model's step could not be used; the message is shown to it as an observation."""


class ArgumentError(Exception):
    pass


@dataclass(frozen=True)
class Step:
    thought: str
    tool: str  # a tool name or FINAL
    arguments: dict[str, Any]
    answer: str = ""


BARE = ""  # the key under which a bare (non-object) "input" waits for check_arguments to name it


def parse_step(text: str, p: Mapping[str, str]) -> Step:
    """The first JSON object in ``text`` as a step. Lenient about a missing ``action`` wrapper and about
    a bare value as ``input`` (free-form models often write both); strict about everything else."""
    invalid = p["invalid_json"].format()  # the template escapes its braces
    start = text.find("{")
    if start < 0:
        raise StepError(invalid)
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        raise StepError(invalid) from None
    if not isinstance(obj, dict):
        raise StepError(invalid)
    action = obj.get("action", obj)
    if not isinstance(action, dict) or not isinstance(action.get("tool"), str):
        raise StepError(invalid)
    thought = str(obj.get("thought", ""))
    if action["tool"] == FINAL:
        return Step(thought, FINAL, {}, str(action.get("answer", "")))
    args = action.get("input", {})
    if isinstance(args, str | int | float) and not isinstance(args, bool):
        return Step(thought, action["tool"], {BARE: args})
    if not isinstance(args, dict):
        raise StepError(invalid)
    return Step(thought, action["tool"], args)


def _coerce(value: Any, typ: str) -> Any:
    if typ == "string":
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if typ == "boolean":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise ArgumentError(f"expected true or false, got {value!r}")
    if typ == "integer":
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ArgumentError(f"expected an integer, got {value!r}") from None
        if not f.is_integer():
            raise ArgumentError(f"expected an integer, got {value!r}")
        return int(f)
    if typ == "number":
        try:
            return float(value) if not isinstance(value, int) or isinstance(value, bool) else value
        except (TypeError, ValueError):
            raise ArgumentError(f"expected a number, got {value!r}") from None
    return value if isinstance(value, list) else [value]


def check_arguments(tool: Tool, args: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments checked against the tool's parameters and coerced to their types."""
    known = {p.name: p for p in tool.parameters}
    if BARE in args:
        # ``"input": "2^10"``: unambiguous only when the tool takes exactly one parameter
        if len(tool.parameters) != 1:
            raise ArgumentError(f"input must be an object of parameters: {signature(tool)}")
        args = {tool.parameters[0].name: args[BARE]}
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise ArgumentError(f"unknown parameter(s) {', '.join(unknown)}")
    missing = [p.name for p in tool.parameters if p.required and args.get(p.name) in (None, "")]
    if missing:
        raise ArgumentError(f"missing required parameter(s) {', '.join(missing)}")
    out = {}
    for name, value in args.items():
        try:
            out[name] = _coerce(value, known[name].type)
        except ArgumentError as e:
            raise ArgumentError(f"{name}: {e}") from None
    return out


def signature(tool: Tool) -> str:
    params = ", ".join(f"{p.name}: {p.type}{'' if p.required else '?'}" for p in tool.parameters)
    return f"{tool.name}({params})"


def render_tools(tools: Sequence[Tool]) -> str:
    lines = []
    for t in tools:
        desc = t.description or ""
        details = "; ".join(f"{p.name}: {p.description}" for p in t.parameters if p.description)
        lines.append(f"- {signature(t)}: {desc}" + (f" ({details})" if details else ""))
    return "\n".join(lines) or "(none)"


def call_key(tool: str, args: Mapping[str, Any]) -> str:
    """What makes two calls the same call: the tool and its arguments, in any order."""
    return tool + json.dumps(args, sort_keys=True, ensure_ascii=False)
