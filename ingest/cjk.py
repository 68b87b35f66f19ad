"""What counts as a Chinese character: the one definition every layer uses (chunking, loaders' encoding checks,
analysis, language detection, answer formatting). Pure.

`CJK_CLASS` is the inside of a regular-expression character class: CJK Unified Ideographs with Extension A,
the compatibility ideographs and Extensions B–F. `CJK_BASIC` is only the basic block, kept where a change of
range would change stored identifiers (document id slugs).
"""

from __future__ import annotations

import re

CJK_BASIC = "\u4e00-\u9fff"
CJK_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
CJK_CHAR_RE = re.compile(f"[{CJK_CLASS}]")


def is_cjk(char: str) -> bool:
    """True for one Chinese (CJK ideograph) character."""
    return bool(CJK_CHAR_RE.fullmatch(char))


def cjk_count(text: str) -> int:
    """How many Chinese characters `text` holds."""
    return len(CJK_CHAR_RE.findall(text))


def has_cjk(text: str) -> bool:
    return CJK_CHAR_RE.search(text) is not None
