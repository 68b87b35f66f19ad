"""The dialogue manager: one customer turn in, one answer out, with the conversation kept in the sessions
database.

Per turn: a request for a person hands the session over; a session already handed over gets a holding
reply; otherwise the question is searched (with the previous question as context when it alone finds
nothing), and `app.answering` decides: a confident FAQ entry answers directly, nothing relevant abstains,
and otherwise the chosen passages are answered from. With a generator (`inference`), that answer is
`generated`: the grounded prompt (`app.prompting`, with the conversation so far within the token budget) is
streamed from the model, and its citations are checked (`app.citations`); without one, or when the model
says nothing visible, the answer is `extractive`. Every turn, the customer's and Kefu's, is stored: the
customer-visible text only, never a model's reasoning.

`ask_stream` yields the answer's text as it is written and then holds the finished `Answer`; `ask` is the
same without the pieces; `ask_batch` answers many independent questions with one batched generation.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from app import answering
from app.answering import MODE_ABSTAIN, MODE_GENERATED, MODE_HANDOFF, Answer, Judged
from app.citations import CitationStream, check_citations
from app.errors import ConfigError, InputError
from app.guardrails import wants_human
from app.prompting import HistoryTurn, Passage, Prompt, build_prompt
from app.sessions import STATUS_HANDOFF, SessionStore, Turn
from app.settings import AnswerSettings
from inference.generator import Generator
from ingest.documents import KIND_FAQ
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


@dataclass
class Grounded:
    """A question to be answered from passages: what the extractive fallback and the prompt both need."""

    question: str
    language: str
    chosen: list[Judged]
    query_terms: list[str]
    weights: dict[str, float]

    def passages(self) -> list[Passage]:
        out = []
        for j in self.chosen:
            c = j.hit.chunk
            title = f"{c.title} › {c.section}" if c.section and c.section != c.title else c.title
            text = f"{c.metadata.get('question', '')}\n{c.metadata.get('answer') or c.text}".strip() if c.kind == KIND_FAQ else c.text
            out.append(Passage(title, text))
        return out


class Reply:
    """Iterate for the answer's text pieces as they are written; afterwards `answer` holds the result."""

    def __init__(self, pieces: Iterator[str]):
        self._pieces = pieces
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        yield from self._pieces

    def finish(self) -> Answer:
        for _ in self:
            pass
        assert self.answer is not None
        return self.answer


