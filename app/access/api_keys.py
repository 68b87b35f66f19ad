"""API keys of the HTTP API (`kefu serve`): created, verified, listed and revoked, in the `api_keys` table.

A key reads `kefu_<prefix>_<secret>`: the prefix (8 hex characters) names it in lists, logs and `kefu keys
revoke`; the secret (256 random bits) is what proves it. Only the SHA-256 hash of the whole key is stored: the
key itself is shown once, when it is created, and can never be read back (a lost key is revoked and replaced).
A plain hash is enough here, unlike a password's slow one: the secret is random, so there is nothing to guess.

Each key has a role (`customer`, `agent` or `admin`, `app.access.auth`) and stands for a `Principal` of kind `key`
whose id is `key:<id>`: the owner of the conversations it starts. A revoked key is refused from then on, by
every worker (they read the table). Knows nothing about HTTP: `api/` reads the header and calls `verify`.

A **widget key** (role `widget`) is publishable: it sits in a website's page source, with the web origins
(`https://shop.example`) whose pages may use it. It stands for no principal: `verify` refuses it, and the only
thing it can do is let a browser on one of its origins become a website visitor (`app.access.visitors`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select

from app.access.auth import ROLES, AuthenticationError, Principal, check_role
from app.db.database import Database
from app.db.schema import ApiKey, iso_utc, utcnow
from app.errors import InputError, KefuError, NotFoundError

KEY_RE = re.compile(r"^kefu_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
MAX_LABEL_CHARS = 64
LAST_USED_EVERY = timedelta(minutes=1)  # a key used often is written at most once a minute
WIDGET = "widget"  # the publishable key of the website widget: not a role a principal can have
KEY_ROLES = (*ROLES, WIDGET)
MAX_ORIGINS = 20
MAX_ORIGIN_CHARS = 200
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(text: str) -> str:
    """A web origin as browsers send it in the Origin header: `scheme://host[:port]`, lower case, the default
    port left out. InputError for anything else (a path, a wildcard, another scheme)."""
    value = (text or "").strip().rstrip("/")
    hint = "give an origin like https://shop.example (scheme and host, a port if not the default; no path)"
    if not value or len(value) > MAX_ORIGIN_CHARS:
        raise InputError(f"{text!r} is not a web origin: {hint}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise InputError(f"{text!r} is not a web origin: {hint}") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in DEFAULT_PORTS or not host or parts.path or parts.query or parts.fragment or "@" in parts.netloc \
            or "*" in host:  # fmt: skip
        raise InputError(f"{text!r} is not a web origin: {hint}")
    shown_host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown_host}" + (f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else "")


@dataclass(frozen=True)
class KeyRecord:
    id: int
    prefix: str
    role: str
    label: str | None
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    origins: tuple[str, ...] = ()  # a widget key's web origins

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "origins": list(self.origins), "active": self.active}


@dataclass(frozen=True)
class NewKey:
    """A key just made: `key` is the only time its secret is ever available."""

    record: KeyRecord
    key: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _record(row: ApiKey) -> KeyRecord:
    return KeyRecord(row.id, row.prefix, row.role, row.label, iso_utc(row.created_at) or "", iso_utc(row.last_used_at),
                     iso_utc(row.revoked_at), tuple(row.origins or ()))  # fmt: skip


def principal_of(row: ApiKey | KeyRecord) -> Principal:
    if row.role == WIDGET:
        raise KefuError("a widget key stands for no principal: its visitors do (app.access.visitors)")
    return Principal("key", row.label or f"key {row.prefix}", row.role, f"key:{row.id}")


def checked_origins(role: str, origins: Sequence[str] | None) -> list[str] | None:
    """The origins a key of `role` is made with: one or more for a widget key (normalised, without repeats),
    none for any other."""
    given = [o for o in (origins or ()) if o is not None]
    if role != WIDGET:
        if given:
            raise InputError("only a widget key (--role widget) names origins")
        return None
    if not given:
        raise InputError("a widget key needs the site's origin: --origin https://shop.example (repeat for more)")
    if len(given) > MAX_ORIGINS:
        raise InputError(f"{len(given)} origins; a widget key may name at most {MAX_ORIGINS}")
    return list(dict.fromkeys(normalise_origin(o) for o in given))


class ApiKeys:
    def __init__(self, db: Database):
        self.db = db

    def create(self, role: str, label: str | None = None, origins: Sequence[str] | None = None) -> NewKey:
        """A new key of `role` (a role, or `widget` with the `origins` its pages are served from)."""
        if role != WIDGET:
            check_role(role)
        kept_origins = checked_origins(role, origins)
        label = (label or "").strip() or None
        if label is not None and len(label) > MAX_LABEL_CHARS:
            raise InputError(f"the label is {len(label)} characters long; the limit is {MAX_LABEL_CHARS}")
        prefix = secrets.token_hex(4)
        key = f"kefu_{prefix}_{secrets.token_urlsafe(32)}"
        with self.db.write() as db:
            row = ApiKey(prefix=prefix, key_hash=hash_key(key), role=role, label=label, created_at=utcnow(),
                         origins=kept_origins)  # fmt: skip
            db.add(row)
            db.flush()
            return NewKey(_record(row), key)

    def verify(self, key: str) -> Principal:
        """The principal a key stands for; AuthenticationError when it is malformed, unknown, revoked, or a
        widget key (which stands for nobody)."""
        row = self._active_row(key)
        if row.role == WIDGET:
            raise AuthenticationError(
                f"key {row.prefix} is a widget key: it works only in the website widget (/widget.js) on its origins"
            )
        self._used(row)
        return principal_of(row)

    def widget(self, key: str) -> KeyRecord:
        """The active widget key `key`; AuthenticationError when it is malformed, unknown, revoked or another kind."""
        row = self._active_row(key, "widget key")
        if row.role != WIDGET:
            raise AuthenticationError(f"key {row.prefix} is not a widget key: make one with `kefu keys create --role widget`")
        self._used(row)
        return _record(row)

    def get(self, key_id: int) -> KeyRecord | None:
        """The key with this id (active or not); None when there is none."""
        with self.db.read() as db:
            row = db.get(ApiKey, key_id)
            return _record(row) if row is not None else None

    def widget_origins(self) -> set[str]:
        """Every origin an active widget key names."""
        with self.db.read() as db:
            rows = db.scalars(select(ApiKey.origins).where(ApiKey.role == WIDGET, ApiKey.revoked_at.is_(None))).all()
        return {o for origins in rows for o in (origins or ())}

    def _active_row(self, key: str, what: str = "API key") -> ApiKey:
        key = (key or "").strip()
        if not KEY_RE.match(key):
            how = ("set data-kefu-key to the key `kefu keys create --role widget` printed" if what == "widget key"
                   else "send `Authorization: Bearer kefu_...` with a key from `kefu keys create`")  # fmt: skip
            raise AuthenticationError(f"the {what} is malformed: {how}")
        with self.db.read() as db:
            row = db.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
        if row is None or not secrets.compare_digest(row.key_hash, hash_key(key)):
            raise AuthenticationError(f"unknown {what}: create one with `kefu keys create`")
        if row.revoked_at is not None:
            raise AuthenticationError(f"{what} {row.prefix} was revoked: ask an administrator for a new one")
        return row

    def _used(self, row: ApiKey) -> None:
        now = utcnow()
        last = row.last_used_at
        if last is None or (last if last.tzinfo else last.replace(tzinfo=now.tzinfo)) < now - LAST_USED_EVERY:
            with self.db.write() as db:
                fresh = db.get(ApiKey, row.id)
                if fresh is not None:
                    fresh.last_used_at = now

    def list(self) -> list[KeyRecord]:
        with self.db.read() as db:
            return [_record(r) for r in db.scalars(select(ApiKey).order_by(ApiKey.id)).all()]

    def revoke(self, which: str) -> KeyRecord:
        """Revoke the key with this id or prefix (revoking a revoked key changes nothing)."""
        which = (which or "").strip()
        condition = ApiKey.prefix == which
        if which.isdigit():
            condition = or_(ApiKey.id == int(which), condition)
        with self.db.write() as db:
            rows = db.scalars(select(ApiKey).where(condition)).all()
            if not rows:
                raise NotFoundError(f"no API key {which!r}: see `kefu keys list` for ids and prefixes")
            if len(rows) > 1:
                raise InputError(f"{which!r} names {len(rows)} keys: revoke by id (see `kefu keys list`)")
            row = rows[0]
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return _record(row)
