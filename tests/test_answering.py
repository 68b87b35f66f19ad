"""The answer composer, on hand-built hits: modes, excerpts, citations, language preference."""

import pytest

from app.answering.excerpts import best_excerpt, logical_lines
from app.answering.rules import MODE_ABSTAIN, MODE_EXTRACTIVE, MODE_FAQ, coverage, extractive, idf_weights, judge, plan
from ingest.cjk import has_cjk
from ingest.documents import KIND_FAQ, KIND_TEXT
from rag.analysis import Analyzer
from rag.retrieval import SearchHit
from rag.store import StoredChunk

ANALYZER = Analyzer()


def hit(text, kind=KIND_TEXT, language="en", similarity=None, title="Returns", section="", metadata=None, n=0):
    chunk = StoredChunk(f"d{n}#0", f"d{n}", 0, text, title, f"kb/{n}.md", kind, section, None, language, metadata or {})
    return SearchHit(chunk=chunk, score=1.0 / (n + 1), similarity=similarity)


def answer(question, hits, faq_min=0.8, min_rel=0.45):
    terms = ANALYZER.query_terms(question)
    weights = {t: 1.0 for t in terms}
    judged = judge(hits, terms, weights, ANALYZER.terms)
    lang = "zh" if has_cjk(question) else "en"
    decided, chosen = plan(lang, judged, faq_min, min_rel, max_sources=3)
    return decided if decided is not None else extractive(lang, chosen, terms, weights, ANALYZER.terms)


def test_idf_weights_favour_rare_and_unknown_terms():
    w = idf_weights(100, {"return": 50, "deposit": 2, "fridge": 0})
    assert w["fridge"] > w["deposit"] > w["return"] > 0


def test_coverage_is_weighted():
    assert coverage(["a", "b"], {"a"}, {"a": 3.0, "b": 1.0}) == pytest.approx(0.75)


def test_logical_lines_undo_hard_wrapping_but_keep_lists():
    text = "You have 30 days\nto return items.\n\n- one\n- two\n  continued\n\n退货期限为\n30 天。"
    assert logical_lines(text) == ["You have 30 days to return items.", "- one", "- two continued", "退货期限为30 天。"]


def test_best_excerpt_picks_the_sentence_about_the_question():
    text = "Lumen wants you to love it. You have 30 days from delivery to return items. Refunds take 5 days."
    excerpt = best_excerpt(text, ANALYZER.query_terms("return items"), {}, ANALYZER.terms)
    assert excerpt.startswith("You have 30 days")


def test_confident_faq_match_answers_directly():
    faq = hit("Can I pay cash?\nNo, we do not accept cash.", kind=KIND_FAQ, similarity=0.93,
              metadata={"question": "Can I pay cash?", "answer": "No, we do not accept cash."})
    result = answer("Can I pay cash on delivery?", [faq])
    assert result.mode == MODE_FAQ
    assert result.answer == "No, we do not accept cash."
    assert result.sources[0]["doc_id"] == "d0"


def test_unsure_faq_match_falls_back_to_quoting_with_citations():
    faq = hit("Q\nA", kind=KIND_FAQ, similarity=0.5, metadata={"question": "Is shipping free?", "answer": "Over $50."})
    policy = hit("Standard shipping costs $4.99. It is free on orders over $50.", similarity=0.7, n=1)
    result = answer("how much does shipping cost", [policy, faq])
    assert result.mode == MODE_EXTRACTIVE
    assert "$4.99" in result.answer and "[1]" in result.answer
    assert result.sources[0]["doc_id"] == "d1"


def test_nothing_relevant_abstains_in_words_every_channel_may_use():
    """The decision's abstention is neutral (a batch row, an API caller); the dialogue adds the offer of a person
    where one can take the conversation over (tests/test_assist.py)."""
    result = answer("What is the capital of France?", [hit("Refunds take 5 days.", similarity=0.1)])
    assert result.mode == MODE_ABSTAIN
    assert "couldn't find an answer" in result.answer and "human" not in result.answer
    assert result.sources == []


