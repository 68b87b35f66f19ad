"""Staff sign-ins to the web app, held on the server (`sign_ins` table): what lets an agent's or admin's sign-in
survive a reload, and end for good when it should.

Why on the server: the web app (Streamlit) talks to the browser over a WebSocket and cannot set a cookie
itself, and a cookie that page scripts could read (or a token in the URL) would hand the sign-in to any script
injected into the page. So a sign-in is a row here, and the browser holds only a random token for it in an
**HttpOnly** cookie (`kefu_staff`, SameSite=Strict, Secure over HTTPS, no longer than the sign-in) that the
web app's own server sets (`ui/web_server.py`); only the token's SHA-256 is stored. The steps:

1. `start`: the credentials were right (`app.access.users`): a row with its expiry (KEFU_SESSION_MINUTES) and,
   for a browser that holds a visitor cookie, a one-use **ticket** (60 s) bound to that browser. The page keeps
   the row's id in its server-side session state (never sent to the browser) and sends the browser to the
   server's ticket route.
2. `redeem`: that route (same browser, same visitor cookie) trades the ticket for a fresh random token, which
   it sets as the cookie. A ticket works once, only for the browser it was made for, and only for a minute; a
   token made before the sign-in (a planted cookie) is worth nothing after it.
3. `resume`: every new page session (a reload, another tab) finds the sign-in by the cookie's token.
4. `check` on every request: the row must exist, not have ended, not have expired.
5. `end` (sign out) and `end_all` (the password changed): the row ends; the cookie, if still in the browser,
   no longer leads anywhere.

Knows nothing about cookies or HTTP, nor about users (`app.access.users` says who a sign-in is for).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from app.access.auth import AuthenticationError
from app.db.database import Database
from app.db.schema import SignInRecord

TICKET_SECONDS = 60
ENDED = "you were signed out: sign in again"


@dataclass(frozen=True)
class Held:
    """A sign-in as the server holds it: its id, whose, until when."""

    id: str
    user_id: int
    expires_at: datetime


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class SignIns:
    def __init__(self, db: Database, clock: Callable[[], datetime]):
        self.db = db
        self.clock = clock

    def start(self, user_id: int, minutes: int, client: str | None = None,
              browser: str | None = None) -> tuple[Held, str | None]:  # fmt: skip
        """A new sign-in for `user_id`, lasting `minutes`; with `browser` (its visitor id) also the one-use ticket
        that browser trades for its cookie."""
        now = self.clock()
        ticket = secrets.token_urlsafe(32) if browser else None
        row = SignInRecord(
            id=secrets.token_hex(16), user_id=user_id, created_at=now, expires_at=now + timedelta(minutes=minutes),
            client=client or None, ticket_hash=_hash(ticket) if ticket else None, ticket_browser=browser,
            ticket_expires_at=now + timedelta(seconds=TICKET_SECONDS) if ticket else None,
        )  # fmt: skip
        with self.db.write() as db:
            db.add(row)
        return Held(row.id, user_id, row.expires_at), ticket

    def redeem(self, ticket: str, browser: str | None) -> tuple[str, Held]:
        """The cookie's token for the sign-in `ticket` was made for, when `browser` is the one it was made for and
        it is fresh and unused (it is used up now); AuthenticationError otherwise."""
        if not ticket or not browser:
            raise AuthenticationError("this sign-in link is not valid: sign in again")
        now = self.clock()
        token = secrets.token_urlsafe(32)
        held = None
        with self.db.write() as db:
            row = db.scalar(select(SignInRecord).where(SignInRecord.ticket_hash == _hash(ticket)))
            if row is not None:
                row.ticket_hash = None  # used up, whatever happens next (committed either way)
                if (row.ticket_browser == browser and row.ended_at is None
                        and now < _aware(row.ticket_expires_at or now) and now < _aware(row.expires_at)):  # fmt: skip
                    row.token_hash = _hash(token)
                    held = Held(row.id, row.user_id, _aware(row.expires_at))
        if held is None:
            raise AuthenticationError("this sign-in link is not valid: sign in again")
        return token, held

    def resume(self, token: str) -> Held:
        """The sign-in a cookie's token belongs to, when it is still on; AuthenticationError otherwise."""
        if not token:
            raise AuthenticationError(ENDED)
        with self.db.read() as db:
            return self._live(db.scalar(select(SignInRecord).where(SignInRecord.token_hash == _hash(token))))

    def check(self, sign_in_id: str) -> Held:
        """The sign-in, when it is still on; AuthenticationError when it expired or ended."""
        with self.db.read() as db:
            return self._live(db.get(SignInRecord, sign_in_id))

    def end(self, sign_in_id: str) -> None:
        with self.db.write() as db:
            db.execute(update(SignInRecord).where(SignInRecord.id == sign_in_id, SignInRecord.ended_at.is_(None))
                       .values(ended_at=self.clock(), ticket_hash=None))  # fmt: skip

    def end_all(self, user_id: int) -> int:
        """End every sign-in of the user (a new password); how many were on."""
        with self.db.write() as db:
            on = (SignInRecord.user_id == user_id, SignInRecord.ended_at.is_(None))
            result = db.execute(update(SignInRecord).where(*on).values(ended_at=self.clock(), ticket_hash=None))
            return result.rowcount or 0

    def _live(self, row: SignInRecord | None) -> Held:
        if row is None or row.ended_at is not None:
            raise AuthenticationError(ENDED)
        if self.clock() >= _aware(row.expires_at):
            raise AuthenticationError("your sign-in has expired: sign in again")
        return Held(row.id, row.user_id, _aware(row.expires_at))

