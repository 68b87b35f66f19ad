"""Insights for admins: how the assistant is doing over the last days, computed in SQL from the sessions database
(works alike on SQLite and PostgreSQL).

- conversations started per day (every day of the window, zeros included);
- answers by mode (`faq`, `extractive`, `generated`, `abstain`, `handoff`, `smalltalk`);
- the handoff rate: the share of conversations started in the window that were handed to a person at some point
  (the customer asked, complained, the assistant could not answer, or an agent joined);
- answer latency, median and 95th percentile (nearest rank), over the assistant's answers;
- feedback: helpful / not helpful.

The knowledge gaps (grouped by meaning) are `KefuService.gaps`'; this module only counts. Reads only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select

from app.db.database import Database
from app.db.schema import Conversation, Feedback, Message

MAX_DAYS = 366


@dataclass
class Insights:
    days: int
    since: str  # the first day counted (UTC), ISO
    conversations: int
    per_day: list[tuple[str, int]] = field(default_factory=list)  # (YYYY-MM-DD, conversations started)
    modes: dict[str, int] = field(default_factory=dict)
    answers: int = 0
    handed_over: int = 0
    latency_p50_ms: int | None = None
    latency_p95_ms: int | None = None
    feedback: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0})

    @property
    def handoff_rate(self) -> float | None:
        return self.handed_over / self.conversations if self.conversations else None

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "handoff_rate": self.handoff_rate}


def _percentile(db, window: tuple, share: float, count: int) -> int | None:
    """The nearest-rank percentile of answer latency: the value at rank ceil(share × count)."""
    if not count:
        return None
    rank = max(1, math.ceil(share * count))
    return db.scalar(
        select(Message.latency_ms)
        .where(Message.role == "assistant", Message.latency_ms.is_not(None), *window)
        .order_by(Message.latency_ms)
        .offset(rank - 1)
        .limit(1)
    )


def compute(db: Database, days: int = 30, today: date | None = None) -> Insights:
    """The figures for the last `days` days, today (UTC) included."""
    days = max(1, min(int(days), MAX_DAYS))
    today = today or datetime.now(timezone.utc).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    until = since + timedelta(days=days)

    def within(column) -> tuple:
        return column >= since, column < until

    messages = within(Message.created_at)
    with db.read() as s:
        started = dict(
            s.execute(
                select(func.date(Conversation.created_at), func.count())
                .where(*within(Conversation.created_at))
                .group_by(func.date(Conversation.created_at))
            ).all()
        )
        started = {str(day): n for day, n in started.items()}
        conversations = sum(started.values())
        handed_over = s.scalar(
            select(func.count()).where(*within(Conversation.created_at), Conversation.handoff_reason.is_not(None))
        ) or 0
        modes = dict(
            s.execute(
                select(Message.mode, func.count())
                .where(Message.role == "assistant", Message.mode.is_not(None), *messages)
                .group_by(Message.mode)
            ).all()
        )
        timed = s.scalar(
            select(func.count()).where(Message.role == "assistant", Message.latency_ms.is_not(None), *messages)
        ) or 0
        p50, p95 = _percentile(s, messages, 0.5, timed), _percentile(s, messages, 0.95, timed)
        ratings = dict(
            s.execute(select(Feedback.rating, func.count()).where(*within(Feedback.created_at)).group_by(Feedback.rating)).all()
        )
    per_day = [((first + timedelta(days=i)).isoformat(), 0) for i in range(days)]
    per_day = [(day, started.get(day, 0)) for day, _ in per_day]
    return Insights(
        days=days,
        since=first.isoformat(),
        conversations=conversations,
        per_day=per_day,
        modes=dict(sorted(modes.items(), key=lambda kv: -kv[1])),
        answers=sum(modes.values()),
        handed_over=int(handed_over),
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        feedback={"up": ratings.get("up", 0), "down": ratings.get("down", 0)},
    )
