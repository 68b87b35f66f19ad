"""Who is asking, and what they may do: roles and the one role check every privileged action goes through.

Roles are ordered: `customer` < `agent` < `admin`; a role may do everything a lower one may. A `Principal` is
whoever makes a request: an anonymous customer (the chat page, an open API route), a signed-in user (the web
app's agents and admins, `users` table), an API key (`api_keys` table), or the local operator at the command
line (`kefu ...` runs with the rights of whoever can read KEFU_HOME, so it is `admin`). Front ends find the
principal (a login, a key); `app/` checks it with `require` on the server side, whatever the page or client
claims. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from app.errors import ClientError, KefuError

CUSTOMER = "customer"
AGENT = "agent"
ADMIN = "admin"
ROLES = (CUSTOMER, AGENT, ADMIN)  # in order of rights
STAFF_ROLES = (AGENT, ADMIN)  # roles a user account or a staff key can have


class PermissionDenied(ClientError):
    """The principal's role does not allow the action (HTTP 403)."""


class AuthenticationError(ClientError):
    """No valid credentials: a wrong password, an unknown or revoked key, an expired session (HTTP 401)."""


@dataclass(frozen=True)
class Principal:
    kind: str  # "anonymous" | "user" | "key" | "local"
    name: str  # user name, key label, "operator", or "anonymous"
    role: str
    id: str = ""  # a stable identifier: "user:<id>", "key:<id>", "local", or the anonymous client's id
    sessions: frozenset[str] = field(default_factory=frozenset)  # conversations an anonymous customer holds

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def owns(self, session_id: str, owner: str | None) -> bool:
        """A customer may see a conversation it started (or holds the id of, for the anonymous chat)."""
        return self.can(AGENT) or (bool(owner) and owner == self.id) or session_id in self.sessions


LOCAL_OPERATOR = Principal("local", "operator", ADMIN, "local")


def operator_as(name: str) -> Principal:
    """The local operator acting under a person's name (`kefu sessions reply --agent NAME`)."""
    return replace(LOCAL_OPERATOR, name=name)


def owner_id(principal: Principal | None) -> str | None:
    """Who a conversation a principal starts belongs to: its stable id (the local operator's are nobody's)."""
    if principal is None or principal.kind == "local":
        return None
    return principal.id or None


def anonymous(client_id: str = "", sessions: frozenset[str] = frozenset()) -> Principal:
    return Principal("anonymous", "anonymous", CUSTOMER, f"anon:{client_id}" if client_id else "", sessions)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise KefuError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def require(principal: Principal | None, role: str, action: str) -> Principal:
    """The principal, when it may act as `role`; PermissionDenied (AuthenticationError without one) otherwise."""
    if principal is None:
        raise AuthenticationError(f"sign in to {action}")
    if not principal.can(role):
        raise PermissionDenied(f"{action} needs the {role} role; {principal.name} is a {principal.role}")
    return principal
