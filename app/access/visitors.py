"""Website visitors: the people who talk to Kefu through the chat widget (`/widget.js`, served by `api/widget.py`).

A widget key (`kefu keys create --role widget --origin https://shop.example`, `app.access.api_keys`) is
publishable: it sits in the site's page source, so it proves nothing but which site's widget is asking, and it
has no power of its own. All it can do is let a browser on one of its origins become a *visitor*:

- `start(key, origin, client)` checks the key and the page's origin (the Origin header), and issues a visitor
  token; one client address may start at most KEFU_WIDGET_VISITORS_PER_MINUTE visitors a minute (counted in the
  audit log, as `new_visitor` records, so every worker and node shares the count).
- The widget keeps the token in the site's localStorage and sends it with every request. `principal(token,
  origin)` checks it each time, also on every poll of a live stream: the signature, its age
  (KEFU_WIDGET_VISITOR_DAYS), that its key is still active, and that the origin is still one the key names.
- The token stands for a customer principal `visitor:<key id>:<token id>`: the owner of the conversations it
  starts (and of nobody else's), counted by the per-client rate limit (`app.access.limits`) as one client.

Tokens read `kv1.<key id>.<token id>.<issued, base 36 seconds>.<signature>`, the signature an HMAC-SHA256 of the
rest with the deployment's secret (KEFU_WIDGET_SECRET, else a random one kept in KEFU_HOME): nothing is stored
per visitor. Knows nothing about HTTP: `api/widget.py` reads the headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from app.access.api_keys import ApiKeys, KeyRecord, normalise_origin
from app.access.audit import AuditEntry, AuditLog, actor_id
from app.access.auth import CUSTOMER, AuthenticationError, PermissionDenied, Principal, anonymous
from app.db.schema import utcnow
from app.errors import InputError, RateLimited

VERSION = "kv1"
TOKEN_RE = re.compile(r"^kv1\.([0-9]{1,12})\.([A-Za-z0-9_-]{16})\.([0-9a-z]{1,10})\.([A-Za-z0-9_-]{43})$")
NEW_VISITOR = "new_visitor"  # the audit action of a token issued
WINDOW_SECONDS = 60


@dataclass(frozen=True)
class VisitorPass:
    """A visitor just started: the token the widget keeps, and who it stands for."""

    token: str
    principal: Principal
    expires_at: str

    def to_dict(self) -> dict[str, str]:
        return {"token": self.token, "expires_at": self.expires_at}


def visitor(key_id: int, token_id: str) -> Principal:
    return Principal("visitor", "website visitor", CUSTOMER, f"visitor:{key_id}:{token_id}")


class Visitors:
    def __init__(self, keys: ApiKeys, audit: AuditLog, secret: bytes, per_minute: int, max_age_days: int):
        if len(secret) < 16:
            raise ValueError("the visitor token secret must be at least 16 bytes")
        self.keys = keys
        self.audit = audit
        self.secret = secret
        self.per_minute = per_minute
        self.max_age = timedelta(days=max_age_days)

    def start(self, key: str, origin: str | None, client: str = "") -> VisitorPass:
        """A new visitor of the site `origin`, through the widget key `key`. AuthenticationError for a bad key,
        PermissionDenied for an origin the key does not name, RateLimited past the per-address limit."""
        record = self.keys.widget(key)
        self._check_origin(record, origin)
        starter = anonymous(client or "unknown")
        if self.per_minute:
            since = utcnow() - timedelta(seconds=WINDOW_SECONDS)
            if self.audit.count_since(NEW_VISITOR, actor_id(starter), since) >= self.per_minute:
                raise RateLimited("too many new chats from this address: please wait a minute", WINDOW_SECONDS)
        token_id = secrets.token_urlsafe(12)
        issued = int(time.time())
        body = f"{VERSION}.{record.id}.{token_id}.{_base36(issued)}"
        self.audit.record(AuditEntry(NEW_VISITOR, starter))
        expires = datetime.fromtimestamp(issued, timezone.utc) + self.max_age
        return VisitorPass(f"{body}.{self._sign(body)}", visitor(record.id, token_id), expires.isoformat())

    def principal(self, token: str, origin: str | None) -> Principal:
        """The visitor a token stands for, on a page of `origin`. AuthenticationError when the token is
        malformed, forged, expired or its key revoked (the widget then starts a new visitor); PermissionDenied
        when the origin is not one its key names."""
        match = TOKEN_RE.match((token or "").strip())
        if match is None:
            raise AuthenticationError("the visitor token is malformed: start a new visitor (POST /widget/v1/visitors)")
        key_id, token_id, issued, signature = match.groups()
        body = f"{VERSION}.{key_id}.{token_id}.{issued}"
        if not hmac.compare_digest(signature, self._sign(body)):
            raise AuthenticationError("the visitor token is not valid here: start a new visitor")
        if time.time() - int(issued, 36) > self.max_age.total_seconds():
            raise AuthenticationError("the visitor token has expired: start a new visitor")
        record = self.keys.get(int(key_id))
        if record is None or not record.active:
            raise AuthenticationError("this site's widget key was revoked: the site needs a new one")
        self._check_origin(record, origin)
        return visitor(record.id, token_id)

    def origin_known(self, origin: str | None) -> bool:
        """Whether some active widget key names `origin` (what a CORS preflight, which carries no token, can know)."""
        try:
            return normalise_origin(origin or "") in self.keys.widget_origins()
        except InputError:
            return False

    @staticmethod
    def _check_origin(record: KeyRecord, origin: str | None) -> None:
        if not origin:
            raise PermissionDenied("the widget works only in a web page: the request has no Origin")
        try:
            normal = normalise_origin(origin)
        except InputError:
            raise PermissionDenied(f"the widget does not work on {origin[:80]!r}") from None
        if normal not in record.origins:
            raise PermissionDenied(f"this site's widget key does not allow {normal}: add it with a new widget key")

    def _sign(self, body: str) -> str:
        digest = hmac.new(self.secret, body.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
