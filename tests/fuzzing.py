"""A request fuzzer for the four Bedrock services, driven only by botocore's service models.

For every operation the :class:`Generator` builds a valid-looking *baseline* from the input shape (required
members only, first enum value and union member, strings sampled from each shape's ``pattern`` within its
``min``/``max``, ids of real resources where a member names one), then *mutates* one place in it: wrong
types, boundary and out-of-range values, bad enums, empty and very long strings, nesting 2,000+ deep,
lone surrogates (as a JSON escape and as raw bytes), 10**30, 1e400, NaN, a non-object where a structure or
document is expected, huge lists, missing required members, garbage bodies, odd path and header values.
Cases are seeded and deterministic: case ``i`` of seed ``s`` is always the same request.

:mod:`tests.fuzz_run` sends them to a real haniwa and judges the answers.
"""

from __future__ import annotations

import base64
import json
import random
import re
import re._parser as sre  # the stdlib's own regex parser: sample strings that match a shape's pattern
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from botocore.model import OperationModel, Shape

from haniwa.api.wire import Operation, Router, stream_member

__all__ = ["CHAT", "EMBED", "EMBED_ARN", "BUCKET", "HINTS", "Case", "Generator", "Raw", "serialize"]

CHAT = "anthropic.claude-3-haiku-20240307-v1:0"
EMBED = "amazon.titan-embed-text-v2:0"
CHAT_ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{CHAT}"
EMBED_ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{EMBED}"
BUCKET = "fuzz-docs"
# Native InvokeModel bodies, one per provider format the echo catalog routes (the body is a blob to botocore)
NATIVE: dict[str, dict[str, Any]] = {
    CHAT: {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "hello fuzz"}],
    },
    "amazon.titan-text-express-v1": {
        "inputText": "hello fuzz",
        "textGenerationConfig": {"maxTokenCount": 32},
    },
    "meta.llama3-8b-instruct-v1:0": {"prompt": "hello fuzz", "max_gen_len": 32},
    "mistral.mistral-7b-instruct-v0:2": {"prompt": "<s>[INST] hello fuzz [/INST]", "max_tokens": 32},
    "cohere.command-r-v1:0": {"message": "hello fuzz", "max_tokens": 32},
    EMBED: {"inputText": "hello fuzz", "dimensions": 256},
    "cohere.embed-multilingual-v3": {"texts": ["hello fuzz"], "input_type": "search_document"},
}
# Values by member name that make a baseline reach a handler's logic rather than a 404
HINTS: dict[str, Any] = {
    "modelId": CHAT,
    "foundationModel": CHAT,
    "modelIdentifier": CHAT,
    "modelArn": CHAT_ARN,
    "embeddingModelArn": EMBED_ARN,
    "roleArn": "arn:aws:iam::000000000000:role/fuzz",
    "agentResourceRoleArn": "arn:aws:iam::000000000000:role/fuzz",
    "bucketArn": f"arn:aws:s3:::{BUCKET}",
    "uri": f"s3://{BUCKET}/kb/tea.txt",
    "lambda": "arn:aws:lambda:us-east-1:000000000000:function:fuzz",
    "contentType": "application/json",
    "accept": "application/json",
    "text": "hello fuzz",
    "inputText": "hello fuzz",
    "agentVersion": ("DRAFT", "1"),
    "dataSourceType": "S3",  # the data source make_resources creates
    "sessionId": "fuzz-session",
    "memoryId": "fuzz-memory",
}
# Optional in the shapes, needed in practice: a baseline without them stops at the first check
ALWAYS = frozenset(
    {
        "messages", "inputText", "functionSchema", "functions", "actionGroupExecutor", "customControl",
        "s3Configuration", "vectorKnowledgeBaseConfiguration", "storageConfiguration", "converse",
        "opensearchServerlessConfiguration", "textQuery", "text", "retrieveAndGenerateConfiguration",
        "knowledgeBaseConfiguration", "instruction", "foundationModel", "retrievalQuery", "s3",
    }
)  # fmt: skip
# Rerank and reranking configurations take an embedding model (haniwa reranks with embeddings)
PATH_HINTS: dict[tuple[str, str], Any] = {("modelConfiguration", "modelArn"): EMBED_ARN}
MODEL_IDS = (
    CHAT,
    EMBED,
    "cohere.embed-multilingual-v3",
    "meta.llama3-8b-instruct-v1:0",
    "no.such-model-v1:0",
)
MUTATIONS = (
    "wrong-type", "null", "below-min", "above-max", "at-max", "bad-enum", "empty-string", "long-string",
    "deep-nesting", "surrogate-escape", "surrogate-raw", "surrogate-key", "huge-int", "huge-float", "nan",
    "non-object", "empty-object", "huge-list", "missing-required", "unknown-member", "union-two", "swap-id",
    "garbage-body", "deep-body", "bad-uri", "bad-header",
)  # fmt: skip
_WHOLE = ("garbage-body", "deep-body")
# Case numbers from here on are matrix cases (Generator.cases): 1_000_000 + 100 * served operation + mutation
MATRIX = 1_000_000
DEEP = (2_000, 5_000, 20_000)
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Raw:
    """Bytes sent verbatim: a token in a JSON body, a header value, or (non-ASCII escaped) a path or query."""

    data: bytes


