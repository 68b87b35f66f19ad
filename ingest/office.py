"""Loaders for binary office formats: PDF (text per page, page numbers kept for citations), DOCX
(paragraphs, headings as section paths, tables as rows) and XLSX FAQ sheets.

DOCX and XLSX are ZIP containers: their directory is checked against the limits (`ingest.limits`) before
any part is inflated. PDFs are read by pypdf with its own decompression limits; the pages without a text
layer (scanned, or text drawn as outlines) are rendered by PDFium, within the OCR pixel limit, and read by
OCR (`ingest.ocr`), so a mixed PDF has only its scanned pages read. Every failure becomes a `LoadError` that
says what is wrong with the file.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ingest.documents import KIND_TEXT, Block, Document
from ingest.errors import LoadError
from ingest.limits import Limits, check_zip
from ingest.loaders import LoadOptions, faq_rows_to_document, file_document
from ingest.ocr import NeedsOcr, read_page

_HEADING_STYLE_RE = re.compile(r"^(heading|标题)\s*(\d)$", re.IGNORECASE)
# A PDF page whose text layer holds fewer visible characters than this, and that shows a picture or a long
# drawing (text turned into outlines), is read by OCR (a scan may carry a stamped page number or a scanner's
# label); the OCR text is kept when it is the longer. Blank pages are not read.
MIN_TEXT_LAYER = 16
MIN_DRAWING_BYTES = 2048
RENDER_DPI = 200  # scanned pages are rendered at this resolution for OCR (bench/ocr.py's pages: 200 DPI)


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
        texts, scanned = [], []
        for number, page in enumerate(reader.pages, start=1):
            texts.append((page.extract_text() or "").strip())
            if len("".join(texts[-1].split())) < MIN_TEXT_LAYER and _shows_something(page):
                scanned.append(number)
        info_title = (reader.metadata.title if reader.metadata else None) or ""
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise LoadError(f"{name} is a damaged or truncated PDF ({type(exc).__name__}: {exc})") from None
    read: dict[int, str] = {}
    if scanned:
        if not options.ocr:
            raise NeedsOcr(f"{name} has {len(scanned)} pages without a text layer")
        read = _read_scanned_pages(path, name, scanned, options.limits)
    blocks = []
    for number, text in enumerate(texts, start=1):
        if len(read.get(number, "")) > len(text):
            blocks.append(Block(text=read[number], page=number, metadata={"ocr": True}))
        elif text:
            blocks.append(Block(text=text, page=number))
    if not blocks and scanned:
        raise LoadError(f"{name} has no text: no text layer, and none that OCR could read on its pages")
    if not blocks:
        raise LoadError(f"{name} has no text (no text layer, and no pictures to read by OCR)")
    first_line = blocks[0].text.splitlines()[0].strip()
    title = str(info_title).strip() or (first_line if len(first_line) <= 80 else Path(name).stem)
    document = file_document(path, options, title, KIND_TEXT, "\n\n".join(b.text for b in blocks), blocks)
    ocr_pages = [b.page for b in blocks if b.metadata.get("ocr")]
    if ocr_pages:
        document.metadata["ocr_pages"] = ocr_pages
    return [document]


def _shows_something(page) -> bool:
    """Whether a page shows anything OCR could read: an image, or a drawing long enough to be text turned into
    outlines. A page pypdf cannot take apart is rendered and read, to be sure."""
    try:
        if len(page.images):
            return True
        contents = page.get_contents()
        return contents is not None and len(contents.get_data()) > MIN_DRAWING_BYTES
    except Exception:  # pypdf raises many types for damaged pages
        return True


def _read_scanned_pages(path: Path, name: str, numbers: list[int], limits: Limits) -> dict[int, str]:
    """The OCR text of some pages (numbered from 1), each rendered at RENDER_DPI, or smaller where that would
    pass the pixel limit (a page's size is the PDF's word: a hostile one declares a page miles wide)."""
    import pypdfium2

    out: dict[int, str] = {}
    try:
        pdf = pypdfium2.PdfDocument(str(path))
    except pypdfium2.PdfiumError as exc:
        raise LoadError(f"{name} could not be opened to read its scanned pages ({exc})") from None
    try:
        for number in numbers:
            page = pdf[number - 1]
            try:
                image = render_for_ocr(page, limits)
            except pypdfium2.PdfiumError as exc:
                raise LoadError(f"{name} page {number} could not be rendered for OCR ({exc})") from None
            finally:
                page.close()
            out[number] = read_page(image)
    finally:
        pdf.close()
    return out


def render_for_ocr(page, limits: Limits):
    """A PDFium page as a grey picture at RENDER_DPI, or smaller where that would pass the pixel limit."""
    width, height = page.get_size()  # points
    fit = math.sqrt(limits.ocr_max_megapixels * 1_000_000 / max(width * height, 1.0)) * 0.999  # PDFium rounds up
    scale = min(RENDER_DPI / 72, fit)
    return page.render(scale=scale, grayscale=True).to_pil()


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
