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
from ui.rendering import escape_markdown, plain_cell, render_sources_list, render_transcript_entry, waited
from ui.resources import get_service, show_error

OPEN_KEY = "kefu_desk_open"
NOTICE_KEY = "kefu_desk_notice"

control = session.page_access(AGENT)
me = control.principal.name
refresh = get_service().settings.ui.ui_refresh_seconds
state = st.session_state
st.title("Agent desk")


def _entry(record, prefix: str) -> None:
    label = f"{waited(record.status_since)} · {plain_cell(record.last_customer_message or record.last_message, 48) or '(no messages)'}"
    kind = "primary" if state.get(OPEN_KEY) == record.id else "secondary"
    if st.button(escape_markdown(label), key=f"{prefix}-{record.id}", width="stretch", type=kind):
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
    st.subheader(f"Queue ({len(waiting)})")
    if not waiting:
        st.caption("Nobody is waiting.")
    for record in waiting:
        _entry(record, "queue")
    st.subheader(f"Yours ({len(mine)})")
    if not mine:
        st.caption("You are not handling any conversation.")
    for record in mine:
        _entry(record, "mine")


def _send(session_id: str, key: str) -> None:
    try:
        session.access().agent_reply(session_id, state.get(key, ""))
    except Exception as exc:
        state[NOTICE_KEY] = ("error", str(exc))
    else:
        state[key] = ""
        state[NOTICE_KEY] = ("success", "Sent. The customer sees it in their chat.")


def _move(session_id: str, action: str) -> None:
    try:
        getattr(session.access(), action)(session_id)
    except Exception as exc:
        state[NOTICE_KEY] = ("error", str(exc))
    else:
        state[OPEN_KEY] = None
        done = {"release": "Handed back to the assistant.", "resolve": "Marked resolved."}[action]
        state[NOTICE_KEY] = ("success", done)


def _save_faq(question_key: str, answer_key: str) -> None:
    try:
        saved = session.access().save_faq(state.get(question_key, ""), state.get(answer_key, ""))
    except Exception as exc:
        state[NOTICE_KEY] = ("error", str(exc))
    else:
        verb = "Replaced" if saved.replaced else "Saved"
        state[NOTICE_KEY] = ("success", f"{verb} as an FAQ entry ({saved.entries} in the agents' FAQ); indexed: the next "
                             "customer who asks this gets it.")  # fmt: skip


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
    status = record.status + (f" with {record.agent}" if record.agent else "")
    st.subheader(f"Conversation {session_id[:8]}")
    st.caption(escape_markdown(f"{status} for {waited(record.status_since)} · handed over because: "
                               f"{record.handoff_reason or '-'} · {record.messages} messages"))  # fmt: skip
    if record.slots:
        st.dataframe([{"slot": k, "value": plain_cell(v)} for k, v in record.slots.items()], hide_index=True)
    st.fragment(run_every=refresh)(transcript)(session_id)

    asked = [m for m in messages if m.role == "user"]
    draft_key = f"kefu_draft_{session_id}_{asked[-1].id if asked else 0}"
    reply_key = f"kefu_reply_{draft_key}"
    if asked and draft_key not in state:
        try:
            with st.spinner("Drafting a reply from the knowledge base…"):
                state[draft_key] = control.suggest_reply(session_id)
        except Exception as exc:
            show_error(exc, staff=True)
            state[draft_key] = None
    suggestion = state.get(draft_key)
    if suggestion is not None:
        state.setdefault(reply_key, suggestion.draft)
        st.markdown("**Suggested reply** to: " + escape_markdown(plain_cell(suggestion.question, 160)))
        if suggestion.draft:
            st.caption(f"mode {suggestion.answer.mode} · confidence {suggestion.answer.confidence or 0:.2f} · edit before sending")
        else:
            st.caption("The knowledge base has no answer to this. The closest passages, to read before you write:")
        render_sources_list(suggestion.answer.sources)
    else:
        state.setdefault(reply_key, "")
    st.text_area("Your reply", key=reply_key, height=160)
    send, release, resolve = st.columns(3)
    send.button("Send", type="primary", icon="📨", on_click=_send, args=(session_id, reply_key), width="stretch")
    release.button("Release", icon="↩️", on_click=_move, args=(session_id, "release"), width="stretch",
                   help="Hand the conversation back to the assistant",
                   disabled=record.status not in (handoff.WAITING, handoff.WITH_AGENT))  # fmt: skip
    resolve.button("Mark resolved", icon="✅", on_click=_move, args=(session_id, "resolve"), width="stretch",
                   disabled=record.status == handoff.RESOLVED)  # fmt: skip

    with st.expander("Save as FAQ"):
        replies = [m for m in messages if m.role == "agent"]
        question_key = f"kefu_faq_q_{draft_key}"
        answer_key = f"kefu_faq_a_{draft_key}_{replies[-1].id if replies else 0}"  # follows the latest reply
        state.setdefault(question_key, suggestion.question if suggestion else (asked[-1].content if asked else ""))
        state.setdefault(answer_key, replies[-1].content if replies else "")
        st.caption("The question and answer become an entry of the agents' FAQ sheet, indexed at once: the next "
                   "customer who asks it gets this answer directly.")  # fmt: skip
        st.text_input("Customer's question", key=question_key)
        st.text_area("Answer", key=answer_key, height=120)
        st.button("Save as FAQ", icon="🔖", on_click=_save_faq, args=(question_key, answer_key))


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
        st.info("Open a conversation from the queue.")
