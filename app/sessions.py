"""Conversation sessions in a SQL database through SQLAlchemy: SQLite under KEFU_HOME by default,
PostgreSQL (or any SQLAlchemy URL) when KEFU_DATABASE_URL says so.

The schema is created and upgraded by Alembic migrations (`app/migrations/versions`), run on open. This
module stores and reads turns; it knows nothing about retrieval or answering.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from app.errors import ConfigError, NotFoundError

STATUS_BOT = "bot"  # the assistant is answering
STATUS_HANDOFF = "handoff"  # waiting for, or talking to, a human agent


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=STATUS_BOT)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow, onupdate=_utcnow)
    messages: Mapped[list[Message]] = relationship(back_populates="conversation", order_by="Message.id")


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # user | assistant
    content: Mapped[str] = mapped_column(Text)
    mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    conversation: Mapped[Conversation] = relationship(back_populates="messages")


@dataclass
class Turn:
    role: str
    content: str
    mode: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: int | None = None
    created_at: str = ""


def upgrade_schema(engine: Engine) -> None:
    """Bring the database to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class SessionStore:
    def __init__(self, url: str):
        try:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url, future=True)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            upgrade_schema(self.engine)
        except (SQLAlchemyError, OSError, ImportError) as exc:
            raise ConfigError(f"cannot open the sessions database {url!r}: {exc}. Check KEFU_DATABASE_URL.") from exc

    def ensure(self, conversation_id: str | None) -> str:
        """Return the id of an existing conversation, creating it (with the given id, or a new one) if needed."""
        conversation_id = conversation_id or uuid.uuid4().hex[:16]
        if not 0 < len(conversation_id) <= 64:
            raise NotFoundError("a session id must be 1 to 64 characters")
        with Session(self.engine) as db, db.begin():
            if db.get(Conversation, conversation_id) is None:
                db.add(Conversation(id=conversation_id))
        return conversation_id

    def add_turn(self, conversation_id: str, turn: Turn) -> None:
        with Session(self.engine) as db, db.begin():
            conversation = db.get(Conversation, conversation_id)
            if conversation is None:
                raise NotFoundError(f"no session {conversation_id!r}")
            conversation.updated_at = _utcnow()
            db.add(
                Message(
                    conversation_id=conversation_id,
                    role=turn.role,
                    content=turn.content,
                    mode=turn.mode,
                    sources=turn.sources,
                    latency_ms=turn.latency_ms,
                )
            )

    def set_status(self, conversation_id: str, status: str) -> None:
        with Session(self.engine) as db, db.begin():
            conversation = db.get(Conversation, conversation_id)
            if conversation is None:
                raise NotFoundError(f"no session {conversation_id!r}")
            conversation.status = status

    def status(self, conversation_id: str) -> str:
        with Session(self.engine) as db:
            conversation = db.get(Conversation, conversation_id)
            if conversation is None:
                raise NotFoundError(f"no session {conversation_id!r}")
            return conversation.status

    def history(self, conversation_id: str) -> list[Turn]:
        with Session(self.engine) as db:
            rows = db.scalars(
                select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
            ).all()
            return [
                Turn(r.role, r.content, r.mode, list(r.sources or []), r.latency_ms, r.created_at.isoformat())
                for r in rows
            ]

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()