class DialogueManager:
    def __init__(
        self,
        retriever: HybridRetriever,
        sessions: SessionStore,
        analyzer: Analyzer,
        settings: AnswerSettings,
        generator: Callable[[], Generator | None] | None = None,
        max_new_tokens: int = 512,
    ):
        self.retriever = retriever
        self.sessions = sessions
        self.analyzer = analyzer
        self.settings = settings
        self._generator = generator  # called when an answer must be written: FAQ, abstain and hand-off need no model
        self.max_new_tokens = max_new_tokens
        self.last_prompt: Prompt | None = None  # the most recent grounded prompt (for inspection and tests)

    @property
    def generator(self) -> Generator | None:
        """The language model (loaded on first use), or None for extractive answers."""
        return self._generator() if self._generator is not None else None

    def ask(self, question: str, session_id: str | None = None) -> Answer:
        return self.ask_stream(question, session_id).finish()

    def ask_stream(self, question: str, session_id: str | None = None) -> Reply:
        started = time.perf_counter()
        question = _checked(question)
        session_id = self.sessions.ensure(session_id)
        reply = Reply(iter(()))

        def pieces() -> Iterator[str]:
            history = self.sessions.history(session_id)
            answer = yield from self._respond(question, session_id, history)
            answer.session_id = session_id
            answer.latency_ms = int((time.perf_counter() - started) * 1000)
            self.sessions.add_turn(session_id, Turn("user", question))
            self.sessions.add_turn(
                session_id, Turn("assistant", answer.answer, answer.mode, answer.sources, answer.latency_ms)
            )
            reply.answer = answer

        reply._pieces = pieces()
        return reply

    def _respond(self, question: str, session_id: str, history: list[Turn]):
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
            decided = self._decide(f"{previous} {question}" if contextual else question, language)
            if isinstance(decided, Answer) and decided.mode == MODE_ABSTAIN and previous and not contextual:
                retry = self._decide(f"{previous} {question}", language)
                if not (isinstance(retry, Answer) and retry.mode == MODE_ABSTAIN):
                    decided = retry
            if isinstance(decided, Grounded):
                return (yield from self._write(question, decided, history))
            answer = decided
        yield answer.answer
        return answer

    def _retrieve(self, question: str, language: str) -> tuple[Answer | None, list[Judged], list[str], dict[str, float]]:
        hits = self.retriever.search(question, k=HITS_PER_QUESTION)
        if not hits:
            key = "empty" if self.retriever.store.stats()["chunks"] == 0 else "abstain"
            return Answer(answering.message(key, language), MODE_ABSTAIN, language=language), [], [], {}
        query_terms = self.analyzer.query_terms(question)
        total, freqs = self.retriever.store.term_statistics(query_terms)
        weights = answering.idf_weights(total, freqs)
        judged = answering.judge(hits, query_terms, weights, self.analyzer.terms, self.settings.multilingual_scale())
        return None, judged, list(query_terms), weights

    def _decide(self, question: str, language: str) -> Answer | Grounded:
        """An FAQ answer or an abstention, or the passages an answer should be written from."""
        empty, judged, query_terms, weights = self._retrieve(question, language)
        if empty is not None:
            return empty
        s = self.settings
        decided, chosen = answering.plan(language, judged, s.faq_min_similarity, s.min_relevance, s.max_sources,
                                         faq_min_multilingual_similarity=s.faq_min_multilingual_similarity)  # fmt: skip
        return decided if decided is not None else Grounded(question, language, chosen, query_terms, weights)

    def _extractive(self, g: Grounded) -> Answer:
        return answering.extractive(g.language, g.chosen, g.query_terms, g.weights, self.analyzer.terms)

    def _prompt(self, question: str, grounded: Grounded, history: Sequence[Turn]) -> Prompt:
        assert self.generator is not None
        turns = [HistoryTurn(t.role, t.content) for t in history if t.mode != MODE_HANDOFF or t.role == "user"]
        budget = self.generator.context_tokens - self.max_new_tokens
        try:
            prompt = build_prompt(question, grounded.passages(), turns, self.generator.count_tokens, budget, grounded.language)
        except ValueError as exc:
            raise ConfigError(
                f"{exc} ({self.generator.context_tokens} context tokens minus {self.max_new_tokens} for the answer): "
                "raise KEFU_CONTEXT_TOKENS or lower KEFU_MAX_NEW_TOKENS"
            ) from exc
        self.last_prompt = prompt
        return prompt

    def _generated(self, text: str, grounded: Grounded, prompt: Prompt) -> Answer | None:
        """The checked generated answer, or None when the model said nothing a customer could read."""
        check = check_citations(text, len(prompt.passages))
        if not check.text.strip():
            return None
        sources = []
        for number, j in enumerate(grounded.chosen[: len(prompt.passages)], start=1):
            entry = answering.source_entry(j.hit, j.relevance)
            entry["cited"] = number in check.cited
            sources.append(entry)
        return Answer(check.text, MODE_GENERATED, sources, language=grounded.language)

    def _write(self, question: str, grounded: Grounded, history: Sequence[Turn]):
        """Stream a generated answer (or, without a generator, yield the extractive one)."""
        if self.generator is None:
            answer = self._extractive(grounded)
            yield answer.answer
            return answer
        prompt = self._prompt(question, grounded, history)
        pieces: list[str] = []
        citations = CitationStream(len(prompt.passages))
        for piece in self.generator.stream(prompt.messages, self.max_new_tokens):
            pieces.append(piece)
            yield citations.feed(piece)
        yield citations.flush()
        answer = self._generated("".join(pieces), grounded, prompt)
        if answer is None:  # all reasoning and no answer, or nothing at all: quote the passages instead
            answer = self._extractive(grounded)
            yield answer.answer
        return answer

    def ask_batch(self, questions: Sequence[str]) -> list[Answer]:
        """Answer independent questions (no session): one batched generation for all that need the model."""
        started = time.perf_counter()
        results: list[Answer | None] = [None] * len(questions)
        grounded: list[tuple[int, Grounded, Prompt]] = []
        for i, raw in enumerate(questions):
            question = _checked(raw)
            language = detect_language(question) or "en"
            decided = self._decide(question, language)
            if isinstance(decided, Answer):
                results[i] = decided
            elif self.generator is None:
                results[i] = self._extractive(decided)
            else:
                grounded.append((i, decided, self._prompt(question, decided, [])))
        if grounded and self.generator is not None:
            texts = self.generator.generate_batch([p.messages for _, _, p in grounded], self.max_new_tokens)
            for (i, g, prompt), text in zip(grounded, texts):
                results[i] = self._generated(text, g, prompt) or self._extractive(g)
        elapsed = int((time.perf_counter() - started) * 1000)
        for answer in results:
            assert answer is not None
            answer.latency_ms = elapsed
        return [a for a in results if a is not None]


def _checked(question: str) -> str:
    question = (question or "").strip()
    if not question:
        raise InputError("the question is empty: type what you want to know")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}")
    return question
