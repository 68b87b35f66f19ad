"""Rate limits on customer messages, per conversation and per client, counted in the SQL database so that
every process and node sharing it enforces the same limit (no separate counter service to run).

Both count the turns the audit log holds (`app.access.audit`: one record per customer message, whatever the
channel) during the last minute:
- per conversation: KEFU_RATE_PER_SESSION;
- per client (a browser, an API key, a signed-in user): KEFU_RATE_PER_CLIENT; a turn the injection detector
  flagged counts three times.

The local operator (the CLI) is not limited. Over a limit, `RateLimited` says when to try again. The gate
(`app.access.gate`) checks it before every customer message.
"""

from __future__ import annotations

from datetime import timedelta

from app.access.audit import AuditLog, actor_id
from app.access.auth import Principal
from app.db.schema import utcnow
from app.errors import RateLimited

WINDOW_SECONDS = 60
FLAGGED_WEIGHT = 3


class RateLimiter:
    def __init__(self, audit: AuditLog, per_session: int, per_client: int):
        self.audit = audit
        self.per_session = per_session
        self.per_client = per_client

    def check(self, principal: Principal, session_id: str | None) -> None:
        if principal.kind == "local":
            return
        since = utcnow() - timedelta(seconds=WINDOW_SECONDS)
        if self.per_session and session_id and self.audit.turns_in_session_since(session_id, since) >= self.per_session:
            raise RateLimited(
                f"too many messages in this conversation: at most {self.per_session} a minute. Please wait a moment.",
                WINDOW_SECONDS,
            )
        if self.per_client and self.audit.count_since("turn", actor_id(principal), since, FLAGGED_WEIGHT) >= self.per_client:
            raise RateLimited(f"too many messages: at most {self.per_client} a minute. Please wait a moment.", WINDOW_SECONDS)
