"""Loaders: one file in, `Document`s out (text split into `Block`s, not yet chunked).

Each loader reads one format and knows nothing about chunking, analysis or storage. A loader raises
`LoadError` with a reason a person understands; the pipeline turns it into a `failed` status for that file.
This module holds what every loader shares (`LoadOptions`, decoding, `file_document`) and the plain-text
formats (Markdown, text, FAQ CSV, JSONL); PDF, DOCX and XLSX live in `ingest.office`, HTML in `ingest.html`,
images (read by OCR) in `ingest.ocr`, and `ingest.registry` maps file extensions to loaders.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.cjk import CJK_CHAR_RE
from ingest.documents import (
    KIND_FAQ,
    KIND_RECORD,
    KIND_TEXT,
    Block,
    Document,
    display_source,
    document_id,
)
from ingest.errors import LoadError
from ingest.limits import Limits

@dataclass(frozen=True)
class LoadOptions:
    """What a loader needs besides the file: the file's logical name (for uploads: never a path on disk),
    FAQ column names, the parse limits, and whether this process may run OCR (`ingest.ocr`)."""

    source: str | None = None  # shown in citations and the basis of document ids; default: the path
    extension: str | None = None  # the format to read (".html") when the name does not say (a web page's URL)
    question_column: str | None = None
    answer_column: str | None = None
    limits: Limits = field(default_factory=Limits)
    ocr: bool = False  # true in the sandbox's OCR worker (and parsing in-process); elsewhere scans raise NeedsOcr

    def source_for(self, path: Path) -> str:
        return self.source or display_source(path)

    def identity_for(self, path: Path) -> str:
        return self.source or str(path.resolve())

    def name_for(self, path: Path) -> str:
        return Path(self.source).name if self.source else path.name

    def format_for(self, path: Path) -> str:
        """The name whose extension picks the loader: the extension given, else the file's own name."""
        return f"document{self.extension}" if self.extension else self.name_for(path)


# Column names accepted for FAQ sheets, compared case-insensitively after trimming.
QUESTION_COLUMNS = ("question", "questions", "q", "query", "问题", "问", "提问")
ANSWER_COLUMNS = ("answer", "answers", "a", "response", "答案", "回答", "答")


def read_text(path: Path) -> str:
    """Decode a text file: a BOM decides (UTF-8, UTF-16); else UTF-8; else the detected encoding
    (GB18030 for GBK files)."""
    return decode_bytes(path.read_bytes(), path.name)


def decode_bytes(data: bytes, name: str = "file") -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    if b"\x00" in data[:4096]:
        # UTF-16 without a BOM shows as every other byte zero in mostly-ASCII text; anything else is binary.
        even, odd = data[0:4096:2], data[1:4096:2]
        if odd.count(0) > 0.4 * len(odd):
            return data.decode("utf-16-le", errors="replace")
        if even.count(0) > 0.4 * len(even):
            return data.decode("utf-16-be", errors="replace")
        raise LoadError(f"{name} looks like a binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Not UTF-8: most often GBK (Excel on Chinese Windows), sometimes Big5 or a Western code page. Take
    # GB18030 (GBK's superset) when it decodes to common Chinese; otherwise ask a detector. Detectors guess
    # short GBK texts wrongly, so they come second.
    try:
        text = data.decode("gb18030")
        if _plausible_chinese(text):
            return text
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:65536]).best()
    if best is None:
        raise LoadError(f"{name} is not text in any encoding Kefu recognises")
    candidates = [best.encoding]
    if re.fullmatch(r"(cp12\d\d|iso8859_\d+|latin_1|mac_\w+)", best.encoding):
        # Short text cannot tell one Western code page from another; Windows-1252 is by far the most used.
        candidates.insert(0, "cp1252")
    for encoding in candidates:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    raise LoadError(f"{name} is not text in any encoding Kefu recognises")


def _plausible_chinese(text: str) -> bool:
    """Whether decoded text reads as Chinese: its CJK characters are nearly all common ones (GB2312).
    Bytes of another encoding decoded as GB18030 turn into rare characters."""
    cjk = CJK_CHAR_RE.findall(text[:20000])
    if not cjk:
        return False
    common = 0
    for c in cjk:
        try:
            c.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
    return common >= 0.9 * len(cjk)


def _pretty_stem(name: str) -> str:
    stem = Path(name).stem
    return re.sub(r"[_-]+", " ", stem).strip().capitalize() or name


_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FRONT_MATTER_RE = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


def load_markdown(path: Path, options: LoadOptions) -> list[Document]:
    """Markdown: the heading hierarchy becomes each block's section path ("Returns > Refunds")."""
    text = read_text(path)
    title = ""
    front = _FRONT_MATTER_RE.match(text)
    if front:
        for line in front.group(1).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "title" and value.strip():
                title = value.strip().strip("\"'")
        text = text[front.end() :]
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            # The document's own title (its first H1) is not repeated in every section path.
            path = [h for i, (level, h) in enumerate(stack) if not (i == 0 and level == 1 and h == title)]
            blocks.append(Block(text=body, section=" > ".join(path)))
        lines.clear()

    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _HEADING_RE.match(line)
        if match:
            flush()
            level, heading = len(match.group(1)), match.group(2).strip()
            if level == 1 and not title:
                title = heading
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, heading))
        else:
            lines.append(line)
    flush()
    title = title or _pretty_stem(options.name_for(path))
    return [file_document(path, options, title, KIND_TEXT, text, blocks)]


