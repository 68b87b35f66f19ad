"""Limits on what one file may cost to parse, and the checks that can run before parsing starts.

File size is checked from the file system; ZIP containers (DOCX, XLSX) are checked from their central
directory — entry count, total uncompressed size, compression ratio — before any entry is inflated. The
parse itself runs in a worker process with a timeout and an address-space cap (`ingest.sandbox`); PDFs keep
pypdf's own decompression limits (75 MB per stream by default, `pypdf.Configuration`). This module only
checks; it opens nothing but the ZIP directory.
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
