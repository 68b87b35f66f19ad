"""Answers without a language model: pure functions from a question and its retrieved passages to an
answer, a mode and the sources it cites.

- `faq`: an FAQ entry whose question matches the customer's confidently answers directly.
- `extractive`: otherwise the most relevant sentences of the best passages are quoted, each cited [n].
  (With a language model configured, `app.dialogue.manager` writes a `generated` answer from the same passages.)
- `abstain`: nothing relevant was found; Kefu says so (a conversation a person can take over offers one).

Relevance mixes two signals a reader can check: the cosine similarity of question and passage, and the
share of the question's terms (weighted by inverse document frequency) that the passage contains.
An FAQ entry answers directly when its question means the customer's: the main model's cosine or the
multilingual model's cosine (which reads Chinese paraphrases) clears its threshold; where no multilingual
cosine is known, term overlap counts too (as before issue #12). Term overlap does not decide alone where
the meaning is known: on AFQMC's different-but-similar question pairs it passes 5.4% of them by itself. The
multilingual cosine has its own scale (E5's unrelated questions still score ~0.8), so it is put on the main
scale first (`on_main_scale`): its calibrated threshold lands on the main threshold.
Nothing here does I/O: terms, weights and hits are passed in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from app.answering.excerpts import asked_fact, best_excerpt, states_fact
from app.guardrails.injection import injection_sentences
from ingest.documents import KIND_FAQ
from rag.indexing import stored_matching_text
from rag.retrieval import SearchHit

MODE_FAQ = "faq"
MODE_GENERATED = "generated"
MODE_EXTRACTIVE = "extractive"
MODE_ABSTAIN = "abstain"
MODE_HANDOFF = "handoff"
MODE_SMALLTALK = "smalltalk"  # a greeting, thanks or goodbye answered without a search (`app.dialogue.manager`)
MODES = (MODE_FAQ, MODE_GENERATED, MODE_EXTRACTIVE, MODE_ABSTAIN, MODE_HANDOFF, MODE_SMALLTALK)

Terms = Callable[[str], Sequence[str]]

# A passage after the first is quoted only when its relevance is within this margin of the first's.
SECONDARY_MARGIN = 0.15

MESSAGES = {
    # Neutral: what every channel may say (a batch row, an API caller). A conversation that a person can take over
    # adds the offer (`app.dialogue.replies`); nobody is told how to operate Kefu.
    "abstain": {
        "en": "I couldn't find an answer to that in our knowledge base.",
        "zh": "抱歉，我在知识库中没有找到相关信息。",
    },
    "empty": {
        "en": "The knowledge base is empty, so I can't answer yet.",
        "zh": "知识库还是空的，暂时无法回答。",
    },
    "intro": {"en": "Here is what I found in our knowledge base:", "zh": "以下是知识库中的相关内容："},
}


def message(key: str, language: str, table: dict[str, dict[str, str]] = MESSAGES) -> str:
    """A fixed text in the customer's language (English when there is none in it)."""
    texts = table[key]
    return texts.get(language, texts["en"])


@dataclass
class Answer:
    answer: str
    mode: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: int = 0
    session_id: str | None = None
    language: str = "en"
    confidence: float | None = None  # how sure the decision was (see `confidence_of`)
    query: str | None = None  # the standalone question searched, when one was
    intent: str | None = None
    message_id: int | None = None  # the stored answer's id (for feedback), when stored
    question_id: int | None = None  # the stored customer message it answers
    status: str | None = None  # the conversation's handoff status after this turn
    guardrails: list[str] = field(default_factory=list)  # what the output policy changed (for the audit log)
    personal_data: list[str] = field(default_factory=list)  # kinds of personal data the customer's message held
    cached: bool = False  # taken from the answer cache (`app.answering.cache`), not searched and written again

    def verdicts(self) -> dict[str, Any]:
        """The guardrails' verdicts on this answer, for the audit log (never text)."""
        out: dict[str, Any] = {}
        if self.guardrails:
            out["output"] = sorted(set(self.guardrails))[:20]
        if self.intent == "attack":
            out["injection"] = True
        if self.personal_data:
            out["personal_data"] = self.personal_data
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "mode": self.mode,
            "sources": self.sources,
            "latency_ms": self.latency_ms,
            "session_id": self.session_id,
            "language": self.language,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "query": self.query,
            "intent": self.intent,
            "message_id": self.message_id,
            "question_id": self.question_id,
            "status": self.status,
            "cached": self.cached,
        }


