"""Who is asking, and what they may do: roles and the one role check every privileged action goes through.

Roles are ordered: `customer` < `agent` < `admin`; a role may do everything a lower one may. A `Principal` is
whoever makes a request, named by a stable `id` that says its channel:

- `visitor`, `visitor:<channel>:<token>`: a customer without an account, known by a signed token their browser
  keeps (`app.access.tokens`): the web chat's cookie (`visitor:web:…`), a website widget's visitor token
  (`visitor:<widget key id>:…`);
- `anonymous`, `anon:<network>`: a keyless API caller (KEFU_API_ANONYMOUS_CHAT), known only by its keyed address;
- `key`, `key:<id>`: an API key (`api_keys` table);
- `user`, `user:<id>`: a signed-in agent or admin of the web app (`users` table);
- `local`, `local`: the operator at the command line (`kefu ...` runs with the rights of whoever can read
  KEFU_HOME: `admin`).

A conversation belongs to the principal that started it (`conversations.owner` holds its id, so also its
channel): a customer reaches only conversations whose owner is their own id; holding or guessing another's id
gives nothing. Agents and admins reach every conversation. Customers without an account also carry their
`network` (a keyed hash of the address they connect from, never the address) so limits can count everyone
behind one address (`app.access.limits`).

Front ends find the principal (a sign-in, a key, a signed token); `app/` checks it with `require` on the server
side, whatever the page or client claims. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    kind: str  # "visitor" | "anonymous" | "key" | "user" | "local"
    name: str  # user name, key label, "operator", "web visitor", or "anonymous"
    role: str
    id: str = ""  # stable, and says the channel (see the table above)
    network: str = ""  # an account-less customer's keyed network address ("net:…"), for the per-address limit

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def owns(self, owner: str | None) -> bool:
        """Whether the principal may act on a conversation started by `owner`: its own, or any for staff."""
        return self.can(AGENT) or (bool(owner) and bool(self.id) and owner == self.id)


LOCAL_OPERATOR = Principal("local", "operator", ADMIN, "local")


def operator_as(name: str) -> Principal:
    """The local operator acting under a person's name (`kefu sessions reply --agent NAME`)."""
    return replace(LOCAL_OPERATOR, name=name)


def owner_id(principal: Principal | None) -> str | None:
    """Who a conversation a principal starts belongs to: its stable id (`local` for the operator's)."""
    if principal is None:
        return None
    return principal.id or None


def anonymous(client_id: str = "", network: str = "") -> Principal:
    """A customer without an account or token, known as `anon:<client_id>` (a keyless API caller: its network)."""
    return Principal("anonymous", "anonymous", CUSTOMER, f"anon:{client_id}" if client_id else "", network)


def visitor(channel: str, token_id: str, network: str = "") -> Principal:
    """A customer without an account known by a signed token of `channel` (`web`, or a widget key's id)."""
    return Principal("visitor", "web visitor" if channel == "web" else "website visitor", CUSTOMER,
                     f"visitor:{channel}:{token_id}", network)  # fmt: skip


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
