"""Which loader reads which file: file extension in, loader out.

Kept apart from the loaders themselves (`ingest.loaders`, `ingest.office`, `ingest.html`, `ingest.ocr`), which
share helpers from `ingest.loaders`, so no loader module imports another through the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ingest import html, ocr, office
from ingest.documents import Document
from ingest.loaders import LoadOptions, load_csv, load_jsonl, load_markdown, load_text

Loader = Callable[[Path, LoadOptions], list[Document]]

LOADERS: dict[str, Loader] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".csv": load_csv,
    ".jsonl": load_jsonl,
    ".pdf": office.load_pdf,
    ".docx": office.load_docx,
    ".xlsx": office.load_xlsx,
    ".html": html.load_html,
    ".htm": html.load_html,
    # Pictures of pages, read by OCR in the sandbox's OCR worker.
    ".png": ocr.load_image,
    ".jpg": ocr.load_image,
    ".jpeg": ocr.load_image,
    ".tif": ocr.load_image,
    ".tiff": ocr.load_image,
    ".webp": ocr.load_image,
}


def loader_for(name: str | Path) -> Loader | None:
    """The loader for a file name's extension, or None for a type Kefu does not read."""
    return LOADERS.get(Path(name).suffix.lower())
