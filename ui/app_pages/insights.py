"""Insights for admins: conversations per day, answer modes, the handoff rate, answer latency (p50/p95),
feedback, and the most asked questions the knowledge base could not answer (knowledge gaps). The figures are
`app.desk.insights`' SQL aggregates and `KefuService.gaps`, through the gate (`app.access.gate`)."""

import streamlit as st

from app.access.auth import ADMIN
from ui import session
from ui.rendering import plain_cell
from ui.resources import show_error

control = session.page_access(ADMIN)
st.title("Insights")

days = st.segmented_control("Period", [7, 30, 90], default=30, format_func=lambda d: f"{d} days") or 30
try:
    figures = control.insights(days)
    gaps = control.gaps(limit=10)
except Exception as exc:
    show_error(exc, staff=True)
    st.stop()

rate = figures.handoff_rate
row = st.columns(5)
row[0].metric("Conversations", figures.conversations)
row[1].metric("Answers", figures.answers)
row[2].metric("Handed to a person", "–" if rate is None else f"{rate:.0%}", help=f"{figures.handed_over} conversations")
row[3].metric("Latency p50", "–" if figures.latency_p50_ms is None else f"{figures.latency_p50_ms} ms")
row[4].metric("Latency p95", "–" if figures.latency_p95_ms is None else f"{figures.latency_p95_ms} ms")

left, right = st.columns(2)
with left:
    st.subheader("Conversations per day")
    st.bar_chart({"day": [d for d, _ in figures.per_day], "conversations": [n for _, n in figures.per_day]},
                 x="day", y="conversations", height=260)  # fmt: skip
with right:
    st.subheader("Answers by mode")
    if figures.modes:
        st.bar_chart({"mode": list(figures.modes), "answers": list(figures.modes.values())}, x="mode", y="answers",
                     height=260, horizontal=True)  # fmt: skip
    else:
        st.caption("No answers in this period.")

left, right = st.columns(2)
with left:
    st.subheader("Feedback")
    up, down = figures.feedback["up"], figures.feedback["down"]
    if up or down:
        st.bar_chart({"rating": ["👍 helpful", "👎 not helpful"], "answers": [up, down]}, x="rating", y="answers", height=220)
        st.caption(f"{up / (up + down):.0%} of rated answers were helpful.")
    else:
        st.caption("No feedback in this period.")
with right:
    st.subheader("Top knowledge gaps")
    if gaps:
        st.dataframe(
            [{"question": plain_cell(g.question, 120), "asked": g.count, "last asked": g.last_asked[:16].replace("T", " "),
              "why": ", ".join(f"{r} {n}" for r, n in g.reasons.items())} for g in gaps],
            hide_index=True,
        )  # fmt: skip
        st.caption("Questions Kefu could not answer, or whose answer was marked not helpful, grouped by meaning. "
                   "Add what they ask to the knowledge base, or save an agent's answer as an FAQ entry.")  # fmt: skip
    else:
        st.caption("No knowledge gaps recorded.")
