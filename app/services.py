"""Services: the one API every front end (CLI, Streamlit, benchmarks) calls. A thin facade: the work is done
by the components (`app.components`, built lazily from Settings under locks), ingestion (`app.knowledge.ingestion`),
knowledge-base management (`app.knowledge.base`), the stateless answerer (`app.answering.answerer`), the dialogue manager
(`app.dialogue.manager`), stateless chat completions (`app.dialogue.completions`) and API keys (`app.access.api_keys`).

Front ends hold one `KefuService` (the UI in an `st.cache_resource`); it is safe to share between threads.
Answers search only the audiences KEFU_ANSWER_AUDIENCES allows; `search` sees every document unless given a
`SearchFilter`. Every answer checks first that the store was built with the configured embedding model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.access.audit import AuditEntry
from app.access.auth import LOCAL_OPERATOR, Principal
from app.dialogue.completions import split_conversation
from app.components import Components
from app.errors import InputError
from app.knowledge.ingestion import IngestProgress, IngestReport, Ingestion
from app.knowledge.base import KnowledgeBase
from app.settings import Settings

if TYPE_CHECKING:
    from app.answering.answerer import Reply
    from app.answering.rules import Answer
    from app.desk.assist import SavedFaq, Suggestion
    from app.access.auth import Principal
    from app.access.api_keys import ApiKeys
    from app.answering.batch import BatchProgress, Table, UploadedBatch
    from app.dialogue.completions import ChatMessage
    from app.dialogue.feedback import FeedbackRecord
    from app.dialogue.gaps import GapGroup
    from app.desk.insights import Insights
    from app.dialogue.sessions import ConversationRecord, MessageRecord
    from app.access.users import SignIn, UserStore
    from app.warmup import WarmUp
    from rag.retrieval import HybridRetriever, SearchHit
    from rag.store import DocumentInfo, SearchFilter

__all__ = ["KefuService", "IngestProgress", "IngestReport"]


class KefuService:
    def __init__(self, settings: Settings | None = None):
        self.components = Components(settings)
        self.settings = self.components.settings
        self.ingestion = Ingestion(self.components)
        self.knowledge = KnowledgeBase(self.components)
        self._warm_up: WarmUp | None = None
        self._api_keys: ApiKeys | None = None
        self._lock = threading.Lock()  # the two above are set once

    # -- ingest -------------------------------------------------------------------------------------------

    def ingest(self, paths, actor: Principal = LOCAL_OPERATOR, **options) -> IngestReport:
        """See `Ingestion.ingest`: prune, on_file, on_progress, collection, audience."""
        with self.components.audit.action("ingest", actor):
            return self.ingestion.ingest(paths, **options)

    def ingest_uploads(self, uploads: Sequence[tuple[str, bytes]], actor: Principal = LOCAL_OPERATOR, **options) -> IngestReport:
        """Uploaded files (name, bytes): at most KEFU_MAX_UPLOAD_FILES at once."""
        limit = self.settings.guardrails.max_upload_files
        if len(uploads) > limit:
            raise InputError(f"{len(uploads)} files in one upload; the limit is {limit} (KEFU_MAX_UPLOAD_FILES)")
        with self.components.audit.action("upload", actor):
            return self.ingestion.ingest_uploads(uploads, **options)

    # -- search -------------------------------------------------------------------------------------------

    def retriever(self, customer_facing: bool = False) -> HybridRetriever:
        """The hybrid retriever, index checked: customer-facing searches only KEFU_ANSWER_AUDIENCES (as answers
        do), otherwise every document (as `kefu search` does). For adapters such as the LangChain retriever."""
        self.components.check_index()
        return self.components.answer_retriever if customer_facing else self.components.retriever

    def search(self, query: str, k: int = 10, mode: str = "hybrid", filters: SearchFilter | None = None) -> list[SearchHit]:
        from app.answering.answerer import checked_question

        query = checked_question(query, self.settings.guardrails.max_query_chars)
        self.components.check_index()
        return self.components.retriever.search(query, k=k, mode=mode, filters=filters)

    def compare_rankings(self, query: str, k: int = 10, filters: SearchFilter | None = None) -> dict[str, list[SearchHit]]:
        """The retrieval test: the BM25, dense and fused rankings of one query, side by side ({mode: hits})."""
        from app.answering.answerer import checked_question

        query = checked_question(query)
        self.components.check_index()
        retriever = self.components.retriever
        return {mode: retriever.search(query, k=k, mode=mode, filters=filters) for mode in ("lexical", "dense", "hybrid")}

    def search_run(
        self,
        queries: Sequence[tuple[str, str]],
        k: int = 100,
        mode: str = "hybrid",
        batch_size: int = 256,
        filters: SearchFilter | None = None,
    ) -> dict[str, list[tuple[str, float]]]:
        """Batch search for evaluation: {query id: [(document id, score), ...]}, best first, one entry per
        document (its best chunk's score)."""
        from rag.store import doc_id_of

        self.components.check_index()
        run: dict[str, list[tuple[str, float]]] = {}
        for i in range(0, len(queries), batch_size):
            part = queries[i : i + batch_size]
            results = self.components.retriever.search_many([t for _, t in part], k=k, mode=mode, per_document=True, filters=filters)
            for (qid, _), hits in zip(part, results):
                run[qid] = [(doc_id_of(h.chunk.chunk_id), h.score) for h in hits]
        return run

    # -- answers ------------------------------------------------------------------------------------------

    def ask(self, question: str, session_id: str | None = None) -> Answer:
        return self.ask_stream(question, session_id).finish()

    def ask_stream(self, question: str, session_id: str | None = None, owner: str | None = None,
                   customer_id: str | None = None, actor: Principal = LOCAL_OPERATOR) -> Reply:  # fmt: skip
        """A customer's message in a conversation: iterate for the reply's text as it is written, then
        `.answer` (or `.finish()`) for the result. A new conversation records its `owner` (the principal that
        started it) and `customer_id`. Rate-limited per conversation and per client (not for the local
        operator); every turn, answered or failed, is one audit record."""
        c = self.components
        entry = AuditEntry("turn", actor, session_id, prompt_chars=len(question or ""))

        def start() -> Reply:
            c.limiter.check(actor, session_id)
            return c.dialogue.turn(question, session_id, owner, customer_id)

        return self._audited_turn(entry, start)

    def complete_stream(self, messages: Sequence[ChatMessage], actor: Principal = LOCAL_OPERATOR) -> Reply:
        """The answer to the last customer message of a conversation the caller holds (OpenAI-style messages),
        streamed; nothing is stored (`app.dialogue.completions`). Rate-limited per client like a turn, and recorded in
        the audit log as one (without a session)."""
        entry = AuditEntry("turn", actor, prompt_chars=len(messages[-1].content) if messages else 0)

        def start() -> Reply:
            self.components.limiter.check(actor, None)
            question, history = split_conversation(messages, self.settings.dialogue.history_messages)
            return self.components.dialogue.respond(question, history)

        return self._audited_turn(entry, start)

    def _audited_turn(self, entry: AuditEntry, start: Callable[[], Reply]) -> Reply:
        """The reply `start` begins (after the index check), recorded as one audit entry when it ends or
        fails, before it streams or while it does."""
        from app.answering.answerer import Reply

        c = self.components
        started = time.perf_counter()
        try:
            c.check_index()
            inner = start()
        except BaseException as exc:
            entry.error_code = type(exc).__name__[:32]
            c.audit.record(entry, int((time.perf_counter() - started) * 1000))
            raise

        def pieces(reply: Reply):
            try:
                yield from inner
                answer = inner.finish()
                reply.answer, reply.prompt = answer, inner.prompt
                entry.session_id = answer.session_id or entry.session_id
                entry.mode, entry.answer_chars, entry.verdicts = answer.mode, len(answer.answer), answer.verdicts()
            except BaseException as exc:
                entry.error_code = type(exc).__name__[:32]
                raise
            finally:
                c.audit.record(entry, int((time.perf_counter() - started) * 1000))

        return Reply(pieces)

    def ask_batch(self, questions: Sequence[str]) -> list[Answer]:
        """Answer many independent questions (batch FAQ answering): one batched search and generation."""
        self.components.check_index()
        return self.components.answerer.answer_batch(questions)

    # -- conversations ------------------------------------------------------------------------------------

    def conversation(self, session_id: str) -> ConversationRecord:
        return self.components.sessions.get(session_id)

    def conversations(self, status: str | None = None, limit: int = 100) -> list[ConversationRecord]:
        return self.components.sessions.list(status, limit)

    def history(self, session_id: str) -> list[MessageRecord]:
        return self.components.sessions.messages(session_id)

    def request_human(self, session_id: str | None, owner: str | None = None, actor: Principal = LOCAL_OPERATOR) -> Answer:
        sessions = self.components.sessions
        with self.components.audit.action("request_human", actor, session_id) as entry:
            answer = self.components.dialogue.request_human(sessions.open(session_id, owner))
            entry.session_id = answer.session_id
            return answer

    def agent_reply(self, session_id: str, agent: str, text: str, actor: Principal = LOCAL_OPERATOR) -> MessageRecord:
        with self.components.audit.action("agent_reply", actor, session_id) as entry:
            message = self.components.dialogue.agent_reply(session_id, agent, text)
            entry.answer_chars = len(message.content)
            return message

    def take(self, session_id: str, agent: str, actor: Principal = LOCAL_OPERATOR) -> ConversationRecord:
        with self.components.audit.action("take", actor, session_id):
            return self.components.dialogue.take(session_id, agent)

    def release(self, session_id: str, agent: str, actor: Principal = LOCAL_OPERATOR) -> ConversationRecord:
        with self.components.audit.action("release", actor, session_id):
            return self.components.dialogue.release(session_id, agent)

    def resolve(self, session_id: str, agent: str, actor: Principal = LOCAL_OPERATOR) -> ConversationRecord:
        with self.components.audit.action("resolve", actor, session_id):
            return self.components.dialogue.resolve(session_id, agent)

    def feedback(self, message_id: int, rating: str, comment: str | None = None) -> FeedbackRecord:
        return self.components.dialogue.feedback(message_id, rating, comment)

    def queue_position(self, session_id: str) -> int | None:
        """1 for the conversation waiting longest for an agent; None when this one is not waiting."""
        return self.components.sessions.queue_position(session_id)

    def ratings(self, session_id: str) -> dict[int, str]:
        """{message id: latest rating} of the conversation's rated answers."""
        return self.components.feedback.ratings(session_id)

    # -- agent assist -------------------------------------------------------------------------------------

    def suggest_reply(self, session_id: str) -> Suggestion:
        """A draft answer to the conversation's latest customer question, from the knowledge base (not stored)."""
        from app.desk.assist import suggest_reply

        self.components.check_index()
        c = self.components
        return suggest_reply(c.answerer, c.sessions, session_id, self.settings.dialogue.history_messages)

    def save_faq(self, question: str, answer: str, author: str) -> SavedFaq:
        """Add an agent's answer to the managed FAQ sheet and index it at once (see `app.desk.assist`)."""
        from app.desk.assist import save_faq

        return save_faq(self.settings, self.ingestion, question, answer, author)

    def insights(self, days: int = 30) -> Insights:
        from app.desk.insights import compute

        return compute(self.components.database, days)

    def gaps(self, since: datetime | None = None, limit: int = 20) -> list[GapGroup]:
        """The most asked questions Kefu could not answer well, grouped by meaning."""
        from app.dialogue.gaps import group_gaps
        from rag.indexing import embed_readable

        records = self.components.feedback.gaps(since)
        vectors = embed_readable(self.components.embedder, [r.question for r in records], query=True) if records else None
        return group_gaps(records, vectors, self.components.analyzer.query_terms)[:limit]

    # -- batch answering of uploaded sheets ----------------------------------------------------------------

    def batch_preview(self, name: str, data: bytes) -> Table:
        """An uploaded CSV/XLSX sheet's columns and rows, with the question column guessed (`app.answering.batch`)."""
        from app.answering.batch import preview_upload
        from app.knowledge.ingestion import limits_from

        return preview_upload(name, data, self.settings.core.home / "batch", limits_from(self.settings))

    def answer_upload(self, name: str, data: bytes, column: str | None = None, output_format: str = ".csv",
                      on_progress: Callable[[BatchProgress], None] | None = None) -> UploadedBatch:  # fmt: skip
        """`kefu batch` over an uploaded sheet; the answered sheet comes back as bytes (`app.answering.batch`)."""
        from app.answering.batch import answer_upload
        from app.knowledge.ingestion import limits_from

        self.components.check_index()
        return answer_upload(self.ask_batch, name, data, self.settings.core.home / "batch", column, output_format,
                             limits_from(self.settings), on_progress)  # fmt: skip

    # -- staff accounts -----------------------------------------------------------------------------------

    @property
    def users(self) -> UserStore:
        return self.components.users

    @property
    def api_keys(self) -> ApiKeys:
        """The HTTP API's keys (`app.access.api_keys`)."""
        if self._api_keys is None:
            from app.access.api_keys import ApiKeys

            keys = ApiKeys(self.components.database)
            with self._lock:
                self._api_keys = self._api_keys or keys
        return self._api_keys

    def sign_in(self, name: str, password: str, client: str = "") -> SignIn:
        return self.components.users.sign_in(name, password, client)

    def principal(self, sign_in: SignIn) -> Principal:
        """Who a sign-in stands for now (AuthenticationError when it expired or the account changed)."""
        return self.components.users.principal(sign_in)

    # -- warm-up ------------------------------------------------------------------------------------------

    def warm_up(self) -> WarmUp:
        """Start building what answers need in the background (once); the returned WarmUp tells how it goes."""
        from app.warmup import WarmUp

        if self._warm_up is None:
            self._warm_up = WarmUp(self.components)
        return self._warm_up.start()

    @property
    def warm_up_state(self) -> WarmUp | None:
        return self._warm_up

    # -- generation ---------------------------------------------------------------------------------------

    def generator_config(self):
        return self.components.generator_config()

    def generator_status(self) -> dict[str, str]:
        return self.components.generator_status()

    def load_generator(self):
        """The language model (loading it now), or None for extractive answers."""
        return self.components.generator

    # -- documents and index maintenance ------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        return self.knowledge.documents()

    def delete_documents(self, doc_ids: Sequence[str], actor: Principal = LOCAL_OPERATOR) -> int:
        with self.components.audit.action("delete_documents", actor):
            return self.knowledge.delete(doc_ids)

    def stats(self) -> dict[str, Any]:
        return self.knowledge.stats()

    def rebuild_index(self, on_progress=None, actor: Principal = LOCAL_OPERATOR) -> dict[str, Any]:
        """See `KnowledgeBase.rebuild`: re-embeds when the models changed; on_progress(done, total)."""
        with self.components.audit.action("rebuild_index", actor):
            return self.knowledge.rebuild(on_progress)

    def export_index(self, path: Path) -> dict[str, Any]:
        return self.knowledge.export(path)

    def import_index(self, path: Path) -> dict[str, Any]:
        return self.knowledge.import_(path)

    # -- privacy and audit --------------------------------------------------------------------------------

    def erase(self, session_id: str | None = None, customer_id: str | None = None, actor: Principal = LOCAL_OPERATOR) -> dict[str, Any]:
        """Remove a conversation, or every conversation of a customer, with all that refers to them."""
        if (session_id is None) == (customer_id is None):
            raise InputError("erase one --session ID or one --user ID")
        privacy = self.components.privacy
        counts = privacy.erase_session(session_id) if session_id else privacy.erase_customer(customer_id or "")
        self.components.audit.record(AuditEntry("erase", actor, verdicts={k: v for k, v in counts.items() if k != "sessions"}))
        return counts

    def purge_expired(self) -> dict[str, Any]:
        """Remove conversations older than KEFU_RETENTION_DAYS (nothing when it is 0)."""
        days = self.settings.guardrails.retention_days
        if not days:
            return {"conversations": 0, "sessions": []}
        return self.components.privacy.purge_older_than(days)

    def audit_log(self, since: datetime | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        return self.components.audit.records(since, limit)

    def close(self) -> None:
        self.components.close()
