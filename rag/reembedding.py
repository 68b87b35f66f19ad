"""Re-embedding: what `kefu index rebuild` does when the configured models, their scopes or the text analysis
differ from what the store was built with (or the store was written by an older Kefu).

Every document is read back from the store (`export_documents`), its chunks' match texts rebuilt
(`rag.indexing.stored_matching_text`), and each vector space filled by its rule (`rag.vector_spaces`): vectors
of a model the store already holds are reused, missing ones embedded (in large batches across documents),
ones a space no longer wants dropped; terms are re-analysed only when the analysis changed. The store takes
it all through `rewrite`, as one switch, so searches see the old index until the new one is complete and a
query never meets a half-converted store. With nothing changed it only compacts the store (`rebuild`).
Knows nothing of files or answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.analysis import Analyzer
from rag.indexing import WRITE_GROUP_CHUNKS, index_spec, stored_matching_text
from rag.store import ChunkRecord, DocumentRecord, IndexSpec, KnowledgeStore
from rag.vector_spaces import VectorSpaces

Progress = Callable[[int, int], None]  # (documents done, documents in all)


@dataclass
class _Counts:
    documents: int = 0
    embedded: dict[str, int] = field(default_factory=dict)  # model -> vectors computed
    reused: int = 0


def rebuild_index(
    store: KnowledgeStore, spaces: VectorSpaces, analyzer: Analyzer, on_progress: Progress | None = None
) -> dict[str, Any]:
    """Bring the store to the configured spec, re-embedding what needs it; returns the store's facts plus
    `reembedded` (bool), `vectors_embedded` ({model: count}) and `vectors_reused`."""
    target = index_spec(spaces, analyzer)
    stored = store.index_spec()
    if stored is None or stored == target:
        return {**store.rebuild(), "reembedded": False, "vectors_embedded": {}, "vectors_reused": 0}
    total = int(store.stats().get("documents", 0))
    counts = _Counts()
    items = _reembedded(store, stored, target, spaces, analyzer, counts, total, on_progress)
    result = store.rewrite(target, items)
    return {**result, "reembedded": True, "vectors_embedded": counts.embedded, "vectors_reused": counts.reused}


def _reembedded(
    store: KnowledgeStore,
    stored: IndexSpec,
    target: IndexSpec,
    spaces: VectorSpaces,
    analyzer: Analyzer,
    counts: _Counts,
    total: int,
    on_progress: Progress | None,
) -> Iterator[tuple[DocumentRecord, list[ChunkRecord]]]:
    """The store's documents with their chunks brought to `target`, in groups of about WRITE_GROUP_CHUNKS."""
    reanalyse = stored.analysis != target.analysis
    reusable = set(stored.models) & set(target.models)
    group: list[tuple[DocumentRecord, list[ChunkRecord]]] = []
    size = 0
    for doc, chunks in store.export_documents():
        group.append((doc, chunks))
        size += len(chunks)
        if size >= WRITE_GROUP_CHUNKS:
            yield from _convert(group, spaces, analyzer, reanalyse, reusable, counts)
            group, size = [], 0
            if on_progress:
                on_progress(counts.documents, total)
    if group:
        yield from _convert(group, spaces, analyzer, reanalyse, reusable, counts)
    if on_progress:
        on_progress(counts.documents, total)


def _convert(
    group: Sequence[tuple[DocumentRecord, list[ChunkRecord]]],
    spaces: VectorSpaces,
    analyzer: Analyzer,
    reanalyse: bool,
    reusable: set[str],
    counts: _Counts,
) -> Iterator[tuple[DocumentRecord, list[ChunkRecord]]]:
    texts, kinds, keep = [], [], []
    for doc, chunks in group:
        for c in chunks:
            texts.append(stored_matching_text(doc.kind, doc.title, c.section, c.text, c.metadata))
            kinds.append(doc.kind)
            keep.append({m: v for m, v in c.vectors.items() if m in reusable and np.any(v)})
    vectors = spaces.embed_passages(texts, kinds, keep)
    row = 0
    for doc, chunks in group:
        out = []
        for c in chunks:
            for model in vectors[row]:
                if model in keep[row]:
                    counts.reused += 1
                else:
                    counts.embedded[model] = counts.embedded.get(model, 0) + 1
            terms = analyzer.analyzed_text(texts[row]) if reanalyse else c.terms
            out.append(ChunkRecord(c.chunk_id, c.doc_id, c.ord, c.text, terms, vectors[row], section=c.section,
                                   page=c.page, language=c.language, metadata=c.metadata))  # fmt: skip
            row += 1
        counts.documents += 1
        yield doc, out
