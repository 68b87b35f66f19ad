"""Shared, per-process resources for the Streamlit pages: one `KefuService` for every user session.

The service is built once (`st.cache_resource`) and never mutated per user; per-user state (the
conversation id, the messages shown) lives in `st.session_state`.
"""

from __future__ import annotations

import streamlit as st

from app.errors import USER_ERRORS, debug_enabled
from app.services import KefuService


@st.cache_resource(show_spinner="Loading the knowledge base…")
def get_service() -> KefuService:
    return KefuService()


def show_error(exc: Exception) -> None:
    """A user error as a message; anything else as a message too, unless debugging."""
    if isinstance(exc, USER_ERRORS):
        st.error(str(exc))
    elif debug_enabled():
        raise exc
    else:
        st.error(f"Something went wrong ({type(exc).__name__}: {exc}). Set KEFU_DEBUG=1 to see details.")
