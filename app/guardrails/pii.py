"""Personal data in customer text, Chinese and English: find it, mask it. Pure functions, no models.

`find_pii(text)` returns non-overlapping `PiiSpan`s sorted by start; `mask(text)` replaces each span by its
masked form. The types, in `PII_TYPES` order, which is also who wins when two readings overlap (an 18-digit
ID number is not also a card, a card is not also a phone, an email holding a phone number is an email):

| type | recognised | masked (keep=True) |
|---|---|---|
| `email` | local@domain.tld | first character of the local part kept: `a***@example.com` |
| `ip` | IPv4 with octets 0-255 (no leading zeros), IPv6 (checked by `ipaddress`; a digit, two groups and 4 hex digits at least: `3::` is not one) | `[IP]` |
| `id_number` | mainland-China resident ID: 18 characters, a province code, a real birth date (1900-2099), the GB 11643-1999 ISO 7064 MOD 11-2 check character (X = 10); the old 15-digit form only right after 身份证/ID | first 3 and last 4 kept: `110***********123X` |
| `bank_card` | Luhn-valid, bare or in groups of four (American Express 4-6-5, Diners 4-6-4) with spaces or dashes: 13-19 digits with an issuer prefix 3-6, 2131, 1800 or 22-27; after card/卡号 also 12 digits and any prefix | first 4 and last 4 kept, separators too: `6222 **** **** 1234` |
| `mobile` | mainland 1[3-9] + 9 digits (+86 / 0086, spaces, dashes); international numbers whose national part has a mobile prefix of `_MOBILE_PREFIXES` (HK, Macau, Taiwan, Singapore, UK, Australia, Japan, Korea, India, Germany, France) | country code, first 3 and last 4 national digits kept: `138****8000`, `+86 138 **** 8000` |
| `phone` | other numbers with a `+` country code (8-15 digits); mainland landlines (`010-12345678`, `(0755)88888888`); North-American `(415) 555-0132` / `415-555-0132`; 3-5 groups of 2-4 digits (8-12 in all, not in fours: `079 2718 1155`, `28-64-66-98`); any other 7-15 digits only after a phone word (phone, call, 电话, 手机, ...) within 32 characters and no other number between | country code, area code group and last 4 kept: `010-****5678`, `(415) ***-0132` |
| `passport` | mainland E/G/D/S/P + 8 digits and E + letter + 7 digits; 1-2 letters + 6-9 digits within 24 characters after 护照/passport/通行证 | `[PASSPORT]` |

With `keep=False` every span becomes its tag (`[EMAIL]`, `[ID_NUMBER]`, ...): nothing of the value is kept.

What is not personal data, on purpose: order, tracking, invoice and ticket numbers. A number right after
订单号 / 运单号 / order number / tracking no. (`_ORDER_CONTEXT`) is never read as a card, phone, ID or passport;
numbers glued to letters (`SF1234567890123`, `KF-20931`) or after `#` are codes; dates, amounts and numbers that
fail their checks (Luhn, the ID check character, a birth date) are left alone.

Full-width characters (１３８, ＠) are read as their ASCII forms; spans index the text as given. A digit glued to
`*` is part of a masked value, never read again: that is what makes `mask` idempotent. Does not know names,
street addresses or other free-text personal data.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import date

EMAIL = "email"
IP = "ip"
ID_NUMBER = "id_number"
BANK_CARD = "bank_card"
MOBILE = "mobile"
PHONE = "phone"
PASSPORT = "passport"
PII_TYPES = (EMAIL, IP, ID_NUMBER, BANK_CARD, MOBILE, PHONE, PASSPORT)  # earlier wins an overlap
_PRIORITY = {name: rank for rank, name in enumerate(PII_TYPES)}


@dataclass(frozen=True)
class PiiSpan:
    type: str
    start: int
    end: int
    text: str


# Full-width forms (U+FF01-FF5E) and the ideographic space read as ASCII; one character for one, so offsets hold.
_ASCII = str.maketrans({chr(0xFF01 + i): chr(0x21 + i) for i in range(94)} | {"\u3000": " "})

# A run of digit groups: "+86 138-0013-8000", "(415) 555-0132", "6222 0213 8000 1234", "110101199003071234X".
# Not glued to letters, digits, '*' (masked), '@' (inside an address), '#', '/', '_' or a letter-dash code (KF-...).
_RUN_RE = re.compile(
    r"(?<![A-Za-z0-9*+.@#/_\\\]])(?<![A-Za-z][-_])(?<![*\]][ .-])"
    r"(?P<body>\+?(?:\([0-9]{1,5}\)[ ]?)?[0-9]{1,19}(?:(?:[ ]?(?:-|\([0-9]{1,5}\))[ ]?|[ .])[0-9]{1,19})*)"
    r"(?:(?P<x>[Xx])|(?P<ext>[ ]?(?:ext\.?|x|转)[ ]?[0-9]{1,6}))?"
    r"(?![A-Za-z0-9*@\[]|[ .-][*\[]|:[0-9])",  # not a time's hour ("2026-05-14 08:01")
    re.ASCII,
)
_GROUP_RE = re.compile(r"\([0-9]+\)|[0-9]+", re.ASCII)
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+*@\]-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}"
    r"[A-Za-z]{2,24}(?![A-Za-z0-9_%+*@\[-]|\.[A-Za-z0-9])",
    re.ASCII,
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"(?<![A-Za-z0-9.*\]])(?:{_OCTET}\.){{3}}{_OCTET}(?![A-Za-z0-9*\[]|\.[0-9])", re.ASCII)
_IPV6_RE = re.compile(
    r"(?<![A-Za-z0-9:.*\]])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{0,4})(?![A-Za-z0-9:*\[])",
    re.ASCII,
)
_PASSPORT_CN_RE = re.compile(r"(?<![A-Za-z0-9*\]])(?:[EGDSP][0-9]{8}|E[A-HJ-NP-Z][0-9]{7})(?![A-Za-z0-9*\[])", re.ASCII)
_PASSPORT_ANY_RE = re.compile(r"(?<![A-Za-z0-9*\]])[A-Za-z]{1,2}[0-9]{6,9}(?![A-Za-z0-9*\[])", re.ASCII)

_ORDER_CONTEXT = re.compile(
    r"(?:\b(?:order|tracking|invoice|receipt|reference|ref|transaction|txn|shipment|parcel|waybill|sku|serial"
    r"|ticket|booking|confirmation|reservation)\b|订单|单号|运单|快递单?|物流单?|包裹|发票|流水|交易|工单|编号|序列号|批次)"
    r"(?:\s*(?:number|num|no|id|code)\b\.?)?(?:号码|号|编号|码)?\s*(?:is|was|是|为)?[\s:：#=.-]*$",
    re.IGNORECASE | re.ASCII,
)
_PHONE_CONTEXT = re.compile(
    r"\b(?:phone|tel|telephone|mobile|cell|cellphone|call|fax|whatsapp|sms|text)\b|电话|手机|座机|传真|致电|拨打|来电|联系方式",
    re.IGNORECASE | re.ASCII,
)
_CARD_CONTEXT = re.compile(
    r"\b(?:card|cc|visa|mastercard|amex|maestro|unionpay|credit|debit)\b|卡号|银行卡|信用卡|储蓄卡|借记卡|银联", re.IGNORECASE | re.ASCII
)
_ID_CONTEXT = re.compile(r"身份证|证件|\bid\b|identity", re.IGNORECASE | re.ASCII)
_PASSPORT_CONTEXT = re.compile(r"护照|通行证|旅行证|passport", re.IGNORECASE)
_CONTEXT_CHARS = 32
_CONTEXT_TAIL = re.compile(r"[^0-9*\]@]*$")


def _before(norm: str, start: int, chars: int = _CONTEXT_CHARS) -> str:
    """The words right before a value: up to `chars` characters, back to the nearest digit, '@', '*' or ']'.
    Every value and every masked form holds one of those, so masking never changes another value's context."""
    return _CONTEXT_TAIL.search(norm, max(0, start - chars), start).group()

