"""The dialogue manager: one customer turn in, one answer out, with the conversation kept in the sessions
database.

Per turn: a request for a person hands the session over; a session already handed over gets a holding
reply; otherwise the question is searched (with the previous question as context when it alone finds
nothing), and `app.answering` writes the answer. Every turn, the customer's and Kefu's, is stored.
"""

from __future__ import annotations

import re
import time

from app import answering
from app.answering import MODE_ABSTAIN, MODE_HANDOFF, Answer
from app.errors import InputError
from app.guardrails import wants_human
from app.sessions import STATUS_HANDOFF, SessionStore, Turn
from app.settings import AnswerSettings
from rag.analysis import Analyzer, detect_language
from rag.retrieval import HybridRetriever

MAX_QUESTION_CHARS = 4000
HITS_PER_QUESTION = 8


_FOLLOW_UP_RE = re.compile(
    r"^\s*(and|also|what about|how about|what if|same for|then|or)\b|^\s*(那|那么|还有|另外|如果|那如果)|[呢]\s*[?？]?\s*$",
    re.IGNORECASE,
)


def is_follow_up(question: str) -> bool:
    """A turn that leans on the one before: it opens like a continuation ("and ...", "what about ...",
    "那……") or ends like one ("……呢？"). (A short question alone is no sign: "我有多长时间可以退货？" is
    one search term and stands on its own.)"""
    return bool(_FOLLOW_UP_RE.search(question))


class DialogueManager:
    def __init__(self, retriever: HybridRetriever, sessions: SessionStore, analyzer: Analyzer, settings: AnswerSettings):
        self.retriever = retriever
        self.sessions = sessions
        self.analyzer = analyzer
        self.settings = settings

    def ask(self, question: str, session_id: str | None = None) -> Answer:
        started = time.perf_counter()
        question = (question or "").strip()
        if not question:
            raise InputError("the question is empty: type what you want to know")
        if len(question) > MAX_QUESTION_CHARS:
            raise InputError(f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}")
        session_id = self.sessions.ensure(session_id)
        history = self.sessions.history(session_id)
        language = detect_language(question) or "en"

        if wants_human(question):
            self.sessions.set_status(session_id, STATUS_HANDOFF)
            answer = Answer(answering.message("handoff", language), MODE_HANDOFF, language=language)
        elif self.sessions.status(session_id) == STATUS_HANDOFF:
            answer = Answer(answering.message("waiting", language), MODE_HANDOFF, language=language)
        else:
            previous = next((t.content for t in reversed(history) if t.role == "user"), None)
            # A follow-up ("and with GPS?") only makes sense with the question before it.
            contextual = previous is not None and is_follow_up(question)
            answer = self._answer(f"{previous} {question}" if contextual else question, language)
            if answer.mode == MODE_ABSTAIN and previous and not contextual:
                retry = self._answer(f"{previous} {question}", language)
                if retry.mode != MODE_ABSTAIN:
                    answer = retry

        answer.session_id = session_id
        answer.latency_ms = int((time.perf_counter() - started) * 1000)
        self.sessions.add_turn(session_id, Turn("user", question))
        self.sessions.add_turn(
            session_id, Turn("assistant", answer.answer, answer.mode, answer.sources, answer.latency_ms)
        )
        return answer

    def _answer(self, question: str, language: str) -> Answer:
        hits = self.retriever.search(question, k=HITS_PER_QUESTION)
        if not hits:
            key = "empty" if self.retriever.store.stats()["chunks"] == 0 else "abstain"
            return Answer(answering.message(key, language), MODE_ABSTAIN, language=language)
        query_terms = self.analyzer.query_terms(question)
        total, freqs = self.retriever.store.term_statistics(query_terms)
        weights = answering.idf_weights(total, freqs)
        judged = answering.judge(hits, query_terms, weights, self.analyzer.terms)
        return answering.compose(
            language,
            judged,
            query_terms,
            weights,
            self.analyzer.terms,
            faq_min_similarity=self.settings.faq_min_similarity,
            min_relevance=self.settings.min_relevance,
            max_sources=self.settings.max_sources,
        )
