"""Every place the web app shows text it did not write itself: answers, passages, agents' and customers'
messages, document titles. One module, so the output policy has one place to harden.

Such text is rendered as limited Markdown, never HTML (no `unsafe_allow_html`, no `st.html`): images are
dropped to their alt text, links shown as text, raw HTML escaped, Streamlit's own extensions (`$…$` LaTeX,
`:color[…]` directives, `:material/…:` icons) neutralised, and everything cut at a length limit. Titles, sources
and excerpts are escaped completely, so they render literally.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import streamlit as st

from app.answering.plaintext import preview
from ui.i18n import label, t

MAX_MESSAGE_CHARS = 8000
MAX_EXCERPT_CHARS = 600
CHIP_TITLE_CHARS = 28
ROLE_AVATARS = {"user": "🧑", "assistant": "🤖", "agent": "🧑‍💼"}

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<$:])")
_EMPHASIS = re.compile(r"(\*\*|__|`)")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"(?<!\\)\[([^\]]+)\]\(([^)\s]*)[^)]*\)")
_HTML = re.compile(r"<")
_DOLLAR = re.compile(r"(?<!\\)\$")
_DIRECTIVE = re.compile(r":(?=[A-Za-z/-]+[\[:])")
# A crawled page's source: an http(s) URL in canonical form (`ingest.crawl.urls`): only characters a URL may hold
# unescaped (RFC 3986), so no quote, angle bracket, backslash or space.
_WEB_ADDRESS = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*)?")


def escape_markdown(text: str) -> str:
    """Text that renders literally: every Markdown (and Streamlit extension) character escaped."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", str(text))


