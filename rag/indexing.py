"""Indexing: chunked documents in, store records out. Analyses each chunk's terms, embeds its match text in
large batches (across documents, for throughput) in each vector space that should hold it
(`rag.vector_spaces`), and writes documents in groups, each all or nothing.

Unchanged documents (same id and content hash, which covers the collection and audience too) are left
alone. A document the store could not write (Elasticsearch reports such per document) comes back `failed`
with the store's reason and is tried again by the next ingest. Knows nothing of files: `ingest/` made the
documents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.chunking import context_prefix
from ingest.documents import KIND_FAQ, Document
from rag.analysis import Analyzer, detect_language
from rag.embeddings import MIN_READABLE, Embedder
from rag.store import ChunkRecord, DocumentRecord, IndexSpec, KnowledgeStore, chunk_id_for
from rag.vector_spaces import VectorSpaces

# Documents are embedded and written in groups of about this many chunks: large enough to keep the
# embedder's batches full, small enough that a crash loses little work.
WRITE_GROUP_CHUNKS = 512


@dataclass
class IndexOutcome:
    doc_id: str
    status: str  # "indexed" | "unchanged" | "failed"
    chunks: int
    error: str | None = None


def index_spec(spaces: VectorSpaces, analyzer: Analyzer) -> IndexSpec:
    """The spec a store built with these models and this analysis records."""
    return IndexSpec(analysis=analyzer.fingerprint, spaces=spaces.spec_spaces())


def matching_text(kind: str, title: str, section: str, match_text: str) -> str:
    """What BM25 and the embedder see for a chunk: an FAQ question alone; prose with its title and section
    first, so a passage that never names its subject still matches it. Answer relevance is judged on the
    same text (`app.answering.rules.judge`)."""
    if kind == KIND_FAQ:
        return match_text
    prefix = context_prefix(title, section)
    return f"{prefix}\n{match_text}" if prefix else match_text


def embed_readable(embedder: Embedder, texts: list[str], query: bool = False) -> np.ndarray:
    """Embed texts (as passages, or as queries); a text the model cannot read (mostly unknown tokens) gets a
    zero vector, so it has no dense similarity to anything rather than a meaningless one."""
    readable = [r >= MIN_READABLE for r in embedder.readable(texts)]
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    wanted = [i for i, ok in enumerate(readable) if ok]
    if wanted:
        embed = embedder.embed_queries if query else embedder.embed_documents
        vectors[wanted] = embed([texts[i] for i in wanted])
    return vectors


def stored_matching_text(kind: str, title: str, section: str, text: str, metadata: dict[str, Any]) -> str:
    """`matching_text` rebuilt from a stored chunk (an FAQ chunk keeps its question in its metadata), for
    re-embedding and for judging answers."""
    match = str(metadata.get("question") or section) if kind == KIND_FAQ else text
    return matching_text(kind, title, section, match)


class Indexer:
    def __init__(self, store: KnowledgeStore, spaces: VectorSpaces, analyzer: Analyzer):
        self.store = store
        self.spaces = spaces
        self.analyzer = analyzer
        self._claimed = False

    def _claim(self) -> None:
        if not self._claimed:
            self.store.claim(index_spec(self.spaces, self.analyzer))
            self._claimed = True

    def index(
        self,
        documents: Iterable[Document],
        on_progress: Callable[[int], None] | None = None,
    ) -> list[IndexOutcome]:
        """Index documents; returns one outcome per document in input order. on_progress(n) after each group."""
        self._claim()
        docs = list(documents)
        stored = self.store.content_hashes([d.doc_id for d in docs])
        outcomes: list[IndexOutcome] = []
        failures: dict[str, str] = {}
        pending: list[Document] = []
        pending_chunks = 0
        for doc in docs:
            if stored.get(doc.doc_id) == doc.content_hash:
                outcomes.append(IndexOutcome(doc.doc_id, "unchanged", len(doc.chunks)))
                continue
            outcomes.append(IndexOutcome(doc.doc_id, "indexed", len(doc.chunks)))
            pending.append(doc)
            pending_chunks += len(doc.chunks)
            if pending_chunks >= WRITE_GROUP_CHUNKS:
                failures.update(self._write(pending))
                if on_progress:
                    on_progress(len(pending))
                pending, pending_chunks = [], 0
        if pending:
            failures.update(self._write(pending))
            if on_progress:
                on_progress(len(pending))
        for outcome in outcomes:
            if outcome.doc_id in failures and outcome.status == "indexed":
                outcome.status, outcome.error = "failed", failures[outcome.doc_id]
        return outcomes

    def _write(self, docs: Sequence[Document]) -> dict[str, str]:
        """Write a group of documents; returns {doc_id: reason} for those the store could not write."""
        texts = [matching_text(doc.kind, doc.title, c.section, c.match_text) for doc in docs for c in doc.chunks]
        vectors = self.spaces.embed_passages(texts, [doc.kind for doc in docs for _ in doc.chunks])
        items = []
        row = 0
        for doc in docs:
            records = []
            for chunk in doc.chunks:
                language = detect_language(chunk.text) or detect_language(doc.title)
                records.append(
                    ChunkRecord(
                        chunk_id=chunk_id_for(doc.doc_id, chunk.ord),
                        doc_id=doc.doc_id,
                        ord=chunk.ord,
                        text=chunk.text,
                        terms=self.analyzer.analyzed_text(texts[row]),
                        vectors=vectors[row],
                        section=chunk.section,
                        page=chunk.page,
                        language=language,
                        metadata=chunk.metadata,
                    )
                )
                row += 1
            languages = Counter(r.language for r in records if r.language)
            language = doc.language or (languages.most_common(1)[0][0] if languages else "")
            if len(languages) > 1 and doc.kind == KIND_FAQ:
                language = "mixed"
            record = DocumentRecord(
                doc_id=doc.doc_id,
                source=doc.source,
                title=doc.title,
                kind=doc.kind,
                language=language,
                content_hash=doc.content_hash,
                metadata=doc.metadata,
                collection=doc.collection,
                audience=doc.audience,
            )
            items.append((record, records))
        return self.store.replace_documents(items) or {}
