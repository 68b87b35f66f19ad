"""The embedded knowledge store: one SQLite file holding documents, chunks, an FTS5 index for BM25 and the
chunk embeddings (float32 blobs, searched exactly with numpy).

FTS5 indexes the analysed terms with its `ascii` tokenizer, which splits on ASCII spaces and punctuation
only, so it sees exactly the terms `rag.analysis` produced; ranking is FTS5's BM25 (k1=1.2, b=0.75, the
Lucene/Elasticsearch defaults). Queries are built by `build_fts_query` from analysed terms, each quoted, so
no user text reaches FTS5's query syntax. Writes replace a document and its chunks in one transaction; WAL
mode and a busy timeout let the UI read while an ingest writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import StoreError
from rag.store import ChunkRecord, DocumentInfo, DocumentRecord, IndexSpec, StoredChunk, dumps

BUSY_TIMEOUT_MS = 30_000


def build_fts_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression matching any of the terms: each one a quoted string, joined by OR.

    Quoting (with embedded quotes doubled) makes every term a literal, so `refund"`, `title:x`, `NEAR(` or
    `退款政策?` can never be read as FTS5 syntax. Returns "" when there is nothing to search for.
    """
    quoted = ['"' + t.replace('"', '""') + '"' for t in dict.fromkeys(terms) if t.strip()]
    return " OR ".join(quoted)