_ID_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82 83".split()
)
_ID_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]
# Country code -> the national part of a mobile number (86 is handled apart: 1[3-9] + 9 digits).
_MOBILE_PREFIXES = {
    "852": re.compile(r"[5-9][0-9]{7}"),
    "853": re.compile(r"6[0-9]{7}"),
    "886": re.compile(r"9[0-9]{8}"),
    "65": re.compile(r"[89][0-9]{7}"),
    "44": re.compile(r"7[0-9]{9}"),
    "61": re.compile(r"4[0-9]{8}"),
    "81": re.compile(r"[789]0[0-9]{8}"),
    "82": re.compile(r"10[0-9]{7,8}"),
    "91": re.compile(r"[6-9][0-9]{9}"),
    "49": re.compile(r"1[5-7][0-9]{8,9}"),
    "33": re.compile(r"[67][0-9]{8}"),
}
_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_CARD_PREFIX = re.compile(r"[3-6]|2131|1800|2[2-7]")
_NANP = re.compile(r"[2-9][0-9]{2}[2-9][0-9]{6}")


def id_check_char(first17: str) -> str:
    """The GB 11643-1999 check character (ISO 7064 MOD 11-2) of an ID number's first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS))
    return "10X98765432"[total % 11]


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _real_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def valid_id_number(value: str) -> bool:
    """An 18-character resident ID number (digits, last may be X) with a province, a birth date and its check."""
    value = value.upper()
    if len(value) != 18 or not value[:17].isdigit() or value[:2] not in _ID_PROVINCES:
        return False
    year, month, day = int(value[6:10]), int(value[10:12]), int(value[12:14])
    return 1900 <= year <= 2099 and _real_date(year, month, day) and id_check_char(value[:17]) == value[17]


def _valid_id15(digits: str) -> bool:
    return digits[:2] in _ID_PROVINCES and _real_date(1900 + int(digits[6:8]), int(digits[8:10]), int(digits[10:12]))


def _split_country_code(digits: str) -> tuple[str, str]:
    """(country code, national digits) of a number written with + or 00."""
    for cc in sorted(_MOBILE_PREFIXES, key=len, reverse=True) + ["86", "1"]:
        if digits.startswith(cc):
            return cc, digits[len(cc):]
    return digits[:2], digits[2:]


@dataclass
class _Window:
    """Consecutive digit groups of one run, as one candidate number."""

    start: int
    end: int
    groups: list[str]  # digits of each group (parentheses dropped)
    seps: list[str]  # the separators between them
    plus: bool
    paren: bool
    x: bool  # ends with the ID check character X
    ext: bool  # ends with an extension (x123, ext. 12)

    @property
    def digits(self) -> str:
        return "".join(self.groups)


def _is_date(w: _Window) -> bool:
    lengths = [len(g) for g in w.groups]
    if lengths == [8] and w.digits[:2] in ("19", "20"):
        return _real_date(int(w.digits[:4]), int(w.digits[4:6]), int(w.digits[6:]))
    if len(lengths) == 3 and lengths[0] == 4 and lengths[1] <= 2 and lengths[2] <= 2:
        return w.groups[0][:2] in ("19", "20")
    return len(lengths) == 3 and lengths[0] <= 2 and lengths[1] <= 2 and lengths[2] == 4


def _classify(w: _Window, before: str) -> str | None:
    """The type of one candidate number, or None. `before` is the text just before it."""
    if _ORDER_CONTEXT.search(before):
        return None
    digits, seps = w.digits, set(w.seps)
    plain = not (w.plus or w.paren or w.ext)
    if plain and seps <= {" "}:
        if w.x and len(digits) == 17 and valid_id_number(digits + "X"):
            return ID_NUMBER
        if not w.x and len(digits) == 18 and valid_id_number(digits):
            return ID_NUMBER
        if not w.x and len(digits) == 15 and _ID_CONTEXT.search(before) and _valid_id15(digits):
            return ID_NUMBER
    if w.x:
        return None
    if (plain and len(seps) <= 1 and seps <= {" ", "-"} and 12 <= len(digits) <= 19 and _card_grouping(w.groups)
            and len(set(digits)) > 1 and luhn_valid(digits)):  # fmt: skip
        named = _CARD_CONTEXT.search(before)  # after "card", 卡号: 12 digits (Maestro) and any issuer prefix
        if named or (len(digits) >= 13 and _CARD_PREFIX.match(digits)):
            return BANK_CARD
    if not w.paren and not w.ext and seps <= {" ", "-"}:
        national = digits
        if w.plus and digits.startswith("86"):
            national = digits[2:]
        elif digits.startswith("0086"):
            national = digits[4:]
        if _CN_MOBILE.fullmatch(national):
            return MOBILE
    if w.plus:
        cc, national = _split_country_code(digits)
        pattern = _MOBILE_PREFIXES.get(cc)
        if pattern is not None and pattern.fullmatch(national) and not w.ext:
            return MOBILE
        return PHONE if 8 <= len(digits) <= 15 else None
    if _is_landline(w) or _is_nanp(w):
        return PHONE
    if _is_date(w) or _is_decimal(w):
        return None
    if 7 <= len(digits) <= 15 and _PHONE_CONTEXT.search(before):
        return PHONE
    return PHONE if _phone_grouping(w) else None


def _card_grouping(groups: list[str]) -> bool:
    """Bare, in fours (the last group shorter), or American Express / Diners 4-6-5 / 4-6-4."""
    lengths = [len(g) for g in groups]
    return len(lengths) == 1 or lengths in ([4, 6, 5], [4, 6, 4]) or (set(lengths[:-1]) == {4} and lengths[-1] <= 4)


def _phone_grouping(w: _Window) -> bool:
    """Written the way phone numbers are: 3-5 groups of 2-4 digits joined by spaces or dashes, 8-12 digits in
    all, a leading trunk 0 group may have 5 ("079 2718 1155", "0489 25 37 29", "28-64-66-98"); not in fours
    (a card shape)."""
    lengths = [len(g) for g in w.groups]
    if not (3 <= len(lengths) <= 5 and 8 <= sum(lengths) <= 12) or w.paren or not set(w.seps) <= {" ", "-"}:
        return False
    first_max = 5 if w.groups[0].startswith("0") else 4
    return 2 <= lengths[0] <= first_max and all(2 <= n <= 4 for n in lengths[1:]) and set(lengths) != {4}


def _is_landline(w: _Window) -> bool:
    """Mainland landline: 0 + area code (010, 02x: 8 digits follow; 0xxx: 7-8) + a subscriber number, the area
    code in its own group or in brackets (010-12345678), or written bare with a subscriber number from 2-9."""
    digits = w.digits
    if not digits.startswith("0") or digits.startswith("00"):
        return False
    area = 3 if digits[1:2] in ("1", "2") else 4
    rest = len(digits) - area
    if not (rest == 8 or (area == 4 and rest == 7)) or digits[area] == "0":
        return False
    if len(w.groups) == 1:  # written bare: subscriber numbers start from 2-9
        return digits[area] != "1"
    return len(w.groups[0]) == area


def _is_nanp(w: _Window) -> bool:
    """North-American (415) 555-0132, 415-555-0132, 1-415-555-0132: three groups 3-3-4 with real separators."""
    groups = w.groups[1:] if len(w.groups) == 4 and w.groups[0] == "1" else w.groups
    if [len(g) for g in groups] != [3, 3, 4] or not _NANP.fullmatch("".join(groups)):
        return False
    return all(s.strip() for s in w.seps[-2:]) or w.paren


def _is_decimal(w: _Window) -> bool:
    return len(w.groups) == 2 and w.seps == ["."] and len(w.groups[1]) <= 2


def _windows(match: re.Match, norm: str) -> list[_Window]:
    """Every candidate number in a run: the whole run, and its parts cut only at single spaces
    ("13800138000 13900139000" holds two numbers; "138-0013-8000" is one)."""
    body_start = match.start("body")
    parts = [(m.start() + body_start, m.end() + body_start, m.group()) for m in _GROUP_RE.finditer(match.group("body"))]
    seps = [norm[parts[i][1]:parts[i + 1][0]] for i in range(len(parts) - 1)]
    plus = match.group("body").startswith("+")
    tail_x, tail_ext = bool(match.group("x")), bool(match.group("ext"))
    windows = []
    for i in range(len(parts)):
        if i and seps[i - 1] != " ":
            continue
        count = 0
        for j in range(i, len(parts)):
            count += len(parts[j][2].strip("()"))
            if count > 20:
                break
            last = j == len(parts) - 1
            if not last and seps[j] != " ":
                continue
            start = parts[i][0] - (1 if i == 0 and plus else 0)
            groups = [p[2] for p in parts[i:j + 1]]
            windows.append(_Window(
                start=start, end=match.end() if last else parts[j][1], groups=[g.strip("()") for g in groups],
                seps=seps[i:j], plus=i == 0 and plus, paren=any(g.startswith("(") for g in groups),
                x=last and tail_x, ext=last and tail_ext,
            ))  # fmt: skip
    return windows


def _candidates(norm: str) -> list[tuple[str, int, int]]:
    found: list[tuple[str, int, int]] = []
    if "@" in norm:
        found += [(EMAIL, m.start(), m.end()) for m in _EMAIL_RE.finditer(norm)]
    if "." in norm:
        found += [(IP, m.start(), m.end()) for m in _IPV4_RE.finditer(norm)]
    if ":" in norm:
        for m in _IPV6_RE.finditer(norm):
            if _ipv6(m.group()):
                found.append((IP, m.start(), m.end()))
    for m in _RUN_RE.finditer(norm):
        for w in _windows(m, norm):
            kind = _classify(w, _before(norm, w.start))
            if kind:
                found.append((kind, w.start, w.end))
    for m in _PASSPORT_CN_RE.finditer(norm):
        if not _ORDER_CONTEXT.search(_before(norm, m.start())):
            found.append((PASSPORT, m.start(), m.end()))
    for m in _PASSPORT_ANY_RE.finditer(norm):
        before = _before(norm, m.start(), 24)
        if _PASSPORT_CONTEXT.search(before) and not _ORDER_CONTEXT.search(before):
            found.append((PASSPORT, m.start(), m.end()))
    return found


def _ipv6(value: str) -> bool:
    """A real IPv6 address that reads as one: a digit, two groups or more and 4+ hex digits ("3::" is not)."""
    groups = [g for g in value.split(":") if g]
    if len(groups) < 2 or sum(map(len, groups)) < 4 or not any(c.isdigit() for c in value):
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


_QUICK = re.compile(r"[0-9@\uff10-\uff19\uff20]")


def find_pii(text: str) -> list[PiiSpan]:
    """Personal data in `text`: non-overlapping spans, sorted by start; on overlap the type earlier in
    `PII_TYPES` wins, then the longer span. Never raises on a string."""
    if not isinstance(text, str) or not _QUICK.search(text):
        return []
    norm = text.translate(_ASCII)
    chosen: list[tuple[str, int, int]] = []
    for kind, start, end in sorted(_candidates(norm), key=lambda c: (_PRIORITY[c[0]], c[1] - c[2], c[1])):
        if all(end <= s or start >= e for _, s, e in chosen):
            chosen.append((kind, start, end))
    return [PiiSpan(kind, start, end, text[start:end]) for kind, start, end in sorted(chosen, key=lambda c: c[1])]


def _mask_chars(value: str, keep_first: int, keep_last: int, countable: str = "0123456789") -> str:
    """`value` with its countable characters (digits) masked, except the first and last few; the rest kept."""
    norm = value.translate(_ASCII)
    positions = [i for i, c in enumerate(norm) if c in countable]
    kept = set(positions[:keep_first]) | set(positions[len(positions) - keep_last:] if keep_last else [])
    return "".join("*" if i in set(positions) - kept else c for i, c in enumerate(value))


def _mask_phone(value: str, kind: str) -> str:
    norm = value.translate(_ASCII)
    positions = [i for i, c in enumerate(norm) if c.isdigit()]
    digits = "".join(norm[i] for i in positions)
    lead = 0  # digits of the country code, kept
    if norm.lstrip().startswith("+") or digits.startswith("00"):
        prefix = 2 if digits.startswith("00") else 0
        lead = prefix + len(_split_country_code(digits[prefix:])[0])
    national = len(digits) - lead
    if kind == MOBILE:
        head = 3
    else:  # the area code: the national number's first group, when it is short and not the whole number
        groups = [m.group() for m in re.finditer(r"[0-9]+", norm)]
        rest, head = lead, 0
        for g in groups:
            if rest >= len(g):
                rest -= len(g)
                continue
            head = len(g) - rest if len(g) - rest <= 4 and len(g) - rest < national else 0
            break
    tail = 4
    while head + tail > national - max(3, national // 3) and (tail > 2 or head):
        head, tail = (0, tail) if head else (head, tail - 1)
    kept = set(positions[: lead + head]) | set(positions[len(positions) - tail:])
    return "".join("*" if i in positions and i not in kept else c for i, c in enumerate(value))


def mask_value(type: str, value: str, keep: bool = True) -> str:
    """The masked form of one value of a PII type (see the module's table); `keep=False` gives the tag alone."""
    if type not in _PRIORITY:
        raise ValueError(f"unknown PII type {type!r}; use one of {', '.join(PII_TYPES)}")
    if not keep or type in (IP, PASSPORT):
        return f"[{type.upper()}]"
    if type == EMAIL:
        at = value.translate(_ASCII).rfind("@")
        return value[:1] + "***" + value[at:]
    if type == ID_NUMBER:
        return _mask_chars(value, 3, 4, "0123456789Xx")
    if type == BANK_CARD:
        return _mask_chars(value, 4, 4)
    return _mask_phone(value, type)


def mask(text: str, keep: bool = True) -> str:
    """`text` with every span `find_pii` finds replaced by its masked form. Idempotent: masked values are never
    read again. `keep=False` replaces each span by its tag (`[MOBILE]`), keeping nothing of the value."""
    spans = find_pii(text)
    if not spans:
        return text
    out, last = [], 0
    for span in spans:
        out += [text[last:span.start], mask_value(span.type, span.text, keep)]
        last = span.end
    out.append(text[last:])
    return "".join(out)
