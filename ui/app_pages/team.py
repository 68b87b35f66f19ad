"""Staff accounts (admins): list, add, disable and enable agents and admins. The same store as `kefu users`
(`app.access.users`), through the gate (`app.access.gate`). Passwords are typed here once and kept only as argon2id hashes."""

import streamlit as st

from app.access.auth import ADMIN, STAFF_ROLES
from ui import session
from ui.i18n import label, t
from ui.resources import show_error

control = session.page_access(ADMIN)
st.title(t("team_title"))
st.caption(t("team_caption"))

try:
    users = control.users()
except Exception as exc:
    show_error(exc, staff=True)
    st.stop()

st.dataframe(
    [{t("col_name"): u.name, t("col_role"): label("role", u.role), t("col_active"): not u.disabled,
      t("col_last_sign_in"): (u.last_login_at or t("team_never"))[:16]} for u in users],
    hide_index=True,
)  # fmt: skip

with st.form("add_user", clear_on_submit=True):
    st.subheader(t("team_add_title"))
    name = st.text_input(t("team_name"))
    role = st.selectbox(t("team_role"), STAFF_ROLES, format_func=lambda r: label("role", r))
    password = st.text_input(t("team_password"), type="password", autocomplete="new-password")
    if st.form_submit_button(t("team_add"), type="primary"):
        try:
            control.add_user(name, role, password)
        except Exception as exc:
            show_error(exc, staff=True)
        else:
            st.rerun()

names = [u.name for u in users if u.name != control.principal.name]
if names:
    st.subheader(t("team_toggle_title"))
    chosen = st.selectbox(t("team_account"), names)
    current = next(u for u in users if u.name == chosen)
    if st.button(t("team_enable" if current.disabled else "team_disable", name=chosen)):
        try:
            control.set_user_disabled(chosen, not current.disabled)
        except Exception as exc:
            show_error(exc, staff=True)
        else:
            st.rerun()
