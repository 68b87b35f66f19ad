"""Loaders: one file in, `Document`s out (text split into `Block`s, not yet chunked).

Each loader reads one format and knows nothing about chunking, analysis or storage. A loader raises
`LoadError` with a reason a person understands; the pipeline turns it into a `failed` status for that file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from ingest.documents import KIND_FAQ, KIND_RECORD, KIND_TEXT, Block, Document, display_source, document_id_for_path


class LoadError(Exception):
    """A file could not be read; the message says why in words a person understands."""


# Column names accepted for FAQ sheets, compared case-insensitively after trimming.
QUESTION_COLUMNS = ("question", "questions", "q", "query", "问题", "问", "提问")
ANSWER_COLUMNS = ("answer", "answers", "a", "response", "答案", "回答", "答")


def read_text(path: Path) -> str:
    """Decode a text file: a BOM decides (UTF-8, UTF-16), else UTF-8, else GB18030 (a superset of GBK)."""
    data = path.read_bytes()
    return decode_bytes(data, path.name)


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
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise LoadError(f"{name} is not valid UTF-8, UTF-16 or GB18030 text (byte {exc.start})") from None


def _pretty_stem(path: Path) -> str:
    return re.sub(r"[_-]+", " ", path.stem).strip().capitalize() or path.name


_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FRONT_MATTER_RE = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


def load_markdown(path: Path) -> list[Document]:
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
    title = title or _pretty_stem(path)
    return [_file_document(path, title, KIND_TEXT, text, blocks)]


def load_text(path: Path) -> list[Document]:
    """Plain text: the first short line is the title; paragraphs stay together for chunking."""
    text = read_text(path).replace("\r\n", "\n")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    title = first if 0 < len(first) <= 80 else _pretty_stem(path)
    blocks = [Block(text=text.strip())] if text.strip() else []
    return [_file_document(path, title, KIND_TEXT, text, blocks)]


def _find_column(header: list[str], names: tuple[str, ...], wanted: str | None) -> int | None:
    folded = [h.strip().lower() for h in header]
    candidates = (wanted.strip().lower(),) if wanted else names
    for name in candidates:
        if name in folded:
            return folded.index(name)
    return None


def faq_rows_to_document(
    path: Path,
    header: list[str],
    rows: Iterator[list[str]],
    question_column: str | None = None,
    answer_column: str | None = None,
) -> Document:
    """Turn a sheet's rows into an FAQ document: one block per question/answer pair, other columns kept."""
    q_idx = _find_column(header, QUESTION_COLUMNS, question_column)
    a_idx = _find_column(header, ANSWER_COLUMNS, answer_column)
    if q_idx is None or a_idx is None:
        missing = "question" if q_idx is None else "answer"
        wanted = (question_column if q_idx is None else answer_column) or "/".join(
            QUESTION_COLUMNS if q_idx is None else ANSWER_COLUMNS
        )
        found = ", ".join(repr(h) for h in header) or "no header"
        raise LoadError(f"{path.name} has no {missing} column (looked for {wanted}; found {found})")
    blocks: list[Block] = []
    for line_no, row in enumerate(rows, start=2):
        cells = [c.strip() for c in row]
        question = cells[q_idx] if q_idx < len(cells) else ""
        answer = cells[a_idx] if a_idx < len(cells) else ""
        if not question or not answer:
            continue  # blank or ragged rows carry nothing to answer with
        extra = {
            header[i].strip(): cells[i]
            for i in range(min(len(header), len(cells)))
            if i not in (q_idx, a_idx) and header[i].strip() and cells[i]
        }
        blocks.append(
            Block(text=answer, section=question, metadata={"question": question, "answer": answer, "row": line_no, **extra})
        )
    if not blocks:
        raise LoadError(f"{path.name} has no rows with both a question and an answer")
    text = "\n\n".join(f"{b.section}\n{b.text}" for b in blocks)
    title = "FAQ" if path.stem.lower() in ("faq", "faqs") else f"FAQ: {_pretty_stem(path)}"
    return _file_document(path, title, KIND_FAQ, text, blocks)


def load_csv(path: Path, question_column: str | None = None, answer_column: str | None = None) -> list[Document]:
    """An FAQ sheet saved as CSV (any of the encodings `read_text` knows; comma, semicolon or tab separated)."""
    text = read_text(path)
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise LoadError(f"{path.name} is empty") from None
    try:
        return [faq_rows_to_document(path, header, reader, question_column, answer_column)]
    except csv.Error as exc:
        raise LoadError(f"{path.name} is not a well-formed CSV file: {exc}") from None


def load_jsonl(path: Path) -> list[Document]:
    """A JSONL corpus in the BEIR layout: one document per record, keeping the record's `_id`/`id`."""
    documents: list[Document] = []
    source = display_source(path)
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


def _file_document(path: Path, title: str, kind: str, text: str, blocks: list[Block]) -> Document:
    if not blocks:
        raise LoadError(f"{path.name} has no text")
    return Document(
        doc_id=document_id_for_path(path),
        source=display_source(path),
        title=title,
        kind=kind,
        text=text,
        metadata={"path": str(path.resolve())},
        blocks=blocks,
    )


Loader = Callable[[Path], list[Document]]

LOADERS: dict[str, Loader] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".csv": load_csv,
    ".jsonl": load_jsonl,
}


def loader_for(path: Path) -> Loader | None:
    return LOADERS.get(path.suffix.lower())
