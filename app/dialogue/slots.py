"""Slots: what a customer tells us that a support desk keeps for the rest of the conversation. Pure.

- `order_number`: after "order (number|no.|#|id)" / "订单(号)", or a `#12345`-style reference; at least one
  digit, 5 to 24 letters, digits and dashes.
- `email`: an address.
- `phone`: a mainland-China mobile number (11 digits from 13–19, optional +86), or any other number written
  as a phone number (8 to 15 digits, optional +, spaces, dashes, dots, brackets), order numbers excluded.
- `product`: a product name the knowledge base knows (`product_names`: manual titles without "User Manual"
  and the like, plus KEFU_PRODUCTS), named in full or by its distinctive words ("buds pro").

Slots are kept on the conversation, shown to agents and used by the query rewriter ("how do I reset it?" is
about the product the customer named two turns ago).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

ORDER_NUMBER = "order_number"
EMAIL = "email"
PHONE = "phone"
PRODUCT = "product"
SLOTS = (ORDER_NUMBER, EMAIL, PHONE, PRODUCT)

_ORDER_RE = re.compile(
    r"\border\s*(?:number|no\.?|num|id|ref(?:erence)?|#)?\s*(?:is|was|:|#)?\s*#?\s*(?P<a>[A-Z0-9][A-Z0-9-]{3,22}[A-Z0-9])\b"
    r"|订单(?:号|编号|号码)?\s*(?:是|为|:|：)?\s*(?P<b>[A-Za-z0-9][A-Za-z0-9-]{3,22}[A-Za-z0-9])"
    r"|(?<![\w#])#(?P<c>\d{5,20})\b",
    re.IGNORECASE,
)
_EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CN_MOBILE_RE = re.compile(r"(?<![\d+])(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)")
_PHONE_RE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d[\d\s.-]{6,16}\d(?!\w)")
_TITLE_SUFFIX_RE = re.compile(
    r"\s*[-–—:|]?\s*(user'?s?\s+manual|user\s+guide|owner'?s\s+manual|quick\s+start(\s+guide)?|manual|guide|handbook"
    r"|使用说明书|说明书|使用手册|用户手册|用户指南|快速入门|手册)\s*$",
    re.IGNORECASE,
)
_SPACES_RE = re.compile(r"\s+")


def _digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


def find_order_number(text: str) -> tuple[str, tuple[int, int]] | None:
    for match in _ORDER_RE.finditer(text):
        group = next(g for g in ("a", "b", "c") if match.group(g))
        value = match.group(group)
        if _digits(value) >= 1:
            return value.upper(), match.span(group)
    return None


def find_phone(text: str, taken: Sequence[tuple[int, int]] = ()) -> str | None:
    def free(span: tuple[int, int]) -> bool:
        return not any(span[0] < end and start < span[1] for start, end in taken)

    for match in _CN_MOBILE_RE.finditer(text):
        if free(match.span()):
            return re.sub(r"[\s-]", "", match.group())
    for match in _PHONE_RE.finditer(text):
        digits = _digits(match.group())
        if 8 <= digits <= 15 and free(match.span()) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", match.group()):
            return match.group().strip()
    return None


def product_names(titles: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """Product names from manual titles ("Lumen Buds Pro - User Manual" → "Lumen Buds Pro") and extra names."""
    names: dict[str, str] = {}
    for title in titles:
        stripped = _TITLE_SUFFIX_RE.sub("", title or "").strip(" -–—:|")
        if stripped and stripped != (title or "").strip():
            names.setdefault(_key(stripped), stripped)
    for name in extra:
        if name.strip():
            names.setdefault(_key(name), name.strip())
    return sorted(names.values(), key=lambda n: (-len(n), n))


def _key(text: str) -> str:
    return _SPACES_RE.sub("", text).casefold()


def match_product(text: str, products: Sequence[str]) -> str | None:
    """The product named in `text`: its full name, or (for names of two words or more) every word after
    the first, the brand ("buds pro" for "Lumen Buds Pro"; "手表 S2" for "流明手表 S2")."""
    haystack = _key(text)
    products = sorted(products, key=len, reverse=True)  # "Lumen Buds Pro" before "Lumen Buds"
    for name in products:
        if _key(name) in haystack:
            return name
    for name in products:
        words = name.split()
        if len(words) >= 2 and _key(" ".join(words[1:])) in haystack and len(_key(" ".join(words[1:]))) >= 4:
            return name
    return None


def find_slots(text: str, products: Sequence[str] = ()) -> dict[str, str]:
    """Every slot `text` fills."""
    found: dict[str, str] = {}
    taken: list[tuple[int, int]] = []
    order = find_order_number(text)
    if order:
        found[ORDER_NUMBER] = order[0]
        taken.append(order[1])
    email = _EMAIL_RE.search(text)
    if email:
        found[EMAIL] = email.group()
        taken.append(email.span())
    phone = find_phone(text, taken)
    if phone:
        found[PHONE] = phone
    product = match_product(text, products)
    if product:
        found[PRODUCT] = product
    return found
