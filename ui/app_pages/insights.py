"""Insights for admins: conversations per day, answer modes, the handoff rate, answer latency (p50/p95),
feedback, and the most asked questions the knowledge base could not answer (knowledge gaps). The figures are
`app.desk.insights`' SQL aggregates and `KefuService.gaps`, through the gate (`app.access.gate`)."""

import streamlit as st

from app.access.auth import ADMIN
from ui import session
from ui.i18n import label, t
from ui.rendering import plain_cell
from ui.resources import show_error

control = session.page_access(ADMIN)
st.title(t("ins_title"))

days = st.segmented_control(t("ins_period"), [7, 30, 90], default=30, format_func=lambda d: t("ins_days", n=d)) or 30
try:
    figures = control.insights(days)
    gaps = control.gaps(limit=10)
except Exception as exc:
    show_error(exc, staff=True)
    st.stop()

rate = figures.handoff_rate
row = st.columns(5)
row[0].metric(t("ins_conversations"), figures.conversations)
row[1].metric(t("ins_answers"), figures.answers)
row[2].metric(t("ins_handed"), "–" if rate is None else f"{rate:.0%}", help=t("ins_handed_help", n=figures.handed_over))
row[3].metric(t("ins_p50"), "–" if figures.latency_p50_ms is None else f"{figures.latency_p50_ms} ms")
row[4].metric(t("ins_p95"), "–" if figures.latency_p95_ms is None else f"{figures.latency_p95_ms} ms")

left, right = st.columns(2)
with left:
    st.subheader(t("ins_per_day"))
    day, count = t("ins_day"), t("ins_conversations")
    st.bar_chart({day: [d for d, _ in figures.per_day], count: [n for _, n in figures.per_day]}, x=day, y=count,
                 height=260)  # fmt: skip
with right:
    st.subheader(t("ins_by_mode"))
    if figures.modes:
        mode, count = t("ins_mode"), t("ins_answers")
        st.bar_chart({mode: [label("mode", m) for m in figures.modes], count: list(figures.modes.values())}, x=mode,
                     y=count, height=260, horizontal=True)  # fmt: skip
    else:
        st.caption(t("ins_no_answers"))

left, right = st.columns(2)
with left:
    st.subheader(t("ins_feedback"))
    up, down = figures.feedback["up"], figures.feedback["down"]
    if up or down:
        rating, count = t("ins_rating"), t("ins_answers")
        st.bar_chart({rating: [t("ins_helpful"), t("ins_not_helpful")], count: [up, down]}, x=rating, y=count, height=220)
        st.caption(t("ins_helpful_share", share=f"{up / (up + down):.0%}"))
    else:
        st.caption(t("ins_no_feedback"))
with right:
    st.subheader(t("ins_gaps"))
    if gaps:
        st.dataframe(
            [{t("col_question"): plain_cell(g.question, 120), t("col_asked"): g.count,
              t("col_last_asked"): g.last_asked[:16].replace("T", " "),
              t("col_why"): ", ".join(f"{label('gap', r)} {n}" for r, n in g.reasons.items())} for g in gaps],
            hide_index=True,
        )  # fmt: skip
        st.caption(t("ins_gaps_caption"))
    else:
        st.caption(t("ins_no_gaps"))
