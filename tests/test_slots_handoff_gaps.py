"""Pure pieces of the dialogue: slot extraction, the handoff state machine, grouping knowledge gaps."""

import numpy as np
import pytest

from app.dialogue import handoff
from app.errors import InputError
from app.dialogue.feedback import GapRecord
from app.dialogue.gaps import answered_gaps, group_gaps
from app.dialogue.slots import find_slots, match_product, product_names

PRODUCTS = product_names(["Lumen Buds Pro - User Manual", "流明手表 S2 使用说明书", "Returns and Refunds Policy", "FAQ"])


def test_product_names_come_from_manual_titles_and_settings():
    assert PRODUCTS == ["Lumen Buds Pro", "流明手表 S2"]
    assert product_names(["Warranty"], ["Lumen Watch S2", " "]) == ["Lumen Watch S2"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("My order number is KF-20931 and it hasn't arrived", {"order_number": "KF-20931"}),
        ("order #558812 never came", {"order_number": "558812"}),
        ("订单号：20261130001 还没发货", {"order_number": "20261130001"}),
        ("my order is late", {}),
        ("please order 2 more", {}),
        ("reach me at anna.lee+kefu@example.co.uk", {"email": "anna.lee+kefu@example.co.uk"}),
        ("我的手机号是 138 0013 8000", {"phone": "13800138000"}),
        ("call +86 139-1234-5678 please", {"phone": "+8613912345678"}),
        ("call me on (415) 555-0132", {"phone": "(415) 555-0132"}),
        ("my buds pro won't pair", {"product": "Lumen Buds Pro"}),
        ("我的流明手表S2充不进电", {"product": "流明手表 S2"}),
        ("the watch is fine", {}),
        ("Order KF-1234567, phone 13912345678", {"order_number": "KF-1234567", "phone": "13912345678"}),
        ("delivered on 2026-11-30", {}),
    ],
)
def test_slots_found_in_english_and_chinese(text, expected):
    assert find_slots(text, PRODUCTS) == expected


def test_an_order_number_is_not_also_a_phone_number():
    assert find_slots("order number 13912345678", PRODUCTS) == {"order_number": "13912345678"}


def test_the_longest_product_name_wins():
    assert match_product("I love my Lumen Buds Pro", ["Lumen Buds", "Lumen Buds Pro"]) == "Lumen Buds Pro"


def test_handoff_moves():
    assert handoff.next_status(handoff.BOT, "request") == handoff.WAITING
    assert handoff.next_status(handoff.WAITING, "take") == handoff.WITH_AGENT
    assert handoff.next_status(handoff.WITH_AGENT, "release") == handoff.BOT
    assert handoff.next_status(handoff.WITH_AGENT, "resolve") == handoff.RESOLVED
    assert handoff.next_status(handoff.RESOLVED, "reopen") == handoff.BOT
    with pytest.raises(InputError, match="cannot take a conversation that is resolved: it can only request / reopen"):
        handoff.next_status(handoff.RESOLVED, "take")
    with pytest.raises(InputError, match="unknown handoff event"):
        handoff.next_status(handoff.BOT, "escalate")
    every = {to for moves in handoff.TRANSITIONS.values() for to in moves.values()}
    assert every == set(handoff.STATUSES)  # every status is reachable


def _gap(i: int, question: str, reason: str = "abstained") -> GapRecord:
    return GapRecord(i, question, "en", reason, f"c{i}", None, f"2026-12-0{i}T10:00:00+00:00")


def test_gaps_group_by_vector_or_by_terms_and_most_asked_come_first():
    records = [
        _gap(4, "Do you sell gift wrap?"),
        _gap(3, "can I buy gift wrapping", "not_helpful"),
        _gap(2, "Do you sell gift wrap?"),
        _gap(1, "你们卖无人机吗"),
    ]
    vectors = np.array([[1, 0, 0], [0.96, 0.28, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float32)  # the last unreadable
    groups = group_gaps(records, vectors, lambda text: text.lower().split())
    assert [(g.question, g.count) for g in groups] == [("Do you sell gift wrap?", 3), ("你们卖无人机吗", 1)]
    assert groups[0].reasons == {"abstained": 2, "not_helpful": 1}
    assert groups[0].examples == ["can I buy gift wrapping"] and groups[0].conversations == 3
    assert groups[0].last_asked.startswith("2026-12-04")
    # Without vectors, wordings that share most terms still group.
    by_terms = group_gaps(records[:3], None, lambda text: text.lower().rstrip("?").split())
    assert [g.count for g in by_terms] == [2, 1]


def test_an_answer_closes_every_wording_of_the_gap_it_fills_and_nothing_else():
    records = [
        _gap(5, "Do you sell gift wrap?"),
        _gap(4, "can I buy gift wrapping"),  # the same gap, worded otherwise: grouped with the first
        _gap(3, "Can I buy a drone?"),
        _gap(2, "你们卖礼品包装纸吗"),  # unreadable for the model: judged by shared terms
        _gap(1, "你们卖无人机吗"),
    ]
    vectors = np.array([[1, 0, 0], [0.82, 0.572, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]], dtype=np.float32)
    terms = lambda text: text.lower().rstrip("?").split() if text.isascii() else list(text.rstrip("吗"))  # noqa: E731
    wrap = np.array([0.99, -0.141, 0], dtype=np.float32)  # close to the first wording only (cosine 0.73 to the second)
    assert answered_gaps("Do you sell gift wrapping paper?", wrap, records, vectors, terms) == [4, 5]
    assert answered_gaps("你们卖礼品包装纸吗", None, records, vectors, terms) == [2]
    assert answered_gaps("What are your opening hours?", np.array([0, 1, 0], dtype=np.float32), records, vectors, terms) == []
    assert answered_gaps("anything", None, [], None, terms) == []


def test_the_query_cache_embeds_a_repeated_query_once(embedder):
    from rag.query_cache import QueryCachingEmbedder

    calls = []

    class Counting:
        name = embedder.name

        def embed_queries(self, texts):
            calls.append(list(texts))
            return embedder.embed_queries(texts)

    cached = QueryCachingEmbedder(Counting(), size=2)
    first = cached.embed_queries(["refund", "shipping", "refund"])
    again = cached.embed_queries(["shipping", "warranty"])
    assert calls == [["refund", "shipping"], ["warranty"]]
    assert np.allclose(first[0], first[2]) and np.allclose(first[1], again[0])
    cached.embed_queries(["refund"])  # evicted (size 2): embedded again
    assert calls[-1] == ["refund"]
