"""Training and validation data: JSONL lines in Bedrock's three formats, checked line by line.

* ``{"prompt": "...", "completion": "..."}`` — fine-tuning (and distillation, where the completion is
  the teacher's and may be absent);
* ``{"input": "..."}`` — continued pre-training;
* ``{"schemaVersion": "bedrock-conversation-2024", "system": [{"text"}], "messages": [...]}`` — fine-tuning
  on conversations; the last message is the assistant's answer the model learns.

Each line becomes a row the trainer reads: ``{"text"}`` or ``{"system", "turns", "completion"}``. A bad
line is a :class:`DataError` naming the file and the line number, which fails the job with that message
(and fails CreateModelCustomizationJob when the file is small enough to read there).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from haniwa.errors import ValidationError

__all__ = ["DataError", "parse_line", "parse_lines", "MAX_LINE_BYTES"]

MAX_LINE_BYTES = 1_000_000


class DataError(ValidationError):
    """A training or validation file has a line haniwa cannot train on."""


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    return value


def _blocks(content: Any, what: str) -> str:
    if isinstance(content, str):
        return _text(content, what)
    if not isinstance(content, list) or not content:
        raise ValueError(f"{what} must be a list of {{'text': ...}} blocks")
    return "\n".join(_text(b.get("text") if isinstance(b, dict) else None, f"{what}[].text") for b in content)


def _conversation(obj: dict[str, Any], need_answer: bool) -> dict[str, Any]:
    system = obj.get("system") or []
    sys_text = _blocks(system, "system") if system else ""
    msgs = obj.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise ValueError("messages must be a non-empty list")
    turns = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise ValueError(f"messages[{i}].role must be 'user' or 'assistant'")
        turns.append({"role": m["role"], "content": _blocks(m.get("content"), f"messages[{i}].content")})
    if turns[-1]["role"] == "assistant":
        *turns, last = turns
        if not turns:
            raise ValueError("messages must start with a user message")
        return {"system": sys_text, "turns": turns, "completion": last["content"]}
    if need_answer:
        raise ValueError("the last message must be the assistant's answer")
    return {"system": sys_text, "turns": turns, "completion": None}


def parse_line(line: str, customization: str) -> dict[str, Any]:
    """One JSONL line → a trainer row; ValueError says what is wrong with it."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise ValueError("each line must be a JSON object")
    if customization == "CONTINUED_PRE_TRAINING":
        if "input" not in obj:
            raise ValueError('continued pre-training lines are {"input": "..."}')
        return {"text": _text(obj["input"], "input")}
    need_answer = customization == "FINE_TUNING"
    if "messages" in obj:
        return _conversation(obj, need_answer)
    if "prompt" in obj:
        prompt = _text(obj["prompt"], "prompt")
        completion = obj.get("completion")
        if completion is None and need_answer:
            raise ValueError("completion is missing")
        if completion is not None:
            completion = _text(completion, "completion")
        return {"system": "", "turns": [{"role": "user", "content": prompt}], "completion": completion}
    if "input" in obj:
        raise ValueError(
            '{"input"} lines are for CONTINUED_PRE_TRAINING; fine-tuning needs prompt/completion'
        )
    raise ValueError(
        'expected {"prompt", "completion"} or a bedrock-conversation-2024 object with "messages"'
    )


def parse_lines(lines: Iterable[str], customization: str, source: str) -> list[dict[str, Any]]:
    """Every non-blank line of ``source`` (an s3:// URI, for messages); the first bad one is a DataError."""
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_BYTES:
            raise DataError(f"{source} line {n}: longer than {MAX_LINE_BYTES} bytes")
        try:
            rows.append(parse_line(line, customization))
        except ValueError as exc:
            raise DataError(f"{source} line {n}: {exc}") from None
    if not rows:
        raise DataError(f"{source} has no training examples")
    return rows