@dataclass
class Judged:
    """A hit with the evidence for using it."""

    hit: SearchHit
    coverage: float  # idf-weighted share of the question's terms found in the passage
    overlap: float  # idf-weighted F1 of question terms and passage terms (for FAQ question matching)
    relevance: float


def idf_weights(total: int, document_frequencies: dict[str, int]) -> dict[str, float]:
    """BM25's idf for each term; a term no chunk contains gets the largest weight (it is what the
    question is about, and the knowledge base does not know it)."""
    return {t: math.log(1 + (total - df + 0.5) / (df + 0.5)) for t, df in document_frequencies.items()}


def coverage(query_terms: Sequence[str], text_terms: set[str], weights: dict[str, float]) -> float:
    total = sum(weights.get(t, 1.0) for t in query_terms)
    if total <= 0:
        return 0.0
    return sum(weights.get(t, 1.0) for t in query_terms if t in text_terms) / total


def overlap_f1(query_terms: Sequence[str], text_terms: Sequence[str], weights: dict[str, float]) -> float:
    q, t = set(query_terms), set(text_terms)
    if not q or not t:
        return 0.0
    common = sum(weights.get(x, 1.0) for x in q & t)
    wq = sum(weights.get(x, 1.0) for x in q)
    wt = sum(weights.get(x, 1.0) for x in t)
    return 2 * common / (wq + wt) if wq + wt else 0.0


def matched_text(hit: SearchHit) -> str:
    """The text a stored chunk was matched on when it was indexed (an FAQ's question; prose with its title
    and section), rebuilt with the indexer's own function."""
    chunk = hit.chunk
    return stored_matching_text(chunk.kind, chunk.title, chunk.section, chunk.text, chunk.metadata)


def _strip_spans(text: str, spans: Sequence[tuple[int, int]]) -> str:
    out, last = [], 0
    for start, end in spans:
        out.append(text[last:start])
        last = end
    out.append(text[last:])
    return re.sub(r"[ \t]{2,}", " ", "".join(out)).strip()


def without_instructions(hit: SearchHit) -> SearchHit | None:
    """The hit with the sentences that give the assistant orders (planted instructions: `app.guardrails.injection`) cut out
    of its text, so they are never quoted, prompted or shown; None when nothing else is left."""
    chunk = hit.chunk
    spans = injection_sentences(chunk.text)
    answer = str(chunk.metadata.get("answer") or "")
    answer_spans = injection_sentences(answer) if answer else []
    if not spans and not answer_spans:
        return hit
    text = _strip_spans(chunk.text, spans)
    metadata = dict(chunk.metadata)
    if answer:
        metadata["answer"] = _strip_spans(answer, answer_spans)
    if not text or (chunk.kind == KIND_FAQ and answer and not metadata["answer"]):
        return None
    metadata["instructions_removed"] = len(spans) + len(answer_spans)
    return replace(hit, chunk=replace(chunk, text=text, metadata=metadata))


@dataclass(frozen=True)
class MultilingualScale:
    """How the multilingual model's cosines map onto the main scale (`on_main_scale`): `threshold` (its
    confident-FAQ cosine) lands on `target` (the main FAQ threshold) and `floor` (its cosine for unrelated
    text) on 0."""

    threshold: float
    target: float
    floor: float = 0.0

    def __call__(self, cosine: float) -> float:
        return on_main_scale(cosine, self.threshold, self.target, self.floor)


