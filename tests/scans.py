"""Files for the OCR tests, made on the spot: a scanned page rendered from known text (Pillow's own font, so no
system font is needed), a PDF mixing text pages with a scanned one, and hostile images — a PNG decompression
bomb (30000 x 30000 grey pixels, 900 MB decoded, in under 1 MB), a JPEG whose header claims 60000 x 60000
pixels, and a truncated PNG."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


def scan(lines: list[str], size: int = 40, width: int = 1500, skew: float = 0.0) -> Image.Image:
    """A grey page image showing `lines` in Pillow's bundled font, with a little of a scanner's grain."""
    font = ImageFont.load_default(size=size)
    step = round(size * 1.7)
    page = Image.new("L", (width, 2 * size + step * len(lines)), 250)
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(lines):
        draw.text((size, size + i * step), line, font=font, fill=20)
    if skew:
        page = page.rotate(skew, expand=True, fillcolor=250)
    return page


def mixed_pdf(path: Path, text_pages: dict[int, str], scanned_pages: dict[int, Image.Image]) -> None:
    """A PDF whose pages are either text (a text layer) or a page-sized picture (no text layer), by number."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    width, height = A4
    for number in range(1, max([*text_pages, *scanned_pages]) + 1):
        if number in text_pages:
            text = c.beginText(72, height - 96)
            text.setFont("Helvetica", 12)
            for line in text_pages[number].splitlines():
                text.textLine(line)
            c.drawText(text)
        elif number in scanned_pages:
            image = scanned_pages[number]
            shown = width - 72
            c.drawImage(ImageReader(image), 36, height - 72 - shown * image.height / image.width, shown,
                        shown * image.height / image.width)  # fmt: skip
        c.showPage()
    c.save()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path: Path, side: int = 30000) -> None:
    """A valid 8-bit grey PNG of side x side black pixels: each run of 100 zero rows compresses to the same
    bytes after a full flush, so the file is built without deflating 900 MB (Adler-32 of n zeros: n<<16 | 1)."""
    rows = 100
    block = b"\x00" * ((side + 1) * rows)  # each row: filter byte 0, then the pixels
    compressor = zlib.compressobj(9)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    total = (side + 1) * side
    stream = first + repeated * (side // rows - 1) + b"\x03\x00" + struct.pack(">I", ((total % 65521) << 16) | 1)
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b""))


def jpeg_claiming(path: Path, width: int = 60000, height: int = 60000) -> None:
    """A small real JPEG whose frame header (SOF0) is rewritten to claim width x height pixels."""
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))


def truncated_png(path: Path) -> None:
    buffer = io.BytesIO()
    scan(["This page was cut off in transit."]).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
