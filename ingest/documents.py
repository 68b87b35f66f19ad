"""The units ingest produces: a `Document` (one file, or one record of a JSONL corpus) and its `Chunk`s.

Plain data, no behaviour beyond identity helpers. `rag/` stores these; nothing here knows about stores,
embeddings or models.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.cjk import CJK_BASIC

# Document kinds: how a document was written, which decides how it is chunked and answered.
KIND_TEXT = "text"  # prose: Markdown, plain text, PDF, DOCX, HTML
KIND_FAQ = "faq"  # question/answer pairs, one chunk per pair
KIND_RECORD = "record"  # one record of a JSONL corpus (BEIR layout)

# Where a document belongs and who may see it: keyword labels given at ingest (`kefu ingest --collection`,
# `--audience`), stored with every chunk and usable as search filters. Customers' answers quote only the
# audiences KEFU_ANSWER_AUDIENCES names (by default `public`).
DEFAULT_COLLECTION = "default"
DEFAULT_AUDIENCE = "public"
_LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def check_label(what: str, value: str) -> str:
    """`value` if it is a usable collection or audience name; ValueError saying what is allowed otherwise."""
    if not isinstance(value, str) or not _LABEL_RE.fullmatch(value):
        raise ValueError(
            f"{what} name {value!r} is not allowed: use 1 to 64 letters, digits, '-', '_', '.' or ':', "
            "starting with a letter or digit"
        )
    return value


@dataclass
class Chunk:
    """A retrievable piece of a document.

    `text` is what a reader is shown; `match_text` is what lexical and dense matching see (for an FAQ row
    the question, for prose the text itself).
    """

    ord: int
    text: str
    match_text: str
    section: str = ""
    page: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Block:
    """A run of text from a loader, before chunking: one Markdown section, one PDF page, one paragraph group."""

    text: str
    section: str = ""
    page: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Document:
    doc_id: str
    source: str
    title: str
    kind: str
    text: str
    language: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    chunks: list[Chunk] = field(default_factory=list)
    collection: str = DEFAULT_COLLECTION
    audience: str = DEFAULT_AUDIENCE
    # What a loader read, before chunking; not stored.
    blocks: list[Block] = field(default_factory=list, repr=False)

    @property
    def content_hash(self) -> str:
        """Identifies what is stored for the document: title, text and the chunk texts, so re-chunking counts
        as a change, and its collection and audience, so moving a document re-writes it. The default labels
        add nothing, so hashes written before labels existed still match and nothing is re-indexed."""
        h = hashlib.sha256()
        for part in (self.kind, self.title, self.text):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        for c in self.chunks:
            h.update(f"{c.section}\x00{c.page}\x00{c.match_text}\x00{c.text}\x01".encode("utf-8"))
        if (self.collection, self.audience) != (DEFAULT_COLLECTION, DEFAULT_AUDIENCE):
            h.update(f"\x02{self.collection}\x00{self.audience}".encode("utf-8"))
        return h.hexdigest()


_SLUG_RE = re.compile(f"[^0-9A-Za-z{CJK_BASIC}]+")  # the basic block only: ids must not change


def document_id(identity: str, name: str) -> str:
    """A stable, readable id: the name's slug plus a hash of the identity (a file's absolute path, or an
    uploaded file's logical name), so the same file always gets the same id."""
    slug = _SLUG_RE.sub("-", Path(name).stem).strip("-").lower()[:40] or "doc"
    return f"{slug}-{hashlib.sha1(identity.encode('utf-8')).hexdigest()[:8]}"


def document_id_for_path(path: Path) -> str:
    return document_id(str(path.resolve()), path.name)


def display_source(path: Path) -> str:
    """The path shown in citations: relative to the working directory when under it."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)