# -- strings from a shape's pattern ---------------------------------------------------------------------
_PRINTABLE = [chr(c) for c in range(0x21, 0x7F)]


def _sample(nodes: Any, rng: random.Random, out: list[str]) -> None:
    for op, av in nodes:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(av))
        elif name == "NOT_LITERAL":
            out.append(rng.choice([c for c in "abcXYZ019" if ord(c) != av]))
        elif name == "ANY":
            out.append(rng.choice("abcdefxyz0123"))
        elif name == "IN":
            out.append(_class_char(av, rng))
        elif name == "CATEGORY":
            out.append(_class_char([(op, av)], rng))
        elif name == "BRANCH":
            _sample(rng.choice(av[1]), rng, out)
        elif name == "SUBPATTERN":
            _sample(av[3], rng, out)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, hi, item = av
            for _ in range(lo if rng.random() < 0.5 else rng.randint(lo, min(hi, lo + 6))):
                _sample(item, rng, out)
        # AT (anchors), ASSERT/ASSERT_NOT (lookarounds) and GROUPREF add nothing here


def _class_char(items: Sequence[Any], rng: random.Random) -> str:
    allowed: list[str] = []
    negate = False
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            allowed.append(chr(av))
        elif name == "RANGE":
            allowed += [chr(c) for c in range(av[0], min(av[1], av[0] + 200) + 1)]
        elif name == "CATEGORY":
            allowed += {
                "CATEGORY_DIGIT": list("0123456789"),
                "CATEGORY_SPACE": [" "],
                "CATEGORY_WORD": list("abcxyzABC019_"),
            }.get(str(av), list("abcxyz019"))
    if negate:
        allowed = [c for c in _PRINTABLE if c not in allowed]
    return rng.choice(allowed or ["a"])


