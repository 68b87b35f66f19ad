"""Shared, per-process resources for the Streamlit pages: one `KefuService` for every user session.

The service is built once (`st.cache_resource`) and never mutated per user; per-user state (who is signed in,
the conversation shown) lives in `st.session_state` and the URL. Building it starts the warm-up
(`app.warmup`, unless KEFU_UI_WARM_UP=false): `kefu ui` calls `get_service()` as the server starts, so the
models are loading before the first visitor arrives.
"""

from __future__ import annotations

import streamlit as st

from app.errors import USER_ERRORS, debug_enabled
from app.services import KefuService


@st.cache_resource(show_spinner=False)
def get_service() -> KefuService:
    service = KefuService()
    if service.settings.ui.ui_warm_up:
        service.warm_up()
    return service


def show_error(exc: Exception) -> None:
    """A user error as a message; anything else as a message too, unless debugging."""
    if isinstance(exc, USER_ERRORS):
        st.error(str(exc))
    elif debug_enabled():
        raise exc
    else:
        st.error(f"Something went wrong ({type(exc).__name__}). Set KEFU_DEBUG=1 to see details.")
