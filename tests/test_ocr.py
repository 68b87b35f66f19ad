"""Reading scans (ingest/ocr.py): reading order (pure), the size checks that run before a pixel is decoded,
and the real PP-OCRv4 models on small generated scans: a picture, a skewed one, a two-page TIFF, and a PDF
whose middle page is a scan. OCR is CPU-heavy: a handful of small images, read once each."""

from __future__ import annotations

import math

import pytest

from ingest.errors import LoadError
from ingest.limits import Limits
from ingest.loaders import LoadOptions
from ingest.ocr import NeedsOcr, TextLine, load_image, read_page, reading_order
from ingest.office import load_pdf
from ingest.sandbox import parse_in_process
from tests.scans import jpeg_claiming, mixed_pdf, png_bomb, scan, truncated_png

OCR = LoadOptions(ocr=True)


def box(x: float, y: float, width: float, height: float, degrees: float = 0.0) -> tuple:
    """Four corners, clockwise from the top left, turned by `degrees` about the page's origin."""
    a = math.radians(degrees)
    corners = [(x, y), (x + width, y), (x + width, y + height), (x, y + height)]
    return tuple((cx * math.cos(a) - cy * math.sin(a), cx * math.sin(a) + cy * math.cos(a)) for cx, cy in corners)


def test_reading_order_rows_paragraphs_and_chinese_without_spaces():
    lines = [
        TextLine(box(600, 100, 300, 30), "right half"),
        TextLine(box(100, 102, 400, 30), "Left half,"),
        TextLine(box(100, 150, 700, 30), "second line."),
        TextLine(box(100, 300, 200, 30), "退货须在"),  # a wider gap: a new paragraph
        TextLine(box(320, 300, 200, 30), "三十天内申请。"),
        TextLine(box(100, 350, 200, 30), "Order LH-2024"),
    ]
    assert reading_order(lines) == "Left half, right half\nsecond line.\n\n退货须在三十天内申请。\nOrder LH-2024"
    assert reading_order([]) == ""


def test_reading_order_follows_a_skewed_page():
    # Turned 4 degrees, the right end of a row sits lower than the left end of the next row.
    rows = ["one two three", "four five six", "seven eight nine"]
    lines = [TextLine(box(100 + 700 * j, 100 + 45 * i, 650, 30, 4.0), row.split()[j]) for i, row in enumerate(rows) for j in (0, 1)]
    lines += [TextLine(box(100 + 1400, 100 + 45 * i, 650, 30, 4.0), row.split()[2]) for i, row in enumerate(rows)]
    assert reading_order(lines[::-1]) == "\n".join(rows)


@pytest.mark.parametrize(
    "make, message",
    [
        (png_bomb, r"30000 x 30000 pixels \(900 megapixels\).*decompression bomb \(KEFU_OCR_MAX_MEGAPIXELS\)"),
        (jpeg_claiming, r"60000 x 60000 pixels \(3600 megapixels\); images over 60 megapixels are refused"),
    ],
)
def test_huge_images_are_refused_from_their_header(tmp_path, make, message):
    path = tmp_path / ("bomb.png" if make is png_bomb else "huge.jpg")
    make(path)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(LoadError, match=message):  # refused where no OCR runs: before any pixel is decoded
        load_image(path, LoadOptions())


def test_damaged_and_fake_images_are_explained(tmp_path):
    truncated = tmp_path / "cut.png"
    truncated_png(truncated)
    with pytest.raises(NeedsOcr):  # the header is fine: only reading it finds the damage
        load_image(truncated, LoadOptions())
    with pytest.raises(LoadError, match="damaged or truncated image"):
        load_image(truncated, OCR)
    fake = tmp_path / "notes.webp"
    fake.write_text("not a picture")
    with pytest.raises(LoadError, match="not an image Kefu can read"):
        load_image(fake, LoadOptions())
    gif = tmp_path / "anim.png"
    scan(["x"]).save(gif, "GIF")
    with pytest.raises(LoadError, match="is a GIF image; Kefu reads PNG, JPEG, TIFF and WebP"):
        load_image(gif, LoadOptions())


def test_a_scan_is_read_line_by_line_and_a_skewed_one_in_order():
    lines = ["Pickup lockers", "Parcels wait in the Nanjing Road locker for 72 hours,", "then go back to the depot."]
    assert read_page(scan(lines)).splitlines() == lines
    assert read_page(scan(lines, skew=2.5)).splitlines() == lines


def test_a_picture_file_becomes_a_document_and_a_tiff_keeps_its_page_numbers(tmp_path):
    picture = tmp_path / "notice.png"
    scan(["Lost and found", "Ask at the service desk on floor 2."]).convert("RGBA").save(picture)
    with pytest.raises(NeedsOcr):
        load_image(picture, LoadOptions())
    [doc] = parse_in_process(picture, LoadOptions())  # in-process parsing reads it by OCR itself
    assert doc.title == "Lost and found" and doc.blocks[0].page is None
    assert "service desk on floor 2" in doc.text and doc.metadata["ocr_pages"] == [1]

    tiff = tmp_path / "form.tiff"
    first, second = scan(["Form A: returns"]), scan(["Form B: repairs"])
    first.save(tiff, save_all=True, append_images=[second])
    [doc] = load_image(tiff, OCR)
    assert [(b.page, b.text) for b in doc.blocks] == [(1, "Form A: returns"), (2, "Form B: repairs")]


def test_a_mixed_pdf_reads_only_its_scanned_page_by_ocr(tmp_path):
    pdf = tmp_path / "manual.pdf"
    mixed_pdf(
        pdf,
        text_pages={1: "Chapter 1\nCharge the speaker for two hours.", 3: "Chapter 3\nThe warranty lasts two years."},
        scanned_pages={2: scan(["Chapter 2", "Hold the power key for 8 seconds to reset."])},
    )
    with pytest.raises(NeedsOcr, match="1 pages without a text layer"):
        load_pdf(pdf, LoadOptions())
    [doc] = load_pdf(pdf, OCR)
    pages = {b.page: b for b in doc.blocks}
    assert sorted(pages) == [1, 2, 3] and doc.metadata["ocr_pages"] == [2]
    assert pages[2].text == "Chapter 2\nHold the power key for 8 seconds to reset." and pages[2].metadata == {"ocr": True}
    assert "two hours" in pages[1].text and not pages[1].metadata


def test_pdf_pages_are_rendered_at_200_dpi_within_the_pixel_limit(tmp_path):
    import pypdfium2
    from reportlab.pdfgen import canvas

    from ingest.office import render_for_ocr

    pdf = tmp_path / "sizes.pdf"
    c = canvas.Canvas(str(pdf))
    for size in [(595.27, 841.89), (14400, 14400)]:  # A4; 200 x 200 inches, the most PDF allows
        c.setPageSize(size)
        c.showPage()
    c.save()
    document = pypdfium2.PdfDocument(str(pdf))
    a4, vast = document[0], document[1]
    assert render_for_ocr(a4, Limits()).size == (1654, 2339)
    for megapixels in (60, 1):  # at 200 DPI it would be 40000 x 40000
        width, height = render_for_ocr(vast, Limits(ocr_max_megapixels=megapixels)).size
        assert width == height and 0.99 * megapixels * 1e6 < width * height <= megapixels * 1e6
    for page in (a4, vast):
        page.close()
    document.close()
