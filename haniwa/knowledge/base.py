"""Knowledge bases: the types and seams of the pipeline  source → parse → chunk → embed → index → retrieve.

Every stage is a small Protocol so a plugin can replace it:

* :class:`Parser` turns a file's bytes into a :class:`ParsedDocument` (sections keep headings and tables);
* chunking (``haniwa.knowledge.chunk``) turns a parsed document into :class:`ChunkDraft` s;
* :class:`VectorStore` keeps :class:`Chunk` s (text + vector + metadata) for one knowledge base and answers
  dense (``query``) and keyword (``keyword_query``) searches, applying a :data:`Filter` inside the store;
* :class:`VectorStoreFactory` opens the store of a knowledge base by name (``local``, ``pgvector``, ...).

Built-ins register through the ``register_parsers`` and ``register_vector_stores`` hooks, as plugins do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from haniwa.config import Settings

__all__ = [
    "Section",
    "ParsedDocument",
    "ChunkDraft",
    "Chunk",
    "Hit",
    "Condition",
    "AllOf",
    "AnyOf",
    "Filter",
    "FILTER_OPERATORS",
    "FixedSize",
    "Hierarchical",
    "Semantic",
    "NoChunking",
    "ChunkingStrategy",
    "DataSourceConfig",
    "Parser",
    "VectorStore",
    "VectorStoreFactory",
    "SOURCE_URI",
    "DATA_SOURCE_ID",
    "CHUNK_ID",
    "PAGE_NUMBER",
]

# Metadata keys Bedrock itself puts on every chunk (returned in Retrieve results, usable in filters).
SOURCE_URI = "x-amz-bedrock-kb-source-uri"
DATA_SOURCE_ID = "x-amz-bedrock-kb-data-source-id"
CHUNK_ID = "x-amz-bedrock-kb-chunk-id"
PAGE_NUMBER = "x-amz-bedrock-kb-document-page-number"


# -- parsing ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    """A run of text under one heading path; tables are kept whole as Markdown (``kind="table"``)."""

    text: str
    headings: tuple[str, ...] = ()
    kind: Literal["text", "table"] = "text"
    page: int | None = None


@dataclass(frozen=True)
class ParsedDocument:
    """A parsed file: ordered sections plus an optional title."""

    sections: tuple[Section, ...]
    title: str | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections if s.text)


@runtime_checkable
class Parser(Protocol):
    """Turns one file's bytes into a :class:`ParsedDocument`. Runs in a worker thread."""

    name: str
    suffixes: tuple[str, ...]  # lower-case, with the dot: (".md", ".markdown")

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        """Parse ``data``; raise ``haniwa.errors.ValidationError`` for a file that cannot be read."""
        ...


# -- chunking --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FixedSize:
    """Bedrock FIXED_SIZE: chunks of at most ``max_tokens`` with ``overlap_percentage`` overlap."""

    max_tokens: int = 300
    overlap_percentage: int = 20


@dataclass(frozen=True)
class Hierarchical:
    """Bedrock HIERARCHICAL: small child chunks are searched, their larger parent is returned."""

    parent_max_tokens: int = 1500
    child_max_tokens: int = 300
    overlap_tokens: int = 60


@dataclass(frozen=True)
class Semantic:
    """Bedrock SEMANTIC: split where the embedding distance between sentence groups peaks."""

    max_tokens: int = 300
    buffer_size: int = 0
    breakpoint_percentile_threshold: int = 95


@dataclass(frozen=True)
class NoChunking:
    """Bedrock NONE: each document is one chunk."""


ChunkingStrategy = FixedSize | Hierarchical | Semantic | NoChunking
_STRATEGIES: dict[str, type[ChunkingStrategy]] = {
    c.__name__: c for c in (FixedSize, Hierarchical, Semantic, NoChunking)
}