def test_chinese_question_abstains_in_chinese():
    result = answer("今天天气怎么样", [hit("退款五天到账。", language="zh")])
    assert result.mode == MODE_ABSTAIN
    assert "没有找到" in result.answer and "人工" not in result.answer


def test_answer_prefers_passages_in_the_questions_language():
    en = hit("You can return items within 30 days.", similarity=None, n=0)
    zh = hit("商品签收后 30 天内可以退货。", language="zh", title="退货政策", n=1)
    result = answer("可以退货吗", [en, zh])
    assert result.mode == MODE_EXTRACTIVE
    assert [s["doc_id"] for s in result.sources] == ["d1"]
    assert result.answer.startswith("以下是知识库中的相关内容")


def test_same_fact_from_two_sources_is_said_once():
    a = hit("You can return items within 30 days of delivery.", similarity=0.8, n=0)
    b = hit("You can return items within 30 days of delivery!", similarity=0.8, n=1)
    result = answer("return items", [a, b])
    assert len(result.sources) == 1


@pytest.mark.parametrize(
    "question, expected",
    [("and with GPS?", True), ("What about express delivery?", True), ("那快递呢？", True), ("运费呢", True),
     ("How much is shipping?", False), ("我有多长时间可以退货？", False), ("Andorra shipping?", False)],
)
def test_follow_up_detection(question, expected):
    from app.answering.rewriting import is_follow_up

    assert is_follow_up(question) is expected


def test_multilingual_cosines_are_put_on_the_main_scale():
    from app.answering.rules import MultilingualScale, on_main_scale

    assert on_main_scale(0.98, 0.98, 0.8) == pytest.approx(0.8)  # its threshold lands on the main one
    assert on_main_scale(1.0, 0.98, 0.8) == pytest.approx(1.0)
    assert on_main_scale(0.99, 0.98, 0.8) == pytest.approx(0.9)
    assert on_main_scale(0.89, 0.98, 0.8, floor=0.8) == pytest.approx(0.4)
    assert on_main_scale(0.75, 0.98, 0.8, floor=0.8) == 0.0  # unrelated, on E5's scale
    scale = MultilingualScale(threshold=0.98, target=0.8, floor=0.8)
    assert scale(0.98) == pytest.approx(0.8) and scale(0.5) == 0.0


def test_a_chinese_paraphrase_is_a_confident_faq_match_by_its_meaning():
    """No main-model similarity (MiniLM cannot read Chinese) and little term overlap: only the multilingual
    cosine, above its calibrated threshold, makes the FAQ entry answer; below it the entry does not."""
    from app.answering.rules import MultilingualScale, faq_confidence

    faq = hit("忘记密码怎么办？\n点击忘记密码。", kind=KIND_FAQ, language="zh", section="忘记密码怎么办？",
              metadata={"question": "忘记密码怎么办？", "answer": "在登录页点击“忘记密码”。"})  # fmt: skip
    terms = ANALYZER.query_terms("密码想不起来了")
    weights = {t: 1.0 for t in terms}
    for cosine, expected in ((0.985, MODE_FAQ), (0.95, MODE_EXTRACTIVE)):
        faq.multilingual_similarity = cosine
        [judged] = judge([faq], terms, weights, ANALYZER.terms, MultilingualScale(0.98, 0.8, 0.8))
        assert judged.overlap < 0.8  # the terms alone would not make it confident
        decided, chosen = plan("zh", [judged], 0.8, 0.3, 3, faq_min_multilingual_similarity=0.98)
        assert (decided.mode if decided else MODE_EXTRACTIVE) == expected
        assert faq_confidence(judged, 0.8, None) == pytest.approx(judged.overlap)  # without its threshold: unused
    assert decided is None and chosen  # below the threshold the entry is still a passage to answer from
