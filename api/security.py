"""Who is calling: the API key in `Authorization: Bearer <key>` (`app.access.api_keys`), and the role each route
needs, as FastAPI dependencies that hand the route the service acting as that principal (`KefuService.acting_as`).

A route declares its role with `Depends(needs(AGENT))`; the gate (`app.access.gate`) checks the role again on every call,
so a route that forgot its dependency still cannot do more than the principal may. No key is a 401 (with
`WWW-Authenticate: Bearer`), a revoked or unknown key a 401, a role too low a 403. The chat route alone may
admit callers without a key as anonymous customers (KEFU_API_ANONYMOUS_CHAT), each named by its address so the
per-client rate limit (`app.access.limits`) applies to it.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from app.access.gate import Acting
from app.access.auth import CUSTOMER, AuthenticationError, Principal, anonymous, require


def bearer(request: Request) -> str | None:
    """The key in the Authorization header; None without one; AuthenticationError for another scheme."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError("send the API key as `Authorization: Bearer <key>`")
    return value.strip()


def service(request: Request):
    return request.app.state.service


def principal(request: Request, allow_anonymous: bool = False) -> Principal:
    key = bearer(request)
    if key is not None:
        return service(request).key_principal(key)
    if allow_anonymous:
        return anonymous(request.client.host if request.client else "unknown")
    raise AuthenticationError("this route needs an API key: send `Authorization: Bearer <key>` (`kefu keys create`)")


def needs(role: str) -> Callable[[Request], Acting]:
    """A dependency: the service acting as the caller, when their key has `role` (or a higher one)."""

    def dependency(request: Request) -> Acting:
        who = principal(request)
        require(who, role, f"{request.method} {request.url.path}")
        return service(request).acting_as(who)

    dependency.__name__ = f"needs_{role}"
    return dependency


def chat_access(request: Request) -> Acting:
    """The chat route's caller: a key with any role, or (KEFU_API_ANONYMOUS_CHAT) an anonymous customer."""
    who = principal(request, allow_anonymous=service(request).settings.serve.api_anonymous_chat)
    require(who, CUSTOMER, "chat")
    return service(request).acting_as(who)
