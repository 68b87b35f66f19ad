"""Staff accounts of the web app (agents and admins; customers have none): stored in the `users` table with
argon2id password hashes, signed in with rate limiting, and held as sign-ins that expire.

- **Passwords** are hashed with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile) and never
  stored, logged or returned. A hash made with older parameters is made again at the next sign-in.
- **Sign-in** fails with one message, "wrong user name or password", whether the name is unknown, disabled or
  the password wrong, and takes the same time either way (an unknown name is checked against a dummy hash).
- **Lock-out** (`login_failures`), counted per user name *and* client address together: KEFU_LOGIN_MAX_FAILURES
  failures for a name from one address since its last successful sign-in, within KEFU_LOGIN_WINDOW_MINUTES,
  refuse that name from that address (with the minutes left to wait) before any password is checked; the
  same person signing in from elsewhere is not locked out, so a stranger guessing at an admin's name cannot
  lock the admin out. An address with KEFU_LOGIN_MAX_CLIENT_FAILURES failures (any names) within the window is
  refused for every name. Refused attempts are not counted (the window runs out); failures older than the
  window are deleted. Addresses are kept only as keyed hashes (`app.access.tokens.network`).
- **Audited**: every attempt is an audit record `sign_in` (`app.access.audit`): the account tried (or
  `unknown-user`, never the name typed), the network it came from, and the outcome (`verdicts.result`:
  `signed_in`, `wrong`, `locked`), so an admin can see who is being guessed at, and from where.
- **Sessions**: a `SignIn` is held on the server (`app.access.sign_ins`: it survives reloads through an HttpOnly
  cookie's token, and ends on sign-out or a new password) and lasts KEFU_SESSION_MINUTES. Front ends turn it
  into a `Principal` on every request with `principal()`, which reads the user and the sign-in again: a
  disabled user, a changed role, a new password, a sign-out or an expired sign-in takes effect at once.

Knows nothing about pages or cookies; the CLI (`kefu users`) is the local operator's way in.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from app.access.audit import AuditEntry, AuditLog
from app.access.auth import CUSTOMER, STAFF_ROLES, AuthenticationError, Principal
from app.access.sign_ins import SignIns
from app.db.database import Database
from app.db.schema import LoginFailure, User, iso_utc, utcnow
from app.errors import InputError, NotFoundError
from app.settings import AuthSettings

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
MAX_CLIENT_CHARS = 64
DEMO_ACCOUNTS = (("demo-admin", "admin"), ("demo-agent", "agent"))
WRONG = "wrong user name or password"


@dataclass(frozen=True)
class UserRecord:
    id: int
    name: str
    role: str
    disabled: bool
    created_at: str
    last_login_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class SignIn:
    """A successful sign-in: who, as what, until when, and which sign-in the server holds for it (`session`).
    Kept on the server side only (the web app's session state). Not a credential by itself: `principal()`
    checks it against the users and sign-ins tables every time. `ticket`: what the browser trades for its
    cookie, once (`app.access.sign_ins`), when it was signed in from a browser that has a visitor cookie."""

    user_id: int
    name: str
    role: str
    expires_at: datetime
    session: str = ""
    ticket: str | None = None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _record(row: User) -> UserRecord:
    return UserRecord(row.id, row.name, row.role, bool(row.disabled), iso_utc(row.created_at) or "", iso_utc(row.last_login_at))


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise InputError(
            f"{name!r} is not a usable user name: 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a "
            "letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InputError(f"the password is too short: use at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InputError(f"the password is too long: at most {MAX_PASSWORD_CHARS} characters")
    return password


def check_staff_role(role: str) -> str:
    if role not in STAFF_ROLES:
        raise InputError(f"unknown role {role!r}: staff accounts are {' or '.join(STAFF_ROLES)} (customers need none)")
    return role


def new_password() -> str:
    """A random password of 16 URL-safe characters (96 bits)."""
    return secrets.token_urlsafe(12)


class UserStore:
    def __init__(self, db: Database, settings: AuthSettings | None = None, audit: AuditLog | None = None):

        self.db = db
        self.settings = settings or AuthSettings()
        self.audit = audit
        self.hasher = PasswordHasher()
        self._dummy = self.hasher.hash(secrets.token_hex(16))  # for unknown names: the same work as a real check
        self.clock = utcnow  # tests move time forward
        self.sign_ins = SignIns(db, lambda: self.clock())

    # -- accounts -----------------------------------------------------------------------------------------

    def add(self, name: str, role: str, password: str) -> UserRecord:
        name, role = check_name(name), check_staff_role(role)
        hashed = self.hasher.hash(check_password(password))
        try:
            with self.db.write() as db:
                if db.scalar(select(User).where(User.name == name)) is not None:
                    raise InputError(f"user {name!r} exists already (see `kefu users list`)")
                row = User(name=name, role=role, password_hash=hashed, disabled=False, created_at=self.clock())
                db.add(row)
                db.flush()
                return _record(row)
        except IntegrityError:
            raise InputError(f"user {name!r} exists already (see `kefu users list`)") from None

    def set_password(self, name: str, password: str, enable: bool = False) -> UserRecord:
        """A new password; every sign-in of the account ends (whoever knew the old one is signed out)."""
        hashed = self.hasher.hash(check_password(password))
        with self.db.write() as db:
            row = self._row(db, name)
            row.password_hash = hashed
            if enable:
                row.disabled = False
            record = _record(row)
        self.sign_ins.end_all(record.id)
        return record

    def list(self) -> list[UserRecord]:
        with self.db.read() as db:
            return [_record(r) for r in db.scalars(select(User).order_by(User.name)).all()]

    def get(self, name: str) -> UserRecord:
        with self.db.read() as db:
            return _record(self._row(db, name))

    def set_disabled(self, name: str, disabled: bool = True) -> UserRecord:
        with self.db.write() as db:
            row = self._row(db, name)
            row.disabled = disabled
            return _record(row)

    @staticmethod
    def _row(db, name: str) -> User:
        row = db.scalar(select(User).where(User.name == (name or "").strip()))
        if row is None:
            raise NotFoundError(f"no user {name!r} (see `kefu users list`)")
        return row

    def demo_accounts(self) -> list[tuple[str, str, str]]:
        """Create (or give new passwords to) the demo admin and agent: [(name, role, password)]."""
        made = []
        for name, role in DEMO_ACCOUNTS:
            password = new_password()
            try:
                self.add(name, role, password)
            except InputError:
                self.set_password(name, password, enable=True)
            made.append((name, role, password))
        return made

    # -- signing in ---------------------------------------------------------------------------------------

    def sign_in(self, name: str, password: str, client: str = "", browser: str | None = None) -> SignIn:
        """A SignIn for the right name and password, held on the server (`browser`: the visitor id of the
        browser signing in, which gets a ticket for its cookie); AuthenticationError (one message for every
        wrong case, or the lock-out's) otherwise. `client`: where from (a keyed network address)."""
        name = (name or "").strip()[:64]
        client = (client or "unknown")[:MAX_CLIENT_CHARS]
        now = self.clock()
        with self.db.read() as db:
            row = db.scalar(select(User).where(User.name == name)) if name else None
            stored = row.password_hash if row is not None else self._dummy
            last_login = row.last_login_at if row is not None else None
        try:
            self._check_rate(name, client, last_login, now)
        except AuthenticationError:
            self._audit(row, client, "locked")
            raise
        if not self._verify(stored, password or "") or row is None or row.disabled:
            self._fail(name, client, now)
            self._audit(row, client, "wrong")
            raise AuthenticationError(WRONG)
        with self.db.write() as db:
            fresh = db.get(User, row.id)
            fresh.last_login_at = now
            if self.hasher.check_needs_rehash(fresh.password_hash):
                fresh.password_hash = self.hasher.hash(password)
        held, ticket = self.sign_ins.start(row.id, self.settings.session_minutes, client, browser)
        self._audit(row, client, "signed_in")
        return SignIn(row.id, row.name, row.role, held.expires_at, held.id, ticket)

    def redeem(self, ticket: str, browser: str | None) -> tuple[str, datetime]:
        """The token for the browser's cookie (and when it expires), for the ticket its sign-in gave it: once,
        for that browser only (`app.access.sign_ins`). AuthenticationError otherwise."""
        token, held = self.sign_ins.redeem(ticket, browser)
        return token, held.expires_at

    def resume(self, token: str) -> SignIn:
        """The sign-in a browser's cookie token stands for (AuthenticationError when it ended or expired)."""
        held = self.sign_ins.resume(token)
        with self.db.read() as db:
            row = db.get(User, held.user_id)
        if row is None:
            raise AuthenticationError("your account was changed or disabled: sign in again")
        return SignIn(row.id, row.name, row.role, held.expires_at, held.id)

    def sign_out(self, sign_in: SignIn) -> None:
        """End the sign-in (its cookie, wherever it is, leads nowhere from now on)."""
        if sign_in.session:
            self.sign_ins.end(sign_in.session)

    def principal(self, sign_in: SignIn) -> Principal:
        """Who a sign-in stands for now; AuthenticationError when it expired, ended (signed out, a new password)
        or the user was disabled, renamed or given another role since."""
        if self.clock() >= _aware(sign_in.expires_at):
            raise AuthenticationError("your sign-in has expired: sign in again")
        self.sign_ins.check(sign_in.session)
        with self.db.read() as db:
            row = db.get(User, sign_in.user_id)
        if row is None or row.disabled or row.name != sign_in.name or row.role != sign_in.role:
            raise AuthenticationError("your account was changed or disabled: sign in again")
        return Principal("user", row.name, row.role, f"user:{row.id}")

    def _verify(self, stored: str, password: str) -> bool:

        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def _check_rate(self, name: str, client: str, last_login: datetime | None, now: datetime) -> None:
        s = self.settings
        window_start = now - timedelta(minutes=s.login_window_minutes)
        user_since = max(window_start, _aware(last_login)) if last_login else window_start
        with self.db.read() as db:
            by_user = db.execute(
                select(func.count(), func.min(LoginFailure.created_at))
                .where(LoginFailure.user_name == name, LoginFailure.client == client,
                       LoginFailure.created_at > user_since)
            ).one()  # fmt: skip
            by_client = db.execute(
                select(func.count(), func.min(LoginFailure.created_at))
                .where(LoginFailure.client == client, LoginFailure.created_at > window_start)
            ).one()  # fmt: skip
        for (count, oldest), limit, who in (
            (by_user, s.login_max_failures, f"for {name!r} from this address"),
            (by_client, s.login_max_client_failures, "from this address"),
        ):
            if count >= limit:
                wait = _aware(oldest) + timedelta(minutes=s.login_window_minutes) - now
                minutes = max(1, int(wait.total_seconds() // 60) + 1)
                raise AuthenticationError(
                    f"too many failed sign-ins {who}: try again in {minutes} minute{'s' * (minutes != 1)}"
                )

    def _audit(self, row: User | None, client: str, result: str) -> None:
        """The attempt, in the audit log: on the account tried (or `unknown-user`), from the client's network."""
        if self.audit is None:
            return
        network = client if client.startswith("net:") else ""
        if row is not None:
            who = Principal("user", row.name, row.role, f"user:{row.id}", network)
        else:
            who = Principal("anonymous", "unknown user", CUSTOMER, "unknown-user", network)
        entry = AuditEntry("sign_in", who, error_code=None if result == "signed_in" else "AuthenticationError",
                           verdicts={"result": result})  # fmt: skip
        self.audit.record(entry)

    def _fail(self, name: str, client: str, now: datetime) -> None:
        cutoff = now - timedelta(minutes=self.settings.login_window_minutes)
        with self.db.write() as db:
            db.execute(delete(LoginFailure).where(LoginFailure.created_at < cutoff))
            db.add(LoginFailure(user_name=name or "", client=client, created_at=now))
