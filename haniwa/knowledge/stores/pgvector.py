"""The ``pgvector`` knowledge-base store: PostgreSQL + pgvector, the scale-out option.

Each knowledge base is one table (``haniwa_kb_<id>_<hash>``) with an HNSW cosine index on the embedding
and a GIN index on a ``tsvector`` of the Japanese-aware keyword tokens (``haniwa.knowledge.tokenize``).
PostgreSQL's own parsers cannot split Japanese, so the text is tokenised in Python and indexed with the
``simple`` configuration; queries are tokenised the same way.

Filters become SQL over the ``metadata`` jsonb column with bound parameters, evaluated inside the index
scan; pgvector's iterative scan keeps going until ``k`` matching rows are found, and a short result
falls back to an exact scan, so a filtered query returns ``k`` hits whenever ``k`` chunks match.

Enable with ``HANIWA_PG_URL=postgresql://...`` and ``pip install 'haniwa[postgres]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from haniwa.errors import ConflictError, PlatformError, UsageError, ValidationError
from haniwa.hookspecs import hookimpl
from haniwa.knowledge.base import AllOf, AnyOf, Chunk, Condition, Filter, Hit, VectorStore
from haniwa.knowledge.filters import validate
from haniwa.knowledge.tokenize import keyword_text, keyword_tokens

if TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg
    from psycopg import sql

    from haniwa.config import Settings

__all__ = ["PgVectorStore", "PgVectorStoreFactory", "register_vector_stores", "table_name"]

EF_SEARCH = 100
_SELECT = "id, document_id, text, parent, metadata, embedding"


def _psycopg() -> Any:
    """Import the optional driver, naming the extra that provides it."""
    try:
        import pgvector.psycopg  # noqa: F401  (imported for register_vector_async)
        import psycopg
    except ImportError as exc:
        raise UsageError(
            "the pgvector store needs psycopg and pgvector: pip install 'haniwa[postgres]'"
        ) from exc
    return psycopg


def table_name(kb_id: str) -> str:
    """The table of knowledge base ``kb_id``: readable, and a hash keeps ids that differ only in case or
    punctuation apart (PostgreSQL folds and limits identifiers to 63 bytes)."""
    slug = re.sub(r"[^a-z0-9]", "", kb_id.lower())[:32]
    digest = hashlib.sha256(kb_id.encode()).hexdigest()[:8]
    return f"haniwa_kb_{slug}_{digest}"


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Map psycopg errors onto haniwa's hierarchy, the one boundary where they are translated."""
    import psycopg

    try:
        yield
    except psycopg.errors.DataException as exc:
        # e.g. "expected 384 dimensions, not 3": the caller's data, not the server, is at fault
        raise ValidationError(f"PostgreSQL rejected the data: {exc}") from exc
    except psycopg.errors.InsufficientPrivilege as exc:
        raise PlatformError(f"the PostgreSQL role at HANIWA_PG_URL lacks a privilege: {exc}") from exc
    except psycopg.OperationalError as exc:
        raise PlatformError(f"PostgreSQL at HANIWA_PG_URL is unreachable or failed: {exc}") from exc
    except psycopg.Error as exc:
        raise PlatformError(f"PostgreSQL error: {exc}") from exc


