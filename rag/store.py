"""The knowledge store protocol: what every backend (SQLite embedded, Elasticsearch) does, and the records it
keeps. Stores hold documents, their chunks, each chunk's analysed terms for BM25 and its embedding; they
search lexically and by vector and know nothing about fusion, answering or models.

Terms arrive already analysed (`rag.analysis`), so every store ranks the same tokens. `make_store` is the
one factory; it raises an error listing the valid backends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.errors import IndexMismatchError, StoreError

STORES = ("sqlite",)


@dataclass(frozen=True)
class IndexSpec:
    """What a store's contents depend on; a store refuses to mix vectors or terms from another spec."""

    embedding_model: str
    dimension: int
    analysis: str

    def check(self, stored: IndexSpec | None) -> None:
        if stored is None or stored == self:
            return
        if stored.embedding_model != self.embedding_model or stored.dimension != self.dimension:
            raise IndexMismatchError(
                f"the knowledge store was built with embedding model {stored.embedding_model!r} "
                f"({stored.dimension} dimensions), but {self.embedding_model!r} ({self.dimension}) is configured. "
                "Set KEFU_EMBEDDING_MODEL back, or re-index: `kefu docs delete --all`, then `kefu ingest` again."
            )
        raise IndexMismatchError(
            f"the knowledge store was built with text analysis {stored.analysis!r}, but {self.analysis!r} is "
            "configured (KEFU_ZH_ANALYZER or the user dictionary changed). Change it back, or re-index: "
            "`kefu docs delete --all`, then `kefu ingest` again."
        )


@dataclass
class DocumentRecord:
    doc_id: str
    source: str
    title: str
    kind: str
    language: str
    content_hash: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChunkRecord:
    """A chunk as written: display text, analysed terms for BM25 and the embedding of its match text."""

    chunk_id: str
    doc_id: str
    ord: int
    text: str
    terms: str
    embedding: np.ndarray
    section: str = ""
    page: int | None = None
    language: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class StoredChunk:
    """A chunk as read back, with its document's title, source and kind."""

    chunk_id: str
    doc_id: str
    ord: int
    text: str
    title: str
    source: str
    kind: str
    section: str = ""
    page: int | None = None
    language: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class DocumentInfo:
    doc_id: str
    source: str
    title: str
    kind: str
    language: str
    chunks: int
    content_hash: str
    updated_at: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "source": self.source,
            "kind": self.kind,
            "language": self.language,
            "chunks": self.chunks,
            "content_hash": self.content_hash,
            "updated_at": self.updated_at,
        }


class KnowledgeStore(Protocol):
    """A backend that keeps documents and chunks and searches them."""

    def index_spec(self) -> IndexSpec | None:
        """The spec the store's contents were built with, or None while it holds no chunks."""

    def claim(self, spec: IndexSpec) -> None:
        """Record `spec` as the store's; IndexMismatchError if another is recorded and the store holds data."""

    def content_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """The stored content hash of each of these documents that exists."""

    def replace_documents(self, items: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]) -> None:
        """Write documents, each replacing any stored version and its chunks, all or nothing."""

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Delete documents and their chunks; returns how many existed."""

    def list_documents(self) -> list[DocumentInfo]:
        """Every document, ordered by source then id."""

    def lexical_search(self, terms: Sequence[str], n: int) -> list[tuple[str, float]]:
        """The n best chunks by BM25 over the analysed terms (any term may match): (chunk_id, score)."""

    def vector_search(self, vectors: np.ndarray, n: int) -> list[list[tuple[str, float]]]:
        """For each query vector (rows), the n chunks of highest cosine similarity: (chunk_id, cosine)."""

    def similarities(self, vector: np.ndarray, chunk_ids: Sequence[str]) -> dict[str, float]:
        """Cosine similarity of one query vector with the given chunks."""

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        """The chunks that exist among chunk_ids."""

    def term_statistics(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """(number of chunks, how many chunks contain each term): for idf weights."""

    def stats(self) -> dict[str, Any]:
        """Counts and facts for `kefu docs list` and the UI."""

    def close(self) -> None: ...


def chunk_id_for(doc_id: str, ord: int) -> str:
    return f"{doc_id}#{ord}"


def doc_id_of(chunk_id: str) -> str:
    return chunk_id.rsplit("#", 1)[0]


def make_store(kind: str, home: Path) -> KnowledgeStore:
    """The store named by KEFU_STORE."""
    if kind == "sqlite":
        from rag.sqlite_store import SQLiteStore

        return SQLiteStore(home / "knowledge.sqlite3")
    raise StoreError(f"unknown store {kind!r}: KEFU_STORE must be one of {', '.join(STORES)}")


def dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