def judge(
    hits: Sequence[SearchHit],
    query_terms: Sequence[str],
    weights: dict[str, float],
    terms: Terms,
    multilingual: MultilingualScale | None = None,
) -> list[Judged]:
    """Score each hit's relevance: the mean of the main model's cosine and term coverage. Where the main model
    could not read the question or the passage, the coverage alone, raised to the mean of the multilingual
    cosine (on the main scale, given `multilingual`) and the coverage when that is higher: a paraphrase that
    shares few terms can be relevant by its meaning, and nothing relevant by its terms becomes less so."""
    judged = []
    for hit in hits:
        text_terms = list(terms(matched_text(hit)))
        cov = coverage(query_terms, set(text_terms), weights)
        ovl = overlap_f1(query_terms, text_terms, weights)
        if hit.similarity is not None:
            relevance = (max(0.0, hit.similarity) + cov) / 2
        elif multilingual is not None and hit.multilingual_similarity is not None:
            relevance = max(cov, (multilingual(hit.multilingual_similarity) + cov) / 2)
        else:
            relevance = cov
        judged.append(Judged(hit, cov, ovl, relevance))
    return judged


def on_main_scale(cosine: float, threshold: float, target: float, floor: float = 0.0) -> float:
    """A cosine of a model with its own scale, put on the main one: `threshold` (where that model's matches
    become confident) lands on `target` (the main threshold), 1 stays 1 and `floor` (and below) 0, linear
    in between."""
    if cosine >= threshold:
        return 1.0 if threshold >= 1.0 else target + (cosine - threshold) * (1.0 - target) / (1.0 - threshold)
    if cosine <= floor or threshold <= floor:
        return 0.0
    return (cosine - floor) * target / (threshold - floor)


def faq_confidence(j: Judged, min_similarity: float = 0.8, min_multilingual_similarity: float | None = None) -> float:
    """How surely an FAQ entry's question is the customer's, on the main scale: the better of the main model's
    cosine and (given its threshold) the multilingual model's cosine put on that scale; without a multilingual
    cosine, the better of the main cosine and the term overlap."""
    main = j.hit.similarity or 0.0
    if min_multilingual_similarity is not None and j.hit.multilingual_similarity is not None:
        return max(main, on_main_scale(j.hit.multilingual_similarity, min_multilingual_similarity, min_similarity))
    return max(main, j.overlap)


def _excerpt(j: Judged, query_terms: Sequence[str], weights: dict[str, float], terms: Terms, question: str) -> str:
    chunk = j.hit.chunk
    if chunk.kind == KIND_FAQ:  # the question too: "No." alone would not say to what
        asked = str(chunk.metadata.get("question") or "")
        return f"{asked} {chunk.metadata.get('answer') or chunk.text}".strip()
    return best_excerpt(chunk.text, query_terms, weights, terms, question=question)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def source_entry(hit: SearchHit, relevance: float | None = None) -> dict[str, Any]:
    entry = hit.to_dict()
    if relevance is not None:
        entry["relevance"] = round(relevance, 4)
    return entry


@dataclass(frozen=True)
class FaqVerdict:
    """The learned matcher's pick among a question's FAQ hits (`app.answering.faq_matching`), how sure it is (a
    probability) and whether that is confident enough to answer with the entry directly."""

    hit: SearchHit
    confidence: float
    confident: bool


