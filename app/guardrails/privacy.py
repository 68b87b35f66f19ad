"""Erasure and retention: a person's conversations removed on request (GDPR Art. 17, PIPL Art. 47), and
conversations older than KEFU_RETENTION_DAYS removed on their own.

Erasing a conversation removes it with everything that refers to it: its messages, the feedback on them, the
knowledge-gap records it produced (the database cascades those), its audit records, and whatever other stores
registered an eraser (the answer cache). The other stores are erased first, so an eraser that fails (a Redis
that cannot be reached) stops the erasure with the conversation still there to erase again. A person is found
by the customer id their channel gives (`conversations.customer_id`) or by the principal that started the
conversation (`owner`). Every erasure reports what it removed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select

from app.db.database import Database
from app.db.schema import AuditRecord, Conversation, Feedback, KnowledgeGap, Message, utcnow
from app.errors import NotFoundError

# name -> erase(session_id) -> how many entries it removed
Eraser = Callable[[str], int]


class Privacy:
    def __init__(self, db: Database, erasers: dict[str, Eraser] | None = None):
        self.db = db
        self.erasers = dict(erasers or {})

    def erase_session(self, session_id: str) -> dict[str, int]:
        with self.db.read() as db:
            if db.get(Conversation, session_id) is None:
                raise NotFoundError(f"no session {session_id!r} (see `kefu sessions list`)")
        return self._erase([session_id])

    def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Every conversation of a customer: by the id their channel gave, or by the principal that started it."""
        with self.db.read() as db:
            ids = list(
                db.scalars(
                    select(Conversation.id).where(or_(Conversation.customer_id == customer_id, Conversation.owner == customer_id))
                )
            )
        if not ids:
            raise NotFoundError(f"no conversation of customer {customer_id!r}")
        return self._erase(ids)

    def purge_older_than(self, days: int) -> dict[str, int]:
        """Conversations whose last activity is more than `days` days old (KEFU_RETENTION_DAYS)."""
        cutoff = utcnow() - timedelta(days=days)
        with self.db.read() as db:
            ids = list(db.scalars(select(Conversation.id).where(Conversation.updated_at < cutoff)))
        return self._erase(ids)

    def _erase(self, ids: Sequence[str]) -> dict[str, Any]:
        counts: dict[str, Any] = {"conversations": 0, "messages": 0, "feedback": 0, "knowledge_gaps": 0, "audit_records": 0}
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            tables = (
                ("knowledge_gaps", KnowledgeGap, KnowledgeGap.conversation_id),
                ("feedback", Feedback, Feedback.conversation_id),
                ("messages", Message, Message.conversation_id),
            )
            for name, erase in self.erasers.items():  # first: one that fails leaves the conversations to erase again
                counts[name] = counts.get(name, 0) + sum(erase(i) for i in part)
            with self.db.write() as db:
                for name, table, column in tables:  # counted first: deleting messages cascades to feedback
                    counts[name] += db.scalar(select(func.count()).select_from(table).where(column.in_(part))) or 0
                for _, table, column in tables:  # explicit, not only by cascade (SQLite needs foreign_keys on)
                    db.execute(delete(table).where(column.in_(part)))
                counts["audit_records"] += db.execute(delete(AuditRecord).where(AuditRecord.session_id.in_(part))).rowcount or 0
                counts["conversations"] += db.execute(delete(Conversation).where(Conversation.id.in_(part))).rowcount or 0
        counts["sessions"] = list(ids)
        return counts
