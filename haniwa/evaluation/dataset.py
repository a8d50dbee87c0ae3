"""Dataset files: Bedrock's JSONL prompt datasets, read from S3 line by line.

Model evaluation (one object per line)::

    {"prompt": "...", "referenceResponse": "...", "category": "...",
     "modelResponses": [{"response": "...", "modelIdentifier": "my-model"}]}

RAG evaluation (retrieve-only)::

    {"conversationTurns": [{"prompt": {"content": [{"text": "..."}]},
                            "referenceResponses": [{"content": [{"text": "..."}]}],
                            "output": {"knowledgeBaseIdentifier": "...",
                                       "retrievedResults": {"retrievalResults": [
                                           {"content": {"text": "..."}}]}}}]}

A line that is not such an object is a :class:`Malformed` item with its reason, never an exception: the
job reports it and goes on. Reading stops at :data:`MAX_RECORDS` records (Bedrock's limit per dataset)
and a line may hold at most :data:`MAX_LINE_BYTES`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from haniwa.errors import ValidationError
from haniwa.evaluation.base import Record
from haniwa.s3.base import ObjectStore

__all__ = ["Malformed", "read_dataset", "split_uri", "MAX_RECORDS", "MAX_LINE_BYTES"]

MAX_RECORDS = 1000
MAX_LINE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Malformed:
    index: int
    reason: str


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key); ``ValidationError`` otherwise."""
    if not uri.startswith("s3://") or "/" not in uri[5:] or uri.endswith("/"):
        raise ValidationError(f"{uri!r} is not an s3://bucket/key URI of a JSONL file")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


async def _lines(store: ObjectStore, uri: str) -> AsyncIterator[bytes | None]:
    """The file's lines; None for a line over MAX_LINE_BYTES (the rest of it is skipped)."""
    bucket, key = split_uri(uri)
    _, reader = await store.open(bucket, key)
    buf = bytearray()
    skipping = False
    async for chunk in reader:
        start = 0
        while (nl := chunk.find(b"\n", start)) >= 0:
            if not skipping:
                buf += chunk[start:nl]
                yield None if len(buf) > MAX_LINE_BYTES else bytes(buf)
            else:
                yield None
            buf.clear()
            skipping = False
            start = nl + 1
        if not skipping:
            buf += chunk[start:]
            if len(buf) > MAX_LINE_BYTES:
                buf.clear()
                skipping = True
    if skipping:
        yield None
    elif buf.strip():
        yield bytes(buf)


def _text(value: Any) -> str | None:
    """A string, or the text of a Bedrock content list ``{"content": [{"text": ...}]}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        content = value.get("content")
        if isinstance(content, list):
            texts = [
                str(c["text"]) for c in content if isinstance(c, Mapping) and isinstance(c.get("text"), str)
            ]
            return "\n".join(texts) if texts else None
        if isinstance(value.get("text"), str):
            return str(value["text"])
    return None


def parse_record(index: int, data: Any) -> Record | Malformed:
    if not isinstance(data, Mapping):
        return Malformed(index, "a line must be a JSON object")
    turns = data.get("conversationTurns")
    if turns is not None:
        return _rag_record(index, data, turns)
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return Malformed(index, "'prompt' must be a non-empty string")
    reference = data.get("referenceResponse")
    if reference is not None and not isinstance(reference, str):
        return Malformed(index, "'referenceResponse' must be a string")
    category = data.get("category")
    responses: dict[str, str] = {}
    for r in data.get("modelResponses") or []:
        if not isinstance(r, Mapping) or not isinstance(r.get("response"), str):
            return Malformed(index, "each of 'modelResponses' needs a 'response' string")
        responses[str(r.get("modelIdentifier", ""))] = r["response"]
    return Record(
        index, prompt, reference, category if isinstance(category, str) else None, responses, (), data
    )


def _rag_record(index: int, data: Mapping[str, Any], turns: Any) -> Record | Malformed:
    if not isinstance(turns, list) or len(turns) != 1 or not isinstance(turns[0], Mapping):
        return Malformed(index, "'conversationTurns' must hold exactly one turn")
    turn = turns[0]
    prompt = _text(turn.get("prompt"))
    if not prompt:
        return Malformed(index, "the turn's 'prompt' needs content text")
    refs = [t for r in turn.get("referenceResponses") or [] if (t := _text(r))]
    contexts: list[str] = []
    responses: dict[str, str] = {}
    output = turn.get("output")
    if isinstance(output, Mapping):
        results = (output.get("retrievedResults") or output.get("retrievedPassages") or {}).get(
            "retrievalResults"
        )
        for r in results or []:
            if isinstance(r, Mapping) and (t := _text(r.get("content"))):
                contexts.append(t)
        if isinstance(output.get("text"), str):
            responses[str(output.get("knowledgeBaseIdentifier", ""))] = output["text"]
    return Record(index, prompt, "\n".join(refs) or None, None, responses, tuple(contexts), data)


async def read_dataset(store: ObjectStore, uri: str) -> AsyncIterator[Record | Malformed]:
    """The dataset's records in file order (blank lines skipped, their numbers kept)."""
    n = 0
    index = 0
    async for line in _lines(store, uri):
        index += 1
        if line is not None and not line.strip():
            continue
        n += 1
        if n > MAX_RECORDS:
            yield Malformed(index, f"a dataset holds at most {MAX_RECORDS} records; the rest were not read")
            return
        if line is None:
            yield Malformed(index, f"the line is over {MAX_LINE_BYTES} bytes")
            continue
        try:
            data = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            yield Malformed(index, f"not JSON: {exc}")
            continue
        yield parse_record(index, data)
