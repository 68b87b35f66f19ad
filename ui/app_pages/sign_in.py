"""Staff sign-in (agents and admins; customers need no account). Credentials are checked by `app.access.users`
(argon2id, locked out per user name and client address together, every attempt audited); the sign-in is held on
the server and survives reloads through an HttpOnly cookie the server sets (`ui/web_server.py`)."""

import streamlit as st

from app.access.auth import AGENT, AuthenticationError
from ui import session
from ui.i18n import label, t
from ui.rendering import escape_markdown
from ui.resources import show_error

st.title(t("sign_in_title"))
st.caption(t("sign_in_caption"))

if session.principal().can(AGENT):
    st.success(t("signed_in_as", name=escape_markdown(session.principal().name), role=label("role", session.principal().role)))
    st.stop()

with st.form("sign_in", enter_to_submit=True):
    name = st.text_input(t("user_name"), autocomplete="username")
    password = st.text_input(t("password"), type="password", autocomplete="current-password")
    submitted = st.form_submit_button(t("sign_in_button"), type="primary")

if submitted:
    try:
        leaving = session.sign_in(name, password)
    except AuthenticationError as exc:
        st.error(str(exc))
    except Exception as exc:
        show_error(exc)
    else:
        if leaving:  # the browser is on its way to the server for its sign-in cookie, then to the desk
            st.info(t("signing_in"))
            st.stop()
        st.session_state[session.AFTER_SIGN_IN_KEY] = True
        st.rerun()
