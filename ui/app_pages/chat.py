"""The customer chat: streamed answers with numbered citations that open their passage, 👍/👎 on every answer,
"talk to a person", and the conversation kept in the URL (`?c=ID`) across reloads. The link opens the
conversation only in the browser it began in (its owner is that browser's signed visitor cookie, `ui.session`);
anywhere else it shows nothing. While a person handles the conversation the transcript looks for new messages
every KEFU_UI_REFRESH_SECONDS, so an agent's reply appears without a reload; when the agent resolves or releases
it, the whole page is drawn again, so "talk to a person" is offered again at once. Everything goes through the
gate (`app.access.gate`) as the web visitor this browser is."""

from itertools import chain

import streamlit as st

from app.dialogue import handoff
from app.answering.rules import MODE_HANDOFF, MODE_SMALLTALK
from app.access.auth import PermissionDenied
from app.errors import InputError
from ui import session
from ui.i18n import t
from ui.rendering import ROLE_AVATARS, escape_markdown, render_message, render_stream
from ui.resources import get_service, show_error

RATINGS = {1: "up", 0: "down"}

st.title(t("app_title"))
st.caption(t("chat_caption"))

control = session.access()
sid = session.conversation_id()
conversation = None
if sid:
    try:
        conversation = control.conversation(sid)
    except (PermissionDenied, InputError):
        st.info(t("bad_link"))
        session.set_conversation(None)
        sid, control = None, session.access()
    except Exception as exc:
        show_error(exc)
        st.stop()


def _rate(message_id: int, key: str) -> None:
    value = st.session_state.get(key)
    if value in RATINGS:
        try:
            session.access().feedback(message_id, RATINGS[value])
        except Exception as exc:
            show_error(exc)


def _rating(message_id: int, current: str | None):
    def widget() -> None:
        key = f"kefu_rate_{message_id}"
        default = {"up": 1, "down": 0}.get(current or "")
        st.feedback("thumbs", key=key, default=default, on_change=_rate, args=(message_id, key))

    return widget


def _status_line(record) -> None:
    if record.status == handoff.WAITING:
        position = control.queue_position(record.id) or 1
        st.info(t("waiting_agent", n=position), icon="⏳")
    elif record.status == handoff.WITH_AGENT:
        st.success(t("with_agent", agent=escape_markdown(record.agent or "")), icon="🧑‍💼")
    elif record.status == handoff.RESOLVED:
        st.caption(t("resolved"))


def transcript() -> None:
    if not sid:
        return
    control = session.access()  # again on every refresh
    try:
        messages = control.history(sid)
        ratings = control.ratings(sid)
        record = control.conversation(sid)
    except Exception as exc:
        show_error(exc)
        return
    if handoff.is_handed_over(record.status) != handed_over:
        st.rerun()  # an agent resolved or released it (or took it): the whole page, so the buttons follow
    for message in messages:
        rateable = message.role == "agent" or (message.role == "assistant" and message.mode not in (MODE_HANDOFF, MODE_SMALLTALK))
        render_message(message.to_dict(), _rating(message.id, ratings.get(message.id)) if rateable else None)
    _status_line(record)


handed_over = conversation is not None and handoff.is_handed_over(conversation.status)
refresh = get_service().settings.ui.ui_refresh_seconds if handed_over else None
st.fragment(run_every=refresh)(transcript)()

left, right = st.columns(2)
if left.button(t("talk_to_person"), icon="🙋", disabled=handed_over, width="stretch"):
    try:
        answer = control.request_human(sid)
    except Exception as exc:
        show_error(exc)
    else:
        session.set_conversation(answer.session_id or sid)
        st.rerun()
if right.button(t("new_conversation"), icon="➕", width="stretch"):
    session.set_conversation(None)
    st.rerun()

question = st.chat_input(t("chat_placeholder"))
if question:
    render_message({"role": "user", "content": question})
    with st.chat_message("assistant", avatar=ROLE_AVATARS["assistant"]):
        reply = None
        try:
            with st.spinner(t("thinking")):
                reply = control.ask_stream(question, sid)
                pieces = iter(reply)
                first = next(pieces, "")  # retrieval, and the model's prompt, happen before the first piece
            render_stream(chain([first], pieces))  # the model's reasoning never reaches this stream
            answer = reply.finish()
        except Exception as exc:  # shown as a message; user errors never as a traceback
            show_error(exc)
        else:
            session.set_conversation(answer.session_id)
            st.rerun()  # the transcript, from the database, with citations and ratings
        finally:
            if reply is not None:
                reply.close()  # left mid-answer (a click, a closed tab): the model stops and the turn is recorded now