def plan(
    question_language: str,
    judged: Sequence[Judged],
    faq_min_similarity: float,
    min_relevance: float,
    max_sources: int,
    faq_min_multilingual_similarity: float | None = None,
    faq_verdict: FaqVerdict | None = None,
) -> tuple[Answer | None, list[Judged]]:
    """The decision every answer starts with: an FAQ answer or an abstention (an Answer, no passages), or the
    passages an answer should be written from (None, passages best first). Given the learned matcher's
    `faq_verdict` (`app.answering.faq_matching`), its entry answers when it is confident and no other FAQ entry answers directly;
    otherwise an FAQ entry answers when its `faq_confidence` reaches faq_min_similarity (the multilingual cosine
    is used only with its threshold)."""

    def confidence(j: Judged) -> float:
        return faq_confidence(j, faq_min_similarity, faq_min_multilingual_similarity)

    if faq_verdict is not None:
        if faq_verdict.confident:
            hit, sure = faq_verdict.hit, faq_verdict.confidence
            answer = str(hit.chunk.metadata.get("answer") or hit.chunk.text)
            return Answer(answer, MODE_FAQ, [source_entry(hit, sure)], language=question_language, confidence=sure), []
        faqs = []  # the matcher weighed the FAQ entries and none is sure: they count as passages below
    else:
        faqs = [j for j in judged if j.hit.chunk.kind == KIND_FAQ]
    same_language = [j for j in faqs if j.hit.chunk.language in ("", question_language)]
    best_faq = max(same_language or faqs, key=confidence, default=None)
    if best_faq is not None and confidence(best_faq) >= faq_min_similarity:
        answer = str(best_faq.hit.chunk.metadata.get("answer") or best_faq.hit.chunk.text)
        best = confidence(best_faq)
        return Answer(answer, MODE_FAQ, [source_entry(best_faq.hit, best)], language=question_language, confidence=best), []

    relevant = [j for j in judged if j.relevance >= min_relevance]
    if not relevant:
        best = max((j.relevance for j in judged), default=0.0)
        return Answer(message("abstain", question_language), MODE_ABSTAIN, language=question_language, confidence=best), []
    # Answer in the customer's language when the knowledge base has something relevant in it; passages
    # after the first must be nearly as relevant as it, so a thin match does not pad the answer.
    preferred = [j for j in relevant if j.hit.chunk.language == question_language] or relevant
    preferred = sorted(preferred, key=lambda j: -j.relevance)  # stable: ties keep the retrieval order
    return None, [j for j in preferred if j.relevance >= preferred[0].relevance - SECONDARY_MARGIN][:max_sources]


def extractive(
    question_language: str,
    chosen: Sequence[Judged],
    query_terms: Sequence[str],
    weights: dict[str, float],
    terms: Terms,
    question: str = "",
    focus: Sequence[str] = (),
) -> Answer:
    """What the chosen passages say to the question (`app.answering.excerpts`), each cited [n]. Passages about a
    product in `focus` (named in the question or kept in the conversation's slots) come first, and a passage that
    states the kind of fact the question asks for (a time, a price...) before one that does not."""
    kind = asked_fact(question)
    names = [f.lower() for f in focus if f]

    def about_focus(j: Judged) -> bool:
        chunk = j.hit.chunk
        return any(n in f"{chunk.title} {chunk.section} {chunk.text}".lower() for n in names)

    excerpts = {id(j): _excerpt(j, query_terms, weights, terms, question) for j in chosen}
    order = sorted(chosen, key=lambda j: (names and not about_focus(j), kind is not None and not states_fact(excerpts[id(j)], kind)))
    lines: list[str] = []
    sources: list[dict[str, Any]] = []
    seen: list[set[str]] = []
    for j in order:
        excerpt = excerpts[id(j)]
        excerpt_terms = set(terms(excerpt))
        if sources and coverage(query_terms, excerpt_terms, weights) < 0.5:
            continue  # a later passage whose best sentence holds little of the question adds noise
        if any(_jaccard(excerpt_terms, other) > 0.6 for other in seen):
            continue  # the same fact from a second source (a policy page and its FAQ) is said once
        seen.append(excerpt_terms)
        sources.append(source_entry(j.hit, j.relevance))
        lines.append(f"- {excerpt} [{len(sources)}]")
    answer = message("intro", question_language) + "\n\n" + "\n".join(lines)
    confidence = max((j.relevance for j in chosen), default=None)
    return Answer(answer, MODE_EXTRACTIVE, sources, language=question_language, confidence=confidence)
