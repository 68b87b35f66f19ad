"""Services: the one API every front end (CLI, Streamlit, HTTP API, benchmarks) calls. A thin facade: the work is
done by the components (`app.components`, built lazily from Settings under locks), the knowledge base
(`app.knowledge`), the answerer (`app.answering`), the dialogue manager (`app.dialogue`), the desk
(`app.desk`) and the access parts (`app.access`: users, keys, audit, limits).

Every privileged method is an `@action` (`app.access.gate`): its role, ownership, rate limit and audit record are
applied by the one gate, for every caller, given as `actor=` (the local operator when not given: the CLI).
Front ends that serve more than their operator bind their caller once with `service.acting_as(principal)`.
The few methods that are not actions are what anyone may call: sign-in (and the sign-in's cookie), who a key
or a visitor token stands for, readiness, the warm-up.

Front ends hold one `KefuService` (the UI in an `st.cache_resource`); it is safe to share between threads.
Answers search only the audiences KEFU_ANSWER_AUDIENCES allows; `search` sees every document unless given a
`SearchFilter`. Every answer checks first that the store was built with the configured embedding model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.access.api_keys import ApiKeys, KeyRecord, NewKey
from app.access.auth import (
    ADMIN,
    AGENT,
    CUSTOMER,
    LOCAL_OPERATOR,
    AuthenticationError,
    PermissionDenied,
    Principal,
    anonymous,
    owner_id,
    visitor,
)
from app.access.gate import Acting, Gate, acting_as, action
from app.access.users import SignIn, UserRecord
from app.access.visitors import VisitorPass
from app.answering.answerer import Reply, checked_question
from app.answering.batch import BatchProgress, Table, UploadedBatch, answer_upload, preview_upload
from app.answering.rules import Answer
from app.components import Components
from app.desk.assist import SavedFaq, Suggestion, save_faq, suggest_reply
from app.desk.insights import Insights, compute
from app.dialogue.completions import ChatMessage, split_conversation
from app.dialogue.feedback import CLOSED_BY_FAQ, FeedbackRecord
from app.dialogue.gaps import GapGroup, answered_gaps, group_gaps
from app.dialogue.handoff import WAITING
from app.dialogue.sessions import ConversationRecord, MessageRecord
from app.dialogue.transcript import CustomerView, customer_view
from app.errors import InputError
from app.knowledge.base import KnowledgeBase
from app.knowledge.ingestion import Ingestion, IngestProgress, IngestReport, limits_from
from app.settings import Settings
from app.warmup import WarmUp
from rag.indexing import embed_readable
from rag.retrieval import HybridRetriever, SearchHit
from rag.store import DocumentInfo, SearchFilter, doc_id_of

if TYPE_CHECKING:  # the crawler loads only when a site is crawled or listed (`KefuService._sites`)
    from app.knowledge.sites import SiteIngestion, SiteRecord

__all__ = ["KefuService", "IngestProgress", "IngestReport"]


def _question_chars(args: dict[str, Any]) -> int:
    return len(args.get("question") or "")


def _last_message_chars(args: dict[str, Any]) -> int:
    messages = args.get("messages") or ()
    return len(messages[-1].content) if messages else 0


def _answer_size(entry, message: MessageRecord) -> None:
    entry.answer_chars = len(message.content)


def _answered_session(entry, answer: Answer) -> None:
    entry.session_id = answer.session_id


def _erased(entry, counts: dict[str, Any]) -> None:
    entry.verdicts = {k: v for k, v in counts.items() if k != "sessions"}


def _is_url(value: object) -> bool:
    """Whether an ingest argument names a website rather than a file or folder."""
    return str(value).strip().lower().startswith(("http://", "https://"))


class KefuService:
    def __init__(self, settings: Settings | None = None):
        self.components = Components(settings)
        self.settings = self.components.settings
        self.ingestion = Ingestion(self.components)
        self.knowledge = KnowledgeBase(self.components)
        c = self.components
        self.gate = Gate(lambda: c.audit, lambda: c.limiter, lambda: c.sessions, lambda m: c.sessions.message(m).conversation_id)
        self._warm_up: WarmUp | None = None
        self._api_keys: ApiKeys | None = None
        self._site_ingestion: SiteIngestion | None = None
        self._lock = threading.Lock()  # the three above are set once

    def acting_as(self, principal: Principal) -> Acting:
        """This service's actions with `principal` as the caller (what a web page or an API route holds)."""
        return acting_as(self, principal)

    # -- ingest -------------------------------------------------------------------------------------------

    @action(ADMIN, "add documents", audit="ingest")
    def ingest(self, paths, actor: Principal = LOCAL_OPERATOR, **options) -> IngestReport:
        """Files and folders (`Ingestion.ingest`) and websites (arguments that are http(s) URLs: each crawled by
        `SiteIngestion.ingest` and kept in the list of sites), in one report. Options: prune, on_file,
        on_progress, collection, audience."""
        paths = list(paths)
        urls = [str(p) for p in paths if _is_url(p)]
        files = [p for p in paths if not _is_url(p)]
        report = self.ingestion.ingest(files, **options) if files or not urls else IngestReport()
        for url in urls:
            report.merge(self._sites().ingest(url, added_by=actor.name, **options))
        return report

    @action(ADMIN, "upload documents", audit="upload")
    def ingest_uploads(self, uploads: Sequence[tuple[str, bytes]], actor: Principal = LOCAL_OPERATOR, **options) -> IngestReport:
        """Uploaded files (name, bytes): at most KEFU_MAX_UPLOAD_FILES at once."""
        limit = self.settings.guardrails.max_upload_files
        if len(uploads) > limit:
            raise InputError(f"{len(uploads)} files in one upload; the limit is {limit} (KEFU_MAX_UPLOAD_FILES)")
        return self.ingestion.ingest_uploads(uploads, **options)

    # -- websites -----------------------------------------------------------------------------------------

    @action(ADMIN, "add a website", audit="add_site")
    def add_site(self, url: str, actor: Principal = LOCAL_OPERATOR, **options) -> IngestReport:
        """Crawl one website into the knowledge base and keep it (`SiteIngestion.ingest`; options: prune, on_file,
        on_progress, collection, audience). Only an http(s) address: never a path on the server."""
        if not _is_url(url):
            raise InputError(f"{url!r} is not a web address: give one starting with http:// or https://")
        return self._sites().ingest(url.strip(), added_by=actor.name, **options)

    @action(ADMIN, "see the kept websites")
    def sites(self, actor: Principal = LOCAL_OPERATOR) -> list[SiteRecord]:
        """The kept websites (`kefu sources list`)."""
        return self._sites().sites.all()

    @action(ADMIN, "re-sync websites", audit="sync_sites")
    def sync_sites(self, prune: bool = False, actor: Principal = LOCAL_OPERATOR, **options) -> IngestReport:
        """Re-crawl every kept site with its own labels (`kefu sources sync`); options: on_file, on_progress."""
        return self._sites().sync(prune=prune, **options)

    @action(ADMIN, "re-sync a website", audit="sync_sites")
    def sync_site(self, url: str, prune: bool = False, actor: Principal = LOCAL_OPERATOR, **options) -> IngestReport:
        """Re-crawl one kept site with its own collection and audience; options: on_file, on_progress."""
        site = self._sites().sites.get(url)
        return self._sites().ingest(site.url, prune, collection=site.collection, audience=site.audience,
                                    added_by=site.added_by, **options)  # fmt: skip

    @action(ADMIN, "remove a website", audit="remove_site")
    def remove_site(self, url: str, delete_documents: bool = False, actor: Principal = LOCAL_OPERATOR) -> tuple[SiteRecord, int]:
        """Stop keeping a site; with delete_documents, delete its pages too. (record, pages deleted)"""
        return self._sites().remove(url, delete_documents)

    def _sites(self) -> SiteIngestion:
        with self._lock:
            if self._site_ingestion is None:
                # Here, not at the top: the crawler's HTTP stack loads only when a site is crawled or listed.
                from app.knowledge.sites import SiteIngestion, SiteList

                self._site_ingestion = SiteIngestion(self.ingestion, lambda: SiteList(self.components.database))
            return self._site_ingestion

    # -- search -------------------------------------------------------------------------------------------

    def retriever(self, customer_facing: bool = False) -> HybridRetriever:
        """The hybrid retriever, index checked: customer-facing searches only KEFU_ANSWER_AUDIENCES (as answers
        do), otherwise every document (as `kefu search` does). For adapters such as the LangChain retriever."""
        self.components.check_index()
        return self.components.answer_retriever if customer_facing else self.components.retriever

    @action(AGENT, "search the knowledge base")
    def search(self, query: str, k: int = 10, mode: str = "hybrid", filters: SearchFilter | None = None,
               actor: Principal = LOCAL_OPERATOR) -> list[SearchHit]:  # fmt: skip
        """Search the knowledge base (every audience unless `filters` says otherwise: staff see internal
        documents too)."""
        query = checked_question(query, self.settings.guardrails.max_query_chars)
        self.components.check_index()
        return self.components.retriever.search(query, k=k, mode=mode, filters=filters)

    @action(ADMIN, "test retrieval")
    def compare_rankings(self, query: str, k: int = 10, filters: SearchFilter | None = None,
                         actor: Principal = LOCAL_OPERATOR) -> dict[str, list[SearchHit]]:  # fmt: skip
        """The retrieval test: the BM25, dense and fused rankings of one query, side by side ({mode: hits})."""
        query = checked_question(query)
        self.components.check_index()
        retriever = self.components.retriever
        return {mode: retriever.search(query, k=k, mode=mode, filters=filters) for mode in ("lexical", "dense", "hybrid")}

    @action(ADMIN, "run a batch of searches")
    def search_run(self, queries: Sequence[tuple[str, str]], k: int = 100, mode: str = "hybrid", batch_size: int = 256,
                   filters: SearchFilter | None = None, actor: Principal = LOCAL_OPERATOR) -> dict[str, list[tuple[str, float]]]:  # fmt: skip
        """Batch search for evaluation: {query id: [(document id, score), ...]}, best first, one entry per
        document (its best chunk's score)."""
        self.components.check_index()
        run: dict[str, list[tuple[str, float]]] = {}
        for i in range(0, len(queries), batch_size):
            part = queries[i : i + batch_size]
            results = self.components.retriever.search_many([t for _, t in part], k=k, mode=mode, per_document=True, filters=filters)
            for (qid, _), hits in zip(part, results):
                run[qid] = [(doc_id_of(h.chunk.chunk_id), h.score) for h in hits]
        return run

    # -- answers ------------------------------------------------------------------------------------------

    def ask(self, question: str, session_id: str | None = None, actor: Principal = LOCAL_OPERATOR) -> Answer:
        return self.ask_stream(question, session_id, actor=actor).finish()

    @action(CUSTOMER, "ask", audit="turn", limit=True, conversation="session_id", owned_on_load=True, prompt=_question_chars)
    def ask_stream(self, question: str, session_id: str | None = None, customer_id: str | None = None,
                   actor: Principal = LOCAL_OPERATOR) -> Reply:  # fmt: skip
        """A customer's message in a conversation (a new one, owned by `actor`, when `session_id` is None; staff
        and the operator may also name a new one): iterate for the reply's text as it is written, then `.answer`
        (or `.finish()`) for the result. A customer may write only into a conversation of theirs, whose id the
        server gave it (checked as the turn loads it)."""
        self.components.check_index()
        return self.components.dialogue.turn(question, session_id, actor, customer_id)

    @action(CUSTOMER, "chat", audit="turn", limit=True, prompt=_last_message_chars)
    def complete_stream(self, messages: Sequence[ChatMessage], actor: Principal = LOCAL_OPERATOR) -> Reply:
        """The answer to the last customer message of a conversation the caller holds (OpenAI-style messages),
        streamed; nothing is stored (`app.dialogue.completions`)."""
        self.components.check_index()
        question, history = split_conversation(messages, self.settings.dialogue.history_messages)
        return self.components.dialogue.respond(question, history)

    @action(AGENT, "answer a batch")
    def ask_batch(self, questions: Sequence[str], actor: Principal = LOCAL_OPERATOR) -> list[Answer]:
        """Answer many independent questions (batch FAQ answering): one batched search and generation."""
        self.components.check_index()
        return self.components.answerer.answer_batch(questions)

    # -- conversations ------------------------------------------------------------------------------------

    @action(CUSTOMER, "read a conversation", conversation="session_id")
    def conversation(self, session_id: str, actor: Principal = LOCAL_OPERATOR) -> ConversationRecord:
        return self.components.sessions.get(session_id)

    @action(AGENT, "see the conversations")
    def conversations(self, status: str | None = None, limit: int = 100, actor: Principal = LOCAL_OPERATOR) -> list[ConversationRecord]:
        return self.components.sessions.list(status, limit)

    @action(CUSTOMER, "read a conversation", conversation="session_id")
    def history(self, session_id: str, actor: Principal = LOCAL_OPERATOR) -> list[MessageRecord]:
        return self.components.sessions.messages(session_id)

    @action(CUSTOMER, "ask for a person", audit="request_human", conversation="session_id", record=_answered_session)
    def request_human(self, session_id: str | None, language: str = "en", actor: Principal = LOCAL_OPERATOR) -> Answer:
        """Hand the conversation to a person (a new conversation, owned by `actor`, when `session_id` is None); the
        reply says so in `language` (en or zh)."""
        sessions = self.components.sessions
        return self.components.dialogue.request_human(sessions.open(session_id, owner_id(actor)), language)

    @action(CUSTOMER, "rate an answer", message="message_id")
    def feedback(self, message_id: int, rating: str, comment: str | None = None, actor: Principal = LOCAL_OPERATOR) -> FeedbackRecord:
        return self.components.dialogue.feedback(message_id, rating, comment)

    @action(CUSTOMER, "read a conversation", conversation="session_id")
    def queue_position(self, session_id: str, actor: Principal = LOCAL_OPERATOR) -> int | None:
        """1 for the conversation waiting longest for an agent; None when this one is not waiting."""
        return self.components.sessions.queue_position(session_id)

    @action(CUSTOMER, "read a conversation", conversation="session_id")
    def ratings(self, session_id: str, actor: Principal = LOCAL_OPERATOR) -> dict[int, str]:
        """{message id: latest rating} of the conversation's rated answers."""
        return self.components.feedback.ratings(session_id)

    @action(CUSTOMER, "read a conversation", conversation="session_id")
    def updates(self, session_id: str, after: int = 0, actor: Principal = LOCAL_OPERATOR) -> CustomerView:
        """The conversation as its customer is shown it (`app.dialogue.transcript`): its messages after message
        `after`, through the output policy, and its handoff status, agent and queue position now. What the website
        widget reads to restore a conversation, and again and again for an agent's replies."""
        c = self.components
        conversation = c.sessions.get(session_id)
        messages = c.sessions.messages_after(session_id, max(0, int(after)))
        position = c.sessions.queue_position(session_id) if conversation.status == WAITING else None
        ratings = c.feedback.ratings(session_id) if any(m.role in ("assistant", "agent") for m in messages) else {}
        return customer_view(conversation, messages, position, ratings, c.answerer.policy)

    # -- agents -------------------------------------------------------------------------------------------

    @action(AGENT, "reply as an agent", audit="agent_reply", conversation="session_id", record=_answer_size)
    def agent_reply(self, session_id: str, text: str, actor: Principal = LOCAL_OPERATOR) -> MessageRecord:
        """An agent's message to the customer, signed with the actor's name."""
        return self.components.dialogue.agent_reply(session_id, actor.name, text)

    @action(AGENT, "take a conversation", audit="take", conversation="session_id")
    def take(self, session_id: str, actor: Principal = LOCAL_OPERATOR) -> ConversationRecord:
        return self.components.dialogue.take(session_id, actor.name)

    @action(AGENT, "release a conversation", audit="release", conversation="session_id")
    def release(self, session_id: str, actor: Principal = LOCAL_OPERATOR) -> ConversationRecord:
        return self.components.dialogue.release(session_id, actor.name)

    @action(AGENT, "resolve a conversation", audit="resolve", conversation="session_id")
    def resolve(self, session_id: str, actor: Principal = LOCAL_OPERATOR) -> ConversationRecord:
        return self.components.dialogue.resolve(session_id, actor.name)

    @action(AGENT, "draft a reply", conversation="session_id")
    def suggest_reply(self, session_id: str, actor: Principal = LOCAL_OPERATOR) -> Suggestion:
        """A draft answer to the conversation's latest customer question, from the knowledge base (not stored)."""
        self.components.check_index()
        c = self.components
        return suggest_reply(c.answerer, c.sessions, session_id, self.settings.dialogue.history_messages)

    @action(AGENT, "save an answer as an FAQ entry", audit="save_faq")
    def save_faq(self, question: str, answer: str, actor: Principal = LOCAL_OPERATOR) -> SavedFaq:
        """Add an agent's answer to the managed FAQ sheet and index it at once (see `app.desk.assist`); the
        knowledge gaps it answers are closed (`app.dialogue.gaps.answered_gaps`)."""
        saved = save_faq(self.settings, self.ingestion, question, answer, actor.name)
        if records := self.components.feedback.gaps():
            vectors = embed_readable(self.components.embedder, [r.question for r in records] + [saved.question], query=True)
            ids = answered_gaps(saved.question, vectors[-1], records, vectors[:-1], self.components.analyzer.query_terms)
            saved.gaps_closed = self.components.feedback.close_gaps(ids, actor.name, CLOSED_BY_FAQ)
        return saved

    @action(AGENT, "see the knowledge gaps")
    def gaps(self, since: datetime | None = None, limit: int = 20, actor: Principal = LOCAL_OPERATOR) -> list[GapGroup]:
        """The most asked questions Kefu could not answer well (and no one has answered since), grouped by meaning."""
        records = self.components.feedback.gaps(since)
        vectors = embed_readable(self.components.embedder, [r.question for r in records], query=True) if records else None
        return group_gaps(records, vectors, self.components.analyzer.query_terms)[:limit]

    @action(ADMIN, "see insights")
    def insights(self, days: int = 30, actor: Principal = LOCAL_OPERATOR) -> Insights:
        return compute(self.components.database, days)

    # -- batch answering of uploaded sheets ----------------------------------------------------------------

    @action(AGENT, "answer a batch")
    def batch_preview(self, name: str, data: bytes, actor: Principal = LOCAL_OPERATOR) -> Table:
        """An uploaded CSV/XLSX sheet's columns and rows, with the question column guessed (`app.answering.batch`)."""
        return preview_upload(name, data, self.settings.core.home / "batch", limits_from(self.settings))

    @action(AGENT, "answer a batch", audit="batch")
    def answer_upload(self, name: str, data: bytes, column: str | None = None, output_format: str = ".csv",
                      on_progress: Callable[[BatchProgress], None] | None = None,
                      actor: Principal = LOCAL_OPERATOR) -> UploadedBatch:  # fmt: skip
        """`kefu batch` over an uploaded sheet; the answered sheet comes back as bytes (`app.answering.batch`)."""
        self.components.check_index()
        answer = self.components.answerer.answer_batch
        return answer_upload(answer, name, data, self.settings.core.home / "batch", column, output_format,
                             limits_from(self.settings), on_progress)  # fmt: skip

    # -- staff accounts and API keys ----------------------------------------------------------------------

    def sign_in(self, name: str, password: str, address: str = "", visitor: Principal | None = None) -> SignIn:
        """Check a staff member's credentials (locked out per account and address, audited: `app.access.users`)
        and hold the sign-in on the server: not an action, anyone may try. `address`: where from; `visitor`: the
        web visitor the browser is (its cookie), which then gets a ticket for its sign-in cookie."""
        browser = visitor.id.rsplit(":", 1)[-1] if visitor is not None and visitor.kind == "visitor" else None
        return self.components.users.sign_in(name, password, self.components.network(address), browser)

    def redeem_sign_in(self, ticket: str, visitor_token: str | None) -> tuple[str, datetime]:
        """The sign-in cookie's token (and its expiry) for a ticket, in the browser it was made for (the visitor
        cookie `visitor_token`); once. AuthenticationError otherwise (`app.access.sign_ins`)."""
        try:
            browser = self.components.web_visitors.verify(visitor_token)
        except AuthenticationError:
            browser = None
        return self.components.users.redeem(ticket, browser)

    def resume_sign_in(self, token: str) -> SignIn:
        """The sign-in a browser's sign-in cookie holds (AuthenticationError when it ended or expired)."""
        return self.components.users.resume(token)

    def sign_out(self, sign_in: SignIn) -> None:
        """End a sign-in, wherever its cookie is."""
        self.components.users.sign_out(sign_in)

    def principal(self, sign_in: SignIn) -> Principal:
        """Who a sign-in stands for now (AuthenticationError when it expired, ended or the account changed)."""
        return self.components.users.principal(sign_in)

    def key_principal(self, key: str) -> Principal:
        """Who an API key stands for (AuthenticationError when it is unknown or revoked)."""
        return self.api_keys.verify(key)

    def new_web_visitor(self) -> str:
        """A new web chat visitor's token (what the web app's server puts in a browser's visitor cookie)."""
        return self.components.web_visitors.issue()

    def web_visitor(self, token: str | None, address: str | None = None) -> Principal:
        """The web chat customer a visitor cookie's token stands for (`visitor:web:<id>`), connecting from
        `address`; AuthenticationError for a missing, forged or expired token (`app.access.tokens`)."""
        c = self.components
        return visitor("web", c.web_visitors.verify(token), c.network(address))

    def anonymous_caller(self, address: str | None) -> Principal:
        """A keyless API caller (KEFU_API_ANONYMOUS_CHAT), known by its network address only: `anon:net:…`."""
        where = self.components.network(address or "unknown")
        return anonymous(where, where)

    @action(ADMIN, "see staff accounts")
    def users(self, actor: Principal = LOCAL_OPERATOR) -> list[UserRecord]:
        return self.components.users.list()

    @action(ADMIN, "add staff accounts", audit="add_user")
    def add_user(self, name: str, role: str, password: str, actor: Principal = LOCAL_OPERATOR) -> UserRecord:
        return self.components.users.add(name, role, password)

    @action(ADMIN, "disable staff accounts", audit=lambda a: "disable_user" if a["disabled"] else "enable_user")
    def set_user_disabled(self, name: str, disabled: bool = True, actor: Principal = LOCAL_OPERATOR) -> UserRecord:
        if disabled and actor.kind == "user" and name == actor.name:
            raise PermissionDenied("you cannot disable your own account: ask another admin")
        return self.components.users.set_disabled(name, disabled)

    @action(ADMIN, "set passwords", audit="set_password")
    def set_user_password(self, name: str, password: str, actor: Principal = LOCAL_OPERATOR) -> UserRecord:
        return self.components.users.set_password(name, password)

    @action(ADMIN, "make the demo accounts", audit="demo_users")
    def demo_users(self, actor: Principal = LOCAL_OPERATOR) -> list[tuple[str, str, str]]:
        """The demo admin and agent `make run` prints, with new random passwords: (name, role, password)."""
        return self.components.users.demo_accounts()

    @property
    def api_keys(self) -> ApiKeys:
        """The HTTP API's keys (`app.access.api_keys`)."""
        with self._lock:
            if self._api_keys is None:
                self._api_keys = ApiKeys(self.components.database)
            return self._api_keys

    @action(ADMIN, "create API keys", audit="create_key")
    def create_key(self, role: str, label: str | None = None, origins: Sequence[str] | None = None,
                   actor: Principal = LOCAL_OPERATOR) -> NewKey:  # fmt: skip
        """A key of `role`, or (role `widget`) the website widget's publishable key for the web `origins` given."""
        return self.api_keys.create(role, label, origins)

    @action(ADMIN, "see API keys")
    def keys(self, actor: Principal = LOCAL_OPERATOR) -> list[KeyRecord]:
        return self.api_keys.list()

    def widget_visitor(self, key: str, origin: str | None, client: str = "") -> VisitorPass:
        """Start a website visitor on a page of `origin` with the site's widget key: not an action, any browser
        on the key's origins may (rate-limited per client address)."""
        return self.components.visitors.start(key, origin, client)

    def visitor_principal(self, token: str, origin: str | None, address: str | None = None) -> Principal:
        """Who a visitor token stands for on a page of `origin` (checked on every request of the widget), connecting
        from `address` (then counted by the per-address limit too, whatever token it sends)."""
        who = self.components.visitors.principal(token, origin)
        return replace(who, network=self.components.network(address)) if address else who

    def widget_origin_known(self, origin: str | None) -> bool:
        """Whether an active widget key names `origin` (what the widget routes' CORS answers)."""
        return self.components.visitors.origin_known(origin)

    @action(ADMIN, "revoke API keys", audit="revoke_key")
    def revoke_key(self, which: str, actor: Principal = LOCAL_OPERATOR) -> KeyRecord:
        return self.api_keys.revoke(which)

    # -- readiness, warm-up and generation ----------------------------------------------------------------

    def warm_up(self) -> WarmUp:
        """Start building what answers need in the background (once); the returned WarmUp tells how it goes."""
        with self._lock:
            if self._warm_up is None:
                self._warm_up = WarmUp(self.components)
        return self._warm_up.start()

    @property
    def warm_up_state(self) -> WarmUp | None:
        return self._warm_up

    def readiness(self) -> dict[str, Any]:
        """What a readiness probe reports: the store's chunk count and which generator answers. Raises what
        reaching the store raised."""
        return {"chunks": self.components.store.stats()["chunks"], "answers": self.components.generator_status()["backend"]}

    def generator_config(self):
        return self.components.generator_config()

    @action(ADMIN, "see the knowledge base")
    def generator_status(self, actor: Principal = LOCAL_OPERATOR) -> dict[str, str]:
        """Which backend answers and why (what KEFU_LLM=auto chose), without loading a model."""
        return self.components.generator_status()

    @action(ADMIN, "load the language model")
    def load_generator(self, actor: Principal = LOCAL_OPERATOR):
        """The language model (loading it now), or None for extractive answers."""
        return self.components.generator

    # -- documents and index maintenance ------------------------------------------------------------------

    @action(ADMIN, "list documents")
    def documents(self, actor: Principal = LOCAL_OPERATOR) -> list[DocumentInfo]:
        return self.knowledge.documents()

    @action(ADMIN, "delete documents", audit="delete_documents")
    def delete_documents(self, doc_ids: Sequence[str], actor: Principal = LOCAL_OPERATOR) -> int:
        return self.knowledge.delete(doc_ids)

    @action(ADMIN, "see the knowledge base")
    def stats(self, actor: Principal = LOCAL_OPERATOR) -> dict[str, Any]:
        return self.knowledge.stats()

    @action(ADMIN, "rebuild the index", audit="rebuild_index")
    def rebuild_index(self, on_progress=None, actor: Principal = LOCAL_OPERATOR) -> dict[str, Any]:
        """See `KnowledgeBase.rebuild`: re-embeds when the models changed; on_progress(done, total)."""
        return self.knowledge.rebuild(on_progress)

    @action(ADMIN, "export the index", audit="export_index")
    def export_index(self, path: Path, actor: Principal = LOCAL_OPERATOR) -> dict[str, Any]:
        return self.knowledge.export(path)

    @action(ADMIN, "import an index", audit="import_index")
    def import_index(self, path: Path, actor: Principal = LOCAL_OPERATOR) -> dict[str, Any]:
        return self.knowledge.import_(path)

    # -- privacy and audit --------------------------------------------------------------------------------

    @action(CUSTOMER, "erase a conversation", staff=ADMIN, conversation="session_id", names_conversation=False, audit="erase",
            record=_erased)  # fmt: skip
    def erase(self, session_id: str | None = None, customer_id: str | None = None, actor: Principal = LOCAL_OPERATOR) -> dict[str, Any]:
        """Remove a conversation, or every conversation of a customer, with all that refers to them. A customer
        may erase a conversation of theirs; agents may not erase; admins may erase any."""
        if (session_id is None) == (customer_id is None):
            raise InputError("erase one --session ID or one --user ID")
        if session_id is None and not actor.can(AGENT):
            raise PermissionDenied("a customer may erase a conversation of theirs, by its id")
        privacy = self.components.privacy
        return privacy.erase_session(session_id) if session_id else privacy.erase_customer(customer_id or "")

    @action(ADMIN, "erase expired conversations", audit="purge_expired", record=_erased)
    def purge_expired(self, actor: Principal = LOCAL_OPERATOR) -> dict[str, Any]:
        """Remove conversations older than KEFU_RETENTION_DAYS (nothing when it is 0)."""
        days = self.settings.guardrails.retention_days
        if not days:
            return {"conversations": 0, "sessions": []}
        return self.components.privacy.purge_older_than(days)

    @action(ADMIN, "read the audit log")
    def audit_log(self, since: datetime | None = None, limit: int = 1000, actor: Principal = LOCAL_OPERATOR) -> list[dict[str, Any]]:
        return self.components.audit.records(since, limit)

    def close(self) -> None:
        self.components.close()
