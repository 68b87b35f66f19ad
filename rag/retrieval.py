"""Hybrid retrieval: BM25 top-N and dense top-N from a store, fused by reciprocal rank fusion.

Dense search runs once per vector space (`rag.vector_spaces`): the main model's vector of a question searches
the main model's vectors, the multilingual model's vector the multilingual ones. The spaces' rankings are
interleaved into one dense ranking (`rag.fusion.interleave`: each chunk at its best rank) before BM25 and
dense are fused, so a chunk both models embed (an FAQ question) is not counted twice, and a space with no
vectors for a corpus changes nothing. Works over any
`KnowledgeStore`; the fusion is `rag.fusion`'s pure function, so every backend ranks alike.
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
from rag.fusion import DEFAULT_RRF_K, interleave, reciprocal_rank_fusion
from rag.store import KnowledgeStore, SearchFilter, StoredChunk, doc_id_of
from rag.vector_spaces import VectorSpaces

MODES = ("hybrid", "lexical", "dense")
# What a hit's `score` is: reciprocal rank fusion (hybrid; dense over several vector spaces), BM25 (lexical) or a
# cosine (dense, one vector space). Front ends label the score by it.
SCORE_RRF, SCORE_BM25, SCORE_COSINE = "rrf", "bm25", "cosine"


@dataclass
class SearchHit:
    chunk: StoredChunk
    score: float  # the fused score (hybrid; dense with two spaces), BM25 (lexical) or cosine (dense, one space)
    lexical_rank: int | None = None
    lexical_score: float | None = None
    dense_rank: int | None = None  # the best rank in any space's dense ranking
    similarity: float | None = None  # cosine of query and chunk in the main space, whatever the mode found it by
    multilingual_similarity: float | None = None  # the same in the multilingual space (its own scale)
    score_kind: str = SCORE_RRF  # what `score` is: SCORE_RRF, SCORE_BM25 or SCORE_COSINE

    def to_dict(self) -> dict:
        c = self.chunk
        return {
            "doc_id": c.doc_id,
            "title": c.title,
            "source": c.source,
            "chunk_id": c.chunk_id,
            "score": round(self.score, 6),
            "score_kind": self.score_kind,
            "text": c.text,
            "section": c.section,
            "page": c.page,
            "kind": c.kind,
            "language": c.language,
            "lexical_rank": self.lexical_rank,
            "dense_rank": self.dense_rank,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "multilingual_similarity": None if self.multilingual_similarity is None else round(self.multilingual_similarity, 4),
        }


@dataclass
class _Ranked:
    """One query's candidate rankings before fusion: ids best first, with their raw scores."""

    lexical: list[tuple[str, float]]
    dense: dict[str, list[tuple[str, float]]]  # model -> ranking
    vectors: dict[str, np.ndarray]  # model -> the query's vector


class HybridRetriever:
    def __init__(
        self,
        store: KnowledgeStore,
        spaces: VectorSpaces,
        analyzer: Analyzer,
        candidates: int = 100,
        rrf_k: float = DEFAULT_RRF_K,
        filters: SearchFilter | None = None,
    ):
        self.store = store
        self.spaces = spaces
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
        """Search many queries at once (queries are embedded in one batch per model).

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
        ranked = [_Ranked([], {}, {}) for _ in queries]
        if mode != "lexical":
            # A query the main model cannot read (Chinese for an English-only model) gets no vector in its
            # space: that vector would rank chunks at random. The multilingual model reads every query.
            for space in self.spaces.embed_queries(queries):
                found = self.store.vector_search(space.vectors, depth, filters=filters, model=space.model)
                for i, vector, ranking in zip(space.rows, space.vectors, found):
                    ranked[i].dense[space.model] = ranking
                    ranked[i].vectors[space.model] = vector
        results = []
        for i, query in enumerate(queries):
            if mode != "dense":
                ranked[i].lexical = self.store.lexical_search(self.analyzer.query_terms(query), depth, filters=filters)
            results.append(self._fuse(ranked[i], k, mode, per_document))
        return results

    def _fuse(self, ranked: _Ranked, k: int, mode: str, per_document: bool) -> list[SearchHit]:
        """Fuse on chunks, or on documents with per_document (a document's rank in each list is its best
        chunk's), and represent each result by the chunk that ranked it best."""
        key = doc_id_of if per_document else _identity
        lexical = _pool(ranked.lexical) if per_document else ranked.lexical
        dense = {m: (_pool(r) if per_document else r) for m, r in ranked.dense.items()}
        # key -> (rank, score, chunk id) in each list
        lexical_pos = {key(cid): (rank, score, cid) for rank, (cid, score) in enumerate(lexical, start=1)}
        dense_pos = {m: {key(cid): (rank, score, cid) for rank, (cid, score) in enumerate(r, start=1)} for m, r in dense.items()}
        merged = interleave([list(p) for p in dense_pos.values()])
        kind = SCORE_RRF
        if mode == "hybrid":
            fused = reciprocal_rank_fusion([list(lexical_pos), merged], k=self.rrf_k, limit=k)
        elif mode == "lexical":
            fused, kind = [(key(cid), score) for cid, score in lexical[:k]], SCORE_BM25
        elif len(dense) == 1:  # one space: its cosines
            fused, kind = [(key(cid), score) for cid, score in next(iter(dense.values()))[:k]], SCORE_COSINE
        else:  # several spaces: cosines of different models do not compare, ranks do
            fused = [(item, 1.0 / (self.rrf_k + rank)) for rank, item in enumerate(merged[:k], start=1)]
        positions = [lexical_pos, *dense_pos.values()]

        def best_chunk(item: str) -> str:
            found = [p[item] for p in positions if item in p]
            return min(found, key=lambda f: f[0])[2]

        chosen = [(item, best_chunk(item), score) for item, score in fused]
        chunks = self.store.get_chunks([cid for _, cid, _ in chosen])
        sims: dict[str, dict[str, float]] = {}
        for model, pos in dense_pos.items():
            sims[model] = {cid: s for _, s, cid in pos.values()}
            missing = [cid for _, cid, _ in chosen if cid not in sims[model]]
            if missing:
                sims[model].update(self.store.similarities(ranked.vectors[model], missing, model=model))
        main, multilingual = self.spaces.main.name, self.spaces.multilingual.name if self.spaces.multilingual else None
        hits = []
        for item, cid, score in chosen:
            if cid not in chunks:  # deleted between the search and the read
                continue
            lex = lexical_pos.get(item)
            dense_ranks = [p[item][0] for p in dense_pos.values() if item in p]
            hits.append(
                SearchHit(
                    chunk=chunks[cid],
                    score=score,
                    lexical_rank=lex[0] if lex else None,
                    lexical_score=lex[1] if lex else None,
                    dense_rank=min(dense_ranks) if dense_ranks else None,
                    similarity=sims.get(main, {}).get(cid),
                    multilingual_similarity=sims.get(multilingual, {}).get(cid) if multilingual else None,
                    score_kind=kind,
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
