"""Scanned pages for bench/ocr.py, rendered from text written for this benchmark (a fictional shop's policies,
in English and Chinese): the text each page shows is known exactly, so the character error rate of what an OCR
engine reads back is measured against the truth.

A page is rendered at 200 DPI on A4 (1654 x 2339 pixels) in Noto Sans CJK (Debian's fonts-noto-cjk), in two
sizes, and in three conditions: clean, skewed (turned 2 degrees, as a sheet fed askew) and noisy (speckle,
a slight blur and JPEG compression at quality 55, as a cheap office scanner). Seeded, so every run sees the
same pages.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_FILES = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),
)
SC_INDEX = 2  # Simplified Chinese in the collection (JP, KR, SC, TC, HK)
DPI = 200
PAGE = (1654, 2339)  # A4 at 200 DPI
MARGIN = 150
SIZES_PT = {"10pt": 10, "14pt": 14}
CONDITIONS = ("clean", "skewed", "noisy")

ENGLISH = """\
Returns and refunds at Lumen Home Electronics

You may return any product within 30 days of delivery, for any reason, as long as it is complete and undamaged. \
Sealed headphones and earbuds can be returned only if the seal is intact. Start a return from the Orders page: \
choose the item, pick a reason, and print the prepaid label. Drop the parcel at any post office or at one of our \
140 partner lockers.

Refunds are paid to the card or wallet you used, usually within 5 business days after the parcel reaches our \
warehouse in Suzhou. Gift cards are refunded as store credit. If an item arrives damaged, send us a photo within \
48 hours and we will replace it at no cost; you do not need to return the broken one.

Warranty: every LH-series device carries a two-year warranty covering faults in materials and workmanship. The \
battery is covered for 12 months or 500 charge cycles, whichever comes first. Water damage, drops and repairs by \
third parties are not covered. To claim, call 400-820-7781 (9:00 to 21:00, Monday to Saturday) or write to \
care@lumen-home.example with your order number, for example LH-2024-118305.

Exchanges: a different colour or size can be swapped once per order, free of charge, while stock lasts. Price \
adjustments: if we lower the price of an item within 14 days after you bought it, we refund the difference on \
request. Business customers with more than 20 units per order should contact the sales desk for a quote.
"""

CHINESE = """\
露明家电退换货与保修说明

自签收之日起三十天内，商品完好、配件齐全的，可无理由退货。已拆封的耳机和入耳式耳塞仅在封条完好时可以退货。\
请在“我的订单”页面选择商品和退货原因，打印预付运单后，将包裹交到任意邮局或我们的一百四十个合作快递柜。

退款将原路退回您付款时使用的银行卡或电子钱包，通常在包裹到达苏州仓库后五个工作日内到账。使用礼品卡支付的订单，\
退款以店铺余额形式返还。如收到的商品有破损，请在四十八小时内拍照发给我们，我们将免费补发新品，破损商品无需寄回。

保修：所有LH系列设备均享受两年保修，覆盖材料和工艺缺陷。电池保修十二个月或五百次充电循环，以先到者为准。\
进水、摔落以及第三方维修造成的损坏不在保修范围内。申请保修请拨打客服热线400-820-7781（周一至周六9:00至21:00），\
或发送邮件至care@lumen-home.example，并注明订单号，例如LH-2024-118305。

换货：每个订单可免费更换一次颜色或尺码，以库存为准。价格保护：购买后十四天内如商品降价，可申请退还差价。\
企业客户单笔订单超过二十台的，请联系销售部门获取报价。
"""


@dataclass
class Page:
    name: str  # "en-10pt-clean-1"
    language: str  # "en" or "zh"
    image: Image.Image
    text: str  # what the page shows, line by line


def font_file() -> Path:
    for path in FONT_FILES:
        if path.exists():
            return path
    raise SystemExit("bench/ocr.py renders its pages in Noto Sans CJK: apt-get install fonts-noto-cjk")


def wrap(paragraphs: list[str], font: ImageFont.FreeTypeFont, width: int, language: str) -> list[str]:
    """Lines that fit `width` pixels; a blank line between paragraphs. English breaks at spaces, Chinese anywhere."""
    lines: list[str] = []
    for paragraph in paragraphs:
        units = paragraph.split(" ") if language == "en" else list(paragraph)
        joiner = " " if language == "en" else ""
        line = ""
        for unit in units:
            candidate = f"{line}{joiner}{unit}" if line else unit
            if font.getlength(candidate) <= width:
                line = candidate
            else:
                lines.append(line)
                line = unit
        lines.append(line)
        lines.append("")
    return lines[:-1]


def render(language: str, size: str) -> list[tuple[Image.Image, str]]:
    """Clean pages of one language at one size, with the text each shows."""
    text = ENGLISH if language == "en" else CHINESE
    px = round(SIZES_PT[size] * DPI / 72)
    font = ImageFont.truetype(str(font_file()), px, index=SC_INDEX)
    lines = wrap([p for p in text.split("\n") if p.strip()], font, PAGE[0] - 2 * MARGIN, language)
    step = round(px * 1.6)
    per_page = (PAGE[1] - 2 * MARGIN) // step
    pages = []
    for start in range(0, len(lines), per_page):
        shown = lines[start : start + per_page]
        image = Image.new("L", PAGE, 255)
        draw = ImageDraw.Draw(image)
        for i, line in enumerate(shown):
            draw.text((MARGIN, MARGIN + i * step), line, font=font, fill=0)
        pages.append((image, "\n".join(shown).strip()))
    return pages


def skew(image: Image.Image, degrees: float = 2.0) -> Image.Image:
    return image.rotate(degrees, resample=Image.BICUBIC, expand=True, fillcolor=255)


def add_noise(image: Image.Image, seed: int) -> Image.Image:
    rng = random.Random(seed)
    noisy = image.filter(ImageFilter.GaussianBlur(0.8))
    pixels = noisy.load()
    width, height = noisy.size
    for _ in range(width * height // 200):  # 0.5% of the pixels: dark and light specks
        x, y = rng.randrange(width), rng.randrange(height)
        pixels[x, y] = rng.choice((0, 60, 200, 255))
    buffer = io.BytesIO()
    noisy.save(buffer, "JPEG", quality=55)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def pages(languages=("en", "zh"), sizes=tuple(SIZES_PT), conditions=CONDITIONS) -> list[Page]:
    out: list[Page] = []
    for language in languages:
        for size in sizes:
            for n, (image, text) in enumerate(render(language, size), start=1):
                for condition in conditions:
                    shown = image
                    if condition == "skewed":
                        shown = skew(image)
                    elif condition == "noisy":
                        shown = add_noise(image, seed=n)
                    out.append(Page(f"{language}-{size}-{condition}-{n}", language, shown, text))
    return out
