"""Reading scans: the text of pictures of pages (OCR), offline, for image files and for the PDF pages that have
no text layer.

The engine is PP-OCRv4 (Chinese and English in one model) from `rapidocr-onnxruntime`, whose wheel holds the
models; bench/ocr.py chose it over Tesseract by measurement (README, "Reading scans"). A page is read in two
passes: text lines are found on the page scaled down to `DETECT_SIDE` pixels on its long side (fast, and
enough to find lines), then each line is cut out of the full-resolution page, straightened and recognised
(lines cut from the scaled-down page lose the spaces between small English words). `reading_order` (pure)
puts the recognised lines back together: rows measured across the page's skew, boxes in a row left to right,
a blank line where rows are further apart than the page's usual line pitch (a new paragraph).

Contract: `open_image` refuses a picture whose header declares more pixels than `Limits.ocr_max_megapixels`
before a pixel is decoded (decompression bombs, 30000 x 30000 images); `read_page` turns one page image into
text; `load_image` is the loader for PNG, JPEG, TIFF and WebP files (a multi-page TIFF's pages numbered for
citations). OCR is heavy, so it runs only where `LoadOptions.ocr` says this process may run it (the OCR
worker of `ingest.sandbox`, with its own time and memory limits, or an in-process parse); elsewhere a loader
raises `NeedsOcr` and the file is handed on. This module knows nothing of PDF structure (`ingest.office`
renders the pages it needs read), chunking or storage.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.documents import KIND_TEXT, Block, Document
from ingest.errors import LoadError
from ingest.limits import Limits, check_pixels
from ingest.loaders import LoadOptions, file_document

if TYPE_CHECKING:
    from PIL.Image import Image

FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "TIFF": "TIFF", "WEBP": "WebP"}  # Pillow's name: ours
DETECT_SIDE = 960  # lines are found at this size (on bench/ocr.py's pages as accurate as 2000 px, ~1/4 the CPU)
MIN_SCORE = 0.5  # recognised lines less certain than this are noise (speckle, a photo's texture)
DENOISE_MIN_HEIGHT = 32  # lines this tall (pixels) are median-filtered first: specks go, strokes stay
_WIDE = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0002ebef]")  # CJK, full width


class NeedsOcr(LoadError):
    """Raised by a loader where OCR may not run (`LoadOptions.ocr` is false): the file holds pages to read by
    OCR, and the caller hands it to a process that may (the sandbox's OCR worker). A caller that cannot
    reports it as the file's failure, like any `LoadError`."""


@dataclass(frozen=True)
class TextLine:
    """One recognised line: its box on the page (four corners, clockwise from the top left, in pixels)."""

    box: tuple[tuple[float, float], ...]
    text: str
    score: float = 1.0


def reading_order(lines: list[TextLine]) -> str:
    """The lines' text as a reader goes through the page: top to bottom, left to right within a row, a blank
    line between paragraphs. A skewed scan's rows are followed along the skew. Pure."""
    if not lines:
        return ""
    angle = _skew(lines)
    cos, sin = math.cos(-angle), math.sin(-angle)
    placed = []
    for line in lines:
        cx = sum(x for x, _ in line.box) / len(line.box)
        cy = sum(y for _, y in line.box) / len(line.box)
        width, height = _box_size(line.box)
        x, y = cx * cos - cy * sin, cx * sin + cy * cos  # the centre in the page's own (unskewed) frame
        placed.append((y, x - width / 2, height, line.text))
    placed.sort()
    rows: list[list] = []  # [mean y, height, [(left, text), ...]]
    for y, left, height, text in placed:
        if rows and abs(y - rows[-1][0]) < 0.5 * max(height, rows[-1][1]):
            row = rows[-1]
            n = len(row[2])
            row[0] = (row[0] * n + y) / (n + 1)
            row[1] = max(row[1], height)
            row[2].append((left, text))
        else:
            rows.append([y, height, [(left, text)]])
    pitches = [b[0] - a[0] for a, b in zip(rows, rows[1:])]
    usual = statistics.median(pitches) if pitches else 0.0
    out: list[str] = []
    for i, (y, _, items) in enumerate(rows):
        if i and y - rows[i - 1][0] > 1.5 * usual:
            out.append("")
        out.append(_join(text for _, text in sorted(items)))
    return "\n".join(out)


def _box_size(box: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = box[:4]
    width = max(math.hypot(x1 - x0, y1 - y0), math.hypot(x2 - x3, y2 - y3))
    height = max(math.hypot(x3 - x0, y3 - y0), math.hypot(x2 - x1, y2 - y1))
    return width, height


def _skew(lines: list[TextLine]) -> float:
    """The page's skew in radians: the median slope of the long lines' top edges (0 for a page of short boxes)."""
    angles = []
    for line in lines:
        width, height = _box_size(line.box)
        if width >= 3 * height:
            (x0, y0), (x1, y1) = line.box[0], line.box[1]
            angles.append(math.atan2(y1 - y0, x1 - x0))
    angle = statistics.median(angles) if angles else 0.0
    return angle if abs(angle) < math.radians(20) else 0.0  # beyond that the boxes are not rows of one page


def _join(texts) -> str:
    """Boxes of one row: no space between Chinese (or full-width) characters, one space elsewhere."""
    out = ""
    for text in texts:
        text = text.strip()
        if out and text and not (_WIDE.match(out[-1]) and _WIDE.match(text[0])):
            out += " "
        out += text
    return out


class PageReader:
    """PP-OCRv4 through rapidocr-onnxruntime; the models load when the first page is read, once per process."""

    def __init__(self) -> None:
        self._engine = None

    def _load(self):
        if self._engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:
                _raise_if_out_of_memory(exc)
                hint = " (OpenCV needs libGL: apt-get install libgl1 libglib2.0-0)" if "libG" in str(exc) else ""
                raise LoadError(
                    f"reading scans needs rapidocr-onnxruntime ({exc}){hint}: "
                    "pip install -c constraints.txt rapidocr-onnxruntime"
                ) from None
            # The angle classifier stays off: it turns some upright lines of a scan upside down. Line finding
            # gets the page already scaled down (`_find_lines`) and must not scale it up again ("max": only
            # ever down); by default it stretches the short side to 736 pixels, which makes a wide strip of
            # text a huge image (the tests' 1500 x 250 notices took six times longer).
            self._engine = RapidOCR(use_cls=False, det_limit_type="max")
        return self._engine

    def lines(self, page: Image) -> list[TextLine]:
        """The recognised lines of one page image (any mode; it is read in grey)."""
        import numpy as np

        try:
            engine = self._load()
            grey = _grey(page)
            quads = self._find_lines(engine, grey)
            crops = [(quad, _cut(grey, quad)) for quad in quads]
            crops = [(quad, crop) for quad, crop in crops if crop is not None]
            if not crops:
                return []
            # One line at a time: a batch pads every line to the widest one's length, which costs more and
            # changes what short lines read as (bench/ocr.py's pages: 1.5-2x less CPU, the same error rate).
            recognised = [engine.text_rec([_bgr(crop)])[0][0] for _, crop in crops]
        except LoadError:
            raise
        except Exception as exc:
            _raise_if_out_of_memory(exc)
            raise
        return [
            TextLine(tuple((float(x), float(y)) for x, y in np.asarray(quad).tolist()), text, float(score))
            for (quad, _), (text, score) in zip(crops, recognised)
            if score >= MIN_SCORE and text.strip()
        ]

    @staticmethod
    def _find_lines(engine, grey):
        import cv2
        import numpy as np

        scale = min(1.0, DETECT_SIDE / max(grey.shape))
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else grey
        boxes, _ = engine(_bgr(small), use_det=True, use_cls=False, use_rec=False)
        return [np.asarray(box, dtype=np.float32) / scale for box in boxes or []]


_OUT_OF_MEMORY = ("bad_alloc", "insufficient memory", "cannot allocate memory", "failed to allocate",
                  "failed to map segment")  # fmt: skip


def _raise_if_out_of_memory(exc: BaseException) -> None:
    """onnxruntime, OpenCV and the dynamic loader report a failed allocation (the worker's memory cap) as their
    own errors, or fail to start a thread: all of them become MemoryError, which the sandbox reports as such."""
    if any(sign in str(exc).lower() for sign in _OUT_OF_MEMORY):
        raise MemoryError(str(exc)) from None


def _grey(page: Image):
    """The page as an 8-bit grey array: EXIF rotation applied, transparency on white, 16-bit and float scaled."""
    import numpy as np
    from PIL import Image, ImageOps

    page = ImageOps.exif_transpose(page)
    if page.mode in ("RGBA", "LA", "PA") or (page.mode == "P" and "transparency" in page.info):
        rgba = page.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        page = Image.alpha_composite(white, rgba)
    if page.mode.startswith("I") or page.mode == "F":  # 16-bit or float scans: stretch to 0..255
        values = np.asarray(page, dtype=np.float32)
        low, high = float(values.min()), float(values.max())
        return ((values - low) * (255.0 / max(high - low, 1.0))).astype(np.uint8)
    return np.asarray(page.convert("L"))


def _bgr(grey):
    import cv2

    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def _cut(grey, quad):
    """One line cut out of the page and straightened (a quadrilateral mapped to an upright rectangle); tall,
    narrow lines (vertical text) turned to run left to right; None for a box too small to hold text."""
    import cv2
    import numpy as np

    width = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[3] - quad[2])))
    height = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
    if width < 2 or height < 2:
        return None
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    line = cv2.warpPerspective(grey, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if height >= 1.5 * width:
        line = np.ascontiguousarray(np.rot90(line))
    if line.shape[0] >= DENOISE_MIN_HEIGHT:
        line = cv2.medianBlur(line, 3)
    return line


_READER = PageReader()


def read_page(page: Image) -> str:
    """The text of one page image, in reading order ("" when none is found)."""
    return reading_order(_READER.lines(page))


def open_image(path: Path, name: str, limits: Limits):
    """A PNG, JPEG, TIFF or WebP image opened lazily (only its header read), refused if it is larger than the
    pixel limit or not one of those formats."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # check_pixels below replaces Pillow's check, naming the size and the setting
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, SyntaxError, ValueError):
        raise LoadError(f"{name} is not an image Kefu can read (PNG, JPEG, TIFF or WebP), or it is damaged") from None
    if image.format not in FORMATS:
        image.close()
        raise LoadError(f"{name} is a {image.format} image; Kefu reads PNG, JPEG, TIFF and WebP")
    try:
        check_pixels(name, *image.size, limits)
    except LoadError:
        image.close()
        raise
    return image


def load_image(path: Path, options: LoadOptions) -> list[Document]:
    """A picture of a page (a scan, a photo of a notice, a screenshot), or a multi-page TIFF, read by OCR."""
    name = options.name_for(path)
    image = open_image(path, name, options.limits)
    with image:
        if not options.ocr:
            raise NeedsOcr(f"{name} is an image")
        pages = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1  # WebP/PNG frames are animation
        blocks: list[Block] = []
        for number in range(1, pages + 1):
            try:
                image.seek(number - 1)
                check_pixels(name if pages == 1 else f"{name} page {number}", *image.size, options.limits)
                image.load()
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise LoadError(f"{name} is a damaged or truncated image ({exc})") from None
            text = read_page(image)
            if text:
                blocks.append(Block(text=text, page=number if pages > 1 else None, metadata={"ocr": True}))
    if not blocks:
        raise LoadError(f"{name} has no text that OCR could read (a photo, or a blank page?)")
    first_line = blocks[0].text.splitlines()[0].strip()
    title = first_line if 0 < len(first_line) <= 80 else Path(name).stem
    document = file_document(path, options, title, KIND_TEXT, "\n\n".join(b.text for b in blocks), blocks)
    document.metadata["ocr_pages"] = [b.page or 1 for b in blocks]
    return [document]
