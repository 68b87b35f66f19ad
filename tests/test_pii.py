"""Personal-data detection and masking (app/guardrails/pii.py): examples per type, what must stay readable (order numbers,
dates, amounts), and properties fuzzed with Hypothesis over generated checksum-valid values."""

import os
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.guardrails.pii import (
    BANK_CARD,
    EMAIL,
    ID_NUMBER,
    IP,
    MOBILE,
    PASSPORT,
    PHONE,
    PII_TYPES,
    find_pii,
    id_check_char,
    luhn_valid,
    mask,
    mask_value,
    valid_id_number,
)

# Random by default (fuzzing finds new inputs on every run); CI replays a fixed sequence so a red build is a change.
# A long fuzz: FUZZ_EXAMPLES=20000 python -m pytest tests/test_pii.py
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None,
                derandomize=bool(os.environ.get("CI")), suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


def with_id_check(first17: str) -> str:
    return first17 + id_check_char(first17)


def with_luhn(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_valid((body + d).replace(" ", "")))


ID = with_id_check("11010519491231002")  # 11010519491231002X
CARD = with_luhn("622202138000123")


def found(text):
    return [(s.type, s.text) for s in find_pii(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"我的身份证号是{ID}，谢谢", [(ID_NUMBER, ID)]),
        (f"身份证 {ID[:6]} {ID[6:14]} {ID[14:]}", [(ID_NUMBER, f"{ID[:6]} {ID[6:14]} {ID[14:]}")]),
        ("身份证号 110105491231002", [(ID_NUMBER, "110105491231002")]),  # the old 15-digit form, after 身份证
        (f"卡号{CARD}", [(BANK_CARD, CARD)]),
        (f"card {CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:]}", [(BANK_CARD, f"{CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:]}")]),
        ("visa 4111-1111-1111-1111 ok", [(BANK_CARD, "4111-1111-1111-1111")]),
        ("手机13800138000", [(MOBILE, "13800138000")]),
        ("我的手机号是 +86 138-0013-8000。", [(MOBILE, "+86 138-0013-8000")]),
        ("两个号码 13800138000 13900139000", [(MOBILE, "13800138000"), (MOBILE, "13900139000")]),
        ("HK +852 9123 4567", [(MOBILE, "+852 9123 4567")]),
        ("office 010-12345678", [(PHONE, "010-12345678")]),
        ("call me on (415) 555-0132", [(PHONE, "(415) 555-0132")]),
        ("London +44 20 7946 0958", [(PHONE, "+44 20 7946 0958")]),
        ("座机(0755)88886666转123", [(PHONE, "(0755)88886666转123")]),
        ("my phone is 7946 0958", [(PHONE, "7946 0958")]),  # a bare group counts only after a phone word
        ("mail anna.lee+kefu@example.co.uk now", [(EMAIL, "anna.lee+kefu@example.co.uk")]),
        ("邮箱13800138000@qq.com", [(EMAIL, "13800138000@qq.com")]),  # an address holding a mobile is an address
        ("blocked from 192.168.1.100.", [(IP, "192.168.1.100")]),
        ("ip 2001:db8::8a2e:370:7334", [(IP, "2001:db8::8a2e:370:7334")]),
        ("护照号E12345678", [(PASSPORT, "E12345678")]),
        ("passport no. K1234567", [(PASSPORT, "K1234567")]),
        ("ｍｙ手机：１３８００１３８０００", [(MOBILE, "１３８００１３８０００")]),  # full-width digits
    ],
)
def test_each_type_is_found(text, expected):
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "My order number is KF-20931 and it hasn't arrived",
        "order #558812 never came",
        "订单号：20261130001 还没发货",
        f"订单号 {CARD}",  # Luhn-valid, but named an order number
        "order number 13912345678",
        "tracking no. SF1234567890123",
        "运单号 773012345678901",
        "invoice 20231125001234567",
        "20231125001234567 is my order",  # 17 digits, no check passes
        "1234 5678 9012 3456",  # a card shape that fails Luhn
        f"{ID[:17]}{'0' if ID[17] != '0' else '1'}",  # an ID shape with the wrong check character
        "delivered on 2026-11-30 at 10:30:00",
        "it cost ¥1,299.00 or 12345.67 yuan",
        "version 2.3.1, model G1234, 退款 3000 元",
        "call 4 times",
        "my phone was 2026-11-30",  # a date after a phone word
    ],
)
def test_order_numbers_dates_and_amounts_are_not_pii(text):
    assert find_pii(text) == []
    assert mask(text) == text


def test_best_type_wins_an_overlap():
    # An 18-digit ID number that is also Luhn-valid and has a card prefix stays an ID number.
    both = next(with_id_check(f"31010119900307{n:03d}") for n in range(1000)
                if luhn_valid(with_id_check(f"31010119900307{n:03d}")))  # fmt: skip
    assert valid_id_number(both) and luhn_valid(both)
    assert found(f"number {both}") == [(ID_NUMBER, both)]
    # A 19-digit card whose last three groups read as a mobile number (1380 0138 00x) stays one card.
    card = with_luhn("6222 0213 1380 0138 00")
    assert found(f"card {card}") == [(BANK_CARD, card)]


