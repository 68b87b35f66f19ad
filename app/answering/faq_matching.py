"""The learned FAQ decision: which FAQ entry the search found, if any, answers a question directly, decided by
the matcher trained on AFQMC (`rag.faq_matcher`) instead of one cosine threshold.

This is the adapter around that pure matcher: from one question's search hits it gathers what the matcher
reads (the FAQ entries among the hits, in the question's language when there are any; each side's terms from
the analyzer; idf weights from the store; the multilingual cosines the hits carry; each vector's cosine with
the matcher's mean direction, the question's from its (cached) query vector and the entries' from the store's
`similarities`) and returns the verdict `app.answering.rules.plan` acts on. It answers only questions in the
languages the matcher was trained for (Chinese); elsewhere, and without a multilingual model, `plan` keeps the
cosine thresholds. It knows nothing about prompts, answers or settings.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.answering.rules import FaqVerdict, idf_weights  # the verdict plan() acts on; the judge's weights
from ingest.documents import KIND_FAQ
from rag.analysis import Analyzer
from rag.embeddings import Embedder
from rag.faq_matcher import FaqMatcher, Side
from rag.retrieval import SearchHit
from rag.store import KnowledgeStore

# FAQ entries the matcher weighs for one question: its margin over the runner-up is half its evidence, so it
# needs the runners-up (the bench gave it the 20 best by cosine and by term overlap).
FAQ_CANDIDATES = 20
LANGUAGES = ("zh",)


def faq_question(hit: SearchHit) -> str:
    """The question an FAQ chunk was indexed by."""
    chunk = hit.chunk
    return str(chunk.metadata.get("question") or chunk.section or chunk.text)


class LearnedFaq:
    """Decides the FAQ answer with `matcher` over one store, analyzer and multilingual model (the one whose
    cosines the matcher was trained on; `model_name` is its vector space in the store)."""

    def __init__(self, matcher: FaqMatcher, store: KnowledgeStore, analyzer: Analyzer, multilingual: Embedder):
        self.matcher = matcher
        self.store = store
        self.analyzer = analyzer
        self.multilingual = multilingual

    def decide(self, question: str, language: str, hits: Sequence[SearchHit]) -> FaqVerdict | None:
        """The verdict for `question` over its search `hits`; None where the matcher does not decide (another
        language, or no FAQ entry with a multilingual cosine among the hits): the caller's rule applies."""
        if language not in LANGUAGES:
            return None
        faqs = [h for h in hits if h.chunk.kind == KIND_FAQ and h.multilingual_similarity is not None]
        faqs = [h for h in faqs if h.chunk.language in ("", language)] or faqs
        if not faqs:
            return None
        direction = self.matcher.mean_direction
        texts = [faq_question(h) for h in faqs]
        q_terms = tuple(self.analyzer.query_terms(question))
        c_terms = [tuple(self.analyzer.query_terms(t)) for t in texts]
        total, frequencies = self.store.term_statistics(list(dict.fromkeys([*q_terms, *(t for ts in c_terms for t in ts)])))
        idf = idf_weights(total, frequencies)
        q_mean = c_means = None
        if direction is not None:
            q_mean = float(self.multilingual.embed_queries([question])[0] @ direction)
            ids = [h.chunk.chunk_id for h in faqs]
            c_means = self.store.similarities(direction, ids, model=self.multilingual.name)
        sides = [
            Side(t, terms, None if c_means is None else c_means.get(h.chunk.chunk_id))
            for h, t, terms in zip(faqs, texts, c_terms)
        ]
        found = self.matcher.match(Side(question, q_terms, q_mean), sides, [h.multilingual_similarity for h in faqs], idf)
        if found is None:
            return None
        return FaqVerdict(faqs[found.index], found.confidence, found.confident)
