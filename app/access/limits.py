"""Rate limits on customer messages, per conversation and per client, counted in the SQL database so that
every process and node sharing it enforces the same limit (no separate counter service to run).

They count the turns the audit log holds (`app.access.audit`: one record per customer message, whatever the
channel, an abandoned or refused one included) during the last minute:
- per conversation: KEFU_RATE_PER_SESSION;
- per client (a browser's visitor token, an API key, a signed-in user; a keyless API caller by its address):
  KEFU_RATE_PER_CLIENT; a turn the injection detector flagged counts three times;
- per network, for customers without an account (`Principal.network`: every visitor and keyless caller behind
  one address, so a client that drops its cookie or token to start afresh is still counted):
  KEFU_RATE_PER_ADDRESS, flagged turns three times too.

A client's address is the connection's own unless it comes through a proxy named in KEFU_TRUSTED_PROXIES (the
servers apply it: `api/__main__.py`, `ui/__main__.py`), so a forged X-Forwarded-For does not make a new client.

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
    def __init__(self, audit: AuditLog, per_session: int, per_client: int, per_address: int = 0):
        self.audit = audit
        self.per_session = per_session
        self.per_client = per_client
        self.per_address = per_address

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
        if self.per_address and principal.network:
            if self.audit.count_since("turn", "", since, FLAGGED_WEIGHT, network=principal.network) >= self.per_address:
                raise RateLimited(
                    f"too many messages from your network: at most {self.per_address} a minute. Please wait a moment.",
                    WINDOW_SECONDS,
                )
