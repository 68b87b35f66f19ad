"""The service as a principal may use it: every call checks the role (`app.access.auth`) on the server side before it
reaches `KefuService`, so a page or client that forges its state still cannot upload, delete, read another
customer's conversation or reply as an agent.

Front ends that serve more than their operator (the web app, the HTTP API) call this, never `KefuService`
directly for anything privileged: `AccessControl(service, principal)`. The CLI is the local operator
(`auth.LOCAL_OPERATOR`, an admin) and may call the service itself.

- customers: ask in a conversation they started (or hold the id of), read it, rate its answers, ask for a person,
  erase it; chat statelessly (`app.dialogue.completions`);
- agents: the queue, any transcript, search, suggested replies, replies, take / release / resolve, save an answer as an
  FAQ entry, batch answering (questions or an uploaded sheet), knowledge gaps;
- admins: documents (upload, list, delete), the retrieval test, insights, staff accounts, erasing any
  conversation, and everything agents may do.

Signing in is not a role-checked call: front ends turn credentials into a principal with `KefuService.sign_in`
and `KefuService.principal` (`app.access.users`), then build this with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from app.access.auth import ADMIN, AGENT, CUSTOMER, PermissionDenied, Principal, require

if TYPE_CHECKING:
    from collections.abc import Callable

    from app.answering.answerer import Reply
    from app.answering.rules import Answer
    from app.desk.assist import SavedFaq, Suggestion
    from app.answering.batch import BatchProgress, Table, UploadedBatch
    from app.dialogue.completions import ChatMessage
    from app.desk.insights import Insights
    from app.access.users import UserRecord
    from rag.retrieval import SearchHit
    from app.dialogue.feedback import FeedbackRecord
    from app.dialogue.gaps import GapGroup
    from app.knowledge.ingestion import IngestReport
    from app.services import KefuService
    from app.dialogue.sessions import ConversationRecord, MessageRecord
    from rag.store import DocumentInfo


class AccessControl:
    def __init__(self, service: KefuService, principal: Principal):
        self.service = service
        self.principal = principal

    def _audited(self, action: str, session_id: str | None = None):
        """An audit record of a privileged action by this principal (`app.access.audit`)."""
        return self.service.components.audit.action(action, self.principal, session_id)

    # -- customers ----------------------------------------------------------------------------------------

    def _own(self, session_id: str) -> ConversationRecord:
        """The conversation, when this principal may see it; PermissionDenied (never "not found", which would
        tell a guesser that the id exists) otherwise."""
        require(self.principal, CUSTOMER, "read a conversation")
        from app.errors import NotFoundError

        try:
            conversation = self.service.conversation(session_id)
        except NotFoundError:
            if self.principal.can(AGENT):
                raise
            raise PermissionDenied("this conversation is not yours") from None
        if not self.principal.owns(session_id, conversation.owner):
            raise PermissionDenied("this conversation is not yours")
        return conversation

    def ask_stream(self, question: str, session_id: str | None = None, customer_id: str | None = None) -> Reply:
        """A customer's message: in a new conversation (owned by this principal) or one of theirs."""
        require(self.principal, CUSTOMER, "ask")
        if session_id is not None and self._exists(session_id):
            self._own(session_id)
        return self.service.ask_stream(
            question, session_id, owner=self.principal.id or None, customer_id=customer_id, actor=self.principal
        )

    def complete_stream(self, messages: Sequence[ChatMessage]) -> Reply:
        """The answer to a conversation the caller holds (`app.dialogue.completions`): nothing stored, so nothing to own."""
        require(self.principal, CUSTOMER, "chat")
        return self.service.complete_stream(messages, actor=self.principal)

    def erase(self, session_id: str) -> dict[str, Any]:
        """Erase a conversation: its customer may erase their own, an admin any; agents may not."""
        require(self.principal, CUSTOMER, "erase a conversation")
        if self.principal.can(AGENT):
            require(self.principal, ADMIN, "erase a conversation")
        else:
            self._own(session_id)
        return self.service.erase(session_id=session_id, actor=self.principal)

    def _exists(self, session_id: str) -> bool:
        from app.errors import NotFoundError

        try:
            self.service.conversation(session_id)
            return True
        except NotFoundError:
            return False

    def conversation(self, session_id: str) -> ConversationRecord:
        return self._own(session_id)

    def history(self, session_id: str) -> list[MessageRecord]:
        self._own(session_id)
        return self.service.history(session_id)

    def feedback(self, message_id: int, rating: str, comment: str | None = None) -> FeedbackRecord:
        message = self.service.components.sessions.message(message_id)
        self._own(message.conversation_id)
        return self.service.feedback(message_id, rating, comment)

    def queue_position(self, session_id: str) -> int | None:
        self._own(session_id)
        return self.service.queue_position(session_id)

    def ratings(self, session_id: str) -> dict[int, str]:
        self._own(session_id)
        return self.service.ratings(session_id)

    def request_human(self, session_id: str | None) -> Answer:
        require(self.principal, CUSTOMER, "ask for a person")
        if session_id is not None and self._exists(session_id):
            self._own(session_id)
        return self.service.request_human(session_id, owner=self.principal.id or None, actor=self.principal)

    # -- agents -------------------------------------------------------------------------------------------

    def conversations(self, status: str | None = None, limit: int = 100) -> list[ConversationRecord]:
        require(self.principal, AGENT, "see the conversations")
        return self.service.conversations(status, limit)

    def agent_reply(self, session_id: str, text: str) -> MessageRecord:
        require(self.principal, AGENT, "reply as an agent")
        return self.service.agent_reply(session_id, self.principal.name, text, actor=self.principal)

    def take(self, session_id: str) -> ConversationRecord:
        require(self.principal, AGENT, "take a conversation")
        return self.service.take(session_id, self.principal.name, actor=self.principal)

    def release(self, session_id: str) -> ConversationRecord:
        require(self.principal, AGENT, "release a conversation")
        return self.service.release(session_id, self.principal.name, actor=self.principal)

    def resolve(self, session_id: str) -> ConversationRecord:
        require(self.principal, AGENT, "resolve a conversation")
        return self.service.resolve(session_id, self.principal.name, actor=self.principal)

    def suggest_reply(self, session_id: str) -> Suggestion:
        require(self.principal, AGENT, "draft a reply")
        return self.service.suggest_reply(session_id)

    def save_faq(self, question: str, answer: str) -> SavedFaq:
        require(self.principal, AGENT, "save an answer as an FAQ entry")
        with self._audited("save_faq"):
            return self.service.save_faq(question, answer, self.principal.name)

    def ask_batch(self, questions: Sequence[str]) -> list[Answer]:
        require(self.principal, AGENT, "answer a batch")
        return self.service.ask_batch(questions)

    def batch_preview(self, name: str, data: bytes) -> Table:
        require(self.principal, AGENT, "answer a batch")
        return self.service.batch_preview(name, data)

    def answer_upload(self, name: str, data: bytes, column: str | None = None, output_format: str = ".csv",
                      on_progress: Callable[[BatchProgress], None] | None = None) -> UploadedBatch:  # fmt: skip
        require(self.principal, AGENT, "answer a batch")
        with self._audited("batch"):
            return self.service.answer_upload(name, data, column, output_format, on_progress)

    def search(self, query: str, k: int = 10, mode: str = "hybrid") -> list[SearchHit]:
        """Search the knowledge base (every audience: staff see internal documents too)."""
        require(self.principal, AGENT, "search the knowledge base")
        return self.service.search(query, k=k, mode=mode)

    def gaps(self, limit: int = 20) -> list[GapGroup]:
        require(self.principal, AGENT, "see the knowledge gaps")
        return self.service.gaps(limit=limit)

    # -- admins -------------------------------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        require(self.principal, ADMIN, "list documents")
        return self.service.documents()

    def stats(self) -> dict[str, Any]:
        require(self.principal, ADMIN, "see the knowledge base")
        return self.service.stats()

    def ingest_uploads(self, uploads: Sequence[tuple[str, bytes]], **options) -> IngestReport:
        require(self.principal, ADMIN, "upload documents")
        return self.service.ingest_uploads(uploads, actor=self.principal, **options)

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        require(self.principal, ADMIN, "delete documents")
        return self.service.delete_documents(doc_ids, actor=self.principal)

    def generator_status(self) -> dict[str, str]:
        require(self.principal, ADMIN, "see the knowledge base")
        return self.service.generator_status()

    def compare_rankings(self, query: str, k: int = 10) -> dict[str, list[SearchHit]]:
        """The retrieval test (every audience: admins see internal documents too)."""
        require(self.principal, ADMIN, "test retrieval")
        return self.service.compare_rankings(query, k)

    def insights(self, days: int = 30) -> Insights:
        require(self.principal, ADMIN, "see insights")
        return self.service.insights(days)

    def users(self) -> list[UserRecord]:
        require(self.principal, ADMIN, "see staff accounts")
        return self.service.users.list()

    def add_user(self, name: str, role: str, password: str) -> UserRecord:
        require(self.principal, ADMIN, "add staff accounts")
        with self._audited("add_user"):
            return self.service.users.add(name, role, password)

    def set_user_disabled(self, name: str, disabled: bool = True) -> UserRecord:
        require(self.principal, ADMIN, "disable staff accounts")
        if disabled and name == self.principal.name:
            raise PermissionDenied("you cannot disable your own account: ask another admin")
        with self._audited("disable_user" if disabled else "enable_user"):
            return self.service.users.set_disabled(name, disabled)
