"""The embedded knowledge store: one SQLite file holding documents, chunks, an FTS5 index for BM25 and the
chunk vectors (float32 blobs in `vectors`, keyed by chunk and by the model that made them; searched exactly
with numpy, one model's matrix at a time, so a query only ever meets vectors of its own model).

FTS5 indexes the analysed terms with its `ascii` tokenizer, which splits on ASCII spaces and punctuation
only, so it sees exactly the terms `rag.analysis` produced; ranking is FTS5's BM25 (k1=1.2, b=0.75, the
Lucene/Elasticsearch defaults). Queries are built by `build_fts_query` from analysed terms, each quoted, so
no user text reaches FTS5's query syntax. Writes replace a document and its chunks in one transaction; WAL
mode and a busy timeout let the UI read while an ingest writes.

Search filters (`SearchFilter`) become SQL conditions on the chunk and document columns for BM25, and a
mask over per-row labels cached beside the vector matrix for vector search; both filter before ranking.
`rewrite` (re-embedding, `kefu index rebuild`) replaces everything in one transaction: other connections
keep reading the old snapshot (WAL) until it commits.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import StoreError
from rag.sqlite_migrations import MIGRATIONS
from rag.store import (
    FILTER_FIELDS,
    ChunkRecord,
    DocumentInfo,
    DocumentRecord,
    IndexSpec,
    SearchFilter,
    StoredChunk,
    dumps,
    no_vectors_of,
    vector_of,
)

BUSY_TIMEOUT_MS = 30_000


def build_fts_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression matching any of the terms: each one a quoted string, joined by OR.

    Quoting (with embedded quotes doubled) makes every term a literal, so `refund"`, `title:x`, `NEAR(` or
    `退款政策?` can never be read as FTS5 syntax. Returns "" when there is nothing to search for.
    """
    quoted = ['"' + t.replace('"', '""') + '"' for t in dict.fromkeys(terms) if t.strip()]
    return " OR ".join(quoted)


# Where each filterable chunk field lives in a query joining chunks AS c and documents AS d.
_FILTER_COLUMNS = {"doc_id": "c.doc_id", "source": "d.source", "collection": "d.collection",
                   "language": "c.language", "audience": "d.audience"}  # fmt: skip
assert set(_FILTER_COLUMNS) == {name for _, name in FILTER_FIELDS}


def filter_sql(filters: SearchFilter | None) -> tuple[str, list[str]]:
    """SQL conditions (joined by AND, each prefixed with AND) and their parameters for a SearchFilter."""
    sql, params = "", []
    for name, values in (filters.clauses() if filters else []):
        if not values:
            return " AND 0", []
        sql += f" AND {_FILTER_COLUMNS[name]} IN ({','.join('?' * len(values))})"
        params.extend(values)
    return sql, params


@dataclass
class _Vectors:
    """One model's vectors as one matrix, the chunk id and filter labels of each row, for a generation."""

    generation: int
    matrix: np.ndarray
    ids: list[str]
    index: dict[str, int]
    labels: dict[str, np.ndarray]

    def mask(self, filters: SearchFilter | None) -> np.ndarray | None:
        """Rows a filter allows (None: all)."""
        if not filters:
            return None
        keep = np.ones(len(self.ids), dtype=bool)
        for name, values in filters.clauses():
            keep &= np.isin(self.labels[name], np.array(values, dtype=object))
        return keep


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _owner_only(path: Path) -> None:
    """A company's documents (and their passages) are readable and writable by the store's owner only."""
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            os.chmod(candidate, 0o600)
        except OSError:
            pass  # not there yet, or a file system without modes


