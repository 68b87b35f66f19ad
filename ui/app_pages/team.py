"""Staff accounts (admins): list, add, disable and enable agents and admins. The same store as `kefu users`
(`app.access.users`), through the gate (`app.access.gate`). Passwords are typed here once and kept only as argon2id hashes."""

import streamlit as st

from app.access.auth import ADMIN, STAFF_ROLES
from ui import session
from ui.resources import show_error

control = session.page_access(ADMIN)
st.title("Team")
st.caption("Agents work the desk and batch FAQ; admins also manage the knowledge base, insights and this team. "
           "From a terminal: `kefu users add NAME --role agent|admin`.")  # fmt: skip

try:
    users = control.users()
except Exception as exc:
    show_error(exc, staff=True)
    st.stop()

st.dataframe(
    [{"name": u.name, "role": u.role, "active": not u.disabled, "last sign-in": (u.last_login_at or "never")[:16]}
     for u in users],
    hide_index=True,
)  # fmt: skip

with st.form("add_user", clear_on_submit=True):
    st.subheader("Add an account")
    name = st.text_input("User name")
    role = st.selectbox("Role", STAFF_ROLES)
    password = st.text_input("Password (at least 8 characters)", type="password", autocomplete="new-password")
    if st.form_submit_button("Add", type="primary"):
        try:
            control.add_user(name, role, password)
        except Exception as exc:
            show_error(exc, staff=True)
        else:
            st.rerun()

names = [u.name for u in users if u.name != control.principal.name]
if names:
    st.subheader("Disable or enable")
    chosen = st.selectbox("Account", names)
    current = next(u for u in users if u.name == chosen)
    label = "Enable" if current.disabled else "Disable"
    if st.button(f"{label} {chosen}"):
        try:
            control.set_user_disabled(chosen, not current.disabled)
        except Exception as exc:
            show_error(exc, staff=True)
        else:
            st.rerun()