@dataclass(frozen=True)
class DataSourceConfig:
    """What ingestion needs to know of a data source: the bucket its documents come from (``None``: a
    CUSTOM source, fed by direct uploads only), the key prefixes it keeps to, and how it chunks. The api
    layer builds one from Bedrock's wire spec at request time; the knowledge service never reads the
    wire spec itself."""

    bucket_arn: str | None = None
    prefixes: tuple[str, ...] = ()
    chunking: ChunkingStrategy = field(default_factory=FixedSize)

    def to_json(self) -> str:
        chunking = {"strategy": type(self.chunking).__name__, **asdict(self.chunking)}
        return json.dumps(
            {"bucket_arn": self.bucket_arn, "prefixes": list(self.prefixes), "chunking": chunking}
        )

    @classmethod
    def from_json(cls, text: str) -> DataSourceConfig:
        raw = json.loads(text)
        chunking = dict(raw["chunking"])
        strategy = _STRATEGIES[chunking.pop("strategy")]
        return cls(raw["bucket_arn"], tuple(raw["prefixes"]), strategy(**chunking))


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk before embedding. ``parent`` is the text returned for it when it is a hierarchical child."""

    text: str
    headings: tuple[str, ...] = ()
    page: int | None = None
    parent: str | None = None


# -- index -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chunk:
    """One indexed chunk. ``text`` is what was embedded and keyword-indexed; ``parent`` (hierarchical
    chunking) is what retrieval returns instead. ``metadata`` holds the document's sidecar metadata plus
    the ``x-amz-bedrock-kb-*`` keys."""

    id: str
    document_id: str
    text: str
    vector: Sequence[float]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    parent: str | None = None


@dataclass(frozen=True)
class Hit:
    """A search result. ``score``: cosine similarity for ``query``, BM25 (higher is better) for
    ``keyword_query``; retrieval normalises both to [0, 1]."""

    chunk: Chunk
    score: float


FILTER_OPERATORS = (
    "equals",
    "notEquals",
    "greaterThan",
    "greaterThanOrEquals",
    "lessThan",
    "lessThanOrEquals",
    "in",
    "notIn",
    "startsWith",
    "listContains",
    "stringContains",
)


@dataclass(frozen=True)
class Condition:
    """``metadata[key] <op> value`` with a Bedrock filter operator (see :data:`FILTER_OPERATORS`)."""

    op: str
    key: str
    value: Any


@dataclass(frozen=True)
class AllOf:
    """Bedrock ``andAll``."""

    filters: tuple[Filter, ...]


@dataclass(frozen=True)
class AnyOf:
    """Bedrock ``orAll``."""

    filters: tuple[Filter, ...]


Filter = Condition | AllOf | AnyOf


class VectorStore(Protocol):
    """The chunks of one knowledge base. Scores are higher-is-better; filters are applied in the store,
    so ``k`` results come back whenever ``k`` chunks match."""

    async def upsert(self, chunks: Sequence[Chunk]) -> int:
        """Index ``chunks``; every earlier chunk of each document named in ``chunks`` is replaced, in one
        transaction, so a crash leaves each document wholly old or wholly new. Returns chunks written."""
        ...

    async def delete_documents(self, document_ids: Sequence[str]) -> int:
        """Remove every chunk of these documents; returns chunks removed."""
        ...

    async def query(self, vector: Sequence[float], k: int, where: Filter | None = None) -> list[Hit]:
        """The ``k`` nearest chunks by cosine similarity, best first."""
        ...

    async def keyword_query(self, text: str, k: int, where: Filter | None = None) -> list[Hit]:
        """The ``k`` best chunks by BM25 over Japanese-aware tokens (``haniwa.knowledge.tokenize``)."""
        ...

    async def count(self) -> int:
        """Chunks stored."""
        ...

    async def close(self) -> None:
        """Persist what is in memory and release resources."""
        ...


class VectorStoreFactory(Protocol):
    """Opens and drops the stores of knowledge bases; registered under ``name``."""

    name: str

    def available(self, settings: Settings) -> bool:
        """Whether this store is configured (``pgvector`` needs ``HANIWA_PG_URL``)."""
        ...

    async def open(self, kb_id: str, dimensions: int, settings: Settings) -> VectorStore:
        """The store of knowledge base ``kb_id`` (created empty on first use)."""
        ...

    async def drop(self, kb_id: str, settings: Settings) -> None:
        """Delete everything stored for ``kb_id``."""
        ...
