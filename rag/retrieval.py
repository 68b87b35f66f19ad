"""Hybrid retrieval: BM25 top-N and dense top-N from a store, fused by reciprocal rank fusion.

Works over any `KnowledgeStore`; the fusion is `rag.fusion`'s pure function, so every backend ranks alike.
Results come back per chunk (for answering) or max-pooled per document (for `kefu search --run`, where a
document's score is its best chunk's). A `SearchFilter` (collection, audience, language, source, document)
restricts both rankers' candidates inside the store; a retriever's own filter (e.g. the audiences customers
may see) always applies, and a per-search filter narrows it further. Knows nothing about answers or sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.analysis import Analyzer
from rag.embeddings import MIN_READABLE, Embedder
from rag.fusion import DEFAULT_RRF_K, reciprocal_rank_fusion
from rag.store import KnowledgeStore, SearchFilter, StoredChunk, doc_id_of

MODES = ("hybrid", "lexical", "dense")


@dataclass
class SearchHit:
    chunk: StoredChunk
    score: float  # the fused score (hybrid), BM25 (lexical) or cosine (dense)
    lexical_rank: int | None = None
    lexical_score: float | None = None
    dense_rank: int | None = None
    similarity: float | None = None  # cosine of query and chunk, whatever the mode found it by

    def to_dict(self) -> dict:
        c = self.chunk
        return {
            "doc_id": c.doc_id,
            "title": c.title,
            "source": c.source,
            "chunk_id": c.chunk_id,
            "score": round(self.score, 6),
            "text": c.text,
            "section": c.section,
            "page": c.page,
            "kind": c.kind,
            "language": c.language,
            "lexical_rank": self.lexical_rank,
            "dense_rank": self.dense_rank,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
        }


@dataclass
class _Ranked:
    """One query's candidate rankings before fusion: ids best first, with their raw scores."""

    lexical: list[tuple[str, float]]
    dense: list[tuple[str, float]]


class HybridRetriever:
    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        analyzer: Analyzer,
        candidates: int = 100,
        rrf_k: float = DEFAULT_RRF_K,
        filters: SearchFilter | None = None,
    ):
        self.store = store
        self.embedder = embedder
        self.analyzer = analyzer
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.filters = filters

    def search(
        self,
        query: str,
        k: int = 10,
        mode: str = "hybrid",
        per_document: bool = False,
        filters: SearchFilter | None = None,
    ) -> list[SearchHit]:
        return self.search_many([query], k=k, mode=mode, per_document=per_document, filters=filters)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        mode: str = "hybrid",
        per_document: bool = False,
        filters: SearchFilter | None = None,
    ) -> list[list[SearchHit]]:
        """Search many queries at once (queries are embedded in one batch).

        With per_document, each document appears once, represented by its best chunk, and each ranker's
        candidates are pooled per document before fusion, so a document is judged by its best chunk.
        `filters` narrows the retriever's own filter.
        """
        filters = self.filters & filters if self.filters else filters
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}: choose one of {', '.join(MODES)}")
        if k <= 0:
            return [[] for _ in queries]
        depth = max(self.candidates, k * (3 if per_document else 1))
        queries = list(queries)
        dense_lists: list[list[tuple[str, float]]] = [[] for _ in queries]
        vectors: list[np.ndarray | None] = [None] * len(queries)
        if mode != "lexical":
            # A query the embedding model cannot read (Chinese for an English-only model) gets no dense
            # ranking and no similarity: its vector would rank chunks at random.
            readable = [i for i, r in enumerate(self.embedder.readable(queries)) if r >= MIN_READABLE]
            if readable:
                embedded = self.embedder.embed_queries([queries[i] for i in readable])
                found_lists = self.store.vector_search(embedded, depth, filters=filters)
                for i, vector, found in zip(readable, embedded, found_lists):
                    vectors[i], dense_lists[i] = vector, found
        results = []
        for i, query in enumerate(queries):
            terms = self.analyzer.query_terms(query)
            lexical = self.store.lexical_search(terms, depth, filters=filters) if mode != "dense" else []
            ranked = _Ranked(lexical=lexical, dense=dense_lists[i])
            results.append(self._fuse(ranked, k, mode, per_document, vectors[i]))
        return results

    def _fuse(
        self, ranked: _Ranked, k: int, mode: str, per_document: bool, vector: np.ndarray | None
    ) -> list[SearchHit]:
        """Fuse on chunks, or on documents with per_document (a document's rank in each list is its best
        chunk's), and represent each result by the chunk that ranked it best."""
        lexical, dense = ranked.lexical, ranked.dense
        key = doc_id_of if per_document else _identity
        if per_document:
            lexical, dense = _pool(lexical), _pool(dense)
        # key -> (rank, score, chunk id) in each list
        lexical_pos = {key(cid): (rank, score, cid) for rank, (cid, score) in enumerate(lexical, start=1)}
        dense_pos = {key(cid): (rank, score, cid) for rank, (cid, score) in enumerate(dense, start=1)}
        if mode == "hybrid":
            fused = reciprocal_rank_fusion([list(lexical_pos), list(dense_pos)], k=self.rrf_k, limit=k)
        else:
            fused = [(key(cid), score) for cid, score in (lexical if mode == "lexical" else dense)[:k]]

        def best_chunk(item: str) -> str:
            lex, den = lexical_pos.get(item), dense_pos.get(item)
            return (lex if lex and (not den or lex[0] <= den[0]) else den)[2]

        chosen = [(item, best_chunk(item), score) for item, score in fused]
        chunks = self.store.get_chunks([cid for _, cid, _ in chosen])
        sims = {cid: s for _, s, cid in dense_pos.values()}
        missing = [cid for _, cid, _ in chosen if cid not in sims]
        if vector is not None and missing:
            sims.update(self.store.similarities(vector, missing))
        hits = []
        for item, cid, score in chosen:
            if cid not in chunks:  # deleted between the search and the read
                continue
            lex, den = lexical_pos.get(item), dense_pos.get(item)
            hits.append(
                SearchHit(
                    chunk=chunks[cid],
                    score=score,
                    lexical_rank=lex[0] if lex else None,
                    lexical_score=lex[1] if lex else None,
                    dense_rank=den[0] if den else None,
                    similarity=sims.get(cid),
                )
            )
        return hits


def _identity(chunk_id: str) -> str:
    return chunk_id


def _pool(ranking: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Keep each document's best chunk (rankings are best first), so a ranking lists documents once."""
    seen: set[str] = set()
    out = []
    for chunk_id, score in ranking:
        doc_id = doc_id_of(chunk_id)
        if doc_id not in seen:
            seen.add(doc_id)
            out.append((chunk_id, score))
    return out
