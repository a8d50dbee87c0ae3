"""The embedded default knowledge-base store (``local``): SQLite for truth, hnswlib for speed.

Layout of ``<HANIWA_HOME>/kb/<kb_id>/``:

* ``chunks.db`` (SQLite, WAL): the durable truth. ``chunks`` rows (the ``rowid`` is the hnswlib label and
  is never reused), an FTS5 table over :func:`~haniwa.knowledge.tokenize.keyword_text` keyed by the same
  rowid, and ``meta`` with a ``generation`` counter bumped by every write transaction.
* ``index.bin`` + ``index.json``: the hnswlib graph and the generation it reflects. hnswlib lives in
  memory, so the file is only a cache: it is saved on ``close()`` and at most every ``save_interval``
  seconds after writes, and rebuilt from SQLite on open when its generation is not SQLite's (a crash).

A write replaces whole documents in one SQLite transaction, so after kill -9 each document is wholly old or
wholly new. Filters run in SQL (:func:`haniwa.knowledge.filters.to_sqlite`); when few chunks match, their
vectors are scored exactly, otherwise hnswlib searches with a label filter. Small stores are searched
exactly. One lock serialises writers and readers, so a query never sees SQLite and the index disagree; a
quick search (the unfiltered graph walk) runs on the event loop when the lock is free, anything else in a
worker thread. Keyword search is FTS5's BM25, leaving out a query's commonest tokens (:class:`IndexParams`).
"""

from __future__ import annotations

import array
import asyncio
import functools
import json
import logging
import math
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import hnswlib
import numpy as np

from haniwa.errors import ValidationError
from haniwa.hookspecs import hookimpl
from haniwa.knowledge.base import Chunk, Filter, Hit
from haniwa.knowledge.filters import to_sqlite
from haniwa.knowledge.tokenize import keyword_text

if TYPE_CHECKING:
    from haniwa.config import Settings

__all__ = ["LocalStoreFactory", "LocalVectorStore", "IndexParams", "register_vector_stores"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    document_id TEXT NOT NULL,
    text TEXT NOT NULL,
    parent TEXT,
    metadata TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks (document_id);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5 (tokens, tokenize = 'unicode61 remove_diacritics 0');
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('generation', 0);
"""
_INSERT = "INSERT INTO chunks (id, document_id, text, parent, metadata, vector) VALUES (?, ?, ?, ?, ?, ?)"
_COLUMNS = "c.rowid, c.id, c.document_id, c.text, c.parent, c.metadata, c.vector"
_CACHED_FILTERS = 8
_Row = tuple[int, str, str, str, str | None, str, bytes]


@dataclass(frozen=True, kw_only=True)
class IndexParams:
    """hnswlib and search-path settings. M and ef come from a sweep (M 16/24/32/48 × ef 32–160 at
    100k × 384) over two sets: the real e5 vectors of ``bench/retrieval.py`` and the harder "lowrank" ones
    of ``bench/ann.py``. M=32 reached each recall fastest on both (M=16 and 24 need more ef than their
    cheaper steps save; M=48 is no faster at equal recall, builds up to 1.3× slower and holds 1.5× the
    links), and ef=112 is the least ef that keeps recall@10 ≥ 0.95 on both: 0.99 on e5 vectors, 0.96 on
    lowrank (ef=96: 0.94). hnswlib alone then answers ~1,000–1,900 queries/s on one core of the busy
    2-core development machine."""

    m: int = 32
    ef_construction: int = 200
    ef: int = 112
    # stores this small are searched exactly: hnswlib buys nothing there, and exact is always right
    exact_limit: int = 2_000
    # a filter matching at most max(limit, fraction × size) chunks scores them exactly: a graph walk
    # through mostly-excluded nodes is slow and loses recall
    filter_exact_limit: int = 5_000
    filter_exact_fraction: float = 0.05
    # seconds between index saves while writes go on (a save costs ~0.15 s at 100k chunks)
    save_interval: float = 30.0
    # A keyword query leaves out its commonest tokens while their summed BM25 weight (IDF) stays within
    # this share of the query's total, so no score moves by more than this share of the best attainable.
    # FTS5 scores every row holding any query token, and tokens such as し or いる are in half of all
    # chunks: scoring them was most of a query's work at 100k chunks (p50 64 → 19 ms without them) for
    # almost nothing (jsquad-ja at 100k chunks: BM25 nDCG@10 0.289 with them, 0.291 without).
    keyword_prune_weight: float = 0.05
    # ...and only tokens held by more chunks than this: scoring that few rows costs under ~1 ms
    keyword_prune_min_rows: int = 2_000


class _Matching:
    """The chunks a filter matches: labels, a set for hnswlib's filter callback, vectors when few."""

    def __init__(self, labels: list[int]) -> None:
        self.labels = labels
        self._set: set[int] | None = None
        self.vectors: np.ndarray[Any, Any] | None = None

    def allowed(self, label: int) -> bool:
        if self._set is None:
            self._set = set(self.labels)
        return label in self._set


def _unit_rows(vectors: Iterable[Sequence[float]], dimensions: int) -> np.ndarray[Any, Any]:
    try:
        a = np.array(list(vectors), dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"vectors must be lists of {dimensions} numbers") from exc
    if a.ndim != 2 or a.shape[1] != dimensions:
        raise ValidationError(f"vectors must have {dimensions} dimensions")
    if not np.isfinite(a).all():
        raise ValidationError("vectors must be finite")
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    # a zero vector stays zero: its cosine with anything is 0, as hnswlib computes it
    return np.asarray(a / np.where(norms == 0, 1, norms), dtype=np.float32)


def _metadata_json(chunk: Chunk) -> str:
    # NaN would be written as NaN, which SQLite's JSON functions reject for every later filter
    try:
        return json.dumps(dict(chunk.metadata), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"metadata of chunk {chunk.id!r} is not JSON: {exc}") from exc


def _fts_query(tokens: Iterable[str]) -> str:
    # each token quoted as an FTS5 string, so user text can never be FTS5 syntax
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in tokens)


