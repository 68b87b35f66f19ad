"""Loaders for binary office formats: PDF (text per page, page numbers kept for citations), DOCX
(paragraphs, headings as section paths, tables as rows) and XLSX FAQ sheets.

DOCX and XLSX are ZIP containers: their directory is checked against the limits (`ingest.limits`) before
any part is inflated. PDFs are read by pypdf with its own decompression limits. Every failure becomes a
`LoadError` that says what is wrong with the file.
"""

from __future__ import annotations

import re
from pathlib import Path

from ingest.documents import KIND_TEXT, Block, Document
from ingest.errors import LoadError
from ingest.limits import check_zip
from ingest.loaders import LoadOptions, faq_rows_to_document, file_document

_HEADING_STYLE_RE = re.compile(r"^(heading|标题)\s*(\d)$", re.IGNORECASE)


def load_pdf(path: Path, options: LoadOptions) -> list[Document]:
    import pypdf
    from pypdf.errors import PdfReadError

    name = options.name_for(path)
    with path.open("rb") as fh:
        if not fh.read(1024).lstrip().startswith(b"%PDF-"):
            raise LoadError(f"{name} is not a PDF file (it does not start with %PDF-)")
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise LoadError(f"{name} is password-protected; remove the password and upload it again")
            except (NotImplementedError, PdfReadError) as exc:
                raise LoadError(f"{name} is encrypted in a way Kefu cannot open ({exc})") from None
        blocks = []
        for number, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").strip()
            if text:
                blocks.append(Block(text=text, page=number))
        info_title = (reader.metadata.title if reader.metadata else None) or ""
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise LoadError(f"{name} is a damaged or truncated PDF ({type(exc).__name__}: {exc})") from None
    if not blocks:
        raise LoadError(f"{name} has no extractable text (a scanned PDF? run OCR on it first)")
    first_line = blocks[0].text.splitlines()[0].strip()
    title = str(info_title).strip() or (first_line if len(first_line) <= 80 else Path(name).stem)
    return [file_document(path, options, title, KIND_TEXT, "\n\n".join(b.text for b in blocks), blocks)]


def _table_rows(table) -> list[str]:
    rows = []
    for row in table.rows:
        cells = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            if not cells or cells[-1] != text:  # merged cells repeat their text
                cells.append(text)
        if any(cells):
            rows.append("| " + " | ".join(cells) + " |")  # one Markdown-style row per line
    return rows


def load_docx(path: Path, options: LoadOptions) -> list[Document]:
    name = options.name_for(path)
    check_zip(path, options.limits, "DOCX")
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError) as exc:
        raise LoadError(f"{name} is not a readable Word document ({exc})") from None
    title = (document.core_properties.title or "").strip()
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []
    lines: list[str] = []

    def flush() -> None:
        text = "\n\n".join(lines).strip()
        if text:
            path_parts = [h for i, (level, h) in enumerate(stack) if not (i == 0 and h == title)]
            blocks.append(Block(text=text, section=" > ".join(path_parts)))
        lines.clear()

    for item in document.iter_inner_content():
        if isinstance(item, Table):
            lines.append("\n".join(_table_rows(item)))
            continue
        assert isinstance(item, Paragraph)
        text = item.text.strip()
        if not text:
            continue
        style = (item.style.name if item.style is not None else "") or ""
        match = _HEADING_STYLE_RE.match(style.strip())
        level = 0 if style.strip().lower() == "title" else int(match.group(2)) if match else None
        if level is None:
            lines.append(text)
            continue
        flush()
        if not title and level <= 1:
            title = text
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, text))
    flush()
    title = title or Path(name).stem
    return [file_document(path, options, title, KIND_TEXT, "\n\n".join(b.text for b in blocks), blocks)]


def load_xlsx(path: Path, options: LoadOptions) -> list[Document]:
    """An FAQ sheet saved from Excel: the first sheet with question and answer columns."""
    name = options.name_for(path)
    check_zip(path, options.limits, "XLSX")
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise LoadError(f"{name} is not a readable Excel workbook ({type(exc).__name__}: {exc})") from None
    try:
        last_error: LoadError | None = None
        for sheet in workbook.worksheets:
            rows = sheet.iter_rows(values_only=True)
            header = next(rows, None)
            if not header:
                continue
            try:
                return [faq_rows_to_document(path, options, [str(h or "") for h in header], (list(r) for r in rows))]
            except LoadError as exc:
                last_error = exc
        raise last_error or LoadError(f"{name} has no sheet with rows")
    finally:
        workbook.close()
