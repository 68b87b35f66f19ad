"""Kefu's Streamlit entry point: page navigation only. Run with `kefu ui`."""

from pathlib import Path

import streamlit as st

st.set_page_config(page_title="Kefu 客服", page_icon="💬", layout="centered")

PAGES = Path(__file__).parent / "app_pages"
navigation = st.navigation(
    {
        "Customers": [st.Page(PAGES / "chat.py", title="Chat", icon="💬", default=True)],
        "Admin": [st.Page(PAGES / "knowledge_base.py", title="Knowledge base", icon="📚")],
    }
)
navigation.run()
