"""The customer chat page: ask in English or Chinese, get an answer with its sources; a generated answer
streams in as the model writes it."""

from itertools import chain

import streamlit as st

from ui.rendering import render_answer, render_details
from ui.resources import get_service, show_error

st.title("Kefu 客服")
st.caption("Ask about orders, shipping, returns, warranty, payment or your account. 中文提问也可以。")

state = st.session_state
state.setdefault("messages", [])
state.setdefault("session_id", None)

with st.sidebar:
    if st.button("New conversation", use_container_width=True):
        state.messages = []
        state.session_id = None

for message in state.messages:
    with st.chat_message(message["role"]):
        if message["role"] == "assistant":
            render_answer(message)
        else:
            st.markdown(message["content"])

question = st.chat_input("Type your question… 请输入您的问题")
if question:
    state.messages.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        try:
            with st.spinner("Searching the knowledge base…"):
                reply = get_service().ask_stream(question, session_id=state.session_id)
                pieces = iter(reply)
                first = next(pieces, "")  # retrieval, and the model's prompt, happen before the first piece
            text = st.empty()
            with text:
                st.write_stream(chain([first], pieces))  # the model's reasoning never reaches this stream
            answer = reply.finish()
        except Exception as exc:  # shown as a message; user errors never as a traceback
            show_error(exc)
        else:
            text.markdown(answer.answer)  # the checked text, as stored
            state.session_id = answer.session_id
            reply_message = {
                "role": "assistant",
                "content": answer.answer,
                "mode": answer.mode,
                "sources": answer.sources,
                "latency_ms": answer.latency_ms,
            }
            state.messages.append(reply_message)
            render_details(reply_message)
