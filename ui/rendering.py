"""Rendering helpers shared by pages: answers, their mode and their sources. Text from documents and
answers is shown as Markdown with HTML never enabled; source excerpts are escaped so they render literally."""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

MODE_LABELS = {
    "faq": "Answered from the FAQ",
    "generated": "Generated from the knowledge base",
    "extractive": "Quoted from the knowledge base",
    "abstain": "No answer found",
    "handoff": "Handed over to a human agent",
}

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<])")
_EMPHASIS = re.compile(r"(\*\*|__|`)")


def escape_markdown(text: str) -> str:
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def source_label(source: dict[str, Any]) -> str:
    title = source.get("title") or source.get("doc_id", "")
    section = source.get("section") or ""
    if section and section != title:
        title = f"{title} › {section}"
    page = source.get("page")
    return f"{title} (p. {page})" if page else title


def render_answer(message: dict[str, Any]) -> None:
    """An assistant turn: the answer, a caption with its mode and latency, and its sources."""
    st.markdown(message["content"])
    render_details(message)


def render_details(message: dict[str, Any]) -> None:
    """What follows an answer's text: its mode and latency, and its sources."""
    mode = message.get("mode")
    if mode:
        latency = message.get("latency_ms")
        st.caption(MODE_LABELS.get(mode, mode) + (f" · {latency} ms" if latency is not None else ""))
    sources = message.get("sources") or []
    if sources:
        with st.expander(f"Sources ({len(sources)})"):
            for i, source in enumerate(sources, start=1):
                st.markdown(f"**[{i}] {escape_markdown(source_label(source))}**")
                st.caption(escape_markdown(source.get("source", "")))
                excerpt = _EMPHASIS.sub("", " ".join(str(source.get("text", "")).split()))
                st.markdown("> " + escape_markdown(excerpt[:600] + ("…" if len(excerpt) > 600 else "")))
