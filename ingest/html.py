"""HTML loader: the page's readable text, with navigation, headers, footers, scripts, styles and forms
dropped, and headings (h1-h6) kept as section paths, as for Markdown."""

from __future__ import annotations

from pathlib import Path

from ingest.documents import KIND_TEXT, Block, Document
from ingest.errors import LoadError
from ingest.loaders import LoadOptions, decode_bytes, file_document

# Elements that are never content; their whole subtree goes.
DROP_TAGS = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "iframe",
             "svg", "canvas", "button", "select", "object", "embed")  # fmt: skip
DROP_ROLES = ("navigation", "banner", "contentinfo", "search", "complementary", "menu", "menubar")
BLOCK_TAGS = {"p", "div", "section", "article", "main", "li", "tr", "table", "ul", "ol", "dl", "dt", "dd",
              "blockquote", "pre", "br", "td", "th", "figcaption", "address"}  # fmt: skip
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


def load_html(path: Path, options: LoadOptions) -> list[Document]:
    import lxml.html
    from lxml import etree

    name = options.name_for(path)
    text = decode_bytes(path.read_bytes(), name)
    if not text.strip():
        raise LoadError(f"{name} has no text")
    try:
        root = lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise LoadError(f"{name} is not readable HTML ({exc})") from None
    title_el = root.find(".//title")
    title = " ".join(title_el.text_content().split()) if title_el is not None else ""
    for el in list(root.iter(etree.Element)):
        if el.getparent() is None:
            continue
        tag = el.tag if isinstance(el.tag, str) else ""
        role = (el.get("role") or "").lower()
        if tag in DROP_TAGS or tag == "head" or role in DROP_ROLES or el.get("aria-hidden") == "true" or el.get("hidden") is not None:
            el.drop_tree()
    body = root.find("body")
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []
    parts: list[str] = []

    def flush() -> None:
        # Each block element's text is its own paragraph for chunking.
        content = "\n\n".join(line for line in (" ".join(p.split()) for p in "".join(parts).split("\n")) if line)
        if content:
            path_parts = [h for i, (level, h) in enumerate(stack) if not (i == 0 and h == title)]
            blocks.append(Block(text=content, section=" > ".join(path_parts)))
        parts.clear()

    def walk(el) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in HEADINGS:
            flush()
            heading = " ".join(el.text_content().split())
            level = HEADINGS[tag]
            while stack and stack[-1][0] >= level:
                stack.pop()
            if heading:
                stack.append((level, heading))
            parts.append(el.tail or "")
            return
        if tag in BLOCK_TAGS:
            parts.append("\n")
        parts.append(el.text or "")
        for child in el:
            walk(child)
        if tag in BLOCK_TAGS:
            parts.append("\n")
        parts.append(el.tail or "")

    walk(body if body is not None else root)
    flush()
    if not title:
        first_h1 = root.find(".//h1")
        title = " ".join(first_h1.text_content().split()) if first_h1 is not None else Path(name).stem
    return [file_document(path, options, title, KIND_TEXT, "\n\n".join(b.text for b in blocks), blocks)]
