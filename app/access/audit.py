"""The audit log: one record per customer turn and per privileged action, in the SQL database.

A record says who (actor and role), from which network (for customers without an account and sign-in
attempts: the keyed hash `app.access.tokens.network`, never the address), what (action), when, in which
conversation, how big the prompt and answer were (lengths, never text), the answer's mode, the latency, the
error code if it failed, and the guardrails' verdicts (what the output policy changed, whether an injection
was detected, which kinds of personal data were masked). It never holds what anyone wrote. `kefu audit
[--since] [--json]` reads it; erasing a conversation erases its records. The rate limits count it
(`app.access.limits`): per actor, per conversation and per network.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select

from app.access.auth import LOCAL_OPERATOR, Principal
from app.db.database import Database
from app.db.schema import AuditRecord, iso_utc, utcnow

FIELDS = ("prompt_chars", "answer_chars", "mode", "error_code", "verdicts", "session_id", "client")


@dataclass
class AuditEntry:
    """What an action fills in while it runs (see `AuditLog.action`)."""

    action: str
    actor: Principal
    session_id: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    prompt_chars: int | None = None
    answer_chars: int | None = None
    mode: str | None = None
    error_code: str | None = None
    verdicts: dict[str, Any] = field(default_factory=dict)


def actor_id(principal: Principal) -> str:
    """How the log names a principal: its stable id ("user:3", "key:7", "visitor:web:<id>", "local")."""
    return (principal.id or f"{principal.kind}:{principal.name}")[:80]


class AuditLog:
    def __init__(self, db: Database):
        self.db = db

    def record(self, entry: AuditEntry, latency_ms: int | None = None) -> None:
        with self.db.write() as db:
            db.add(
                AuditRecord(
                    request_id=entry.request_id,
                    created_at=utcnow(),
                    session_id=entry.session_id,
                    actor=actor_id(entry.actor),
                    role=entry.actor.role,
                    client=entry.actor.network or None,
                    action=entry.action,
                    prompt_chars=entry.prompt_chars,
                    answer_chars=entry.answer_chars,
                    mode=entry.mode,
                    latency_ms=latency_ms,
                    error_code=entry.error_code,
                    verdicts=entry.verdicts or None,
                )
            )

    @contextmanager
    def action(self, action: str, actor: Principal | None = None, session_id: str | None = None) -> Iterator[AuditEntry]:
        """Record `action` when the block ends, with its latency; a failure is recorded with its error code
        (the exception's class) and raised on."""
        entry = AuditEntry(action, actor or LOCAL_OPERATOR, session_id)
        started = time.perf_counter()
        try:
            yield entry
        except BaseException as exc:
            entry.error_code = type(exc).__name__[:32]
            raise
        finally:
            self.record(entry, int((time.perf_counter() - started) * 1000))

    def records(self, since: datetime | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest records first."""
        query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
        if since is not None:
            query = query.where(AuditRecord.created_at >= since)
        with self.db.read() as db:
            return [
                {
                    "request_id": r.request_id, "time": iso_utc(r.created_at), "session_id": r.session_id,
                    "actor": r.actor, "role": r.role, "client": r.client, "action": r.action,
                    "prompt_chars": r.prompt_chars,
                    "answer_chars": r.answer_chars, "mode": r.mode, "latency_ms": r.latency_ms,
                    "error_code": r.error_code, "verdicts": r.verdicts or {},
                }  # fmt: skip
                for r in db.scalars(query).all()
            ]

    def count_since(self, action: str, actor_id: str, since: datetime, weight_of_flagged: int = 1,
                    network: str | None = None) -> int:  # fmt: skip
        """How many `action` records `actor_id` has made since `since` (records that the injection detector
        flagged count `weight_of_flagged` times): what the per-client rate limit counts. With `network`, the
        records from that network instead, whoever made them (the per-address limit)."""
        who = AuditRecord.client == network if network is not None else AuditRecord.actor == actor_id
        with self.db.read() as db:
            rows = db.execute(
                select(AuditRecord.verdicts).where(AuditRecord.action == action, who, AuditRecord.created_at >= since)
            ).all()
        return sum(weight_of_flagged if (v or {}).get("injection") else 1 for (v,) in rows)

    def turns_in_session_since(self, session_id: str, since: datetime) -> int:
        """How many customer messages (turns) the conversation has had since `since`: what the per-conversation
        rate limit counts."""
        with self.db.read() as db:
            return db.scalar(
                select(func.count()).where(
                    AuditRecord.action == "turn", AuditRecord.session_id == session_id, AuditRecord.created_at >= since
                )
            ) or 0

    def erase_session(self, session_id: str) -> int:
        with self.db.write() as db:
            return db.execute(delete(AuditRecord).where(AuditRecord.session_id == session_id)).rowcount or 0

    def size(self) -> int:
        with self.db.read() as db:
            return db.scalar(select(func.count()).select_from(AuditRecord)) or 0
