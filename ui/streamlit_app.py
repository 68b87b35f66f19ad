"""Kefu's Streamlit entry point: who is here, and the pages their role may use (`st.navigation`). Run with
`kefu ui`. Customers (no sign-in) get the chat; agents the desk and batch FAQ; admins also the knowledge base,
insights and the team. Every page checks the role again, and the gate (`app.access.gate`) checks every privileged call."""

from pathlib import Path

import streamlit as st

from app.access.auth import ADMIN, AGENT
from app.warmup import FAILED, WARMING
from ui import session
from ui.i18n import label, language_picker, t
from ui.rendering import escape_markdown
from ui.resources import get_service


PAGES = Path(__file__).parent / "app_pages"
WIDE_PAGES = ("desk", "knowledge_base", "insights")
who = session.principal()
notice = st.session_state.pop(session.NOTICE_KEY, None)

chat = st.Page(PAGES / "chat.py", title=t("page_chat"), icon="💬", default=True, url_path="chat")
pages = {t("nav_customers"): [chat]}
desk = st.Page(PAGES / "agent_desk.py", title=t("page_desk"), icon="🧑‍💼", url_path="desk")
if who.can(AGENT):
    pages[t("nav_agents")] = [desk, st.Page(PAGES / "batch.py", title=t("page_batch"), icon="📋", url_path="batch")]
else:
    pages[t("nav_staff")] = [st.Page(PAGES / "sign_in.py", title=t("page_sign_in"), icon="🔑", url_path="sign_in")]
if who.can(ADMIN):
    pages[t("nav_admin")] = [
        st.Page(PAGES / "knowledge_base.py", title=t("page_kb"), icon="📚", url_path="knowledge_base"),
        st.Page(PAGES / "insights.py", title=t("page_insights"), icon="📈", url_path="insights"),
        st.Page(PAGES / "team.py", title=t("page_team"), icon="👥", url_path="team"),
    ]
navigation = st.navigation(pages)
st.set_page_config(page_title="Kefu 客服", page_icon="🧑‍💼",
                   layout="wide" if navigation.url_path in WIDE_PAGES else "centered")  # fmt: skip
if st.session_state.pop(session.AFTER_SIGN_IN_KEY, False) and who.can(AGENT):
    st.switch_page(desk)

with st.sidebar:
    language_picker()
    if who.kind == "user":
        st.markdown(t("signed_in_as", name=escape_markdown(who.name), role=label("role", who.role)))
        if st.button(t("sign_out"), icon="🚪"):
            if session.sign_out():
                st.stop()  # the browser is on its way to have its sign-in cookie removed
            st.rerun()
    warm = get_service().warm_up_state

    def warm_up_status() -> None:
        if warm is not None and warm.state == WARMING:
            st.caption("⏳ " + t("warming_up"))
        elif warm is not None and warm.state == FAILED and who.can(ADMIN):
            st.caption("⚠️ " + t("warm_failed", error=escape_markdown(warm.error or "")))

    st.fragment(run_every=2 if warm is not None and warm.state == WARMING else None)(warm_up_status)()
if notice:
    st.warning(notice)
navigation.run()
