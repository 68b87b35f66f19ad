"""The stateless answerer: a question (with whatever conversation, slots and filters the caller holds) in, a
checked answer out. It stores nothing and remembers nothing between calls, so every caller reuses it: the
dialogue manager with a session's history, an OpenAI-style request carrying its own messages, an agent's
suggested reply, batch FAQ answering.

One question goes: make it standalone (`app.answering.rewriting`) → retrieve → decide (`app.answering.rules.plan`: a
confident FAQ entry, nothing relevant, or passages to answer from) → write (the language model, streamed,
through the grounded prompt of `app.answering.prompting`; without a model, the extractive answer) → check
(`app.answering.citations`: only passages that were given may be cited) → fall back (a model that says nothing a
customer could read gives way to the extractive answer). A question that finds nothing alone is searched
once more with the conversation's subject beside it. A batch runs the same steps with one embedding batch
for the searches and one batched generation for every answer that needs the model.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app import metrics
from app.answering import rules as answering
from app.answering.citations import CitationStream, attribute, check_citations
from app.answering.faq_matching import FAQ_CANDIDATES, FaqVerdict, LearnedFaq
from app.answering.prompting import HistoryTurn, Passage, Prompt, build_prompt
from app.answering.rewriting import HeuristicRewriter, HistoryItem, QueryRewriter, Rewrite
from app.answering.rules import MODE_ABSTAIN, MODE_GENERATED, Answer, Judged
from app.errors import ConfigError, InputError
from app.guardrails.output_policy import LeakCheck, OutputPolicy, PolicyStream, clean_text, public_source
from app.settings import AnswerSettings
from inference.generator import Generator
from ingest.documents import KIND_FAQ
from rag.analysis import Analyzer, detect_language
from rag.retrieval import HybridRetriever, SearchHit
from rag.store import SearchFilter

MAX_QUESTION_CHARS = 4000
HITS_PER_QUESTION = 8


def checked_question(question: str | None, limit: int = MAX_QUESTION_CHARS) -> str:
    """The customer's text made safe to process: lone surrogates (bytes that were not UTF-8, as a shell passes
    them) become U+FFFD, control and invisible characters go, and it is stripped. InputError when it is empty,
    too long, or mostly unreadable."""
    question = clean_text(question or "").strip()
    if not question:
        raise InputError("the question is empty: type what you want to know")
    if len(question) > limit:
        raise InputError(f"the question is {len(question)} characters long; the limit is {limit}")
    if question.count("\ufffd") * 2 > len(question):
        raise InputError("the question is not readable text (it was not valid UTF-8): check your terminal's encoding")
    return question


@dataclass
class Grounded:
    """A question to be answered from passages: what the extractive fallback and the prompt both need."""

    question: str
    language: str
    chosen: list[Judged]
    query_terms: list[str]
    weights: dict[str, float]
    focus: tuple[str, ...] = ()  # the product the conversation is about, when one is named

    def passages(self) -> list[Passage]:
        out = []
        for j in self.chosen:
            c = j.hit.chunk
            title = f"{c.title} › {c.section}" if c.section and c.section != c.title else c.title
            text = f"{c.metadata.get('question', '')}\n{c.metadata.get('answer') or c.text}".strip() if c.kind == KIND_FAQ else c.text
            out.append(Passage(title, text))
        return out


@dataclass(frozen=True)
class Usage:
    """The tokens a written answer cost, as the model counts them."""

    prompt_tokens: int
    completion_tokens: int

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}  # fmt: skip


class Reply:
    """Iterate for the answer's text pieces as they are written; afterwards `answer` holds the result, `prompt`
    the grounded prompt the model was given and `usage` its token counts (both None when no model wrote the
    answer)."""

    def __init__(self, pieces: Callable[[Reply], Iterator[str]]):
        self.answer: Answer | None = None
        self.prompt: Prompt | None = None
        self.usage: Usage | None = None  # tokens, when a language model wrote the answer
        self._pieces = pieces(self)

    def __iter__(self) -> Iterator[str]:
        yield from self._pieces

    def finish(self) -> Answer:
        for _ in self:
            pass
        assert self.answer is not None
        return self.answer


@dataclass
class Evidence:
    """What one question's search found, judged (`app.answering.rules.judge`): every hit with its relevance, best
    retrieved first; the question's terms and their idf weights. No hits: all empty."""

    judged: list[Judged]
    query_terms: list[str]
    weights: dict[str, float]
    faq: FaqVerdict | None = None  # the learned matcher's verdict on the FAQ entries found, where it decides


