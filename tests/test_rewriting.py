"""Query rewriting: the heuristic's support-desk cases, what CANARD taught it (personal pronouns mean the
topic, short names mean the full one), and the model rewriter's cleaning and fallback. Pure and fast: the
model is a function from messages to text, here a scripted one."""

from __future__ import annotations

import pytest

from app.answering.rewriting import (
    HeuristicRewriter,
    HistoryItem,
    ModelRewriter,
    clean_model_rewrite,
    names_in,
    referent,
    rewrite_messages,
    subject,
    topic,
)

RETURNS = [
    HistoryItem("user", "How long do I have to return an item?"),
    HistoryItem("assistant", "30 days from delivery."),
]
RETURNS_ZH = [HistoryItem("user", "退货期限是多久？"), HistoryItem("assistant", "收货后30天内。")]
ZAPPA = [
    HistoryItem("user", "Frank Zappa: Disbandment"),
    HistoryItem("user", "What group disbanded?"),
    HistoryItem("assistant", "Zappa and the Mothers of Invention"),
    HistoryItem("user", "Did Captain Beefheart play with Zappa?"),
    HistoryItem("assistant", "Yes, on Trout Mask Replica."),
]


def rewrite(question, history=(), slots=None):
    return HeuristicRewriter().rewrite(question, list(history), slots)


def test_elliptical_follow_up_is_merged_into_the_previous_question():
    result = rewrite("and opened headphones?", RETURNS)
    assert result.rewritten and result.method == "heuristic"
    assert "return" in result.query.lower() and "headphones" in result.query


def test_chinese_elliptical_follow_up_is_merged():
    assert rewrite("那耳机呢？", RETURNS_ZH).query == "耳机的退货期限是多久？"


def test_pronoun_is_replaced_by_the_product_slot():
    assert rewrite("How do I reset it?", [HistoryItem("user", "hello")], {"product": "Lumen Buds Pro"}).query == (
        "How do I reset Lumen Buds Pro?"
    )


@pytest.mark.parametrize(
    "question",
    ["What is the warranty on a laptop?", "How much does express shipping cost?", "Where is Lumen Watch S2 made?"],
)
def test_a_standalone_question_is_left_unchanged(question):
    result = rewrite(
        question, RETURNS + [HistoryItem("user", "I bought Lumen Buds Pro")], {"product": "Lumen Buds Pro"}
    )
    assert result.query == question and not result.rewritten and result.method == "none"


def test_it_means_the_latest_named_thing():
    history = [
        HistoryItem("user", "I have a Lumen Watch S2"),
        HistoryItem("assistant", "Great, how can I help?"),
        HistoryItem("user", "I also bought Lumen Buds Pro"),
        HistoryItem("assistant", "Noted."),
    ]
    assert rewrite("Is it waterproof?", history).query == "Is Lumen Buds Pro waterproof?"


def test_a_personal_pronoun_means_the_conversations_topic():
    # The latest name is Captain Beefheart; "he" is who the conversation is about (CANARD: 297 to 48).
    assert rewrite("When did he leave the band?", ZAPPA).query == "When did Frank Zappa leave the band?"
    assert rewrite("What was his first album?", ZAPPA).query == "What was Frank Zappa's first album?"
    assert rewrite("她什么时候出生的？", ZAPPA).query == "Frank Zappa什么时候出生的？"


def test_referent_and_topic_and_subject():
    assert topic(ZAPPA) == "Frank Zappa"
    assert subject(ZAPPA) == "Captain Beefheart"
    assert referent("Did it sell well?", ZAPPA) == "Captain Beefheart"
    assert referent("Did they tour?", ZAPPA) == "Frank Zappa"
    assert referent("Did they tour?", ZAPPA, {"product": "Lumen Buds Pro"}) == "Lumen Buds Pro"


def test_a_short_name_stands_for_the_fuller_one():
    history = [HistoryItem("user", "Frank Zappa: Early life"), HistoryItem("user", "Where did Zappa grow up?")]
    assert subject(history) == "Frank Zappa"
    assert rewrite("Did it influence his music?", history).query == "Did Frank Zappa influence his music?"


def test_names_drop_question_words_and_possessives():
    assert names_in("What was Hedin's role in the expedition?") == ["Hedin"]
    assert names_in("How do I pair Lumen Buds Pro with my phone?") == ["Lumen Buds Pro"]
    assert names_in("how long is the warranty?") == []


def test_without_any_name_the_previous_question_stands_beside_the_follow_up():
    history = [HistoryItem("user", "how long is the warranty?"), HistoryItem("assistant", "2 years.")]
    assert (
        rewrite("does it cover water damage?", history).query
        == "does it cover water damage (how long is the warranty)?"
    )


# -- the model rewriter ---------------------------------------------------------------------------------------


class Scripted:
    """The language model's reply, fixed; counts the calls."""

    def __init__(self, reply: str):
        self.reply, self.calls = reply, []

    def __call__(self, messages):
        self.calls.append(messages)
        return self.reply


def test_model_rewrite_is_used_when_usable():
    model = Scripted('Rewritten question: "How long do I have to return opened headphones?"\nExtra line')
    result = ModelRewriter(model).rewrite("and opened headphones?", RETURNS)
    assert result.query == "How long do I have to return opened headphones?" and result.method == "model"
    assert model.calls[0][-1]["content"].endswith("Last message: and opened headphones?")


@pytest.mark.parametrize("reply", ["", "   \n", "Sure! I can help with many things today.", "x" * 900])
def test_unusable_model_output_falls_back_to_the_heuristic(reply):
    result = ModelRewriter(Scripted(reply)).rewrite("and opened headphones?", RETURNS)
    assert result.method == "heuristic" and "headphones" in result.query


def test_the_model_is_not_asked_about_a_standalone_question():
    model = Scripted("anything")
    result = ModelRewriter(model).rewrite("How much does shipping cost?", RETURNS)
    assert result.query == "How much does shipping cost?" and not model.calls


def test_clean_model_rewrite_for_chinese_keeps_a_related_line():
    assert clean_model_rewrite("耳机的退货期限是多久？", "那耳机呢？") == "耳机的退货期限是多久？"
    assert clean_model_rewrite("今天天气很好。", "那耳机呢？") is None


def test_rewrite_messages_show_the_conversation_and_few_shot_examples():
    messages = rewrite_messages("When did they disband?", ZAPPA)
    assert messages[0]["role"] == "system"
    last = messages[-1]["content"]
    assert "Customer: Frank Zappa: Disbandment" in last and "Assistant: Yes, on Trout Mask Replica." in last
    assert [m["role"] for m in messages[1:5]] == ["user", "assistant", "user", "assistant"]