def load_text(path: Path, options: LoadOptions) -> list[Document]:
    """Plain text: the first short line is the title; paragraphs stay together for chunking."""
    text = read_text(path).replace("\r\n", "\n")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    title = first if 0 < len(first) <= 80 else _pretty_stem(options.name_for(path))
    blocks = [Block(text=text.strip())] if text.strip() else []
    return [file_document(path, options, title, KIND_TEXT, text, blocks)]


def _find_column(header: list[str], names: tuple[str, ...], wanted: str | None) -> int | None:
    folded = ["" if h is None else str(h).strip().lower() for h in header]
    candidates = (wanted.strip().lower(),) if wanted else names
    for name in candidates:
        if name in folded:
            return folded.index(name)
    return None


def faq_rows_to_document(path: Path, options: LoadOptions, header: list[str], rows: Iterator[list[str]]) -> Document:
    """Turn a sheet's rows into an FAQ document: one block per question/answer pair, other columns kept."""
    name = options.name_for(path)
    q_idx = _find_column(header, QUESTION_COLUMNS, options.question_column)
    a_idx = _find_column(header, ANSWER_COLUMNS, options.answer_column)
    if q_idx is None or a_idx is None:
        missing = "question" if q_idx is None else "answer"
        wanted = (options.question_column if q_idx is None else options.answer_column) or "/".join(
            QUESTION_COLUMNS if q_idx is None else ANSWER_COLUMNS
        )
        found = ", ".join(repr(h) for h in header) or "no header"
        raise LoadError(
            f"{name} has no {missing} column (looked for {wanted}; found {found}; "
            f"set KEFU_FAQ_{missing.upper()}_COLUMN to name it)"
        )
    blocks: list[Block] = []
    for line_no, row in enumerate(rows, start=2):
        cells = ["" if c is None else str(c).strip() for c in row]
        question = cells[q_idx] if q_idx < len(cells) else ""
        answer = cells[a_idx] if a_idx < len(cells) else ""
        if not question or not answer:
            continue  # blank or ragged rows carry nothing to answer with
        extra = {
            str(header[i]).strip(): cells[i]
            for i in range(min(len(header), len(cells)))
            if i not in (q_idx, a_idx) and str(header[i]).strip() and cells[i]
        }
        blocks.append(
            Block(text=answer, section=question, metadata={"question": question, "answer": answer, "row": line_no, **extra})
        )
    if not blocks:
        raise LoadError(f"{name} has no rows with both a question and an answer")
    text = "\n\n".join(f"{b.section}\n{b.text}" for b in blocks)
    title = "FAQ" if Path(name).stem.lower() in ("faq", "faqs") else f"FAQ: {_pretty_stem(name)}"
    return file_document(path, options, title, KIND_FAQ, text, blocks)


def load_csv(path: Path, options: LoadOptions) -> list[Document]:
    """An FAQ sheet saved as CSV (any encoding `read_text` knows; comma, semicolon or tab separated)."""
    text = read_text(path)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise LoadError(f"{options.name_for(path)} is empty") from None
    except csv.Error as exc:
        raise LoadError(f"{options.name_for(path)} is not a well-formed CSV file: {exc}") from None
    try:
        return [faq_rows_to_document(path, options, header, reader)]
    except csv.Error as exc:
        raise LoadError(f"{options.name_for(path)} is not a well-formed CSV file: {exc}") from None


def load_jsonl(path: Path, options: LoadOptions) -> list[Document]:
    """A JSONL corpus in the BEIR layout: one document per record, keeping the record's `_id`/`id`."""
    documents: list[Document] = []
    source = options.source_for(path)
    seen: set[str] = set()
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(decode_bytes(raw, path.name))
            except json.JSONDecodeError as exc:
                raise LoadError(f"{path.name} line {line_no} is not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise LoadError(f"{path.name} line {line_no} is not a JSON object")
            rid = record.get("_id", record.get("id"))
            if rid is None or str(rid).strip() == "":
                raise LoadError(f"{path.name} line {line_no} has no '_id' or 'id'")
            rid = str(rid)
            if rid in seen:
                raise LoadError(f"{path.name} line {line_no} repeats the id {rid!r}")
            seen.add(rid)
            title = str(record.get("title") or "").strip()
            body = str(record.get("text") or "").strip()
            if not title and not body:
                continue
            meta = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
            documents.append(
                Document(
                    doc_id=rid,
                    source=source,
                    title=title or rid,
                    kind=KIND_RECORD,
                    text=body,
                    metadata={**meta, "path": str(path.resolve()), "record_id": rid},
                    blocks=[Block(text=body or title)],
                )
            )
    if not documents:
        raise LoadError(f"{path.name} holds no records with a title or text")
    return documents


def file_document(path: Path, options: LoadOptions, title: str, kind: str, text: str, blocks: list[Block]) -> Document:
    """The one document a file holds, identified by its path (or logical source name)."""
    if not any(b.text.strip() for b in blocks):
        raise LoadError(f"{options.name_for(path)} has no text")
    return Document(
        doc_id=document_id(options.identity_for(path), options.name_for(path)),
        source=options.source_for(path),
        title=title,
        kind=kind,
        text=text,
        metadata={"path": str(path.resolve())},
        blocks=[b for b in blocks if b.text.strip()],
    )
