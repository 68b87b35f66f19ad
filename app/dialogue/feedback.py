"""Feedback on answers and the knowledge gaps Kefu learns from, in the SQL database (`app.db.schema`).

A customer (or agent) marks an answer helpful (`up`) or not (`down`), by its message id, with an optional
comment. Every abstention and every answer marked not helpful becomes a knowledge-gap record holding the
standalone question Kefu searched for: what the knowledge base should learn to answer. A gap is closed (kept,
no longer listed) when the answer it lacked is given, e.g. an agent saves an FAQ entry for it; the same
question unanswered later opens a new one. Grouping the gaps by meaning is `app.dialogue.gaps`' (pure) work;
this module only stores and reads. Comments and gap questions are stored
with personal data masked (`app.guardrails.pii`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from app.db.database import Database
from app.db.schema import Feedback, KnowledgeGap, Message, iso_utc, utcnow
from app.errors import InputError, NotFoundError
from app.guardrails.pii import mask

RATINGS = ("up", "down")
GAP_ABSTAINED = "abstained"
GAP_NOT_HELPFUL = "not_helpful"
CLOSED_BY_FAQ = "faq"  # a gap's closed_reason: an agent's answer was saved as an FAQ entry
MAX_COMMENT_CHARS = 2000


@dataclass
class FeedbackRecord:
    id: int
    message_id: int
    conversation_id: str
    rating: str
    comment: str | None
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class GapRecord:
    id: int
    question: str
    language: str
    reason: str
    conversation_id: str | None
    message_id: int | None
    created_at: str


class FeedbackStore:
    def __init__(self, db: Database):
        self.db = db

    def rate(self, message_id: int, rating: str, comment: str | None = None) -> tuple[FeedbackRecord, Message]:
        """Store feedback on an assistant or agent message; returns it with the message it rates."""
        if rating not in RATINGS:
            raise InputError(f"feedback must be one of {', '.join(RATINGS)}, not {rating!r}")
        comment = (comment or "").strip() or None
        if comment and len(comment) > MAX_COMMENT_CHARS:
            raise InputError(f"the comment is {len(comment)} characters long; the limit is {MAX_COMMENT_CHARS}")
        with self.db.write() as db:
            message = db.get(Message, message_id)
            if message is None:
                raise NotFoundError(f"no message {message_id} (message ids are in `kefu sessions show ID`)")
            if message.role not in ("assistant", "agent"):
                raise InputError(f"message {message_id} is a {message.role} message: feedback rates answers")
            row = Feedback(
                message_id=message_id,
                conversation_id=message.conversation_id,
                rating=rating,
                comment=mask(comment) if comment else None,
                created_at=utcnow(),
            )
            db.add(row)
            db.flush()
            record = FeedbackRecord(row.id, message_id, message.conversation_id, rating, row.comment, iso_utc(row.created_at))
            db.expunge(message)
            return record, message

    def add_gap(
        self,
        question: str,
        language: str,
        reason: str,
        conversation_id: str | None = None,
        message_id: int | None = None,
    ) -> None:
        with self.db.write() as db:
            db.add(
                KnowledgeGap(
                    question=mask(question),
                    language=language or "",
                    reason=reason,
                    conversation_id=conversation_id,
                    message_id=message_id,
                    created_at=utcnow(),
                )
            )

    def gaps(self, since: datetime | None = None, limit: int = 5000, closed: bool = False) -> list[GapRecord]:
        """Open gap records (with `closed`: the closed ones too), newest first."""
        query = select(KnowledgeGap).order_by(KnowledgeGap.id.desc()).limit(limit)
        if not closed:
            query = query.where(KnowledgeGap.closed_at.is_(None))
        if since is not None:
            query = query.where(KnowledgeGap.created_at >= since)
        with self.db.read() as db:
            return [
                GapRecord(r.id, r.question, r.language, r.reason, r.conversation_id, r.message_id, iso_utc(r.created_at))
                for r in db.scalars(query).all()
            ]

    def close_gaps(self, ids: list[int], by: str, reason: str) -> int:
        """Close the open gaps among `ids` (answered now, by `by`, for `reason`); returns how many it closed."""
        if not ids:
            return 0
        with self.db.write() as db:
            done = db.execute(
                update(KnowledgeGap)
                .where(KnowledgeGap.id.in_(ids), KnowledgeGap.closed_at.is_(None))
                .values(closed_at=utcnow(), closed_by=by, closed_reason=reason)
            )
            return done.rowcount or 0

    def ratings(self, conversation_id: str) -> dict[int, str]:
        """{message id: latest rating} within a conversation."""
        with self.db.read() as db:
            rows = db.execute(
                select(Feedback.message_id, Feedback.rating).where(Feedback.conversation_id == conversation_id).order_by(Feedback.id)
            ).all()
            return {m: r for m, r in rows}