@dataclass
class Decision:
    """What to do with one question: `outcome` is a finished Answer (FAQ, abstain) or the passages to write
    an answer from."""

    question: str
    rewrite: Rewrite
    language: str
    outcome: Answer | Grounded
    started: float

    @property
    def abstained(self) -> bool:
        return _abstained(self.outcome)


def history_turns(history: Sequence[HistoryItem]) -> list[HistoryTurn]:
    """The conversation as the prompt shows it: the customer's messages and the answers they got (an
    agent's too); system notes left out."""
    roles = {"user": "user", "assistant": "assistant", "agent": "assistant"}
    return [HistoryTurn(roles[h.role], h.content) for h in history if h.role in roles and h.content.strip()]


class Answerer:
    def __init__(
        self,
        retriever: HybridRetriever,
        analyzer: Analyzer,
        settings: AnswerSettings,
        generator: Callable[[], Generator | None] | None = None,
        max_new_tokens: int = 512,
        rewriter: QueryRewriter | None = None,
        policy: Callable[[], OutputPolicy] | None = None,
        canary: str | None = None,
        max_question_chars: int = MAX_QUESTION_CHARS,
        learned_faq: LearnedFaq | None = None,
    ):
        self.retriever = retriever
        self.learned_faq = learned_faq  # the FAQ decision for the languages it was trained on (app.answering.faq_matching)
        self.analyzer = analyzer
        self.settings = settings
        self._generator = generator  # called only when an answer must be written: FAQ and abstain need no model
        self.max_new_tokens = max_new_tokens
        self.rewriter = rewriter or HeuristicRewriter()
        self._policy = policy
        self.max_question_chars = max_question_chars
        # In every system prompt; a reply that holds it has leaked the prompt. One per deployment (Components
        # keeps it under KEFU_HOME), so the same question gets the same prompt in every process.
        self.canary = canary or "kefu-" + secrets.token_hex(8)

    def check(self, question: str | None) -> str:
        """The question cleaned; InputError when it is empty, unreadable or longer than KEFU_MAX_MESSAGE_CHARS."""
        return checked_question(question, self.max_question_chars)

    @property
    def policy(self) -> OutputPolicy:
        """The output policy every answer passes (its allowed link hosts follow the knowledge base)."""
        return self._policy() if self._policy is not None else OutputPolicy()

    def for_customer(self, answer: Answer) -> Answer:
        """The answer as a customer may see it: the output policy on its text and on every source it shows
        (passage text, title, section), and sources named without server paths."""
        policy = self.policy
        result = policy.apply(answer.answer, answer.language)
        answer.answer = result.text
        answer.guardrails += list(result.changes)
        shown = []
        for source in answer.sources:
            entry = dict(source)
            for key in ("text", "title", "section"):
                if isinstance(entry.get(key), str):
                    entry[key] = policy.apply(entry[key]).text
            entry["source"] = public_source(str(entry.get("source", "")))
            shown.append(entry)
        answer.sources = shown
        return answer

    @property
    def generator(self) -> Generator | None:
        """The language model (loaded on first use), or None for extractive answers."""
        return self._generator() if self._generator is not None else None

    # -- one question -------------------------------------------------------------------------------------

    def answer(self, question: str, history: Sequence[HistoryItem] = (), slots: Mapping[str, Any] | None = None,
               filters: SearchFilter | None = None) -> Answer:  # fmt: skip
        return self.reply(question, history, slots, filters).finish()

    def reply(
        self,
        question: str,
        history: Sequence[HistoryItem] = (),
        slots: Mapping[str, Any] | None = None,
        filters: SearchFilter | None = None,
    ) -> Reply:
        """The answer to `question` in the conversation `history` (oldest first), streamed as it is written."""
        return self.write(self.decide(question, history, slots, filters), history)

    def decide(
        self,
        question: str,
        history: Sequence[HistoryItem] = (),
        slots: Mapping[str, Any] | None = None,
        filters: SearchFilter | None = None,
        language: str | None = None,
    ) -> Decision:
        """Rewrite, retrieve and decide, without writing anything: a caller may look at the decision (did it
        abstain?) before the answer is written. A question that abstains alone is searched once more with
        the conversation's subject beside it. A caller that has understood the question already passes its
        `language`, and the question is then taken as checked (`checked_question`) as it is."""
        started = time.perf_counter()
        if language is None:
            question = self.check(question)
            language = detect_language(question) or "en"
        rewrite = self.rewriter.rewrite(question, history, slots) if history or slots else Rewrite(question, False)
        outcome = self._decide([rewrite.query], [language], filters)[0]
        if _abstained(outcome) and not rewrite.rewritten and (history or slots):
            wider = self.rewriter.with_context(question, history, slots)
            if wider.rewritten:
                retry = self._decide([wider.query], [language], filters)[0]
                if not _abstained(retry):
                    rewrite, outcome = wider, retry
        if isinstance(outcome, Grounded) and slots and slots.get("product"):
            outcome.focus = (str(slots["product"]),)
        return Decision(question, rewrite, language, outcome, started)

    def write(self, decision: Decision, history: Sequence[HistoryItem] = ()) -> Reply:
        """The decided answer, streamed: an FAQ answer or abstention at once, a generated one as it is written."""

        def pieces(reply: Reply) -> Iterator[str]:
            if isinstance(decision.outcome, Grounded):
                answer = yield from self._write(decision.outcome, history, reply)
            else:
                answer = self.for_customer(decision.outcome)
                yield answer.answer
            answer.query = decision.rewrite.query
            answer.latency_ms = int((time.perf_counter() - decision.started) * 1000)
            reply.answer = answer

        return Reply(pieces)

    # -- retrieve and decide ------------------------------------------------------------------------------

    def evidence(
        self, queries: Sequence[str], filters: SearchFilter | None = None, languages: Sequence[str] | None = None
    ) -> list[Evidence]:
        """Search each query (one embedding batch) and judge every hit, deciding nothing: what the decision is
        made from, and what calibrating the thresholds measures (`bench/calibration.py`)."""
        searching = time.perf_counter()
        # The learned FAQ matcher weighs more FAQ entries than are judged as passages; fusion's first
        # HITS_PER_QUESTION hits are the same either way.
        k = max(HITS_PER_QUESTION, FAQ_CANDIDATES) if self.learned_faq is not None else HITS_PER_QUESTION
        hit_lists = self.retriever.search_many(list(queries), k=k, filters=filters)
        metrics.RETRIEVAL_SECONDS.observe(time.perf_counter() - searching)
        languages = languages or [detect_language(q) or "en" for q in queries]
        out = []
        for query, language, hits in zip(queries, languages, hit_lists):
            hits = [h for h in map(answering.without_instructions, hits) if h is not None]  # data, not orders
            found = self._judge(query, hits[:HITS_PER_QUESTION])
            if self.learned_faq is not None and found.judged:
                found.faq = self.learned_faq.decide(query, language, hits)
            out.append(found)
        return out

    def _decide(self, queries: Sequence[str], languages: Sequence[str], filters: SearchFilter | None) -> list[Answer | Grounded]:
        """For each query: an FAQ answer or an abstention (an Answer), or the passages to answer from."""
        empty_store: bool | None = None
        out: list[Answer | Grounded] = []
        s = self.settings
        for query, language, found in zip(queries, languages, self.evidence(queries, filters, languages)):
            if not found.judged:
                if empty_store is None:
                    empty_store = self.retriever.store.stats()["chunks"] == 0
                key = "empty" if empty_store else "abstain"
                out.append(Answer(answering.message(key, language), MODE_ABSTAIN, language=language, confidence=0.0))
                continue
            decided, chosen = answering.plan(language, found.judged, s.faq_min_similarity, s.min_relevance, s.max_sources,
                                             faq_min_multilingual_similarity=s.faq_min_multilingual_similarity,
                                             faq_verdict=found.faq)  # fmt: skip
            out.append(decided if decided is not None else Grounded(query, language, chosen, found.query_terms, found.weights))
        return out

    def _judge(self, query: str, hits: list[SearchHit]) -> Evidence:
        if not hits:
            return Evidence([], [], {})
        query_terms = list(self.analyzer.query_terms(query))
        total, freqs = self.retriever.store.term_statistics(query_terms)
        weights = answering.idf_weights(total, freqs)
        judged = answering.judge(hits, query_terms, weights, self.analyzer.terms, self.settings.multilingual_scale())
        return Evidence(judged, query_terms, weights)

    # -- write and check ----------------------------------------------------------------------------------

    def _extractive(self, g: Grounded) -> Answer:
        """The extractive answer, as a customer may see it."""
        return self.for_customer(answering.extractive(g.language, g.chosen, g.query_terms, g.weights, self.analyzer.terms,
                                                      g.question, g.focus))  # fmt: skip

    def _prompt(self, grounded: Grounded, history: Sequence[HistoryItem], generator: Generator) -> Prompt:
        budget = generator.context_tokens - self.max_new_tokens
        try:
            return build_prompt(
                grounded.question, grounded.passages(), history_turns(history), generator.count_tokens, budget,
                grounded.language, canary=self.canary,
            )  # fmt: skip
        except ValueError as exc:
            raise ConfigError(
                f"{exc} ({generator.context_tokens} context tokens minus {self.max_new_tokens} for the answer): "
                "raise KEFU_CONTEXT_TOKENS or lower KEFU_MAX_NEW_TOKENS"
            ) from exc

    def _leak_check(self, prompt: Prompt) -> LeakCheck:
        return LeakCheck([self.canary], prompt.messages[0]["content"])

    def _generated(self, text: str, grounded: Grounded, prompt: Prompt) -> Answer | None:
        """The checked generated answer, as a customer may see it; None when the model said nothing a customer
        could read, or gave its instructions away (the extractive answer replaces it)."""
        check = check_citations(text, len(prompt.passages))
        if not check.text.strip() or self._leak_check(prompt)(text):
            return None
        sources = []
        for number, j in enumerate(grounded.chosen[: len(prompt.passages)], start=1):
            entry = answering.source_entry(j.hit, j.relevance)
            entry["cited"] = number in check.cited
            sources.append(entry)
        confidence = grounded.chosen[0].relevance if grounded.chosen else None
        answer = self.for_customer(Answer(check.text, MODE_GENERATED, sources, language=grounded.language, confidence=confidence))
        return None if any(c.startswith("blocked") for c in answer.guardrails) else answer

    def _write(self, grounded: Grounded, history: Sequence[HistoryItem], reply: Reply):
        """Stream a generated answer (or, without a generator, yield the extractive one)."""
        generator = self.generator
        if generator is None:
            answer = self._extractive(grounded)
            yield answer.answer
            return answer
        prompt = reply.prompt = self._prompt(grounded, history, generator)
        pieces: list[str] = []
        citations = CitationStream(len(prompt.passages))
        shown = PolicyStream(self.policy, grounded.language, self._leak_check(prompt))
        stream = generator.stream(prompt.messages, self.max_new_tokens)
        try:
            for piece in stream:
                pieces.append(piece)
                yield shown.feed(citations.feed(piece))
                if shown.blocked:
                    break  # a blocked pattern or a leak: stop generating; nothing more of it is shown
        finally:
            if hasattr(stream, "close"):
                stream.close()  # a reader that left (or a stop) ends the generation, not only this loop
            if hasattr(stream, "stats"):
                metrics.observe_generation(stream.stats)
        if not shown.blocked and (repair := _attribution("".join(pieces), prompt)):
            pieces.append(repair)
            yield shown.feed(citations.feed(repair))
        yield shown.feed(citations.flush()) + shown.flush()
        answer = None if shown.blocked else self._generated("".join(pieces), grounded, prompt)
        if answer is None:  # nothing readable, or nothing a customer may see: quote the passages instead
            answer = self._extractive(grounded)
            answer.guardrails += shown.changes
            yield ("\n\n" if "".join(shown.released).strip() else "") + answer.answer
        reply.usage = Usage(prompt.tokens, generator.count_tokens(answer.answer))
        return answer

    # -- a batch ------------------------------------------------------------------------------------------

    def answer_batch(self, questions: Sequence[str], filters: SearchFilter | None = None) -> list[Answer]:
        """Answer independent questions (no conversation): one embedding batch, one batched generation.
        InputError for an empty or over-long question (check them first to report them per row)."""
        started = time.perf_counter()
        questions = [self.check(q) for q in questions]
        languages = [detect_language(q) or "en" for q in questions]
        decided = self._decide(questions, languages, filters) if questions else []
        results: list[Answer | None] = [self.for_customer(d) if isinstance(d, Answer) else None for d in decided]
        grounded = [(i, d) for i, d in enumerate(decided) if isinstance(d, Grounded)]
        generator = self.generator if grounded else None
        if generator is None:
            for i, g in grounded:
                results[i] = self._extractive(g)
        else:
            prompts = [self._prompt(g, (), generator) for _, g in grounded]
            texts = generator.generate_batch([p.messages for p in prompts], self.max_new_tokens)
            for (i, g), prompt, text in zip(grounded, prompts, texts):
                text += _attribution(text, prompt)
                results[i] = self._generated(text, g, prompt) or self._extractive(g)
        elapsed = int((time.perf_counter() - started) * 1000)
        answers = [a for a in results if a is not None]
        for question, answer in zip(questions, answers):
            answer.latency_ms = elapsed
            answer.query = question
        return answers


def _attribution(text: str, prompt: Prompt) -> str:
    """A citation to append to a generated answer that cites no passage but restates one (`citations.attribute`);
    "" when it cites one already or restates none."""
    if check_citations(text, len(prompt.passages)).cited:
        return ""
    number = attribute(text, [p.text for p in prompt.passages])
    if number is None:
        return ""
    return f"[{number}]" if text[-1:].isspace() else f" [{number}]"


def _abstained(decided: Answer | Grounded) -> bool:
    return isinstance(decided, Answer) and decided.mode == MODE_ABSTAIN
