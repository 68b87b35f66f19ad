"""The agent desk: the queue (oldest first, with wait times) and your conversations; an open conversation's
whole transcript (roles, modes, sources) and slots; a suggested reply drafted from the knowledge base for the
customer's latest question (with its sources; not stored until sent); edit and send; release to the assistant;
resolve; and save an answer as an FAQ entry, indexed at once. Every call goes through the gate (`app.access.gate`) as the
signed-in agent, whose sign-in is checked again on every refresh and every button; the queue and the transcript
look for news every KEFU_UI_REFRESH_SECONDS."""

import streamlit as st

from app.dialogue import handoff
from app.access.auth import AGENT
from ui import session
from ui.i18n import label, t
from ui.rendering import (
    escape_markdown,
    mode_caption,
    plain_cell,
    plain_preview,
    render_sources_list,
    render_transcript_entry,
    status_label,
    waited,
)
from ui.resources import get_service, show_error

OPEN_KEY = "kefu_desk_open"
NOTICE_KEY = "kefu_desk_notice"

control = session.page_access(AGENT)
me = control.principal.name
refresh = get_service().settings.ui.ui_refresh_seconds
state = st.session_state
st.title(t("desk_title"))


def _entry(record, prefix: str) -> None:
    text = f"{waited(record.status_since)} · {plain_preview(record.last_customer_message or record.last_message) or t('desk_no_messages')}"
    kind = "primary" if state.get(OPEN_KEY) == record.id else "secondary"
    if st.button(escape_markdown(text), key=f"{prefix}-{record.id}", width="stretch", type=kind):
        state[OPEN_KEY] = record.id
        st.rerun()  # the whole page: the workspace shows the conversation


@st.fragment(run_every=refresh)
def queue() -> None:
    control = session.page_access(AGENT)  # checked again on every refresh: a disabled account stops here
    try:
        waiting = control.conversations(handoff.WAITING)
        mine = [c for c in control.conversations(handoff.WITH_AGENT) if c.agent == me]
    except Exception as exc:
        show_error(exc, staff=True)
        return
    st.subheader(t("desk_queue", n=len(waiting)))
    if not waiting:
        st.caption(t("desk_queue_empty"))
    for record in waiting:
        _entry(record, "queue")
    st.subheader(t("desk_mine", n=len(mine)))
    if not mine:
        st.caption(t("desk_mine_empty"))
    for record in mine:
        _entry(record, "mine")


def _send(session_id: str, key: str) -> None:
    try:
        session.access().agent_reply(session_id, state.get(key, ""))
    except Exception as exc:
        state[NOTICE_KEY] = ("error", str(exc))
    else:
        state[key] = ""
        state[NOTICE_KEY] = ("success", t("desk_sent"))


def _move(session_id: str, action: str) -> None:
    try:
        getattr(session.access(), action)(session_id)
    except Exception as exc:
        state[NOTICE_KEY] = ("error", str(exc))
    else:
        state[OPEN_KEY] = None
        state[NOTICE_KEY] = ("success", t({"release": "desk_released", "resolve": "desk_resolved"}[action]))


def _save_faq(question_key: str, answer_key: str) -> None:
    try:
        saved = session.access().save_faq(state.get(question_key, ""), state.get(answer_key, ""))
    except Exception as exc:
        state[NOTICE_KEY] = ("error", str(exc))
    else:
        text = t("desk_faq_replaced" if saved.replaced else "desk_faq_saved", n=saved.entries)
        if saved.gaps_closed:
            text += t("desk_gaps_closed", n=saved.gaps_closed)
        state[NOTICE_KEY] = ("success", text)


def transcript(session_id: str) -> None:
    try:
        messages = session.page_access(AGENT).history(session_id)
    except Exception as exc:
        show_error(exc, staff=True)
        return
    with st.container(height=420):
        for message in messages:
            render_transcript_entry(message.to_dict())


def workspace(session_id: str) -> None:
    try:
        record = control.conversation(session_id)
        messages = control.history(session_id)
    except Exception as exc:
        show_error(exc, staff=True)
        return
    st.subheader(t("desk_conversation", id=session_id[:8]))
    st.caption(escape_markdown(t("desk_status_line", status=status_label(record.status, record.agent),
                                 waited=waited(record.status_since), n=record.messages,
                                 reason=label("reason", record.handoff_reason) or "-")))  # fmt: skip
    if record.slots:
        st.dataframe([{t("desk_slot"): k, t("desk_value"): plain_cell(v)} for k, v in record.slots.items()], hide_index=True)
    st.fragment(run_every=refresh)(transcript)(session_id)

    asked = [m for m in messages if m.role == "user"]
    draft_key = f"kefu_draft_{session_id}_{asked[-1].id if asked else 0}"
    reply_key = f"kefu_reply_{draft_key}"
    if asked and draft_key not in state:
        try:
            with st.spinner(t("desk_drafting")):
                state[draft_key] = control.suggest_reply(session_id)
        except Exception as exc:
            show_error(exc, staff=True)
            state[draft_key] = None
    suggestion = state.get(draft_key)
    if suggestion is not None:
        state.setdefault(reply_key, suggestion.draft)
        st.markdown(t("desk_suggested", question=escape_markdown(plain_cell(suggestion.question, 160))))
        if suggestion.draft:
            st.caption(escape_markdown(t("desk_suggested_caption", mode=mode_caption({"mode": suggestion.answer.mode}),
                                         confidence=f"{suggestion.answer.confidence or 0:.2f}")))  # fmt: skip
        else:
            st.caption(t("desk_no_answer"))
        render_sources_list(suggestion.answer.sources)
    else:
        state.setdefault(reply_key, "")
    st.text_area(t("desk_your_reply"), key=reply_key, height=160)
    send, release, resolve = st.columns(3)
    send.button(t("desk_send"), type="primary", icon="📨", on_click=_send, args=(session_id, reply_key), width="stretch")
    release.button(t("desk_release"), icon="↩️", on_click=_move, args=(session_id, "release"), width="stretch",
                   help=t("desk_release_help"),
                   disabled=record.status not in (handoff.WAITING, handoff.WITH_AGENT))  # fmt: skip
    resolve.button(t("desk_resolve"), icon="✅", on_click=_move, args=(session_id, "resolve"), width="stretch",
                   disabled=record.status == handoff.RESOLVED)  # fmt: skip

    with st.expander(t("desk_save_faq")):
        replies = [m for m in messages if m.role == "agent"]
        question_key = f"kefu_faq_q_{draft_key}"
        answer_key = f"kefu_faq_a_{draft_key}_{replies[-1].id if replies else 0}"  # follows the latest reply
        state.setdefault(question_key, suggestion.question if suggestion else (asked[-1].content if asked else ""))
        state.setdefault(answer_key, replies[-1].content if replies else "")
        st.caption(t("desk_faq_caption"))
        st.text_input(t("desk_faq_question"), key=question_key)
        st.text_area(t("desk_faq_answer"), key=answer_key, height=120)
        st.button(t("desk_save_faq"), icon="🔖", on_click=_save_faq, args=(question_key, answer_key))


notice = state.pop(NOTICE_KEY, None)
if notice:
    (st.success if notice[0] == "success" else st.error)(notice[1])
left, right = st.columns([1, 2], gap="large")
with left:
    queue()
with right:
    if state.get(OPEN_KEY):
        workspace(state[OPEN_KEY])
    else:
        st.info(t("desk_open_hint"))
