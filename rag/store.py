"""The knowledge store protocol: what every backend (SQLite embedded, Elasticsearch) does, and the records it
keeps. Stores hold documents, their chunks, each chunk's analysed terms for BM25 and its embedding, and the
keyword labels searches filter on (document id, source, collection, language, audience); they search
lexically and by vector and know nothing about fusion, answering or models.

Terms arrive already analysed (`rag.analysis`), so every store ranks the same tokens. A zero embedding means
"no vector" (text the embedder cannot read): stores never return it from a vector search. `rag.store_factory.make_store` is
the one factory; it raises an error listing the valid backends. `tests/test_store_contract.py` holds every
backend to the same expectations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ingest.documents import DEFAULT_AUDIENCE, DEFAULT_COLLECTION
from rag.errors import IndexMismatchError

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
    collection: str = DEFAULT_COLLECTION
    audience: str = DEFAULT_AUDIENCE


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
    """A chunk as read back, with its document's title, source, kind, collection and audience."""

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
    collection: str = DEFAULT_COLLECTION
    audience: str = DEFAULT_AUDIENCE


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
    collection: str = DEFAULT_COLLECTION
    audience: str = DEFAULT_AUDIENCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "source": self.source,
            "kind": self.kind,
            "language": self.language,
            "collection": self.collection,
            "audience": self.audience,
            "chunks": self.chunks,
            "content_hash": self.content_hash,
            "updated_at": self.updated_at,
        }


# The keyword fields a SearchFilter can name, as (filter attribute, chunk field) pairs. `language` is the
# chunk's own language (an FAQ sheet can hold both), the others are its document's.
FILTER_FIELDS = (
    ("doc_ids", "doc_id"),
    ("sources", "source"),
    ("collections", "collection"),
    ("languages", "language"),
    ("audiences", "audience"),
)


@dataclass(frozen=True)
class SearchFilter:
    """Which chunks a search may return: each field given (not None) must hold one of the listed values.

    An empty tuple matches nothing. Filters restrict the candidates before ranking in every store, so a
    filtered search returns the best matching chunks, not the filtered remains of an unfiltered top-n.
    """

    doc_ids: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    collections: tuple[str, ...] | None = None
    languages: tuple[str, ...] | None = None
    audiences: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for attr, _ in FILTER_FIELDS:
            value = getattr(self, attr)
            if value is not None:
                if isinstance(value, str):
                    raise TypeError(f"SearchFilter.{attr} takes a tuple of values, not the string {value!r}")
                object.__setattr__(self, attr, tuple(dict.fromkeys(value)))

    def clauses(self) -> list[tuple[str, tuple[str, ...]]]:
        """(chunk field, allowed values) for each field that is restricted, in FILTER_FIELDS order."""
        return [(name, getattr(self, attr)) for attr, name in FILTER_FIELDS if getattr(self, attr) is not None]

    def __bool__(self) -> bool:
        return bool(self.clauses())

    def __and__(self, other: SearchFilter | None) -> SearchFilter:
        """Both filters at once: per field, the values both allow."""
        if other is None:
            return self
        merged = {}
        for attr, _ in FILTER_FIELDS:
            mine, theirs = getattr(self, attr), getattr(other, attr)
            if mine is None or theirs is None:
                merged[attr] = theirs if mine is None else mine
            else:
                merged[attr] = tuple(v for v in mine if v in theirs)
        return SearchFilter(**merged)


class KnowledgeStore(Protocol):
    """A backend that keeps documents and chunks and searches them."""

    def index_spec(self) -> IndexSpec | None:
        """The spec the store's contents were built with, or None while it holds no chunks."""

    def claim(self, spec: IndexSpec) -> None:
        """Record `spec` as the store's; IndexMismatchError if another is recorded and the store holds data."""

    def content_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """The stored content hash of each of these documents that exists."""

    def replace_documents(self, items: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]) -> dict[str, str]:
        """Write documents, each replacing any stored version and its chunks.

        Returns {doc_id: reason} for the documents that could not be written (empty when all were); such a
        document is never recorded with its new content hash, so the next ingest tries it again. How much
        of a write is atomic is the backend's to document (SQLite: the whole call; Elasticsearch: each
        document, as far as the server allows)."""

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Delete documents and their chunks; returns how many existed."""

    def list_documents(self) -> list[DocumentInfo]:
        """Every document, ordered by source then id."""

    def export_documents(self) -> Iterator[tuple[DocumentRecord, list[ChunkRecord]]]:
        """Every document with its chunks as written (terms and embeddings included), ordered by source
        then id: what `kefu index export` writes and `import` feeds to another store's replace_documents."""

    def lexical_search(
        self, terms: Sequence[str], n: int, filters: SearchFilter | None = None
    ) -> list[tuple[str, float]]:
        """The n best chunks by BM25 over the analysed terms (any term may match): (chunk_id, score)."""

    def vector_search(
        self, vectors: np.ndarray, n: int, filters: SearchFilter | None = None
    ) -> list[list[tuple[str, float]]]:
        """For each query vector (rows), the n chunks of highest cosine similarity: (chunk_id, cosine)."""

    def similarities(self, vector: np.ndarray, chunk_ids: Sequence[str]) -> dict[str, float]:
        """Cosine similarity of one query vector with the given chunks (those that have a vector)."""

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        """The chunks that exist among chunk_ids."""

    def term_statistics(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """(number of chunks, how many chunks contain each term): for idf weights."""

    def stats(self) -> dict[str, Any]:
        """Counts and facts for `kefu docs list` and the UI: at least store, documents, chunks."""

    def rebuild(self) -> dict[str, Any]:
        """Rewrite the store's index structures from what it holds (SQLite: compact the file and merge the
        FTS index; Elasticsearch: copy into a fresh index from the current template and swap the alias).
        Searches keep working meanwhile. Returns facts for the CLI to report."""

    def close(self) -> None: ...


def chunk_id_for(doc_id: str, ord: int) -> str:
    return f"{doc_id}#{ord}"


def doc_id_of(chunk_id: str) -> str:
    return chunk_id.rsplit("#", 1)[0]


def dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
