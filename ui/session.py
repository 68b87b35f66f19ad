"""Who is using the web app, and the service bound to them (`KefuService.acting_as`: every privileged call passes the gate,
`app.access.gate`).

- Customers are anonymous: each browser session gets a random client id; a conversation's id in the URL
  (`?c=ID`, 122 random bits) is what lets a reloaded page, or the same link, continue that conversation.
- Staff sign in (`app.access.users`): the `SignIn` is kept in Streamlit's server-side session state, never in the URL
  or a cookie, and is turned into a principal on every script run, so an expired sign-in or a disabled account
  ends at the next click. A reload signs out (a new session).
- Every page checks its role again (`page_access`), whatever the navigation shows, and the gate checks it
  a third time on the server side for every privileged call.
"""

from __future__ import annotations

import uuid

import streamlit as st

from app.access.gate import Acting
from app.access.auth import AuthenticationError, Principal, anonymous
from ui.i18n import t
from ui.resources import get_service

SIGN_IN_KEY = "kefu_sign_in"
CLIENT_KEY = "kefu_client_id"
NOTICE_KEY = "kefu_auth_notice"
AFTER_SIGN_IN_KEY = "kefu_after_sign_in"
CONVERSATION_PARAM = "c"


def client_id() -> str:
    return st.session_state.setdefault(CLIENT_KEY, uuid.uuid4().hex)


def client_address() -> str:
    """The client's address for rate limiting sign-ins (the server's view of it; "unknown" without one)."""
    try:
        address = st.context.ip_address
    except Exception:  # no browser context
        address = None
    return address if isinstance(address, str) and address else "unknown"


def conversation_id() -> str | None:
    value = st.query_params.get(CONVERSATION_PARAM)
    return value or None


def set_conversation(session_id: str | None) -> None:
    if session_id:
        st.query_params[CONVERSATION_PARAM] = session_id
    elif CONVERSATION_PARAM in st.query_params:
        del st.query_params[CONVERSATION_PARAM]


def principal() -> Principal:
    """The signed-in staff member, else an anonymous customer holding the conversation in the URL."""
    sign_in = st.session_state.get(SIGN_IN_KEY)
    if sign_in is not None:
        try:
            return get_service().principal(sign_in)
        except AuthenticationError as exc:
            del st.session_state[SIGN_IN_KEY]
            st.session_state[NOTICE_KEY] = t("signed_out_expired", reason=str(exc))
    held = conversation_id()
    return anonymous(client_id(), frozenset({held}) if held else frozenset())


def access() -> Acting:
    return get_service().acting_as(principal())


def page_access(role: str) -> Acting:
    """The service acting as the visitor, when the visitor has `role`; otherwise a message, and the page stops here."""
    control = access()
    if not control.principal.can(role):
        st.error(t("no_permission", role=role))
        st.stop()
    return control


def sign_in(name: str, password: str) -> Principal:
    """Check the credentials (rate-limited, `app.access.users`) and keep the sign-in in this session."""
    service = get_service()
    record = service.sign_in(name, password, client_address())
    st.session_state[SIGN_IN_KEY] = record
    st.session_state.pop(NOTICE_KEY, None)
    return service.principal(record)


def sign_out() -> None:
    st.session_state.pop(SIGN_IN_KEY, None)
