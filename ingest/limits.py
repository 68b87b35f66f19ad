"""Limits on what one file may cost to parse, and the checks that can run before parsing starts.

File size is checked from the file system; ZIP containers (DOCX, XLSX) are checked from their central
directory — entry count, total uncompressed size, compression ratio — before any entry is inflated; images
are checked from the width and height their header declares, before any pixel is decoded. The parse itself
runs in a worker process with a timeout and an address-space cap (`ingest.sandbox`), and OCR in another
worker with limits of its own (`ocr_*`); PDFs keep pypdf's own decompression limits (75 MB per stream by
default, `pypdf.Configuration`). This module only checks; it opens nothing but the ZIP directory.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import LoadError

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_file_mb: int = 100
    parse_timeout_s: float = 120.0
    parse_memory_mb: int = 1024
    max_zip_entries: int = 10_000
    max_unzipped_mb: int = 500
    max_zip_ratio: int = 100
    # OCR (`ingest.ocr`): the worker that reads scans gets its own time and memory limits; a page image (a
    # picture file, a frame of a TIFF, a rendered PDF page) may hold at most this many pixels.
    ocr_timeout_s: float = 600.0
    ocr_memory_mb: int = 2048
    ocr_max_megapixels: int = 60


def check_size(path: Path, limits: Limits) -> None:
    size = path.stat().st_size
    if size > limits.max_file_mb * MB:
        raise LoadError(
            f"{path.name} is {size / MB:.0f} MB; the limit is {limits.max_file_mb} MB (KEFU_MAX_FILE_MB)"
        )


def check_zip(path: Path, limits: Limits, kind: str) -> None:
    """Refuse a ZIP container (DOCX, XLSX) whose directory promises more than the limits allow."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile:
        raise LoadError(f"{path.name} is not a valid {kind} file (not a ZIP container, or truncated)") from None
    if len(entries) > limits.max_zip_entries:
        raise LoadError(
            f"{path.name} holds {len(entries)} parts; a {kind} file with more than {limits.max_zip_entries} is refused"
        )
    unzipped = sum(e.file_size for e in entries)
    zipped = max(1, sum(e.compress_size for e in entries))
    if unzipped > limits.max_unzipped_mb * MB:
        raise LoadError(
            f"{path.name} would unpack to {unzipped / MB:.0f} MB (limit {limits.max_unzipped_mb} MB): "
            "refused as a likely ZIP bomb"
        )
    if unzipped / zipped > limits.max_zip_ratio:
        raise LoadError(
            f"{path.name} is compressed {unzipped / zipped:.0f}:1 (limit {limits.max_zip_ratio}:1): "
            "refused as a likely ZIP bomb"
        )


def check_pixels(name: str, width: int, height: int, limits: Limits) -> None:
    """Refuse a page image larger than the OCR pixel limit, from the size its header declares (nothing decoded)."""
    pixels = width * height
    if pixels > limits.ocr_max_megapixels * 1_000_000:
        raise LoadError(
            f"{name} is {width} x {height} pixels ({pixels / 1e6:.0f} megapixels); images over "
            f"{limits.ocr_max_megapixels} megapixels are refused as a likely decompression bomb "
            "(KEFU_OCR_MAX_MEGAPIXELS)"
        )
