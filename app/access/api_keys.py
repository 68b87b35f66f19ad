"""API keys of the HTTP API (`kefu serve`): created, verified, listed and revoked, in the `api_keys` table.

A key reads `kefu_<prefix>_<secret>`: the prefix (8 hex characters) names it in lists, logs and `kefu keys
revoke`; the secret (256 random bits) is what proves it. Only the SHA-256 hash of the whole key is stored: the
key itself is shown once, when it is created, and can never be read back (a lost key is revoked and replaced).
A plain hash is enough here, unlike a password's slow one: the secret is random, so there is nothing to guess.

Each key has a role (`customer`, `agent` or `admin`, `app.access.auth`) and stands for a `Principal` of kind `key`
whose id is `key:<id>`: the owner of the conversations it starts. A revoked key is refused from then on, by
every worker (they read the table). Knows nothing about HTTP: `api/` reads the header and calls `verify`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select

from app.access.auth import AuthenticationError, Principal, check_role
from app.db.database import Database
from app.db.schema import ApiKey, iso_utc, utcnow
from app.errors import InputError, NotFoundError

KEY_RE = re.compile(r"^kefu_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
MAX_LABEL_CHARS = 64
LAST_USED_EVERY = timedelta(minutes=1)  # a key used often is written at most once a minute


@dataclass(frozen=True)
class KeyRecord:
    id: int
    prefix: str
    role: str
    label: str | None
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "active": self.active}


@dataclass(frozen=True)
class NewKey:
    """A key just made: `key` is the only time its secret is ever available."""

    record: KeyRecord
    key: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _record(row: ApiKey) -> KeyRecord:
    return KeyRecord(row.id, row.prefix, row.role, row.label, iso_utc(row.created_at) or "", iso_utc(row.last_used_at),
                     iso_utc(row.revoked_at))  # fmt: skip


def principal_of(row: ApiKey | KeyRecord) -> Principal:
    return Principal("key", row.label or f"key {row.prefix}", row.role, f"key:{row.id}")


class ApiKeys:
    def __init__(self, db: Database):
        self.db = db

    def create(self, role: str, label: str | None = None) -> NewKey:
        check_role(role)
        label = (label or "").strip() or None
        if label is not None and len(label) > MAX_LABEL_CHARS:
            raise InputError(f"the label is {len(label)} characters long; the limit is {MAX_LABEL_CHARS}")
        prefix = secrets.token_hex(4)
        key = f"kefu_{prefix}_{secrets.token_urlsafe(32)}"
        with self.db.write() as db:
            row = ApiKey(prefix=prefix, key_hash=hash_key(key), role=role, label=label, created_at=utcnow())
            db.add(row)
            db.flush()
            return NewKey(_record(row), key)

    def verify(self, key: str) -> Principal:
        """The principal a key stands for; AuthenticationError when it is malformed, unknown or revoked."""
        key = (key or "").strip()
        if not KEY_RE.match(key):
            raise AuthenticationError(
                "the API key is malformed: send `Authorization: Bearer kefu_...` with a key from `kefu keys create`"
            )
        with self.db.read() as db:
            row = db.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
        if row is None or not secrets.compare_digest(row.key_hash, hash_key(key)):
            raise AuthenticationError("unknown API key: create one with `kefu keys create`")
        if row.revoked_at is not None:
            raise AuthenticationError(f"API key {row.prefix} was revoked: ask an administrator for a new one")
        now = utcnow()
        last = row.last_used_at
        if last is None or (last if last.tzinfo else last.replace(tzinfo=now.tzinfo)) < now - LAST_USED_EVERY:
            with self.db.write() as db:
                fresh = db.get(ApiKey, row.id)
                if fresh is not None:
                    fresh.last_used_at = now
        return principal_of(row)

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