class SQLiteStore:
    """`KnowledgeStore` over one SQLite file. One connection, serialised by a lock; safe across threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            _owner_only(self.path)  # before the first write: SQLite gives -wal and -shm the main file's mode
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the knowledge store at {self.path}: {exc}. Check KEFU_HOME.") from exc
        self._lock = threading.RLock()
        self._matrices: dict[str, _Vectors] = {}
        self._migrate()

    # -- plumbing -----------------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"the knowledge store at {self.path} was written by a newer Kefu (schema {version}); upgrade Kefu"
                )
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    migration(self._db)
                    self._db.execute(f"PRAGMA user_version = {number}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    def _write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run fn in one IMMEDIATE transaction that also bumps the generation counter (for caches)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"the knowledge store at {self.path} is busy or read-only: {exc}") from exc
            try:
                result = fn(self._db)
                self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return result

    def _generation(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def generation(self) -> int:
        """Bumped inside every write transaction, so the bump and the write commit together."""
        with self._lock:
            return self._generation()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- index spec ---------------------------------------------------------------------------------------

    def index_spec(self) -> IndexSpec | None:
        with self._lock:
            return self._recorded_spec() if self._has_chunks() else None

    def _has_chunks(self) -> bool:
        return bool(self._db.execute("SELECT EXISTS (SELECT 1 FROM chunks)").fetchone()[0])

    def _recorded_spec(self) -> IndexSpec | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'index_spec'").fetchone()
        return IndexSpec.from_dict(json.loads(row[0])) if row else None

    def claim(self, spec: IndexSpec) -> None:
        with self._lock:
            spec.check(self.index_spec())
            if self._recorded_spec() != spec:
                self._write(lambda db: self._record_spec(db, spec))

    @staticmethod
    def _record_spec(db: sqlite3.Connection, spec: IndexSpec) -> None:
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('index_spec', ?)",
            (json.dumps(spec.to_dict(), sort_keys=True),),
        )

    # -- documents ----------------------------------------------------------------------------------------

    def content_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        ids = list(doc_ids)
        with self._lock:
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT doc_id, content_hash FROM documents WHERE doc_id IN ({marks})", part
                ).fetchall()
                out.update(rows)
        return out

    def replace_documents(self, items: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]) -> dict[str, str]:
        """All or nothing for the whole call (one transaction): returns {} or raises."""
        if not items:
            return {}
        self._write(lambda db: self._insert(db, items, _now()))
        return {}

    def _insert(self, db: sqlite3.Connection, items: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]], now: str) -> None:
        """Write documents inside the caller's transaction, each replacing its stored version."""
        for doc, chunks in items:
            self._delete_chunks(db, [doc.doc_id])
            db.execute(
                """INSERT INTO documents (doc_id, source, title, kind, language, content_hash, chunk_count,
                                          metadata, created_at, updated_at, collection, audience)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(doc_id) DO UPDATE SET source = excluded.source, title = excluded.title,
                       kind = excluded.kind, language = excluded.language,
                       content_hash = excluded.content_hash, chunk_count = excluded.chunk_count,
                       metadata = excluded.metadata, updated_at = excluded.updated_at,
                       collection = excluded.collection, audience = excluded.audience""",
                (doc.doc_id, doc.source, doc.title, doc.kind, doc.language, doc.content_hash, len(chunks),
                 dumps(doc.metadata), now, now, doc.collection, doc.audience),
            )
            for chunk in chunks:
                cursor = db.execute(
                    """INSERT INTO chunks (chunk_id, doc_id, ord, text, section, page, language, metadata)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                    (chunk.chunk_id, chunk.doc_id, chunk.ord, chunk.text, chunk.section, chunk.page,
                     chunk.language, dumps(chunk.metadata)),
                )
                rowid = cursor.lastrowid
                db.execute("INSERT INTO chunks_fts (rowid, terms) VALUES (?, ?)", (rowid, chunk.terms))
                for model in chunk.vectors:
                    vector = vector_of(chunk, model)
                    if vector is not None:
                        db.execute("INSERT INTO vectors (chunk, model, vector) VALUES (?, ?, ?)",
                                   (rowid, model, np.ascontiguousarray(vector).tobytes()))  # fmt: skip

    def rewrite(
        self, spec: IndexSpec, documents: Iterable[tuple[DocumentRecord, Sequence[ChunkRecord]]]
    ) -> dict[str, Any]:
        """One transaction: every given document written, every other one deleted, the spec recorded; then the
        file is compacted (`rebuild`)."""
        written: list[str] = []

        def write(db: sqlite3.Connection) -> None:
            now = _now()
            for doc, chunks in documents:
                self._insert(db, [(doc, chunks)], now)
                written.append(doc.doc_id)
            db.execute("CREATE TEMP TABLE IF NOT EXISTS kept (doc_id TEXT PRIMARY KEY)")
            db.execute("DELETE FROM kept")
            db.executemany("INSERT OR IGNORE INTO kept (doc_id) VALUES (?)", [(d,) for d in written])
            gone = [r[0] for r in db.execute("SELECT doc_id FROM documents WHERE doc_id NOT IN (SELECT doc_id FROM kept)")]
            for i in range(0, len(gone), 500):
                part = gone[i : i + 500]
                self._delete_chunks(db, part)
                db.execute(f"DELETE FROM documents WHERE doc_id IN ({','.join('?' * len(part))})", part)
            db.execute("DELETE FROM meta WHERE key = 'index_spec'")
            self._record_spec(db, spec)

        with self._lock:
            self._write(write)
            return {**self.rebuild(), "documents": len(written)}

    @staticmethod
    def _delete_chunks(db: sqlite3.Connection, doc_ids: Sequence[str]) -> None:
        marks = ",".join("?" * len(doc_ids))
        db.execute(f"DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE doc_id IN ({marks}))", doc_ids)
        db.execute(f"DELETE FROM chunks WHERE doc_id IN ({marks})", doc_ids)

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        ids = list(dict.fromkeys(doc_ids))
        if not ids:
            return 0

        def delete(db: sqlite3.Connection) -> int:
            self._delete_chunks(db, ids)
            marks = ",".join("?" * len(ids))
            return db.execute(f"DELETE FROM documents WHERE doc_id IN ({marks})", ids).rowcount

        return self._write(delete)

    def list_documents(self) -> list[DocumentInfo]:
        with self._lock:
            rows = self._db.execute(
                """SELECT doc_id, source, title, kind, language, chunk_count, content_hash, updated_at, metadata,
                          collection, audience
                   FROM documents ORDER BY source, doc_id"""
            ).fetchall()
        return [
            DocumentInfo(*row[:8], metadata=json.loads(row[8]), collection=row[9], audience=row[10]) for row in rows
        ]

    def export_documents(self) -> Iterator[tuple[DocumentRecord, list[ChunkRecord]]]:
        with self._lock:
            docs = self._db.execute(
                """SELECT doc_id, source, title, kind, language, content_hash, metadata, collection, audience
                   FROM documents ORDER BY source, doc_id"""
            ).fetchall()
        for doc_id, source, title, kind, language, content_hash, metadata, collection, audience in docs:
            with self._lock:
                rows = self._db.execute(
                    """SELECT c.id, c.chunk_id, c.ord, c.text, f.terms, c.section, c.page, c.language, c.metadata
                       FROM chunks AS c JOIN chunks_fts AS f ON f.rowid = c.id WHERE c.doc_id = ? ORDER BY c.ord""",
                    (doc_id,),
                ).fetchall()
                vectors: dict[int, dict[str, np.ndarray]] = {}
                for rowid, model, blob in self._db.execute(
                    """SELECT v.chunk, v.model, v.vector FROM vectors AS v JOIN chunks AS c ON c.id = v.chunk
                       WHERE c.doc_id = ?""",
                    (doc_id,),
                ):
                    vectors.setdefault(rowid, {})[model] = np.frombuffer(blob, dtype=np.float32).copy()
            record = DocumentRecord(doc_id, source, title, kind, language, content_hash, json.loads(metadata),
                                    collection=collection, audience=audience)  # fmt: skip
            chunks = [
                ChunkRecord(chunk_id, doc_id, ord_, text, terms, vectors.get(rowid, {}),
                            section=section, page=page, language=lang, metadata=json.loads(meta))  # fmt: skip
                for rowid, chunk_id, ord_, text, terms, section, page, lang, meta in rows
            ]
            yield record, chunks

    # -- search -------------------------------------------------------------------------------------------

    def lexical_search(
        self, terms: Sequence[str], n: int, filters: SearchFilter | None = None
    ) -> list[tuple[str, float]]:
        query = build_fts_query(terms)
        if not query or n <= 0:
            return []
        conditions, params = filter_sql(filters)
        with self._lock:
            if not conditions:
                rows = self._db.execute(
                    """SELECT c.chunk_id, -f.rank FROM
                           (SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?) AS f
                       JOIN chunks AS c ON c.id = f.rowid ORDER BY f.rank""",
                    (query, n),
                ).fetchall()
            else:
                rows = self._db.execute(
                    f"""SELECT c.chunk_id, -chunks_fts.rank FROM chunks_fts
                            JOIN chunks AS c ON c.id = chunks_fts.rowid JOIN documents AS d ON d.doc_id = c.doc_id
                        WHERE chunks_fts MATCH ?{conditions} ORDER BY chunks_fts.rank LIMIT ?""",
                    (query, *params, n),
                ).fetchall()
        return [(chunk_id, float(score)) for chunk_id, score in rows]

    def _vectors(self, model: str) -> _Vectors:
        """`model`'s vectors as one (chunks x dim) matrix with each row's filter labels, reloaded only when the
        store has changed. Only chunks with a vector of this model are in it (others have no similarity).
        IndexMismatchError when the store holds chunks but the model is not one of its spec."""
        with self._lock:
            generation = self._generation()
            cached = self._matrices.get(model)
            if cached is None or cached.generation != generation:
                spec = self._recorded_spec()
                if spec is not None and model not in spec.models and self._has_chunks():
                    raise no_vectors_of(model, spec)
                rows = self._db.execute(
                    """SELECT c.chunk_id, v.vector, c.doc_id, d.source, d.collection, c.language, d.audience
                       FROM vectors AS v JOIN chunks AS c ON c.id = v.chunk JOIN documents AS d ON d.doc_id = c.doc_id
                       WHERE v.model = ? ORDER BY c.id""",
                    (model,),
                ).fetchall()
                if rows:
                    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
                else:
                    matrix = np.zeros((0, 0), dtype=np.float32)
                ids = [r[0] for r in rows]
                labels = {
                    name: np.array([r[2 + i] for r in rows], dtype=object)
                    for i, name in enumerate(("doc_id", "source", "collection", "language", "audience"))
                }
                cached = self._matrices[model] = _Vectors(generation, matrix, ids, {cid: i for i, cid in enumerate(ids)}, labels)
            return cached

    def vector_search(
        self, vectors: np.ndarray, n: int, filters: SearchFilter | None = None, *, model: str
    ) -> list[list[tuple[str, float]]]:
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        cache = self._vectors(model)
        matrix, ids = cache.matrix, cache.ids
        if matrix.shape[0] == 0 or n <= 0:
            return [[] for _ in range(queries.shape[0])]
        if matrix.shape[1] != queries.shape[1]:
            raise StoreError(f"query vectors have {queries.shape[1]} dimensions, the store holds {matrix.shape[1]}")
        allowed = cache.mask(filters)
        rows = np.arange(matrix.shape[0]) if allowed is None else np.flatnonzero(allowed)
        if rows.shape[0] == 0:
            return [[] for _ in range(queries.shape[0])]
        scores = queries @ (matrix if allowed is None else matrix[rows]).T
        n = min(n, rows.shape[0])
        results = []
        for row in scores:
            top = np.argpartition(-row, n - 1)[:n] if n < row.shape[0] else np.arange(row.shape[0])
            top = top[np.lexsort((top, -row[top]))]  # by score, then by insertion order
            results.append([(ids[rows[i]], float(row[i])) for i in top])
        return results

    def similarities(self, vector: np.ndarray, chunk_ids: Sequence[str], *, model: str) -> dict[str, float]:
        cache = self._vectors(model)
        matrix, index = cache.matrix, cache.index
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        rows = [index[c] for c in chunk_ids if c in index]
        if not rows:
            return {}
        sims = matrix[rows] @ query
        return {chunk_id: float(s) for chunk_id, s in zip((c for c in chunk_ids if c in index), sims)}

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        ids = list(dict.fromkeys(chunk_ids))
        out: dict[str, StoredChunk] = {}
        with self._lock:
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"""SELECT c.chunk_id, c.doc_id, c.ord, c.text, d.title, d.source, d.kind, c.section, c.page,
                               c.language, c.metadata, d.collection, d.audience
                        FROM chunks AS c JOIN documents AS d ON d.doc_id = c.doc_id
                        WHERE c.chunk_id IN ({marks})""",
                    part,
                ).fetchall()
                for row in rows:
                    out[row[0]] = StoredChunk(
                        *row[:10], metadata=json.loads(row[10]), collection=row[11], audience=row[12]
                    )
        return out

    def term_statistics(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        unique = list(dict.fromkeys(terms))
        with self._lock:
            total = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            freqs: dict[str, int] = {}
            for term in unique:
                row = self._db.execute("SELECT doc FROM chunks_vocab WHERE term = ?", (term,)).fetchone()
                freqs[term] = int(row[0]) if row else 0
        return int(total), freqs

    def stats(self) -> dict[str, Any]:
        with self._lock:
            documents = self._db.execute("SELECT count(*) FROM documents").fetchone()[0]
            chunks = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            collections = dict(
                self._db.execute("SELECT collection, count(*) FROM documents GROUP BY collection ORDER BY collection")
            )
        spec = self.index_spec()
        return {
            "store": "sqlite",
            "path": str(self.path),
            "documents": documents,
            "chunks": chunks,
            "collections": collections,
            "embedding_model": spec.models[0] if spec and spec.models else None,
            "embedding_models": list(spec.models) if spec else [],
            "analysis": spec.analysis if spec else None,
        }

    def rebuild(self) -> dict[str, Any]:
        """Merge the FTS index into one segment and compact the file. Readers keep working (WAL); the
        checkpoint at the end needs a moment without them."""
        def size() -> int:
            return sum(p.stat().st_size for p in (self.path, self.path.with_name(self.path.name + "-wal")) if p.exists())

        before = size()
        with self._lock:
            self._write(lambda db: db.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('optimize')"))
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"store": "sqlite", "path": str(self.path), "bytes_before": before, "bytes_after": size()}