def sample_string(shape: Shape, rng: random.Random, minimum: int = 0) -> str:
    """A string satisfying ``shape``'s pattern and length bounds where 20 tries find one."""
    lo = max(minimum, int(shape.metadata.get("min", 1)))
    hi = int(shape.metadata.get("max", 64))
    pattern = shape.metadata.get("pattern")
    if not pattern:
        text = "fuzz text " * (lo // 10 + 1)
        return text[: max(lo, min(hi, 10))]
    best = "fuzz"
    for _ in range(20):
        out: list[str] = []
        try:
            _sample(sre.parse(pattern), rng, out)
        except (re.error, RecursionError):
            break
        best = "".join(out)
        if lo <= len(best) <= hi and re.fullmatch(pattern, best):
            return best
    return best


def _pattern_fits(pattern: str, text: str) -> bool:
    """Whether ``text`` matches a service-model pattern; one Python's ``re`` cannot read (``\\p{L}``, newer
    botocore models use Unicode classes) is not checked here, as the server does not apply it either."""
    try:
        return re.fullmatch(pattern, text) is not None
    except re.error:
        return True


# -- requests and cases ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One fuzzed request: ``mutation`` says what was changed, ``target`` where (a member path)."""

    index: int
    service: str
    operation: str
    mutation: str
    target: str
    method: str
    path: str
    headers: tuple[tuple[str, bytes], ...]
    body: bytes
    streaming: bool
    served: bool
    invalid: bool = False  # the mutation surely breaks the service model: a 2xx means a missing check

    @property
    def label(self) -> str:
        return f"{self.service} {self.operation} [{self.mutation} @ {self.target or '-'}]"

    def show(self, limit: int = 300) -> str:
        body = self.body[:limit] + (b"..." if len(self.body) > limit else b"")
        return f"{self.method} {self.path[:limit]} ({len(self.body)} bytes) {body!r}"


class Generator:
    """Seeded cases over the served and unserved operations of the four Bedrock services."""

    def __init__(
        self,
        served: Iterable[tuple[str, str]],
        resources: Mapping[str, str] | None = None,
        seed: int = 0,
        router: Router | None = None,
    ) -> None:
        self.router = router or Router()
        self.served = set(served)
        self.ids = dict(resources or {})
        self.seed = seed
        ops = sorted(self.router.ops, key=lambda o: (o.service, o.name))
        self.served_ops = [o for o in ops if (o.service, o.name) in self.served]
        self.unserved_ops = [o for o in ops if (o.service, o.name) not in self.served]
        # served operations get four times the share of unserved ones (whose handlers are a typed 501)
        self.schedule = self.served_ops * 4 + self.unserved_ops
        random.Random(seed).shuffle(self.schedule)

    # -- values from shapes -----------------------------------------------------------------------------
    def value(
        self, shape: Shape, rng: random.Random, name: str, path: Path, rich: bool, depth: int = 0
    ) -> Any:
        parent = str(path[-2]) if len(path) > 1 else ""
        if (parent, name) in PATH_HINTS:
            return PATH_HINTS[(parent, name)]
        if name in self.ids:
            return self.ids[name]
        t = shape.type_name
        if t == "string":
            enum = getattr(shape, "enum", None)
            pattern = shape.metadata.get("pattern")
            for hint in HINTS.get(name, ()) if isinstance(HINTS.get(name), tuple) else [HINTS.get(name)]:
                fits = not pattern or _pattern_fits(pattern, str(hint))
                if isinstance(hint, str) and fits and (not enum or hint in enum):
                    return hint
            if enum:
                return rng.choice(enum) if rich else enum[0]
            # a uri label may not be empty, whatever its pattern allows: the path would not route
            return sample_string(shape, rng, 1 if shape.serialization.get("location") == "uri" else 0)
        if t in ("integer", "long"):
            return max(int(shape.metadata.get("min", 0)), min(16, int(shape.metadata.get("max", 16))))
        if t in ("float", "double"):
            return max(float(shape.metadata.get("min", 0.0)), min(0.5, float(shape.metadata.get("max", 0.5))))
        if t == "boolean":
            return rich and rng.random() < 0.5
        if t == "timestamp":
            return 1_700_000_000
        if t == "blob":
            return b"hello fuzz"
        if t == "list":
            n = max(1, int(shape.metadata.get("min", 1))) if depth < 6 else 0
            return [self.value(shape.member, rng, name, (*path, i), rich, depth + 1) for i in range(n)]
        if t == "map":
            if depth >= 6:
                return {}
            return {"fuzzKey": self.value(shape.value, rng, name, (*path, "fuzzKey"), rich, depth + 1)}
        if t == "structure":
            if shape.is_document_type:
                return {"type": "object", "properties": {"q": {"type": "string"}}}
            members = shape.members
            if shape.is_tagged_union:
                names = [n for n in members if not members[n].serialization.get("eventstream")]
                preferred = [n for n in names if n in ALWAYS] or names
                pick = rng.choice(names) if rich else preferred[0]
                return {pick: self.value(members[pick], rng, pick, (*path, pick), rich, depth + 1)}
            out: dict[str, Any] = {}
            required = set(shape.metadata.get("required", ()))
            for m, ms in members.items():
                if ms.serialization.get("eventstream") or ms.serialization.get("location") == "headers":
                    continue
                if m in required or m in ALWAYS or (rich and depth < 4 and rng.random() < 0.4):
                    out[m] = self.value(ms, rng, m, (*path, m), rich, depth + 1)
            return out
        return None

    def params(self, op: Operation, rng: random.Random, rich: bool) -> dict[str, Any]:
        shape = op.model.input_shape
        if shape is None:
            return {}
        out: dict[str, Any] = self.value(shape, rng, "", (), rich)
        payload = shape.serialization.get("payload")
        if payload and shape.members[payload].type_name == "blob":
            model = rng.choice(list(NATIVE)) if rich else CHAT
            if "modelId" in shape.members:
                out["modelId"] = model
            out[payload] = json.loads(json.dumps(NATIVE[model]))  # a JSON body fuzzed as a document
        return out

    # -- cases ------------------------------------------------------------------------------------------
    def case(self, index: int, op: Operation | None = None, mutation: str | None = None) -> Case:
        rng = random.Random(f"{self.seed}/{index}")
        if op is None and index >= MATRIX:  # one of matrix(): the index names the operation and mutation
            op = self.served_ops[(index - MATRIX) // 100 % len(self.served_ops)]
            mutation = MUTATIONS[(index - MATRIX) % 100 % len(MUTATIONS)]
        op = op or self.schedule[index % len(self.schedule)]
        roll = rng.random()
        kind = mutation or (
            "baseline" if roll < 0.05 else "variant" if roll < 0.15 else rng.choice(MUTATIONS)
        )
        params = self.params(op, rng, rich=kind != "baseline" and rng.random() < 0.5)
        target, raw_body, invalid = "", None, False
        if kind not in ("baseline", "variant"):
            target, raw_body, kind, invalid = self.mutate(op, params, kind, rng)
        method, path, headers, body = serialize(op, params)
        if raw_body is not None:
            body = raw_body
        return Case(
            index, op.service, op.name, kind, target, method, path, tuple(headers.items()), body,
            stream_member(op) is not None, (op.service, op.name) in self.served, invalid,
        )  # fmt: skip

    def baselines(self) -> list[Case]:
        """One baseline per operation, served ones first; deleting ones last."""
        ops = sorted(self.served_ops, key=_phase) + self.unserved_ops
        return [self.case(-1 - i, op, "baseline") for i, op in enumerate(ops)]

    def cases(self, n: int, start: int = 0, matrix: bool = False) -> Iterator[Case]:
        """Cases ``start .. start+n`` (with ``matrix``, also every mutation of every served operation once);
        those that delete or stop something come last, since they end the resources the others aim at."""
        indices = list(range(start, start + n))
        if matrix:
            ops, kinds = range(len(self.served_ops)), range(len(MUTATIONS))
            indices += [MATRIX + 100 * o + m for o in ops for m in kinds]
        for i in sorted(indices, key=lambda i: (_phase(self._op(i)), i)):
            yield self.case(i)

    def _op(self, index: int) -> Operation:
        if index >= MATRIX:
            return self.served_ops[(index - MATRIX) // 100 % len(self.served_ops)]
        return self.schedule[index % len(self.schedule)]

    def mutate(
        self, op: Operation, params: dict[str, Any], kind: str, rng: random.Random
    ) -> tuple[str, bytes | None, str, bool]:
        """Change ``params`` in place; return (target path, replacement body or None, mutation applied,
        whether the request now surely breaks the service model)."""
        shape = op.model.input_shape
        if kind == "garbage-body":
            return "body", rng.choice(_GARBAGE)(rng), kind, False
        if kind == "deep-body":
            n = rng.choice(DEEP)
            opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
            return "body", opener * n + b"1" + closer * n, kind, False
        if shape is None:
            return "body", b'{"fuzzUnknown": ' + b"[" * 3000 + b"]" * 3000 + b"}", "deep-body", False
        slots = list(_slots(params, shape, ()))
        fits = [s for s in slots if _fits(kind, s)]
        if not fits:  # nothing of that kind in this request: another mutation that has a place here
            kinds = [k for k in MUTATIONS if k not in _WHOLE and any(_fits(k, s) for s in slots)]
            if not kinds:
                return "body", rng.choice(_GARBAGE)(rng), "garbage-body", False
            kind = rng.choice(kinds)
            fits = [s for s in slots if _fits(kind, s)]
        slot = rng.choice(fits)
        invalid = _apply(kind, slot, params, rng, self)
        return _dotted(slot.path), None, kind, invalid


def _phase(op: Operation) -> int:
    if op.name in ("DeleteAgent", "DeleteKnowledgeBase", "DeleteDataSource"):
        return 3  # the resources every other case aims at
    if op.name.startswith(("Delete", "Disassociate", "Stop")):
        return 2
    return 1 if op.name.startswith("Update") else 0


@dataclass(frozen=True)
class _Slot:
    path: Path
    shape: Shape | None  # None inside a document or a native JSON body
    present: bool
    loc: str = ""  # where the top-level member travels: "uri", "querystring", "header" or "" (the body)


def _slots(value: Any, shape: Shape | None, path: Path, loc: str = "") -> Iterator[_Slot]:
    yield _Slot(path, shape, True, loc)
    if shape is not None and shape.type_name == "structure" and not shape.is_document_type:
        for name, ms in shape.members.items():
            if ms.serialization.get("eventstream") or ms.serialization.get("location") == "headers":
                continue
            where = loc if path else str(ms.serialization.get("location", ""))
            if isinstance(value, dict) and name in value:
                blob_payload = ms.type_name == "blob" and isinstance(value[name], dict)
                yield from _slots(value[name], None if blob_payload else ms, (*path, name), where)
            elif isinstance(value, dict):
                yield _Slot((*path, name), ms, False, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            inner = shape.member if shape is not None and shape.type_name == "list" else None
            yield from _slots(item, inner, (*path, i), loc)
    elif isinstance(value, dict):
        for k, v in value.items():
            inner = shape.value if shape is not None and shape.type_name == "map" else None
            yield from _slots(v, inner, (*path, k), loc)


def _loc(slot: _Slot) -> str:
    return slot.loc


def _fits(kind: str, s: _Slot) -> bool:
    t = s.shape.type_name if s.shape is not None else None
    meta = s.shape.metadata if s.shape is not None else {}
    top = len(s.path) == 1
    if not s.path:
        return kind == "missing-required" and bool(meta.get("required"))
    if kind == "bad-uri":
        return top and _loc(s) == "uri"
    if kind == "bad-header":
        return top and _loc(s) == "header"
    if kind in ("below-min", "at-max", "above-max"):
        bound = "min" if kind == "below-min" else "max"
        return bound in meta and t in ("string", "list", "map", "integer", "long", "float", "double")
    if kind == "bad-enum":
        return t == "string" and bool(getattr(s.shape, "enum", None))
    if kind in ("empty-string", "long-string", "surrogate-escape", "surrogate-raw"):
        return t == "string" or (s.shape is None and s.present)
    if kind == "union-two":
        # a second member to set: unions of one member (FunctionSchema) have none
        return (
            t == "structure" and s.shape is not None and s.shape.is_tagged_union and len(s.shape.members) > 1
        )
    if kind in ("non-object", "empty-object", "unknown-member"):
        return t in ("structure", "map") or (s.shape is None and s.present)
    if kind == "surrogate-key":
        return not s.loc and (t == "map" or (s.shape is None and s.present))
    if kind == "huge-list":
        return t == "list" or (s.shape is None and s.present)
    if kind == "missing-required":
        return s.present and t == "structure" and bool(meta.get("required"))
    if kind == "swap-id":
        return s.present and isinstance(s.path[-1], str) and (s.path[-1].endswith(("Id", "Arn")))
    return s.present or t is not None


def _get(tree: Any, path: Path) -> Any:
    for p in path:
        tree = tree[p]
    return tree


def _set(tree: Any, path: Path, value: Any) -> None:
    _get(tree, path[:-1])[path[-1]] = value


def _deep(rng: random.Random, short: bool = False) -> Raw:
    n = 2_000 if short else rng.choice(DEEP)  # a request line or header stays under its 16 KiB limit
    opener, closer = (b"[", b"]") if short else rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    return Raw(opener * n + b'"x"' + closer * n)


def _apply(kind: str, s: _Slot, params: dict[str, Any], rng: random.Random, gen: Generator) -> bool:
    """Apply ``kind`` at ``s``; True when the result surely breaks the service model (a 2xx is a bug)."""
    t = s.shape.type_name if s.shape is not None else None
    meta = s.shape.metadata if s.shape is not None else {}
    old = _get(params, s.path) if s.present else None
    new: Any
    if kind == "wrong-type":
        new = rng.choice(
            [x for x in ("text", 7, 2.5, True, [1, "a"], {"k": "v"}) if type(x) is not type(old)]
        )
    elif kind == "null":
        new = None
    elif kind in ("below-min", "at-max", "above-max"):
        bound = int(meta["min"] if kind == "below-min" else meta["max"])
        n = bound - 1 if kind == "below-min" else bound + 1 if kind == "above-max" else bound
        if t == "string":
            new = "a" * max(min(n, 4_000 if _loc(s) else 300_000), 0)
        elif t == "list" and s.shape is not None:
            item = old[0] if old else gen.value(s.shape.member, rng, "", s.path, False)
            new = [item] * max(min(n, 20_000), 0)
        elif t == "map":
            new = {f"k{i}": (next(iter(old.values())) if old else "v") for i in range(max(min(n, 20_000), 0))}
        else:
            new = n
    elif kind == "bad-enum":
        new = rng.choice(["NOT_AN_ENUM", str(old).lower(), f"{old}_X", ""])
    elif kind == "empty-string":
        new = ""
    elif kind == "long-string":
        new = "fuzz-" * 800 if _loc(s) else "fuzz " * 20_000  # a request line or header has its own limit
    elif kind == "deep-nesting":
        new = _deep(rng, short=bool(_loc(s)))
    elif kind == "surrogate-escape":
        new = Raw(b'"fuzz\\ud800text"') if not _loc(s) else "fuzz\ud800text"
    elif kind == "surrogate-raw":
        new = Raw(b'"fuzz\xed\xa0\x80text"') if _loc(s) == "" else Raw(b"fuzz\xed\xa0\x80")
    elif kind == "surrogate-key":
        key = Raw(rng.choice([b'"k\\udc00"', b'"k\xed\xb0\x80"']))
        new = {**(old if isinstance(old, dict) else {}), key: "v"}
    elif kind == "huge-int":
        new = rng.choice([10**30, -(10**30), 2**63, 2**64 + 1])
    elif kind == "huge-float":
        new = Raw(rng.choice([b"1e400", b"-1e400", b"1e-400", b"123456789e99999"]))
    elif kind == "nan":
        new = Raw(rng.choice([b"NaN", b"Infinity", b"-Infinity"]))
    elif kind == "non-object":
        new = rng.choice(["x", 1, [], True, [{"a": 1}]])
    elif kind == "empty-object":
        new = {}
    elif kind == "huge-list":
        item = old[0] if isinstance(old, list) and old else old if old is not None else "x"
        new = [item] * (200 if _loc(s) else rng.choice([10_000, 50_000]))
    elif kind == "missing-required":
        new = dict(old or {})
        members = s.shape.members  # type: ignore[union-attr]
        # a uri label cannot be missing from a path (it would be "missing" instead), so prefer the others
        required = sorted(meta["required"])
        body = [m for m in required if members[m].serialization.get("location") != "uri"]
        new.pop(rng.choice(body or required), None)
        if not s.path:  # the input itself
            params.clear()
            params.update(new)
            return bool(body)
    elif kind == "unknown-member":
        new = {**(old if isinstance(old, dict) else {}), "fuzzUnknown": {"a": [1, 2]}}
    elif kind == "union-two":
        members = s.shape.members  # type: ignore[union-attr]
        extra = {m: "x" for m in list(members)[:2] if not isinstance(old, dict) or m not in old}
        new = {**(old if isinstance(old, dict) else {}), **extra}
    elif kind == "swap-id":
        name = str(s.path[-1])
        new = rng.choice(
            [v for v in gen.ids.values() if v != old]
            + ["AAAAAAAAAA", "0000000000", "../../etc/passwd", "x" * 2048]
            + (list(MODEL_IDS) if "odel" in name else [])
        )
    elif kind == "bad-uri":
        odd = [b"%ED%A0%80", b"..%2F..%2Fetc", b"%00", b"a" * 5000, b"%FF%FE", b"%2F", b"%20", b"a%0Ab"]
        new = Raw(rng.choice(odd))
    elif kind == "bad-header":
        new = Raw(rng.choice([b"\xed\xa0\x80", b"x" * 8000, b"\xff", b"NaN", b"-1"]))
    else:
        raise AssertionError(kind)
    _set(params, s.path, new)
    return _surely_invalid(kind, s, new)


_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "integer": int, "long": int, "float": (int, float), "double": (int, float),
    "boolean": bool, "list": list, "map": dict, "structure": dict, "blob": (str, bytes),
    "timestamp": (int, float, str),
}  # fmt: skip


def _outside(size: float, meta: Mapping[str, Any]) -> bool:
    return ("min" in meta and size < meta["min"]) or ("max" in meta and size > meta["max"])


def _surely_invalid(kind: str, s: _Slot, new: Any) -> bool:
    """Whether the mutated value breaks the member's shape beyond doubt (type, bounds, enum, required)."""
    if s.shape is None or s.shape.metadata.get("document"):
        return False
    t, meta = str(s.shape.type_name), s.shape.metadata
    enum = getattr(s.shape, "enum", None) or []
    if kind == "missing-required":
        return True
    if kind == "union-two":
        return isinstance(new, dict) and len(new) > 1
    if kind == "bad-enum":
        return bool(enum) and new not in enum
    if s.loc:  # uri, query and header values arrive as text, which the server types itself
        return kind in ("below-min", "above-max") and t == "string" and _outside(len(new), meta)
    size = len(new) if isinstance(new, str | list | dict) else new if isinstance(new, int | float) else None
    if kind in ("below-min", "above-max", "empty-string", "long-string", "huge-list"):
        return (size is not None and _outside(size, meta)) or not isinstance(new, _TYPES.get(t, object))
    if kind in ("wrong-type", "non-object"):
        return not isinstance(new, _TYPES.get(t, object)) or (isinstance(new, bool) and t != "boolean")
    if kind == "unknown-member":
        return t == "structure"
    if kind == "empty-object":
        return t == "structure" and (bool(meta.get("required")) or bool(meta.get("union")))
    if kind == "huge-int":
        typed = isinstance(new, _TYPES.get(t, object)) and isinstance(new, int)
        return t in ("integer", "long") or not typed or _outside(new, meta)
    if kind in ("nan", "huge-float"):
        return isinstance(new, Raw) and new.data != b"1e-400"
    if kind == "deep-nesting":
        return t not in ("list", "map")
    return False


def _dotted(path: Path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _garbage_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice([1, 17, 1000]))


_GARBAGE: list[Callable[[random.Random], bytes]] = [
    _garbage_bytes,
    lambda rng: b"",
    lambda rng: b"null",
    lambda rng: b"[]",
    lambda rng: b'"a string"',
    lambda rng: b"12",
    lambda rng: b'{"modelId": "x", ',
    lambda rng: b'{"a": 1}}}',
    lambda rng: b"\xef\xbb\xbf{}",
    lambda rng: b'{"a": "\xff\xfe"}',
    lambda rng: b'{"a": "\\ud800"}',
    lambda rng: b'{"a": "\xed\xa0\x80"}',
    lambda rng: b'{"a": NaN, "b": 1e400}',
    lambda rng: b'{"a": 1, "a": 2}',
    lambda rng: b"{" + b'"k":1,' * 100_000 + b'"z":0}',
]


# -- serialisation (the server half of rest-json, mirrored) ---------------------------------------------
def _json(value: Any) -> bytes:
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, dict):
        return (
            b"{"
            + b",".join(
                _json(k if isinstance(k, Raw) else str(k)) + b":" + _json(v) for k, v in value.items()
            )
            + b"}"
        )
    if isinstance(value, list):
        return b"[" + b",".join(_json(v) for v in value) + b"]"
    if isinstance(value, bytes):
        return _json(base64.b64encode(value).decode())
    if isinstance(value, str):
        return json.dumps(value).encode()  # ensure_ascii: a lone surrogate becomes a "\ud800" escape
    return json.dumps(value).encode()


def _text(value: Any, shape: Shape) -> bytes:
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if shape.type_name == "timestamp" and isinstance(value, int | float) and 0 <= value < 4e9:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value)).encode()
    if shape.serialization.get("jsonvalue"):
        return base64.b64encode(_json(value))
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, dict | list):
        return _json(value)
    return str(value).encode()


