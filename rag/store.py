"""The knowledge store protocol: what every backend (SQLite embedded, Elasticsearch) does, and the records it
keeps. Stores hold documents, their chunks, each chunk's analysed terms for BM25 and its vectors, and the
keyword labels searches filter on (document id, source, collection, language, audience); they search
lexically and by vector and know nothing about fusion, answering or how vectors are computed.

Vector spaces are kept apart by construction: a store keeps each chunk's vectors keyed by the model that made
them (the `IndexSpec` lists the models), and a vector search names its model, so a query vector is only ever
compared with vectors of the same model; a model the store holds no vectors of is refused. A missing or zero
vector means "no vector" (text that model cannot read, or outside its scope): stores never return it.

Terms arrive already analysed (`rag.analysis`), so every store ranks the same tokens. `rag.store_factory.make_store` is
the one factory; it raises an error listing the valid backends. `tests/test_store_contract.py` holds every
backend to the same expectations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ingest.documents import DEFAULT_AUDIENCE, DEFAULT_COLLECTION
from rag.errors import IndexMismatchError

# Bump when the way stores keep vectors changes; a store of another layout is rebuilt by `kefu index rebuild`.
# Layout 1: one `embedding` per chunk. Layout 2: vectors keyed by the model that made them.
LAYOUT = 2
REBUILD_HINT = "Run `kefu index rebuild`: it re-embeds what needs it, and searches keep the old index meanwhile."


@dataclass(frozen=True)
class VectorSpace:
    """One model's vectors in a store: which model made them, their length, and which chunks have one
    (`scope`, as `rag.vector_spaces` decides it)."""

    model: str
    dimension: int
    scope: str = "readable"


@dataclass(frozen=True)
class IndexSpec:
    """What a store's contents depend on: the text analysis and each vector space. A store refuses to mix
    terms or vectors from another spec, and a query is only ever compared with vectors of its own model."""

    analysis: str
    spaces: tuple[VectorSpace, ...] = ()
    layout: int = LAYOUT

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(s.model for s in self.spaces)

    def space(self, model: str) -> VectorSpace | None:
        return next((s for s in self.spaces if s.model == model), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "analysis": self.analysis,
            "layout": self.layout,
            "spaces": [{"model": s.model, "dimension": s.dimension, "scope": s.scope} for s in self.spaces],
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> IndexSpec:
        """Read a spec as stores and exports record it, including layout 1's
        `{"embedding_model", "dimension", "analysis"}`. KeyError, TypeError or ValueError when incomplete."""
        if "spaces" not in value:
            space = VectorSpace(str(value["embedding_model"]), int(value["dimension"]))
            return cls(str(value["analysis"]), (space,), layout=1)
        spaces = tuple(VectorSpace(str(s["model"]), int(s["dimension"]), str(s.get("scope", "readable"))) for s in value["spaces"])
        return cls(str(value["analysis"]), spaces, int(value.get("layout", LAYOUT)))

    def describe(self) -> str:
        models = ", ".join(f"{s.model!r} ({s.dimension} dimensions, {s.scope})" for s in self.spaces) or "no embedding model"
        return f"{models}; text analysis {self.analysis!r}"

    def check(self, stored: IndexSpec | None) -> None:
        """IndexMismatchError, saying what differs and how to fix it, when `stored` is another spec."""
        if stored is None or stored == self:
            return
        if stored.layout != self.layout:
            raise IndexMismatchError(
                f"the knowledge store was written by an older Kefu (store layout {stored.layout}; this Kefu uses "
                f"{self.layout}). {REBUILD_HINT}"
            )
        if stored.spaces != self.spaces:
            raise IndexMismatchError(
                f"the knowledge store holds vectors of {_spaces(stored)}, but {_spaces(self)} is configured "
                f"(KEFU_EMBEDDING_MODEL, KEFU_MULTILINGUAL_MODEL, KEFU_MULTILINGUAL_SCOPE). A query is never compared "
                f"with another model's vectors: set them back, or re-embed. {REBUILD_HINT}"
            )
        raise IndexMismatchError(
            f"the knowledge store was built with text analysis {stored.analysis!r}, but {self.analysis!r} is "
            f"configured (KEFU_ZH_ANALYZER or the user dictionary changed). Change it back, or re-analyse. {REBUILD_HINT}"
        )


def _spaces(spec: IndexSpec) -> str:
    return " and ".join(f"{s.model!r} ({s.dimension} dimensions, scope {s.scope})" for s in spec.spaces) or "no model"


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
    """A chunk as written: display text, analysed terms for BM25 and the vectors of its match text, keyed by
    the model that made each (`IndexSpec.spaces`). A model with no vector for the chunk (text it cannot read,
    or outside its scope) is absent from `vectors`, or maps to a zero vector: both mean "no vector"."""

    chunk_id: str
    doc_id: str
    ord: int
    text: str
    terms: str
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
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

    def generation(self) -> int:
        """A counter that every write bumps (documents replaced or deleted, a spec claimed, a rebuild or
        rewrite), shared by every process using the store: what caches of answers key by, so nothing read
        before a write is served after it. It only grows; a store that was never written to is at 0."""

    def claim(self, spec: IndexSpec) -> None:
        """Record `spec` as the store's; IndexMismatchError if another is recorded and the store holds data."""

    def rewrite(
        self, spec: IndexSpec, documents: Iterable[tuple[DocumentRecord, Sequence[ChunkRecord]]]
    ) -> dict[str, Any]:
        """Replace everything the store holds with `documents` (consumed lazily; they may be read from this
        very store), recorded under `spec`, as one switch: searches see the old contents and spec until the
        last document is written, then only the new. What `kefu index rebuild` uses to re-embed. SQLite: one
        transaction (WAL readers keep their snapshot); Elasticsearch: a fresh index, then the alias swap.
        Writes by others meanwhile fail or wait. Returns the facts `rebuild` returns, plus `documents`."""

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
        self, vectors: np.ndarray, n: int, filters: SearchFilter | None = None, *, model: str
    ) -> list[list[tuple[str, float]]]:
        """For each query vector (rows, made by `model`), the n chunks of highest cosine similarity among
        those with a vector of `model`: (chunk_id, cosine). IndexMismatchError when the store holds data but
        no vectors of `model`."""

    def similarities(self, vector: np.ndarray, chunk_ids: Sequence[str], *, model: str) -> dict[str, float]:
        """Cosine similarity of one query vector (made by `model`) with the given chunks that have a vector of
        `model`."""

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


def vector_of(chunk: ChunkRecord, model: str) -> np.ndarray | None:
    """The chunk's vector from `model` as float32, or None when it has none (absent or all zeros)."""
    vector = chunk.vectors.get(model)
    if vector is None:
        return None
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    return vector if np.any(vector) else None


def no_vectors_of(model: str, spec: IndexSpec | None) -> IndexMismatchError:
    """The error for a vector search with a model the store holds no vectors of."""
    held = ", ".join(repr(m) for m in spec.models) if spec and spec.models else "none"
    return IndexMismatchError(f"the knowledge store holds no vectors of {model!r} (it holds: {held}). {REBUILD_HINT}")


def chunk_id_for(doc_id: str, ord: int) -> str:
    return f"{doc_id}#{ord}"


def doc_id_of(chunk_id: str) -> str:
    return chunk_id.rsplit("#", 1)[0]


def dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