@pytest.mark.parametrize(
    "kind, value, masked, tag",
    [
        (MOBILE, "13800138000", "138****8000", "[MOBILE]"),
        (MOBILE, "+86 138 0013 8000", "+86 138 **** 8000", "[MOBILE]"),
        (PHONE, "010-12345678", "010-****5678", "[PHONE]"),
        (PHONE, "(415) 555-0132", "(415) ***-0132", "[PHONE]"),
        (EMAIL, "anna@example.com", "a***@example.com", "[EMAIL]"),
        (ID_NUMBER, "11010519491231002X", "110***********002X", "[ID_NUMBER]"),
        (BANK_CARD, "6222 0213 8000 1235", "6222 **** **** 1235", "[BANK_CARD]"),
        (BANK_CARD, "6222021380001235", "6222********1235", "[BANK_CARD]"),
        (IP, "10.0.0.1", "[IP]", "[IP]"),
        (PASSPORT, "E12345678", "[PASSPORT]", "[PASSPORT]"),
    ],
)
def test_masked_forms_keep_the_type_and_a_little_of_the_value(kind, value, masked, tag):
    assert mask_value(kind, value) == masked
    assert mask_value(kind, value, keep=False) == tag


def test_mask_replaces_every_span_and_keeps_the_rest():
    text = f"身份证{ID}，手机13800138000，卡号{CARD}，邮箱 wang@example.cn，订单号 KF-20931"
    assert mask(text) == (
        f"身份证110***********002X，手机138****8000，卡号{CARD[:4]}********{CARD[-4:]}，邮箱 w***@example.cn，订单号 KF-20931"
    )
    assert mask(text, keep=False) == "身份证[ID_NUMBER]，手机[MOBILE]，卡号[BANK_CARD]，邮箱 [EMAIL]，订单号 KF-20931"


def test_unknown_type_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="use one of email, ip, id_number"):
        mask_value("ssn", "123")


# --- properties -------------------------------------------------------------------------------------------------

PROVINCES = ["11", "31", "44", "51", "65", "81"]
QUIET = "我的是请查询一下谢谢您好帮办理，。：！？ "  # Chinese filler with no keyword that changes a reading


def digits(n):
    return st.integers(0, 10**n - 1).map(lambda v: f"{v:0{n}d}")


@st.composite
def id_numbers(draw):
    born = draw(st.dates(date(1900, 1, 1), date(2099, 12, 31)))
    return with_id_check(draw(st.sampled_from(PROVINCES)) + draw(digits(4)) + born.strftime("%Y%m%d") + draw(digits(3)))


@st.composite
def card_numbers(draw):
    prefix = draw(st.sampled_from(["4", "51", "55", "2221", "34", "37", "6011", "62", "35", "2131", "1800"]))
    number = with_luhn(prefix + draw(digits(draw(st.integers(13, 19)) - 1 - len(prefix))))
    style = draw(st.sampled_from(["", " ", "-"]))
    return style.join(number[i:i + 4] for i in range(0, len(number), 4)) if style else number


mobiles = st.tuples(st.integers(13, 19), digits(9)).map(lambda t: f"{t[0]}{t[1]}")
emails = st.from_regex(r"[a-z0-9._]{1,12}@[a-z0-9]{1,10}\.(com|cn|net)", fullmatch=True)
ipv4s = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
noise = st.text(alphabet="0123456789 -+()@.:#*xX/abcEGP电话手机身份证订单号护照passport，", max_size=12)
dense = st.lists(st.one_of(id_numbers(), card_numbers(), mobiles, emails, ipv4s, noise), max_size=8).map("".join)
any_text = st.one_of(st.text(), dense)


@FUZZ
@given(any_text)
def test_spans_are_in_bounds_sorted_and_disjoint(text):
    spans = find_pii(text)
    for span in spans:
        assert 0 <= span.start < span.end <= len(text)
        assert span.text == text[span.start:span.end] and span.type in PII_TYPES
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))


@FUZZ
@given(any_text, st.booleans())
def test_masking_is_idempotent_and_leaves_no_pii(text, keep):
    masked = mask(text, keep=keep)
    assert find_pii(masked) == []
    assert mask(masked, keep=keep) == masked


@FUZZ
@given(st.text().filter(lambda t: not any(c.isdigit() or c in "@＠" for c in t)))
def test_text_without_digits_or_at_is_unchanged(text):
    assert find_pii(text) == []
    assert mask(text) == text


@FUZZ
@given(st.text(alphabet=QUIET, max_size=10), id_numbers(), st.text(alphabet=QUIET, max_size=10))
def test_every_valid_id_number_is_found(before, number, after):
    text = before + number + after
    assert found(text) == [(ID_NUMBER, number)]
    assert number not in mask(text) and number[-4:] in mask(text)


@FUZZ
@given(st.text(alphabet=QUIET, max_size=10), card_numbers(), st.text(alphabet=QUIET, max_size=10))
def test_every_valid_card_is_found(before, number, after):
    digits = number.replace(" ", "").replace("-", "")
    expected = ID_NUMBER if valid_id_number(digits) else BANK_CARD  # an 18-digit card may also be a valid ID
    assert found(before + number + after) == [(expected, number)]


@FUZZ
@given(st.integers(11, 20).flatmap(lambda n: st.integers(2 * 10 ** (n - 1), 10**n - 1)).map(str),
       st.sampled_from(["", "订单号", "order number ", "订单号：", "tracking no. "]))  # fmt: skip
def test_order_ids_that_fail_the_checks_are_never_masked(number, label):
    if label:  # after an order label, any number reads as an order number
        assert mask(f"{label}{number} 到哪了") == f"{label}{number} 到哪了"
    elif not luhn_valid(number) and not valid_id_number(number):
        assert find_pii(f"我的订单 {number} 到哪了".replace("订单", "单子")) == []
