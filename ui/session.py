"""Who is using the web app, and the service bound to them (`KefuService.acting_as`: every privileged call passes the gate,
`app.access.gate`).

- **Customers** need no account: each browser is a web visitor, `visitor:web:<id>`, known by the signed,
  HttpOnly visitor cookie the web app's server gives it (`ui/web_server.py`, `app.access.tokens`). It survives
  reloads, so the rate limits (and the triple weight of injection attempts) count across them, and it is what
  owns the conversations started in that browser: a conversation's link (`?c=ID`) opens it there and nowhere
  else; in another browser it shows nothing and cannot be written into. A browser without the cookie (blocked
  cookies, or no browser at all under AppTest) is a visitor for this page session only; what it sends still
  counts against its network address.
- **Staff** sign in (`app.access.users`: locked out per account and address, audited); the sign-in is held on
  the server (`app.access.sign_ins`), the page's session state keeps its handle, and the browser an HttpOnly
  cookie (`kefu_staff`) that brings it back after a reload, until it expires, the staff member signs out, or
  their password changes. It is turned into a principal on every script run, so an expired or ended sign-in, or
  a disabled account, ends at the next click.
- The client's address (for those limits) is the connection's, or a trusted proxy's forwarded one
  (KEFU_TRUSTED_PROXIES, applied by the server: `ui/__main__.py`).
- Every page checks its role again (`page_access`), whatever the navigation shows, and the gate checks it
  a third time on the server side for every privileged call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import streamlit as st
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.scriptrunner import get_script_run_ctx

from app.access.auth import AuthenticationError, Principal
from app.access.gate import Acting
from ui.i18n import t
from ui.resources import get_service

SIGN_IN_KEY = "kefu_sign_in"
PAGE_VISITOR_KEY = "kefu_page_visitor"  # a visitor token for this page session, when the browser has no cookie
ENDED_COOKIE_KEY = "kefu_ended_sign_in_cookie"  # a sign-in cookie found ended: not looked up again
NOTICE_KEY = "kefu_auth_notice"
AFTER_SIGN_IN_KEY = "kefu_after_sign_in"
CONVERSATION_PARAM = "c"
VISITOR_COOKIE = "kefu_visitor"
STAFF_COOKIE = "kefu_staff"
SIGNED_IN_PATH = "/kefu/signed-in"
SIGNED_OUT_PATH = "/kefu/signed-out"


def cookies() -> Mapping[str, str]:
    """The cookies the browser sent with this page session's WebSocket (none without a browser)."""
    try:
        return st.context.cookies or {}
    except Exception:  # no browser context
        return {}


def client_address() -> str:
    """The client's address (the server's view of it, a trusted proxy's forwarded one): for the per-address
    limits and the sign-in lock-out. Streamlit reports none for a loopback connection."""
    try:
        address = st.context.ip_address
    except Exception:  # no browser context
        address = None
    return address if isinstance(address, str) and address else "loopback"


def conversation_id() -> str | None:
    value = st.query_params.get(CONVERSATION_PARAM)
    return value or None


def set_conversation(session_id: str | None) -> None:
    if session_id:
        st.query_params[CONVERSATION_PARAM] = session_id
    elif CONVERSATION_PARAM in st.query_params:
        del st.query_params[CONVERSATION_PARAM]


def browser_visitor() -> Principal | None:
    """The web visitor the browser's cookie says it is; None without a valid cookie."""
    try:
        return get_service().web_visitor(cookies().get(VISITOR_COOKIE), client_address())
    except AuthenticationError:
        return None


def visitor() -> Principal:
    """The customer using this page: the browser's visitor, or (no cookie) a visitor for this page session only."""
    found = browser_visitor()
    if found is not None:
        return found
    service = get_service()
    token = st.session_state.get(PAGE_VISITOR_KEY)
    if token is None:
        token = st.session_state[PAGE_VISITOR_KEY] = service.new_web_visitor()
    return service.web_visitor(token, client_address())


def _held_sign_in():
    """This page session's sign-in, or the one the browser's sign-in cookie brings back (looked up once)."""
    held = st.session_state.get(SIGN_IN_KEY)
    if held is not None:
        return held
    token = cookies().get(STAFF_COOKIE)
    if not token or token == st.session_state.get(ENDED_COOKIE_KEY):
        return None
    try:
        held = st.session_state[SIGN_IN_KEY] = get_service().resume_sign_in(token)
    except AuthenticationError:
        st.session_state[ENDED_COOKIE_KEY] = token
        return None
    return held


def principal() -> Principal:
    """The signed-in staff member, else the customer this browser is."""
    held = _held_sign_in()
    if held is not None:
        try:
            return get_service().principal(held)
        except AuthenticationError as exc:
            del st.session_state[SIGN_IN_KEY]
            st.session_state[NOTICE_KEY] = t("signed_out_expired", reason=str(exc))
    return visitor()


def access() -> Acting:
    return get_service().acting_as(principal())


def page_access(role: str) -> Acting:
    """The service acting as the visitor, when the visitor has `role`; otherwise a message, and the page stops here."""
    control = access()
    if not control.principal.can(role):
        st.error(t("no_permission", role=role))
        st.stop()
    return control


def sign_in(name: str, password: str) -> bool:
    """Check the credentials (`app.access.users`) and hold the sign-in for this page session. A browser with a
    visitor cookie is then sent to the server's sign-in route for its HttpOnly sign-in cookie (True: the page is
    being left; stop drawing it); without one the sign-in lasts this page session only (False)."""
    service = get_service()
    record = service.sign_in(name, password, client_address(), browser_visitor())
    st.session_state[SIGN_IN_KEY] = dataclasses.replace(record, ticket=None)
    st.session_state.pop(NOTICE_KEY, None)
    st.session_state.pop(ENDED_COOKIE_KEY, None)
    if record.ticket:
        _go(f"{SIGNED_IN_PATH}?ticket={record.ticket}")
        return True
    return False


def sign_out() -> bool:
    """End the sign-in on the server; a browser holding the sign-in cookie is sent to have it removed (True:
    the page is being left)."""
    held = st.session_state.pop(SIGN_IN_KEY, None)
    if held is not None:
        get_service().sign_out(held)
    if cookies().get(STAFF_COOKIE):
        st.session_state[ENDED_COOKIE_KEY] = cookies()[STAFF_COOKIE]
        _go(SIGNED_OUT_PATH)
        return True
    return False


def _go(path: str) -> None:
    """Send the browser to one of the server's own routes with a full page load: the message `st.login` sends for
    its auth routes (Streamlit has no public call for it; pinned in constraints.txt, and the browser test
    signs in through it)."""
    ctx = get_script_run_ctx()
    if ctx is None:
        return
    message = ForwardMsg()
    message.auth_redirect.url = path
    ctx.enqueue(message)
