"""The embedded store's schema, as ordered, named migrations: `PRAGMA user_version` records how many have run,
and `rag.sqlite_store` runs the rest, each in one transaction, when it opens a file. Never edit a migration
that has shipped; add the next one. Knows only SQL and the index spec's JSON.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from rag.store import LAYOUT, IndexSpec


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


def _m002_labels(db: sqlite3.Connection) -> None:
    """Collections and audiences: every existing document becomes `default` / `public`."""
    _run_script(
        db,
        """
        ALTER TABLE documents ADD COLUMN collection TEXT NOT NULL DEFAULT 'default';
        ALTER TABLE documents ADD COLUMN audience TEXT NOT NULL DEFAULT 'public';
        CREATE INDEX documents_labels ON documents(collection, audience);
        """,
    )


def _m003_vectors(db: sqlite3.Connection) -> None:
    """Vectors move out of `chunks.embedding` into `vectors`, keyed by the model that made them (the one the
    recorded spec names), zero vectors ("none") left out; the spec is rewritten in layout 2."""
    _run_script(
        db,
        """
        CREATE TABLE vectors (
            chunk INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (model, chunk)
        ) WITHOUT ROWID;
        CREATE INDEX vectors_chunk ON vectors(chunk)
        """,
    )
    row = db.execute("SELECT value FROM meta WHERE key = 'index_spec'").fetchone()
    if row is not None:
        spec = IndexSpec.from_dict(json.loads(row[0]))
        db.execute(
            """INSERT INTO vectors (chunk, model, vector) SELECT id, ?, embedding FROM chunks
               WHERE length(embedding) > 0 AND embedding != zeroblob(length(embedding))""",
            (spec.models[0],),
        )
        moved = IndexSpec(spec.analysis, spec.spaces, LAYOUT)
        db.execute("UPDATE meta SET value = ? WHERE key = 'index_spec'", (json.dumps(moved.to_dict(), sort_keys=True),))
    db.execute("ALTER TABLE chunks DROP COLUMN embedding")


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run `;`-separated statements inside the caller's transaction (executescript would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


# Ordered, named migrations; PRAGMA user_version records how many have run.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_initial, _m002_labels, _m003_vectors]