def _idf(rows: int, df: int) -> float:
    """FTS5's BM25 term weight (``fts5_aux.c``): log((N − df + ½) / (df + ½)), at least 1e-6."""
    return max(1e-6, math.log((rows - df + 0.5) / (df + 0.5)))


@functools.lru_cache(maxsize=64)
def _rows_sql(n: int) -> str:
    return f"SELECT {_COLUMNS} FROM chunks AS c WHERE c.rowid IN ({', '.join('?' * n)})"


class LocalVectorStore:
    """One knowledge base in a folder: SQLite rows + FTS5, and an hnswlib index rebuilt from them when
    needed. Open with :meth:`open` (it may rebuild the index, which blocks)."""

    def __init__(self, path: Path, dimensions: int, params: IndexParams | None = None) -> None:
        if dimensions < 1:
            raise ValidationError("dimensions must be positive")
        self.path = path
        self.dimensions = dimensions
        self.params = params or IndexParams()
        path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path / "chunks.db", check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # reads through the page cache instead of a read() per page: fetching the 10 rows of a search hit
        # list costs ~50 µs instead of ~90 µs at 100k chunks (rows span overflow pages)
        self._conn.execute(f"PRAGMA mmap_size={1 << 31}")
        self._conn.executescript(_SCHEMA)
        # per connection, not stored: how many rows hold a token (keyword queries drop the commonest)
        self._conn.execute("CREATE VIRTUAL TABLE temp.fts_vocab USING fts5vocab(main, fts, row)")
        self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('dimensions', ?)", (dimensions,))
        stored = self._meta("dimensions")
        if stored != dimensions:
            self._conn.close()
            # the folder's name only: this message can reach an API client
            raise ValidationError(
                f"vector store {path.name} holds {stored}-dimensional vectors, not {dimensions}"
            )
        self._count = int(self._conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
        self._closed = False
        self._dirty = False
        self._saved_at = time.monotonic()
        self._timer: threading.Timer | None = None
        self._matching: dict[tuple[str, tuple[Any, ...]], _Matching] = {}
        self._df: dict[str, int] = {}  # token -> rows holding it, until the next write
        loaded = self._load_index()
        if loaded is None:
            self._index = self._rebuild_index()
            if self._count:  # a rebuild is slow (~1 min per 100k chunks): do not risk doing it twice
                self._save_locked()
        else:
            self._index = loaded

    @classmethod
    async def open(cls, path: Path, dimensions: int, params: IndexParams | None = None) -> LocalVectorStore:
        """Open (or create) the store in ``path`` without blocking the event loop."""
        return await asyncio.to_thread(cls, path, dimensions, params)

    # -- index file ----------------------------------------------------------------------------------------
    def _meta(self, key: str) -> int:
        return int(self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    def _new_index(self, capacity: int) -> hnswlib.Index:
        index = hnswlib.Index(space="cosine", dim=self.dimensions)
        index.init_index(
            max_elements=max(capacity, 1024),
            ef_construction=self.params.ef_construction,
            M=self.params.m,
            allow_replace_deleted=True,
        )
        index.set_ef(self.params.ef)
        return index

    def _load_index(self) -> hnswlib.Index | None:
        bin_path, json_path = self.path / "index.bin", self.path / "index.json"
        try:
            saved = json.loads(json_path.read_text())
        except (OSError, ValueError):
            return None
        if saved.get("generation") != self._meta("generation") or saved.get("dimensions") != self.dimensions:
            log.warning("index of %s is stale (crash or copy): rebuilding it from SQLite", self.path)
            return None
        index = hnswlib.Index(space="cosine", dim=self.dimensions)
        try:
            index.load_index(str(bin_path), max_elements=0, allow_replace_deleted=True)
        except (OSError, RuntimeError):
            log.warning("index of %s is unreadable: rebuilding it from SQLite", self.path)
            return None
        index.set_ef(self.params.ef)
        return index

    def _rebuild_index(self) -> hnswlib.Index:
        index = self._new_index(int(self._count * 1.25))
        cursor = self._conn.execute("SELECT rowid, vector FROM chunks ORDER BY rowid")
        while batch := cursor.fetchmany(20_000):
            labels = np.array([r[0] for r in batch], dtype=np.int64)
            data = np.frombuffer(b"".join(r[1] for r in batch), dtype=np.float32)
            index.add_items(data.reshape(len(batch), self.dimensions), labels)
        self._dirty = True
        return index

    def _save_locked(self) -> None:
        if not self._dirty:
            return
        bin_tmp, json_tmp = self.path / "index.bin.tmp", self.path / "index.json.tmp"
        self._index.save_index(str(bin_tmp))
        json_tmp.write_text(
            json.dumps({"generation": self._meta("generation"), "dimensions": self.dimensions})
        )
        # the generation is written last: a crash in between leaves a mismatch, hence a rebuild
        os.replace(bin_tmp, self.path / "index.bin")
        os.replace(json_tmp, self.path / "index.json")
        self._dirty, self._saved_at = False, time.monotonic()

    def _saved_by_timer(self) -> None:
        try:
            with self._lock:
                self._timer = None
                if not self._closed:
                    self._save_locked()
        except Exception:  # a failed save only costs a rebuild on the next open
            log.exception("saving the index of %s failed", self.path)

    def _after_write_locked(self) -> None:
        """Save now when the last save is old enough, else make sure a save is scheduled."""
        self._dirty = True
        wait = self.params.save_interval - (time.monotonic() - self._saved_at)
        if wait <= 0:
            self._save_locked()
        elif self._timer is None:
            self._timer = threading.Timer(wait, self._saved_by_timer)
            self._timer.daemon = True
            self._timer.start()

    # -- writes --------------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ValidationError(f"the store at {self.path} is closed")

    def _remove_locked(self, rowids: list[int]) -> None:
        self._conn.executemany("DELETE FROM chunks WHERE rowid = ?", [(r,) for r in rowids])
        self._conn.executemany("DELETE FROM fts WHERE rowid = ?", [(r,) for r in rowids])

    def _write(self, change: Callable[[], tuple[list[int], list[int], np.ndarray[Any, Any] | None]]) -> None:
        """Run ``change`` in one transaction (it returns removed labels, added labels and their vectors),
        then bring the index in line."""
        self._check_open()
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            removed, added, vectors = change()
            self._conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._count += len(added) - len(removed)
        self._matching.clear()
        self._df.clear()
        try:
            for label in removed:
                self._index.mark_deleted(label)
            if added:
                needed = self._index.element_count + len(added)
                if needed > self._index.max_elements:
                    self._index.resize_index(max(needed, int(self._index.max_elements * 1.5)))
                self._index.add_items(vectors, np.array(added, dtype=np.int64), replace_deleted=True)
        except RuntimeError:  # cannot happen unless the index drifted; SQLite is the truth
            log.exception("index of %s out of step: rebuilding it", self.path)
            self._index = self._rebuild_index()
        self._after_write_locked()

    def _upsert_sync(self, chunks: Sequence[Chunk]) -> int:
        latest = list({c.id: c for c in chunks}.values())  # a repeated id: the last one wins
        if not latest:
            return 0
        vectors = _unit_rows((c.vector for c in latest), self.dimensions)
        rows = [
            (
                c.id,
                c.document_id,
                c.text,
                c.parent,
                _metadata_json(c),
                v.tobytes(),
            )
            for c, v in zip(latest, vectors, strict=True)
        ]
        tokens = [keyword_text(c.text) for c in latest]  # MeCab, outside the lock
        documents = list(dict.fromkeys(c.document_id for c in latest))

        def change() -> tuple[list[int], list[int], np.ndarray[Any, Any]]:
            old: dict[int, None] = {}
            by_doc, by_id = (
                "SELECT rowid FROM chunks WHERE document_id = ?",
                "SELECT rowid FROM chunks WHERE id = ?",
            )
            for doc in documents:
                old.update(dict.fromkeys(r[0] for r in self._conn.execute(by_doc, (doc,))))
            for row in rows:  # an id moving over from another document
                old.update(dict.fromkeys(r[0] for r in self._conn.execute(by_id, row[:1])))
            self._remove_locked(list(old))
            added = []
            for row, text in zip(rows, tokens, strict=True):
                label = int(self._conn.execute(_INSERT, row).lastrowid or 0)
                self._conn.execute("INSERT INTO fts (rowid, tokens) VALUES (?, ?)", (label, text))
                added.append(label)
            return list(old), added, vectors

        with self._lock:
            self._write(change)
        return len(rows)

    def _delete_sync(self, document_ids: Sequence[str]) -> int:
        documents = list(dict.fromkeys(document_ids))
        if not documents:
            return 0
        removed: list[int] = []

        def change() -> tuple[list[int], list[int], None]:
            sql = "SELECT rowid FROM chunks WHERE document_id = ?"
            for doc in documents:
                removed.extend(r[0] for r in self._conn.execute(sql, (doc,)))
            self._remove_locked(removed)
            return removed, [], None

        with self._lock:
            if self._has_documents(documents):  # else no write, no generation bump, no index save
                self._write(change)
        return len(removed)

    def _has_documents(self, documents: list[str]) -> bool:
        self._check_open()
        sql = "SELECT 1 FROM chunks WHERE document_id = ? LIMIT 1"
        return any(self._conn.execute(sql, (d,)).fetchone() for d in documents)

    # -- reads ---------------------------------------------------------------------------------------------
    def _rows_locked(self, labels: Sequence[int]) -> dict[int, _Row]:
        out: dict[int, _Row] = {}
        for start in range(0, len(labels), 500):
            part = labels[start : start + 500]
            out.update((r[0], r) for r in self._conn.execute(_rows_sql(len(part)), part))
        return out

    def _hits_locked(self, found: Sequence[tuple[int, float]]) -> list[Hit]:
        rows = self._rows_locked([label for label, _ in found])
        hits = []
        for label, score in found:
            if (row := rows.get(label)) is not None:
                _, cid, doc, text, parent, metadata, vector = row
                # array('f') copies the float32 bytes as they are: a list of 384 Python floats per hit
                # costs more than the rest of the row, and callers of a search seldom read the vector
                vec = array.array("f", vector)
                hits.append(Hit(Chunk(cid, doc, text, vec, json.loads(metadata), parent), score))
        return hits

    def _matching_locked(self, sql: str, params: list[Any]) -> _Matching:
        """The labels of the chunks matching a filter, remembered until the next write: evaluating a
        filter reads every row's JSON (~0.1 s at 100k chunks), and callers repeat their filters."""
        key = (sql, tuple(params))
        found = self._matching.pop(key, None)
        if found is None:
            labels = [
                r[0] for r in self._conn.execute(f"SELECT c.rowid FROM chunks AS c WHERE {sql}", params)
            ]
            found = _Matching(labels)
        self._matching[key] = found  # most recently used last
        while len(self._matching) > _CACHED_FILTERS:
            del self._matching[next(iter(self._matching))]
        return found

    def _vectors_locked(self, matching: _Matching) -> np.ndarray[Any, Any]:
        # read from SQLite: hnswlib's get_items builds Python lists (~0.6 s for 10k vectors)
        if matching.vectors is not None:
            return matching.vectors
        labels, blobs = matching.labels, []
        for start in range(0, len(labels), 500):
            part = labels[start : start + 500]
            sql = f"SELECT rowid, vector FROM chunks WHERE rowid IN ({', '.join('?' * len(part))})"
            got = dict(self._conn.execute(sql, part).fetchall())
            blobs += [got[label] for label in part]
        vectors = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(labels), self.dimensions)
        if len(labels) <= self.params.exact_limit:  # small enough to keep (bounded by _CACHED_FILTERS)
            matching.vectors = vectors
        return vectors

    def _exact_locked(self, q: np.ndarray[Any, Any], matching: _Matching, k: int) -> list[tuple[int, float]]:
        scores = self._vectors_locked(matching) @ q
        top = np.argsort(-scores, kind="stable")[:k]
        return [(matching.labels[i], float(scores[i])) for i in top]

    def _ann_locked(
        self, q: np.ndarray[Any, Any], k: int, ef: int, allowed: Callable[[int], bool] | None
    ) -> list[tuple[int, float]]:
        self._index.set_ef(max(ef, k))
        try:
            labels, distances = self._index.knn_query(q, k=k, num_threads=1, filter=allowed)
        except RuntimeError:  # fewer than k reachable (a graph thinned by deletes): widen, then give up
            self._index.set_ef(max(self.params.ef, k) * 4)
            labels, distances = self._index.knn_query(q, k=k, num_threads=1, filter=allowed)
        return list(zip(labels[0].tolist(), (1.0 - distances[0].astype(np.float64)).tolist(), strict=True))

    def _quick_locked(self, k: int, filtered: bool, sql: str, params: list[Any]) -> bool:
        """Whether a search takes well under a millisecond: an unfiltered graph walk with k ≤ ef, or exact
        scoring of a remembered filter whose vectors are in memory (at most ``exact_limit`` of them)."""
        self._check_open()
        if not filtered and self._count > self.params.exact_limit:
            return k <= self.params.ef
        found = self._matching.get((sql, tuple(params)))
        return found is not None and found.vectors is not None

    def _search_locked(
        self, q: np.ndarray[Any, Any], k: int, where: Filter | None, sql: str, params: list[Any]
    ) -> list[tuple[int, float]]:
        """(label, cosine) of the ``k`` best chunks matching ``where``, best first."""
        self._check_open()
        p = self.params
        matching = None  # None: every chunk
        if where is not None or self._count <= p.exact_limit:
            matching = self._matching_locked(sql, params)
        n = self._count if matching is None else len(matching.labels)
        if n == 0:
            return []
        few = max(p.filter_exact_limit, p.filter_exact_fraction * self._count) if where else p.exact_limit
        if matching is not None and n <= max(few, p.exact_limit):
            return self._exact_locked(q, matching, k)
        # a filtered walk passes through excluded nodes and so sees more candidates than ef: at 10%
        # selectivity ef/3 gives the recall of ef unfiltered (bench/ann.py), at 3× the speed
        ef = math.ceil(p.ef * math.sqrt(n / self._count))
        try:
            return self._ann_locked(q, min(k, n), ef, matching.allowed if matching else None)
        except RuntimeError:  # hnswlib could not gather min(k, n): score exactly instead
            return self._exact_locked(q, matching or self._matching_locked(sql, params), k)

    def _query_locked(
        self, q: np.ndarray[Any, Any], k: int, where: Filter | None, sql: str, params: list[Any]
    ) -> list[Hit]:
        found = self._search_locked(q, k, where, sql, params)
        return self._hits_locked([(label, min(1.0, max(-1.0, s))) for label, s in found])

    def _query_sync(
        self, q: np.ndarray[Any, Any], k: int, where: Filter | None, sql: str, params: list[Any]
    ) -> list[Hit]:
        with self._lock:
            return self._query_locked(q, k, where, sql, params)

    def _df_locked(self, token: str) -> int:
        df = self._df.get(token)
        if df is None:
            row = self._conn.execute("SELECT doc FROM temp.fts_vocab WHERE term = ?", (token,)).fetchone()
            df = self._df[token] = int(row[0]) if row else 0
            if len(self._df) > 100_000:  # a bound for a long run of queries without writes
                self._df.clear()
        return df

    def _keyword_tokens_locked(self, tokens: Sequence[str]) -> list[str]:
        """The tokens worth scoring: the commonest are left out while their summed weight stays within
        ``keyword_prune_weight`` of the total (see :class:`IndexParams`). A token the vocabulary does not
        list is kept: FTS5 may split it further ("google_" is "google" to it)."""
        p = self.params
        df = {t: self._df_locked(t) for t in tokens}
        weight = {t: _idf(self._count, df[t]) for t in tokens if df[t]}
        budget = p.keyword_prune_weight * sum(weight.values())
        dropped = set()
        for t in sorted(weight, key=lambda t: -df[t]):  # commonest (lightest) first
            if df[t] <= p.keyword_prune_min_rows or weight[t] > budget:
                break
            budget -= weight[t]
            dropped.add(t)
        return [t for t in tokens if t not in dropped]

    def _bm25_locked(
        self, tokens: Sequence[str], k: int, sql: str, params: list[Any]
    ) -> list[tuple[int, float]]:
        # rowids and scores only: reading each matching row's columns before the LIMIT (a join that selects
        # them) was most of the time of a keyword query; the k rows are fetched afterwards
        if sql == "1":
            query = "SELECT rowid, -bm25(fts) FROM fts WHERE fts MATCH ? ORDER BY bm25(fts), rowid LIMIT ?"
        else:
            query = (
                "SELECT fts.rowid, -bm25(fts) FROM fts JOIN chunks AS c ON c.rowid = fts.rowid "
                f"WHERE fts MATCH ? AND {sql} ORDER BY bm25(fts), fts.rowid LIMIT ?"
            )
        return self._conn.execute(query, [_fts_query(tokens), *params, k]).fetchall()

    def _keyword_sync(self, text: str, k: int, where: Filter | None) -> list[Hit]:
        sql, params = to_sqlite(where, "c.metadata")
        tokens = list(dict.fromkeys(keyword_text(text).split()))  # MeCab, outside the lock
        if not tokens or k <= 0:
            return []
        with self._lock:
            self._check_open()
            scored = self._keyword_tokens_locked(tokens)
            found = self._bm25_locked(scored, k, sql, params)
            if len(found) < k and len(scored) < len(tokens):  # rows holding only dropped tokens count
                found = self._bm25_locked(tokens, k, sql, params)
            return self._hits_locked(found)

    def _close_sync(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            try:
                self._save_locked()
            finally:
                self._closed = True
                self._conn.close()
                del self._index  # a closed store may stay referenced: free the graph now

    # -- VectorStore ---------------------------------------------------------------------------------------
    async def upsert(self, chunks: Sequence[Chunk]) -> int:
        """Replace every chunk of each document named in ``chunks`` with ``chunks``, in one transaction."""
        return await asyncio.to_thread(self._upsert_sync, chunks)

    async def delete_documents(self, document_ids: Sequence[str]) -> int:
        """Remove every chunk of these documents; returns chunks removed."""
        return await asyncio.to_thread(self._delete_sync, document_ids)

    async def query(self, vector: Sequence[float], k: int, where: Filter | None = None) -> list[Hit]:
        """The ``k`` nearest chunks matching ``where`` by cosine similarity, best first."""
        q = _unit_rows([vector], self.dimensions)[0]
        sql, params = to_sqlite(where, "c.metadata")
        if k <= 0:
            return []
        # A quick search (an unfiltered graph walk: ~0.6 ms at 100k chunks) runs here, on the event loop:
        # handing it to a worker thread and back costs ~0.3 ms more and cut queries/s by a third
        # (bench/retrieval.py). Holding the loop for under a millisecond is the cheaper choice; anything
        # slower, or a lock held by a writer, goes to a thread so the loop never waits.
        if self._lock.acquire(blocking=False):
            try:
                if self._quick_locked(k, where is not None, sql, params):
                    return self._query_locked(q, k, where, sql, params)
            finally:
                self._lock.release()
        return await asyncio.to_thread(self._query_sync, q, k, where, sql, params)

    async def keyword_query(self, text: str, k: int, where: Filter | None = None) -> list[Hit]:
        """The ``k`` best chunks matching ``where`` by BM25 over any of the query's tokens."""
        return await asyncio.to_thread(self._keyword_sync, text, k, where)

    async def count(self) -> int:
        """Chunks stored."""
        return self._count

    async def close(self) -> None:
        """Save the index when it changed and close SQLite; safe to call twice."""
        await asyncio.to_thread(self._close_sync)

    @property
    def closed(self) -> bool:
        return self._closed


class LocalStoreFactory:
    """Opens ``<kb_dir>/<kb_id>``. A knowledge base open twice in one process shares one store, because
    two in-memory indexes over one SQLite file would drift apart."""

    name = "local"
    _open: ClassVar[dict[Path, LocalVectorStore]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, params: IndexParams | None = None) -> None:
        self.params = params

    def available(self, settings: Settings) -> bool:
        """Always: SQLite and hnswlib are built in."""
        return True

    @staticmethod
    def _path(kb_id: str, settings: Settings) -> Path:
        if not kb_id or kb_id in (".", "..") or "/" in kb_id or "\\" in kb_id or "\0" in kb_id:
            raise ValidationError(f"invalid knowledge base id {kb_id!r}")
        return (settings.kb_dir / kb_id).resolve()

    def _open_sync(self, path: Path, dimensions: int) -> LocalVectorStore:
        with self._guard:
            store = self._open.get(path)
            if store is None or store.closed:
                store = self._open[path] = LocalVectorStore(path, dimensions, self.params)
            elif store.dimensions != dimensions:
                raise ValidationError(
                    f"vector store {path.name} holds {store.dimensions}-dimensional vectors"
                )
            return store

    async def open(self, kb_id: str, dimensions: int, settings: Settings) -> LocalVectorStore:
        """The store of ``kb_id`` (created empty on first use)."""
        return await asyncio.to_thread(self._open_sync, self._path(kb_id, settings), dimensions)

    async def drop(self, kb_id: str, settings: Settings) -> None:
        """Close the store of ``kb_id`` if open and delete its folder."""
        path = self._path(kb_id, settings)
        with self._guard:
            store = self._open.pop(path, None)
        if store is not None:
            await store.close()
        await asyncio.to_thread(shutil.rmtree, path, True)


@hookimpl
def register_vector_stores(register: Callable[[Any], None]) -> None:
    """Register the ``local`` store."""
    register(LocalStoreFactory())
