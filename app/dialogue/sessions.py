"""Conversations and their messages in the SQL database (`app.db.database`, tables in `app.db.schema`).

Stores and reads; decides nothing. Personal data never reaches the database raw: message text, the query a
turn searched and slot values are masked (`app.guardrails.pii.mask`) as they are written; the live answer used what the
customer typed, the record keeps `138****8000`. Messages are never updated: a turn is one row per role, written as it
happens (the customer's question before it is answered, so a turn killed mid-answer keeps it). Every change
of handoff status is a compare-and-set (`transition`), so two processes moving the same conversation cannot
both win. Reads of a conversation's history take only its most recent messages (`recent`): a turn costs
the same in a conversation of 20,000 messages as in one of 20.

A customer's turn makes three calls (`app.dialogue.manager`): `load` (the conversation, created if new, with its
recent messages and queue position, in one read), `record_question` (the message, the slots it filled, and the
reopening of a resolved conversation, in one transaction) and `record_answer` (the reply, and the handover
when the turn hands the conversation to a person, in one transaction).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.db.database import Database
from app.db.schema import Conversation, Message, iso_utc, utcnow
from app.dialogue import handoff
from app.errors import InputError, NotFoundError
from app.guardrails.pii import mask

ROLES = ("user", "assistant", "agent", "system")
PERSONAL_SLOTS = ("phone", "email")  # order numbers and product names are not personal data
MAX_ID_CHARS = 64


@dataclass
class MessageRecord:
    id: int
    conversation_id: str
    role: str
    content: str
    mode: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: int | None = None
    created_at: str = ""
    intent: str | None = None
    query: str | None = None
    reply_to: int | None = None
    author: str | None = None
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "mode": self.mode,
            "sources": self.sources,
            "latency_ms": self.latency_ms,
            "created_at": self.created_at,
            "intent": self.intent,
            "query": self.query,
            "reply_to": self.reply_to,
            "author": self.author,
            "confidence": self.confidence,
        }


@dataclass
class NewMessage:
    """A message to store; the database gives it its id and time."""

    role: str
    content: str
    mode: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: int | None = None
    intent: str | None = None
    query: str | None = None
    reply_to: int | None = None
    author: str | None = None
    confidence: float | None = None


@dataclass
class ConversationRecord:
    id: str
    status: str
    created_at: str
    updated_at: str
    status_since: str | None = None
    handoff_reason: str | None = None
    agent: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    messages: int = 0
    last_message: str | None = None
    owner: str | None = None
    customer_id: str | None = None
    last_customer_message: str | None = None  # filled by `list` (what an agent's queue shows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "status_since": self.status_since,
            "handoff_reason": self.handoff_reason,
            "agent": self.agent,
            "slots": self.slots,
            "messages": self.messages,
            "last_message": self.last_message,
            "customer_id": self.customer_id,
        }


def _message(row: Message) -> MessageRecord:
    return MessageRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        role=row.role,
        content=row.content,
        mode=row.mode,
        sources=list(row.sources or []),
        latency_ms=row.latency_ms,
        created_at=iso_utc(row.created_at) or "",
        intent=row.intent,
        query=row.query,
        reply_to=row.reply_to,
        author=row.author,
        confidence=row.confidence,
    )


def _conversation(row: Conversation, messages: int = 0, last: str | None = None) -> ConversationRecord:
    return ConversationRecord(
        id=row.id,
        status=row.status,
        created_at=iso_utc(row.created_at) or "",
        updated_at=iso_utc(row.updated_at) or "",
        status_since=iso_utc(row.status_since),
        handoff_reason=row.handoff_reason,
        agent=row.agent,
        slots=dict(row.slots or {}),
        messages=messages,
        last_message=last,
        owner=row.owner,
        customer_id=row.customer_id,
    )


@dataclass
class Loaded:
    """A conversation as a turn starts it: its record, its newest messages (oldest first), and its place in the
    queue when it waits for an agent."""

    conversation: ConversationRecord
    recent: list[MessageRecord]
    queue_position: int | None = None
    created: bool = False


def _mask_slots(found: Mapping[str, Any]) -> dict[str, Any]:
    return {k: mask(v) if k in PERSONAL_SLOTS and isinstance(v, str) else v for k, v in found.items()}


def check_id(conversation_id: str) -> str:
    if not 0 < len(conversation_id) <= MAX_ID_CHARS or not conversation_id.isprintable():
        raise InputError(f"a session id must be 1 to {MAX_ID_CHARS} printable characters")
    return conversation_id


class SessionStore:
    def __init__(self, db: Database):
        self.db = db

    # -- conversations ------------------------------------------------------------------------------------

    def open(self, conversation_id: str | None = None, owner: str | None = None, customer_id: str | None = None) -> str:
        """The id of an existing conversation, creating it (with this id, or a new random one: 122 bits, so an
        id is also the key to an anonymous customer's conversation) if needed. `owner` (the principal that
        starts it) and `customer_id` (the customer as the channel names them) are recorded on creation."""
        conversation_id = check_id(conversation_id) if conversation_id else uuid.uuid4().hex
        with self.db.read() as db:
            if db.get(Conversation, conversation_id) is not None:
                return conversation_id
        try:
            with self.db.write() as db:
                if db.get(Conversation, conversation_id) is None:
                    now = utcnow()
                    db.add(Conversation(id=conversation_id, status=handoff.BOT, created_at=now, updated_at=now,
                                        status_since=now, owner=owner, customer_id=customer_id))  # fmt: skip
        except IntegrityError:
            pass  # another process created it between our read and our write (PostgreSQL: read committed)
        return conversation_id

    def load(self, conversation_id: str | None, history: int, owner: str | None = None,
             customer_id: str | None = None) -> Loaded:  # fmt: skip
        """The conversation `conversation_id` as a turn needs it (see `Loaded`), created first when it does not
        exist (with this id, or a new random one; `owner` and `customer_id` recorded on creation)."""
        conversation_id = check_id(conversation_id) if conversation_id else uuid.uuid4().hex
        with self.db.read() as db:
            row = db.get(Conversation, conversation_id)
            if row is not None:
                rows = db.scalars(
                    select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id.desc()).limit(history)
                ).all()
                position = self._position(db, row) if row.status == handoff.WAITING else None
                return Loaded(_conversation(row), [_message(r) for r in reversed(rows)], position)
        now = utcnow()
        created = Conversation(id=conversation_id, status=handoff.BOT, created_at=now, updated_at=now, status_since=now,
                               owner=owner, customer_id=customer_id)  # fmt: skip
        try:
            with self.db.write() as db:
                db.add(created)
        except IntegrityError:  # another process created it between our read and our write
            return self.load(conversation_id, history)
        return Loaded(_conversation(created), [], created=True)

    def record_question(self, conversation_id: str, message: NewMessage, found: Mapping[str, Any],
                        reopen: bool = False) -> tuple[MessageRecord, ConversationRecord]:  # fmt: skip
        """Store the customer's message, add the slots it filled (a newer value replaces an older; personal data
        masked), and reopen the conversation when it was resolved; one transaction. The message and the
        conversation as it now stands."""
        with self.db.write() as db:
            row = db.get(Conversation, conversation_id, with_for_update=True)  # PostgreSQL: an agent's take waits
            if row is None:
                raise NotFoundError(f"no session {conversation_id!r} (see `kefu sessions list`)")
            now = utcnow()
            if found:
                row.slots = {**(row.slots or {}), **_mask_slots(found)}
            if reopen and row.status == handoff.RESOLVED:
                row.status, row.status_since, row.agent = handoff.next_status(row.status, "reopen"), now, None
            stored = self._insert(db, row, message, now)
            return stored, _conversation(row)

    def record_answer(self, conversation_id: str, message: NewMessage | None,
                      hand_over: str | None = None) -> tuple[str, MessageRecord | None]:  # fmt: skip
        """Store the reply (None: nothing to store) and, with a `hand_over` reason, ask for a person first; one
        transaction. The conversation's status afterwards, and the stored reply."""
        with self.db.write() as db:
            row = db.get(Conversation, conversation_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no session {conversation_id!r} (see `kefu sessions list`)")
            now = utcnow()
            if hand_over is not None:
                target = handoff.next_status(row.status, "request")
                if target != row.status:
                    row.status_since = now
                row.status, row.handoff_reason, row.agent, row.updated_at = target, hand_over, None, now
            stored = self._insert(db, row, message, now) if message is not None else None
            return row.status, stored

    def owner_of(self, conversation_id: str) -> str | None:
        """Who started the conversation (a principal's id; None for the local operator's); NotFoundError when
        there is no such conversation."""
        with self.db.read() as db:
            row = db.get(Conversation, check_id(conversation_id))
            if row is None:
                raise NotFoundError(f"no session {conversation_id!r} (see `kefu sessions list`)")
            return row.owner

    def get(self, conversation_id: str) -> ConversationRecord:
        with self.db.read() as db:
            row = db.get(Conversation, conversation_id)
            if row is None:
                raise NotFoundError(f"no session {conversation_id!r} (see `kefu sessions list`)")
            count = db.scalar(select(func.count()).where(Message.conversation_id == conversation_id)) or 0
            return _conversation(row, count)

    def list(self, status: str | None = None, limit: int = 100) -> list[ConversationRecord]:
        """Conversations, most recently active first; with a status, oldest in that status first (a queue)."""
        if status is not None and status not in handoff.STATUSES:
            raise InputError(f"unknown status {status!r}: choose one of {', '.join(handoff.STATUSES)}")
        counts = (
            select(Message.conversation_id, func.count().label("n"), func.max(Message.id).label("last"))
            .group_by(Message.conversation_id)
            .subquery()
        )
        asked = (
            select(Message.conversation_id, func.max(Message.id).label("asked"))
            .where(Message.role == "user")
            .group_by(Message.conversation_id)
            .subquery()
        )
        query = (
            select(Conversation, counts.c.n, counts.c.last, asked.c.asked)
            .outerjoin(counts, counts.c.conversation_id == Conversation.id)
            .outerjoin(asked, asked.c.conversation_id == Conversation.id)
        )
        if status is not None:
            query = query.where(Conversation.status == status).order_by(Conversation.status_since, Conversation.id)
        else:
            query = query.order_by(Conversation.updated_at.desc(), Conversation.id)
        with self.db.read() as db:
            rows = db.execute(query.limit(limit)).all()
            wanted = {i for _, _, last, asked in rows for i in (last, asked) if i is not None}
            texts = dict(db.execute(select(Message.id, Message.content).where(Message.id.in_(wanted))).all()) if wanted else {}
            records = []
            for c, n, last, asked in rows:
                record = _conversation(c, n or 0, texts.get(last))
                record.last_customer_message = texts.get(asked)
                records.append(record)
            return records

    def queue_position(self, conversation_id: str) -> int | None:
        """1 for the conversation that has waited longest for an agent; None when this one is not waiting."""
        with self.db.read() as db:
            row = db.get(Conversation, conversation_id)
            if row is None or row.status != handoff.WAITING:
                return None
            return self._position(db, row)

    @staticmethod
    def _position(db, row: Conversation) -> int:
        ahead = db.scalar(
            select(func.count()).where(
                Conversation.status == handoff.WAITING,
                (Conversation.status_since < row.status_since)
                | ((Conversation.status_since == row.status_since) & (Conversation.id < row.id)),
            )
        )
        return int(ahead or 0) + 1

    def transition(
        self, conversation_id: str, event: str, reason: str | None = None, agent: str | None = None
    ) -> ConversationRecord:
        """Move the conversation by a handoff event (`app.dialogue.handoff`), atomically: when another process moved it
        first, the move is judged again from where that left it."""
        for _ in range(5):
            current = self.get(conversation_id)
            target = handoff.next_status(current.status, event)
            values: dict[str, Any] = {"status": target, "updated_at": utcnow()}
            if target != current.status:
                values["status_since"] = values["updated_at"]
            if event == "request":
                values["handoff_reason"] = reason
                values["agent"] = None
            elif event == "take":
                values["agent"] = agent
                if current.status == handoff.BOT:
                    values["handoff_reason"] = handoff.REASON_AGENT
            elif event in ("release", "reopen"):
                values["agent"] = None
            with self.db.write() as db:
                done = db.execute(
                    update(Conversation)
                    .where(Conversation.id == conversation_id, Conversation.status == current.status)
                    .values(**values)
                ).rowcount
            if done:
                return self.get(conversation_id)
        raise InputError(f"session {conversation_id!r} keeps changing status; try again")

    def merge_slots(self, conversation_id: str, found: Mapping[str, Any]) -> dict[str, Any]:
        """Add what the customer just told us to the conversation's slots (a newer value replaces an older);
        personal data is kept masked (a phone number as 138****8000: enough for an agent to recognise it)."""
        with self.db.write() as db:
            row = db.get(Conversation, conversation_id)
            if row is None:
                raise NotFoundError(f"no session {conversation_id!r}")
            slots = {**(row.slots or {}), **_mask_slots(found)}
            if found:
                row.slots = slots
            return slots

    # -- messages -----------------------------------------------------------------------------------------

    def add(self, conversation_id: str, message: NewMessage) -> MessageRecord:
        if message.role not in ROLES:
            raise InputError(f"unknown message role {message.role!r}: one of {', '.join(ROLES)}")
        with self.db.write() as db:
            conversation = db.get(Conversation, conversation_id)
            if conversation is None:
                raise NotFoundError(f"no session {conversation_id!r} (see `kefu sessions list`)")
            return self._insert(db, conversation, message, utcnow())

    @staticmethod
    def _insert(db, conversation: Conversation, message: NewMessage, now) -> MessageRecord:
        if message.role not in ROLES:
            raise InputError(f"unknown message role {message.role!r}: one of {', '.join(ROLES)}")
        conversation.updated_at = now
        fields = {**vars(message), "content": mask(message.content), "query": mask(message.query) if message.query else None}
        row = Message(conversation_id=conversation.id, created_at=now, **fields)
        db.add(row)
        db.flush()
        return _message(row)

    def recent(self, conversation_id: str, limit: int) -> list[MessageRecord]:
        """The conversation's newest `limit` messages, oldest first."""
        with self.db.read() as db:
            rows = db.scalars(
                select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id.desc()).limit(limit)
            ).all()
            return [_message(r) for r in reversed(rows)]

    def messages(self, conversation_id: str) -> list[MessageRecord]:
        """Every message of the conversation, oldest first (a transcript)."""
        self.get(conversation_id)
        with self.db.read() as db:
            rows = db.scalars(select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)).all()
            return [_message(r) for r in rows]

    def messages_after(self, conversation_id: str, after: int = 0, limit: int = 200) -> list[MessageRecord]:
        """The conversation's messages with an id above `after`, oldest first, at most `limit` (the newest of
        them when there are more): what a customer's open chat has not shown yet."""
        with self.db.read() as db:
            rows = db.scalars(
                select(Message).where(Message.conversation_id == conversation_id, Message.id > after)
                .order_by(Message.id.desc()).limit(limit)
            ).all()  # fmt: skip
            return [_message(r) for r in reversed(rows)]

    def message(self, message_id: int) -> MessageRecord:
        with self.db.read() as db:
            row = db.get(Message, message_id)
            if row is None:
                raise NotFoundError(f"no message {message_id} (message ids are in `kefu sessions show ID`)")
            return _message(row)