def _is_number(value: Any) -> bool:
    # JSON booleans are not numbers, although Python's bool is an int
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Params:
    """Named bound parameters, so a fragment may reference one value twice without re-binding it."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any, cast: str = "") -> sql.Composable:
        from psycopg import sql

        name = f"p{len(self.values)}"
        self.values[name] = value
        return sql.SQL("{}{}").format(sql.Placeholder(name), sql.SQL(f"::{cast}" if cast else ""))


def _is_nan(value: Any) -> bool:
    # NaN equals nothing, and JSON cannot carry it to the server
    return isinstance(value, float) and math.isnan(value)


def _numeric(value: float) -> str:
    """The exact decimal text of ``value``: a float8 bound and cast to numeric keeps only 15 digits."""
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _where(where: Filter | None, params: _Params) -> sql.Composable:
    """``where`` as a SQL boolean over the ``metadata`` column: true or false, never NULL, so that
    ``NOT`` (notEquals, notIn) turns a missing key into true exactly as ``filters.matches`` does."""
    from psycopg import sql

    if where is None:
        return sql.SQL("true")
    if isinstance(where, AllOf | AnyOf):
        if not where.filters:
            return sql.SQL("true" if isinstance(where, AllOf) else "false")
        joiner = sql.SQL(" AND " if isinstance(where, AllOf) else " OR ")
        return sql.SQL("({})").format(joiner.join(_where(sub, params) for sub in where.filters))
    return _condition(where, params)


_COMPARISONS = {"greaterThan": ">", "greaterThanOrEquals": ">=", "lessThan": "<", "lessThanOrEquals": "<="}


def _condition(c: Condition, params: _Params) -> sql.Composable:
    from psycopg import sql
    from psycopg.types.json import Jsonb

    op, value = c.op, c.value
    v = sql.SQL("(metadata -> {})").format(params.add(c.key, "text"))
    if op in ("equals", "notEquals"):
        # jsonb equality compares numbers numerically (1 = 1.0) and never equates true with 1
        test: sql.Composable = sql.SQL("false")
        if not _is_nan(value):
            test = sql.SQL("coalesce({} = {}, false)").format(v, params.add(Jsonb(value), "jsonb"))
        return test if op == "equals" else sql.SQL("NOT {}").format(test)
    if op in _COMPARISONS:
        if not _is_number(value) or _is_nan(value):
            return sql.SQL("false")
        # CASE makes the type test run before the cast; AND has no evaluation order in SQL
        return sql.SQL(
            "(CASE WHEN jsonb_typeof({v}) = 'number' THEN {v}::numeric {cmp} {x} ELSE false END)"
        ).format(v=v, cmp=sql.SQL(_COMPARISONS[op]), x=params.add(_numeric(value), "numeric"))
    if op in ("in", "notIn"):
        values = [w for w in (value if isinstance(value, list | tuple) else [value]) if not _is_nan(w)]
        test = sql.SQL("coalesce({} IN (SELECT jsonb_array_elements({})), false)").format(
            v, params.add(Jsonb(values), "jsonb")
        )
        return test if op == "in" else sql.SQL("NOT {}").format(test)
    if op == "startsWith":
        if not isinstance(value, str):
            return sql.SQL("false")
        return sql.SQL(
            "(CASE WHEN jsonb_typeof({v}) = 'string' THEN starts_with({v} #>> '{{}}', {x}) ELSE false END)"
        ).format(v=v, x=params.add(value, "text"))
    if op == "listContains":
        if _is_nan(value):
            return sql.SQL("false")
        return sql.SQL(
            "(CASE WHEN jsonb_typeof({v}) = 'array'"
            " THEN EXISTS (SELECT 1 FROM jsonb_array_elements({v}) e WHERE e = {x}) ELSE false END)"
        ).format(v=v, x=params.add(Jsonb(value), "jsonb"))
    if op == "stringContains":
        if not isinstance(value, str):
            return sql.SQL("false")
        x = params.add(value, "text")
        return sql.SQL(
            "(CASE jsonb_typeof({v}) WHEN 'string' THEN strpos({v} #>> '{{}}', {x}) > 0"
            " WHEN 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements({v}) e"
            " WHERE jsonb_typeof(e) = 'string' AND strpos(e #>> '{{}}', {x}) > 0)"
            " ELSE false END)"
        ).format(v=v, x=x)
    raise ValidationError(f"unknown filter operator {op!r}")


def _tsquery(tokens: Sequence[str]) -> str:
    """An OR of quoted lexemes; quotes and backslashes are escaped so no token can break the syntax."""
    quoted = ("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in dict.fromkeys(tokens))
    return " | ".join(quoted)


def _hit(row: Sequence[Any], score: float) -> Hit:
    id_, document_id, text, parent, metadata, embedding = row[:6]
    chunk = Chunk(
        id=id_,
        document_id=document_id,
        text=text,
        # pgvector >= 0.4 loads a Vector, older versions a numpy array
        vector=embedding.tolist() if isinstance(embedding, np.ndarray) else embedding.to_list(),
        metadata=metadata,
        parent=parent,
    )
    return Hit(chunk, 0.0 if math.isnan(score) else score)


class PgVectorStore:
    """The chunks of one knowledge base in a PostgreSQL table (see the module docstring).

    One connection, used by one coroutine at a time (an :class:`asyncio.Lock`); it is reopened after a
    failure. Open it with :meth:`connect` or ``PgVectorStoreFactory().open(...)``.
    """

    def __init__(self, conninfo: str, table: str, dimensions: int, *, ef_search: int = EF_SEARCH) -> None:
        self.table = table
        self.dimensions = dimensions
        self.ef_search = ef_search
        self._conninfo = conninfo
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(
        cls, conninfo: str, kb_id: str, dimensions: int, *, ef_search: int = EF_SEARCH
    ) -> PgVectorStore:
        """Open (creating if needed) the table of ``kb_id`` in the database at ``conninfo``."""
        _psycopg()
        store = cls(conninfo, table_name(kb_id), dimensions, ef_search=ef_search)
        async with store._session() as conn:
            await store._create(conn)
        return store

    # -- VectorStore -------------------------------------------------------------------------------------
    async def upsert(self, chunks: Sequence[Chunk]) -> int:
        """Replace every chunk of the documents named in ``chunks``, in one transaction."""
        from psycopg import sql
        from psycopg.types.json import Jsonb

        if not chunks:
            return 0
        keywords = await asyncio.to_thread(lambda: [keyword_text(c.text) for c in chunks])
        rows = [
            (c.id, c.document_id, c.text, c.parent, Jsonb(dict(c.metadata)), _vector(c.vector), kw)
            for c, kw in zip(chunks, keywords, strict=True)
        ]
        documents = list(dict.fromkeys(c.document_id for c in chunks))
        t = sql.Identifier(self.table)
        async with self._session() as conn, conn.transaction():
            await conn.execute(sql.SQL("DELETE FROM {} WHERE document_id = ANY(%s)").format(t), [documents])
            async with conn.cursor() as cur:
                # ON CONFLICT: a chunk id may move from another document; the last write wins
                await cur.executemany(
                    sql.SQL(
                        "INSERT INTO {} (id, document_id, text, parent, metadata, embedding, tsv)"
                        " VALUES (%s, %s, %s, %s, %s, %s, to_tsvector('simple', %s))"
                        " ON CONFLICT (id) DO UPDATE SET document_id = excluded.document_id,"
                        " text = excluded.text, parent = excluded.parent, metadata = excluded.metadata,"
                        " embedding = excluded.embedding, tsv = excluded.tsv"
                    ).format(t),
                    rows,
                )
        return len(rows)

    async def delete_documents(self, document_ids: Sequence[str]) -> int:
        """Remove every chunk of these documents; returns chunks removed."""
        from psycopg import sql

        if not document_ids:
            return 0
        stmt = sql.SQL("DELETE FROM {} WHERE document_id = ANY(%s)").format(sql.Identifier(self.table))
        async with self._session() as conn:
            cur = await conn.execute(stmt, [list(document_ids)])
            return max(cur.rowcount, 0)

    async def query(self, vector: Sequence[float], k: int, where: Filter | None = None) -> list[Hit]:
        """The ``k`` nearest chunks by cosine similarity (``1 - cosine distance``), best first."""
        from psycopg import sql

        validate(where)
        if k <= 0:
            return []
        params = _Params()
        cond = _where(where, params)
        # relaxed_order may return rows slightly out of order: sort the k found (pgvector's advice)
        stmt = sql.SQL(
            "WITH hits AS MATERIALIZED (SELECT {cols}, embedding <=> {q} AS distance FROM {t}"
            " WHERE {cond} ORDER BY distance LIMIT {k}) SELECT * FROM hits ORDER BY distance"
        ).format(
            cols=sql.SQL(_SELECT),
            q=params.add(_vector(vector, self.dimensions)),
            t=sql.Identifier(self.table),
            cond=cond,
            k=params.add(k, "int"),
        )
        async with self._session() as conn:
            rows = await (await conn.execute(stmt, params.values)).fetchall()
            if len(rows) < k:
                # The iterative scan stops after hnsw.max_scan_tuples; an exact scan then finds
                # whatever it missed (the table is small, or the filter matches fewer than k rows).
                async with conn.transaction():
                    await conn.execute("SET LOCAL enable_indexscan = off")
                    rows = await (await conn.execute(stmt, params.values)).fetchall()
        return [_hit(r, 1.0 - float(r[6])) for r in rows]

    async def keyword_query(self, text: str, k: int, where: Filter | None = None) -> list[Hit]:
        """The ``k`` best chunks by ``ts_rank_cd`` over any of the query's keyword tokens."""
        from psycopg import sql

        validate(where)
        tokens = await asyncio.to_thread(keyword_tokens, text)
        if k <= 0 or not tokens:
            return []
        params = _Params()
        cond = _where(where, params)
        stmt = sql.SQL(
            "SELECT {cols}, ts_rank_cd(tsv, query) AS score FROM {t}, to_tsquery('simple', {q}) query"
            " WHERE tsv @@ query AND {cond} ORDER BY score DESC, id LIMIT {k}"
        ).format(
            cols=sql.SQL(_SELECT),
            t=sql.Identifier(self.table),
            q=params.add(_tsquery(tokens), "text"),
            cond=cond,
            k=params.add(k, "int"),
        )
        async with self._session() as conn:
            rows = await (await conn.execute(stmt, params.values)).fetchall()
        return [_hit(r, float(r[6])) for r in rows]

    async def count(self) -> int:
        """Chunks stored."""
        from psycopg import sql

        async with self._session() as conn:
            cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(self.table)))
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        """Close the connection (every write is already committed)."""
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()

    # -- internals ---------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._lock:
            with _translated():
                conn = self._conn
                if conn is None or conn.closed or conn.broken:
                    if conn is not None:
                        await conn.close()
                    self._conn = None
                    conn = self._conn = await _connect(self._conninfo, self.ef_search)
                try:
                    yield conn
                except asyncio.CancelledError:
                    # a query cut off mid-flight leaves the connection in an unknown state
                    self._conn = None
                    await conn.close()
                    raise

    async def _create(self, conn: psycopg.AsyncConnection[Any]) -> None:
        from psycopg import sql

        t = self.table
        ids = {"t": sql.Identifier(t), "doc": sql.Identifier(f"{t}_doc")}
        ids |= {"hnsw": sql.Identifier(f"{t}_hnsw"), "gin": sql.Identifier(f"{t}_gin")}
        async with conn.transaction():
            # Two processes opening the same knowledge base would race on CREATE TABLE's catalog rows.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('haniwa.pgvector.ddl'))")
            for stmt in (
                "CREATE TABLE IF NOT EXISTS {t} (id text PRIMARY KEY, document_id text NOT NULL,"
                " text text NOT NULL, parent text, metadata jsonb NOT NULL DEFAULT '{{}}',"
                f" embedding vector({int(self.dimensions)}) NOT NULL, tsv tsvector NOT NULL)",
                "CREATE INDEX IF NOT EXISTS {doc} ON {t} (document_id)",
                "CREATE INDEX IF NOT EXISTS {hnsw} ON {t} USING hnsw (embedding vector_cosine_ops)",
                "CREATE INDEX IF NOT EXISTS {gin} ON {t} USING gin (tsv)",
            ):
                await conn.execute(sql.SQL(stmt).format(**ids))
            cur = await conn.execute(
                "SELECT atttypmod FROM pg_attribute"
                " WHERE attrelid = to_regclass(%s) AND attname = 'embedding'",
                [t],
            )
            row = await cur.fetchone()
        if row is not None and row[0] != self.dimensions:
            raise ConflictError(
                f"this knowledge base is stored with {row[0]}-dimensional vectors, not {self.dimensions}"
            )