def _pct(data: bytes, greedy: bool = False) -> str:
    # Raw bytes already hold their percent-encoding; everything else is quoted as botocore quotes it
    return quote(data, safe="/~" if greedy else "~")


def _raw_url(data: bytes) -> str:
    # keep a Raw value's own percent-escapes; bytes that may not stand in a request line are escaped
    return "".join(chr(b) if 0x20 < b < 0x7F else f"%{b:02X}" for b in data)


def serialize(op: Operation, params: Mapping[str, Any]) -> tuple[str, str, dict[str, bytes], bytes]:
    om: OperationModel = op.model
    uri = om.http["requestUri"]
    path, _, fixed = uri.partition("?")
    query: list[str] = [fixed] if fixed else []
    headers: dict[str, bytes] = {}
    body_members: dict[str, Any] = {}
    body = b""
    shape = om.input_shape
    members = shape.members if shape is not None else {}
    payload = shape.serialization.get("payload") if shape is not None else None
    for name, value in params.items():
        ms = members.get(name)
        if ms is None:  # an unknown member, from a mutation
            body_members[name] = value
            continue
        loc = ms.serialization.get("location")
        wire = ms.serialization.get("name", name)
        if loc == "uri":
            text = _text(value, ms)
            greedy = "{" + wire + "+}"
            enc = _raw_url(text) if isinstance(value, Raw) else _pct(text, greedy=greedy in path)
            path = path.replace(greedy, enc).replace("{" + wire + "}", enc)
        elif loc == "querystring":
            items = value if isinstance(value, list) else [value]
            for item in items:
                text = _text(item, ms.member if ms.type_name == "list" else ms)
                enc = _raw_url(text) if isinstance(item, Raw) else _pct(text)
                query.append(f"{quote(wire, safe='')}={enc}")
        elif loc == "header":
            # HTTP drops the whitespace around a field value (RFC 9110 5.5), so a sampled value's edge
            # spaces cannot travel (h11 refuses to send them); a Raw value is sent as the case made it
            headers[wire] = _text(value, ms) if isinstance(value, Raw) else _text(value, ms).strip(b" \t")
        elif name == payload:
            body = value if isinstance(value, bytes) else _json(value)
        else:
            body_members[ms.serialization.get("name", name)] = value
    path = re.sub(r"\{[^}]+\}", "missing", path)  # an absent uri member still gives a routable path
    if body_members and not body:
        body = _json(body_members)
    elif (
        shape is not None
        and not payload
        and not body
        and any(not m.serialization.get("location") for m in members.values())
    ):
        body = b"{}"
    headers.setdefault("Content-Type", b"application/json")
    return om.http["method"], path + ("?" + "&".join(query) if query else ""), headers, body
