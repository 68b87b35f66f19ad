"""The one gate every privileged action passes: the role check, the ownership check, the rate limit and the
audit record, applied by one wrapper around `KefuService`'s methods, whatever the front end.

A service method declares what it needs with `@action(...)`: the least role (`app.access.auth`), the words a
refusal uses, the audit record it makes (if any), whether it is a customer message (rate-limited per client and
per conversation, `app.access.limits`), and which argument names a conversation the caller must own. Every call
of such a method, from the CLI (the local operator), the web app (a signed-in user or an anonymous customer) or
the HTTP API (a key), goes through the same wrapper, with the caller as `actor=`:

    role check → ownership check → [audited: rate limit → the method → one audit record]

- A refusal (role or ownership) is not audited: nothing was done. A failure after it is recorded with its error
  code and raised on.
- A method that returns a streamed `Reply` is recorded when the reply ends (or fails, or its reader leaves),
  with the answer's mode, length, verdicts and conversation.
- `acting_as(service, principal)` binds a caller once (what a web page or an API route holds). It offers the
  service's actions and nothing else; no class mirrors the service method by method.

A customer owns a conversation it started (or, in the web chat, holds the id of: `Principal.owns`); agents and
admins may act on any. A customer guessing another's conversation id is refused as "not yours", never "not
found", so the refusal does not tell that the id exists.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from app.access.audit import AuditEntry, AuditLog
from app.access.auth import AGENT, CUSTOMER, LOCAL_OPERATOR, PermissionDenied, Principal, require
from app.access.limits import RateLimiter
from app.answering.answerer import Reply
from app.errors import NotFoundError

RULE = "__kefu_action__"


class Owners(Protocol):
    def owner_of(self, conversation_id: str) -> str | None:
        """The principal id that started the conversation; NotFoundError when there is none."""


@dataclass(frozen=True)
class Rule:
    role: str  # the least role that may act
    what: str  # "upload documents": the words of a refusal
    audit: str | Callable[[Mapping[str, Any]], str] | None = None  # the record's action; None: a read, not recorded
    staff: str | None = None  # staff (agents and up) need this role; customers act on what they own
    limit: bool = False  # a customer message: rate-limited per client and per conversation
    conversation: str | None = None  # the argument naming a conversation the caller must own
    new_conversation: bool = False  # a conversation id nobody holds yet may be given (it is created)
    owned_on_load: bool = False  # the method checks ownership where it reads the conversation (one read for both)
    message: str | None = None  # the argument naming a message whose conversation the caller must own
    names_conversation: bool = True  # False: the record does not name it (an erasure leaves no trace of what it erased)
    prompt: Callable[[Mapping[str, Any]], int] | None = None  # the prompt's length, for the record
    record: Callable[[AuditEntry, Any], None] | None = None  # fills the record from the result


def action(role: str, what: str, **rule: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a service method an action of at least `role` (see `Rule` for the options), and wrap it in the
    gate. The method must take `actor: Principal` as a keyword (the local operator when not given)."""
    declared = Rule(role, what, **rule)

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(method)
        if "actor" not in signature.parameters:
            raise TypeError(f"{method.__qualname__} is an action: it must take `actor`")

        @functools.wraps(method)
        def gated(service: Any, *args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(service, *args, **kwargs)
            bound.apply_defaults()
            return service.gate.call(declared, method, bound)

        setattr(gated, RULE, declared)
        return gated

    return wrap


def rule_of(method: Any) -> Rule | None:
    return getattr(method, RULE, None)


class Gate:
    """What every action passes; one per service (`KefuService.gate`)."""

    def __init__(self, audit: Callable[[], AuditLog], limiter: Callable[[], RateLimiter], owners: Callable[[], Owners],
                 message_conversation: Callable[[int], str]):  # fmt: skip
        self._audit = audit  # built lazily: a refused call touches no database
        self._limiter = limiter
        self._owners = owners
        self._message_conversation = message_conversation

    def call(self, rule: Rule, method: Callable[..., Any], bound: inspect.BoundArguments) -> Any:
        args = bound.arguments
        actor: Principal = args.get("actor") or LOCAL_OPERATOR
        args["actor"] = actor
        require(actor, rule.role, rule.what)
        if rule.staff is not None and actor.can(AGENT):
            require(actor, rule.staff, rule.what)
        session_id = args.get(rule.conversation) if rule.conversation else None
        if session_id is not None and not rule.owned_on_load:
            self.check_owner(actor, session_id, rule.new_conversation)
        if rule.message is not None and not actor.can(AGENT):
            self.check_owner(actor, self._message_conversation(args[rule.message]))
        if rule.audit is None:
            return method(*bound.args, **bound.kwargs)

        name = rule.audit(args) if callable(rule.audit) else rule.audit
        named = session_id if rule.names_conversation else None
        entry = AuditEntry(name, actor, named, prompt_chars=rule.prompt(args) if rule.prompt else None)
        started = time.perf_counter()

        def record() -> None:
            self._audit().record(entry, int((time.perf_counter() - started) * 1000))

        try:
            if rule.limit:
                self._limiter().check(actor, session_id)
            result = method(*bound.args, **bound.kwargs)
        except BaseException as exc:
            entry.error_code = type(exc).__name__[:32]
            record()
            raise
        if isinstance(result, Reply):
            return _recorded_reply(result, entry, record)
        if rule.record is not None:
            rule.record(entry, result)
        record()
        return result

    def check_owner(self, actor: Principal, session_id: str, new_allowed: bool = False) -> None:
        """PermissionDenied unless `actor` may act on the conversation (`new_allowed`: or nobody holds it yet)."""
        if actor.can(AGENT):
            return
        require(actor, CUSTOMER, "use a conversation")
        try:
            owner = self._owners().owner_of(session_id)
        except NotFoundError:
            if new_allowed:
                return
            raise PermissionDenied("this conversation is not yours") from None
        if not actor.owns(session_id, owner):
            raise PermissionDenied("this conversation is not yours")


def _recorded_reply(inner: Reply, entry: AuditEntry, record: Callable[[], None]) -> Reply:
    """`inner`, recorded once when it ends, fails, or is left unread."""

    def pieces(reply: Reply):
        try:
            yield from inner
            answer = inner.finish()
            reply.answer, reply.prompt, reply.usage = answer, inner.prompt, inner.usage
            entry.session_id = answer.session_id or entry.session_id
            entry.mode, entry.answer_chars, entry.verdicts = answer.mode, len(answer.answer), answer.verdicts()
        except BaseException as exc:
            entry.error_code = type(exc).__name__[:32]
            raise
        finally:
            record()

    return Reply(pieces)


class Acting:
    """A service bound to one caller: `acting_as(service, principal).take(session_id)` is
    `service.take(session_id, actor=principal)`. Only actions are offered."""

    def __init__(self, service: Any, principal: Principal):
        self.service = service
        self.principal = principal

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(type(self.service), name, None)
        if rule_of(method) is None:
            raise AttributeError(f"{name!r} is not an action of the service (declare it with @action)")
        return functools.partial(getattr(self.service, name), actor=self.principal)

    def can(self, role: str) -> bool:
        return self.principal.can(role)


def acting_as(service: Any, principal: Principal) -> Acting:
    return Acting(service, principal)