async def _connect(conninfo: str, ef_search: int) -> psycopg.AsyncConnection[Any]:
    pg = _psycopg()
    from pgvector.psycopg import register_vector_async

    conn: psycopg.AsyncConnection[Any] = await pg.AsyncConnection.connect(conninfo, autocommit=True)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('haniwa.pgvector.ddl'))")
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await register_vector_async(conn)
        # iterative scan: a WHERE filter no longer truncates the HNSW candidate list below k rows
        await conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
        await conn.execute("SET hnsw.iterative_scan = relaxed_order")
    except BaseException:
        await conn.close()
        raise
    return conn


def _vector(values: Sequence[float], dimensions: int | None = None) -> Any:
    array = np.asarray(values, dtype=np.float32)
    if dimensions is not None and array.shape != (dimensions,):
        raise ValidationError(f"the query vector has {array.size} dimensions, not {dimensions}")
    return array


def _conninfo(settings: Settings) -> str:
    if settings.pg_url is None:
        raise UsageError("the pgvector store needs HANIWA_PG_URL=postgresql://user:password@host/db")
    return settings.pg_url.get_secret_value()


class PgVectorStoreFactory:
    """Opens knowledge-base stores in the PostgreSQL database at ``HANIWA_PG_URL`` (needs pgvector)."""

    name = "pgvector"

    def available(self, settings: Settings) -> bool:
        return settings.pg_url is not None

    async def open(self, kb_id: str, dimensions: int, settings: Settings) -> VectorStore:
        return await PgVectorStore.connect(_conninfo(settings), kb_id, dimensions)

    async def drop(self, kb_id: str, settings: Settings) -> None:
        pg = _psycopg()
        from psycopg import sql

        with _translated():
            async with await pg.AsyncConnection.connect(_conninfo(settings), autocommit=True) as conn:
                await conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table_name(kb_id)))
                )


@hookimpl
def register_vector_stores(register: Callable[[Any], None]) -> None:
    register(PgVectorStoreFactory())
