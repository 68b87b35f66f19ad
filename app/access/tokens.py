"""Signed tokens Kefu hands to customers' browsers, and network addresses as the audit log may hold them.

**Visitor tokens.** A customer without an account is known by a token their browser keeps for a channel: the
web chat keeps it in a cookie (`kefu_visitor`, set by the web app's server, `ui/web_server.py`), a website
widget could keep one in the site's storage. A token reads

    v1.<channel>.<id>.<issued>.<signature>

`id` is 128 random bits (URL-safe base 64), `issued` the time it was made (seconds, base 36), the signature an
HMAC-SHA256 of the rest with the deployment's signing secret (KEFU_SIGNING_SECRET, else a random one kept in
KEFU_HOME, `app.components`). Nothing is stored per visitor: a valid signature is the proof, so any process or
node with the same secret accepts it. `verify` refuses a token of another channel, a forged or altered one, and
one older than its channel's `max_age`. The token stands for the principal `visitor:<channel>:<id>`
(`app.access.auth.visitor`): the owner of the conversations started with it, and one client to the rate limits,
however often the page is reloaded.

**Networks.** Limits that must hold when a client drops its token count by network address too; the audit log
keeps that address only as `network()`, a keyed hash (`net:` and 80 bits of HMAC-SHA256 with the same secret):
the same address gives the same value within a deployment, and the value does not give the address back.

Knows nothing about HTTP, cookies or headers: the front ends read and set them. Pure (but for the clock and the
random ids).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time

from app.access.auth import AuthenticationError

VERSION = "v1"
CHANNEL_RE = re.compile(r"^[a-z0-9-]{1,24}$")
TOKEN_RE = re.compile(r"^v1\.([a-z0-9-]{1,24})\.([A-Za-z0-9_-]{22})\.([0-9a-z]{1,10})\.([A-Za-z0-9_-]{43})$")
MIN_SECRET_BYTES = 16


class VisitorTokens:
    """Issue and check the visitor tokens of one channel (`web`: the web chat)."""

    def __init__(self, secret: bytes, channel: str, max_age_days: int = 365):
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the signing secret must be at least {MIN_SECRET_BYTES} bytes")
        if not CHANNEL_RE.match(channel):
            raise ValueError(f"a channel is 1 to 24 lowercase letters, digits or '-': {channel!r}")
        self.secret = secret
        self.channel = channel
        self.max_age_seconds = max_age_days * 86_400
        self.clock = time.time  # tests move time forward

    def issue(self) -> str:
        """A new visitor's token."""
        token_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")
        body = f"{VERSION}.{self.channel}.{token_id}.{_base36(int(self.clock()))}"
        return f"{body}.{_sign(self.secret, body)}"

    def verify(self, token: str | None) -> str:
        """The visitor id a token of this channel stands for; AuthenticationError when it is missing, malformed,
        of another channel, forged or too old (the channel then issues a new one)."""
        match = TOKEN_RE.match((token or "").strip())
        if match is None:
            raise AuthenticationError("no valid visitor token: a new visitor starts")
        channel, token_id, issued, signature = match.groups()
        body = f"{VERSION}.{channel}.{token_id}.{issued}"
        if channel != self.channel or not hmac.compare_digest(signature, _sign(self.secret, body)):
            raise AuthenticationError("the visitor token is not valid here: a new visitor starts")
        age = self.clock() - int(issued, 36)
        if age > self.max_age_seconds or age < -300:  # issued in the future (beyond clock skew): not ours
            raise AuthenticationError("the visitor token has expired: a new visitor starts")
        return token_id


def network(secret: bytes, address: str | None) -> str:
    """The keyed hash the audit log and the limits know an address by (`net:` + 20 hex digits); "" without one."""
    address = (address or "").strip().lower()
    if not address:
        return ""
    return "net:" + hmac.new(secret, b"network\0" + address.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:20]


def _sign(secret: bytes, body: str) -> str:
    digest = hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