def _m001_initial(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE documents (
            doc_id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            title TEXT NOT NULL,
            kind TEXT NOT NULL,
            language TEXT NOT NULL DEFAULT '',
            content_hash TEXT NOT NULL,
            chunk_count INTEGER NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX documents_source ON documents(source);
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY,
            chunk_id TEXT NOT NULL UNIQUE,
            doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
            ord INTEGER NOT NULL,
            text TEXT NOT NULL,
            section TEXT NOT NULL DEFAULT '',
            page INTEGER,
            language TEXT NOT NULL DEFAULT '',
            metadata TEXT NOT NULL DEFAULT '{}',
            embedding BLOB NOT NULL
        );
        CREATE INDEX chunks_doc ON chunks(doc_id, ord);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(terms, tokenize = 'ascii');
        CREATE VIRTUAL TABLE chunks_vocab USING fts5vocab(chunks_fts, 'row');
        INSERT INTO meta (key, value) VALUES ('generation', '0');
        """,
    )


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run `;`-separated statements inside the caller's transaction (executescript would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


# Ordered, named migrations; PRAGMA user_version records how many have run.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_initial]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class SQLiteStore:
    """`KnowledgeStore` over one SQLite file. One connection, serialised by a lock; safe across threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the knowledge store at {self.path}: {exc}. Check KEFU_HOME.") from exc
        self._lock = threading.RLock()
        self._matrix: tuple[int, np.ndarray, list[str], dict[str, int]] | None = None
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

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- index spec ---------------------------------------------------------------------------------------

    def index_spec(self) -> IndexSpec | None:
        with self._lock:
            if self._db.execute("SELECT NOT EXISTS (SELECT 1 FROM chunks)").fetchone()[0]:
                return None
            row = self._db.execute("SELECT value FROM meta WHERE key = 'index_spec'").fetchone()
        return IndexSpec(**json.loads(row[0])) if row else None

    def claim(self, spec: IndexSpec) -> None:
        with self._lock:
            spec.check(self.index_spec())
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('index_spec', ?)",
                (json.dumps(spec.__dict__, sort_keys=True),),
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

    def replace_documents(self, items: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]) -> None:
        if not items:
            return
        now = _now()

        def write(db: sqlite3.Connection) -> None:
            for doc, chunks in items:
                self._delete_chunks(db, [doc.doc_id])
                db.execute(
                    """INSERT INTO documents (doc_id, source, title, kind, language, content_hash, chunk_count,
                                              metadata, created_at, updated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT(doc_id) DO UPDATE SET source = excluded.source, title = excluded.title,
                           kind = excluded.kind, language = excluded.language,
                           content_hash = excluded.content_hash, chunk_count = excluded.chunk_count,
                           metadata = excluded.metadata, updated_at = excluded.updated_at""",
                    (doc.doc_id, doc.source, doc.title, doc.kind, doc.language, doc.content_hash, len(chunks),
                     dumps(doc.metadata), now, now),
                )
                for chunk in chunks:
                    vector = np.ascontiguousarray(chunk.embedding, dtype=np.float32)
                    cursor = db.execute(
                        """INSERT INTO chunks (chunk_id, doc_id, ord, text, section, page, language, metadata,
                                               embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                        (chunk.chunk_id, chunk.doc_id, chunk.ord, chunk.text, chunk.section, chunk.page,
                         chunk.language, dumps(chunk.metadata), vector.tobytes()),
                    )
                    db.execute("INSERT INTO chunks_fts (rowid, terms) VALUES (?, ?)", (cursor.lastrowid, chunk.terms))

        self._write(write)

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
                """SELECT doc_id, source, title, kind, language, chunk_count, content_hash, updated_at, metadata
                   FROM documents ORDER BY source, doc_id"""
            ).fetchall()
        return [DocumentInfo(*row[:8], metadata=json.loads(row[8])) for row in rows]

    # -- search -------------------------------------------------------------------------------------------

    def lexical_search(self, terms: Sequence[str], n: int) -> list[tuple[str, float]]:
        query = build_fts_query(terms)
        if not query or n <= 0:
            return []
        with self._lock:
            rows = self._db.execute(
                """SELECT c.chunk_id, -f.rank FROM
                       (SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?) AS f
                   JOIN chunks AS c ON c.id = f.rowid ORDER BY f.rank""",
                (query, n),
            ).fetchall()
        return [(chunk_id, float(score)) for chunk_id, score in rows]

    def _vectors(self) -> tuple[np.ndarray, list[str], dict[str, int]]:
        """The embeddings as one (chunks x dim) matrix, reloaded only when the store has changed. Chunks
        stored with a zero vector (text the embedder cannot read) are left out: they have no similarity."""
        with self._lock:
            generation = self._generation()
            if self._matrix is None or self._matrix[0] != generation:
                rows = self._db.execute("SELECT chunk_id, embedding FROM chunks ORDER BY id").fetchall()
                if rows:
                    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
                    keep = np.flatnonzero(np.any(matrix != 0, axis=1))
                    matrix = np.ascontiguousarray(matrix[keep])
                    ids = [rows[i][0] for i in keep]
                else:
                    matrix, ids = np.zeros((0, 0), dtype=np.float32), []
                self._matrix = (generation, matrix, ids, {cid: i for i, cid in enumerate(ids)})
            return self._matrix[1], self._matrix[2], self._matrix[3]

    def vector_search(self, vectors: np.ndarray, n: int) -> list[list[tuple[str, float]]]:
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        matrix, ids, _ = self._vectors()
        if matrix.shape[0] == 0 or n <= 0:
            return [[] for _ in range(queries.shape[0])]
        if matrix.shape[1] != queries.shape[1]:
            raise StoreError(f"query vectors have {queries.shape[1]} dimensions, the store holds {matrix.shape[1]}")
        scores = queries @ matrix.T
        n = min(n, matrix.shape[0])
        results = []
        for row in scores:
            top = np.argpartition(-row, n - 1)[:n] if n < row.shape[0] else np.arange(row.shape[0])
            top = top[np.lexsort((top, -row[top]))]  # by score, then by insertion order
            results.append([(ids[i], float(row[i])) for i in top])
        return results

    def similarities(self, vector: np.ndarray, chunk_ids: Sequence[str]) -> dict[str, float]:
        matrix, _, index = self._vectors()
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
                               c.language, c.metadata
                        FROM chunks AS c JOIN documents AS d ON d.doc_id = c.doc_id
                        WHERE c.chunk_id IN ({marks})""",
                    part,
                ).fetchall()
                for row in rows:
                    out[row[0]] = StoredChunk(*row[:10], metadata=json.loads(row[10]))
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
        spec = self.index_spec()
        return {
            "store": "sqlite",
            "path": str(self.path),
            "documents": documents,
            "chunks": chunks,
            "embedding_model": spec.embedding_model if spec else None,
            "analysis": spec.analysis if spec else None,
        }