def clip(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def limited_markdown(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Answer or message text as Markdown that can emphasise and list but not embed, link, run LaTeX or HTML."""
    text = clip(text, limit)
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})" if m.group(2) else m.group(1), text)
    text = _HTML.sub(r"\\<", text)
    text = _DOLLAR.sub(r"\\$", text)
    return _DIRECTIVE.sub(r"\\:", text)


def render_text(text: str) -> None:
    st.markdown(limited_markdown(text))


def source_label(source: Mapping[str, Any]) -> str:
    title = source.get("title") or source.get("doc_id", "")
    section = source.get("section") or ""
    if section and section != title:
        title = f"{title} › {section}"
    page = source.get("page")
    return f"{title} (p. {page})" if page else title


def excerpt(source: Mapping[str, Any], limit: int = MAX_EXCERPT_CHARS) -> str:
    flat = _EMPHASIS.sub("", " ".join(str(source.get("text", "")).split()))
    return clip(flat, limit)


def mode_caption(message: Mapping[str, Any]) -> str | None:
    mode = message.get("mode")
    if not mode:
        return None
    key = f"mode_{mode}"
    label = t(key) if key in _known_modes() else mode
    latency = message.get("latency_ms")
    return label + (f" · {latency} ms" if latency is not None else "")


def _known_modes() -> set[str]:
    from ui.i18n import TEXTS

    return {k for k in TEXTS if k.startswith("mode_")}


def page_url(source: Mapping[str, Any]) -> str | None:
    """The web address of a passage crawled from the company's site (its source is the page's canonical URL), or
    None for a file. The one outside link a customer may follow: it opens the page the answer quoted."""
    value = str(source.get("source") or "")
    if _WEB_ADDRESS.fullmatch(value):
        return value
    return None


def render_passage(number: int, source: Mapping[str, Any]) -> None:
    """One cited passage: title, section, page, where it comes from, and the passage text; a link to the web page
    for a passage from the company's site."""
    st.markdown(f"**[{number}] {escape_markdown(source.get('title') or source.get('doc_id', ''))}**")
    where = [str(source.get("section") or ""), t("page", page=source["page"]) if source.get("page") else "",
             str(source.get("source") or "")]  # fmt: skip
    st.caption(escape_markdown(" · ".join(w for w in where if w)))
    st.markdown("> " + escape_markdown(excerpt(source)))
    url = page_url(source)
    if url:
        st.link_button(t("open_page"), url)


def render_citations(sources: Sequence[Mapping[str, Any]]) -> None:
    """Numbered chips under an answer, named by the passage's section (else its title); each opens the passage."""
    if not sources:
        return
    columns = st.columns(len(sources))
    for number, (column, source) in enumerate(zip(columns, sources), start=1):
        title = clip(source.get("section") or source.get("title") or source.get("doc_id", ""), CHIP_TITLE_CHARS)
        with column, st.popover(f"[{number}] {escape_markdown(title)}", width="stretch"):
            render_passage(number, source)


def render_answer(message: Mapping[str, Any], rating: Callable[[], None] | None = None) -> None:
    """An assistant turn: the answer, its citations as chips, and a caption with its mode and latency."""
    render_text(message.get("content", ""))
    render_details(message)
    if rating is not None:
        rating()


def render_details(message: Mapping[str, Any]) -> None:
    render_citations(message.get("sources") or [])
    caption = mode_caption(message)
    if caption:
        st.caption(caption)


def render_message(message: Mapping[str, Any], rating: Callable[[], None] | None = None) -> None:
    """One message of a conversation as the customer sees it (system notes as a small line)."""
    role = message.get("role")
    if role == "system":
        st.caption("— " + escape_markdown(message.get("content", "")) + " —")
        return
    with st.chat_message(role if role in ("user", "assistant") else "agent", avatar=ROLE_AVATARS.get(role)):
        if role == "agent":
            st.caption(t("agent_label", agent=escape_markdown(message.get("author") or "")))
            render_text(message.get("content", ""))
            if rating is not None:
                rating()
        elif role == "assistant":
            render_answer(message, rating)
        else:
            render_text(message.get("content", ""))


def render_transcript_entry(message: Mapping[str, Any]) -> None:
    """One message as an agent sees it: role, author, mode, confidence, the standalone query, every source."""
    role = message.get("role", "")
    who = {"user": t("who_customer"), "assistant": t("who_kefu"), "agent": t("who_agent", agent=message.get("author") or ""),
           "system": t("who_system")}.get(role, role)  # fmt: skip
    details = [message.get("created_at", "")[11:19]]
    if message.get("mode"):
        details.append(mode_caption({"mode": message["mode"]}) or "")
    if message.get("confidence") is not None:
        details.append(t("confidence", value=f"{message['confidence']:.2f}"))
    if message.get("intent") and role == "user":
        details.append(t("intent", intent=message["intent"]))
    st.markdown(f"**{escape_markdown(who.strip())}** · " + escape_markdown(" · ".join(d for d in details if d)))
    render_text(message.get("content", ""))
    query = message.get("query")
    if query and role == "assistant" and query.strip() != message.get("content", "").strip():
        st.caption(escape_markdown(t("searched", query=query)))
    sources = message.get("sources") or []
    for number, source in enumerate(sources, start=1):
        st.caption(f"[{number}] " + escape_markdown(source_label(source)))


def render_sources_list(sources: Sequence[Mapping[str, Any]]) -> None:
    """Sources of a draft, each with its passage in an expander."""
    for number, source in enumerate(sources, start=1):
        with st.expander(f"[{number}] {clip(source_label(source), 80)}"):
            render_passage(number, source)


def render_hit(rank: int, hit: Any) -> None:
    """One result of the retrieval test: rank, score (named by what it is: BM25, a cosine, or a fused RRF value),
    the cosines of query and chunk that are not the score itself, title and the chunk's text."""
    chunk = hit.chunk
    st.markdown(f"**{rank}. {escape_markdown(clip(chunk.title, 60))}**")
    kind = hit.score_kind
    line = [t(f"score_{kind}", value=f"{hit.score:.4f}")]
    if hit.similarity is not None and not (kind == "cosine" and abs(hit.similarity - hit.score) < 1e-6):
        line.append(t("score_main_cosine", value=f"{hit.similarity:.3f}"))
    multilingual = hit.multilingual_similarity
    if multilingual is not None and not (kind == "cosine" and abs(multilingual - hit.score) < 1e-6):
        line.append(t("score_multilingual_cosine", value=f"{multilingual:.3f}"))
    if chunk.section and chunk.section != chunk.title:
        line.append(clip(chunk.section, 40))
    st.caption(escape_markdown(" · ".join(line)))
    st.markdown("> " + escape_markdown(clip(_EMPHASIS.sub("", " ".join(chunk.text.split())), 300)))


def plain_cell(text: Any, limit: int = 200) -> str:
    """Text for a table cell (tables never interpret Markdown or HTML): flattened and clipped."""
    return clip(" ".join(str(text or "").split()), limit)


def render_stream(pieces: Any) -> str:
    """Show text as it is written (each update rendered as limited Markdown); returns the whole text."""
    placeholder = st.empty()
    text = ""
    for piece in pieces:
        if not piece:
            continue
        text += piece
        placeholder.markdown(limited_markdown(text) + " ▌")
    placeholder.markdown(limited_markdown(text))
    return text


def waited(since: str | None) -> str:
    """How long ago an ISO time was, for a queue: "45 s", "12 min", "2 h 5 min" (in the interface's language)."""
    from datetime import datetime, timezone

    if not since:
        return ""
    seconds = max(0, int((datetime.now(timezone.utc) - datetime.fromisoformat(since)).total_seconds()))
    if seconds < 90:
        return t("seconds", n=seconds)
    if seconds < 90 * 60:
        return t("minutes", n=seconds // 60)
    return t("hours", h=seconds // 3600, m=seconds % 3600 // 60)


def status_label(status: str, agent: str | None = None) -> str:
    """A conversation's status in words: "Waiting for an agent", "With anna", "Resolved"."""
    if status == "with_agent":
        return t("status_with_agent", agent=agent) if agent else t("status_with_agent_nobody")
    return label("status", status)


def plain_preview(text: str | None, limit: int = 48) -> str:
    """A message as one line of plain text (no Markdown markers), for a queue entry or a table cell."""
    return preview(text, limit)
