"""Answers as plain text, for places that show text literally: one-line previews (the agents' queue, `kefu
sessions list`) and clients that render no Markdown.

Answers are written in a small Markdown (`**bold**`, `- ` lists, `[text](url)` links, `` `code` ``); a preview
that shows the markup (`**30 days**`) reads badly. `plain_text` keeps every word and drops only the markup: the
emphasis markers, list bullets, heading and quote markers; a link keeps its text and its address, an image its
alt text. `preview` flattens the result to one clipped line. Pure.
"""

from __future__ import annotations

import re

_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"(?<!\\)\[([^\]]+)\]\(([^)\s]*)[^)]*\)")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![\w*])")
_CODE = re.compile(r"`+([^`\n]*)`+")
_LINE_MARKER = re.compile(r"^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+)", re.MULTILINE)
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<$:])")


def plain_text(markdown: str | None) -> str:
    """`markdown` without its markup (line breaks kept); links as "text (address)", images as their alt text."""
    text = str(markdown or "")
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})" if m.group(2) else m.group(1), text)
    text = _CODE.sub(lambda m: m.group(1), text)
    text = _STRONG.sub(lambda m: m.group(2), text)
    text = _EMPHASIS.sub(lambda m: m.group(1), text)
    text = _LINE_MARKER.sub("", text)
    return _ESCAPED.sub(r"\1", text)


def preview(markdown: str | None, width: int = 60) -> str:
    """One line of at most `width` characters: the plain text with its whitespace collapsed, clipped with "…"."""
    flat = " ".join(plain_text(markdown).split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"
