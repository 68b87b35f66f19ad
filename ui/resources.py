"""Shared, per-process resources for the Streamlit pages: one `KefuService` for every user session.

The service is built once (`st.cache_resource`) and never mutated per user; per-user state (who is signed in,
the conversation shown) lives in `st.session_state` and the URL. Building it starts the warm-up
(`app.warmup`, unless KEFU_UI_WARM_UP=false): `kefu ui` calls `get_service()` as the server starts, so the
models are loading before the first visitor arrives.
"""

from __future__ import annotations

import streamlit as st

from app.errors import USER_ERRORS, customer_message, debug_enabled, redact
from app.services import KefuService


@st.cache_resource(show_spinner=False)
def get_service() -> KefuService:
    service = KefuService()
    if service.settings.ui.ui_warm_up:
        service.warm_up()
    return service


def show_error(exc: Exception, staff: bool = False) -> None:
    """An error as a message, never a traceback (unless debugging). A customer sees only what was wrong with
    their own input, or an apology with a reference whose details go to the log (`customer_message`): never a
    setting, a path or a database address. Staff pages also see what went wrong, passwords redacted."""
    if debug_enabled() and not isinstance(exc, USER_ERRORS):
        raise exc
    if staff and isinstance(exc, USER_ERRORS):
        st.error(redact(str(exc)))
    else:
        from ui.i18n import language

        st.error(customer_message(exc, language()))
