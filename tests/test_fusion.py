import pytest

from rag.fusion import max_pool, reciprocal_rank_fusion


def test_rrf_scores_are_sums_of_reciprocal_ranks():
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 63)
    assert fused["d"] == pytest.approx(1 / 62)


def test_rrf_orders_by_score_and_breaks_ties_deterministically():
    fused = reciprocal_rank_fusion([["a", "b"], ["b", "a"], ["c"]], k=60)
    assert [item for item, _ in fused][:2] == ["a", "b"]  # equal scores: equal best rank, first seen first
    assert fused[2][0] == "c"
    # c (1/61) scores less than a and b (1/61 + 1/62 each) although it was ranked first somewhere


def test_rrf_item_found_by_both_rankers_beats_one_found_by_one():
    fused = reciprocal_rank_fusion([["x", "both"], ["y", "both"]], k=60)
    assert fused[0][0] == "both"


def test_rrf_weights_limit_and_duplicates():
    fused = reciprocal_rank_fusion([["a", "a", "b"], ["b"]], k=0, weights=[1.0, 3.0], limit=1)
    assert fused == [("b", pytest.approx(1 / 2 + 3.0))]  # the duplicate "a" counts once, at rank 1


def test_rrf_rejects_bad_arguments():
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 2.0])
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], k=-1)


def test_rrf_of_nothing_is_nothing():
    assert reciprocal_rank_fusion([[], []]) == []


def test_max_pool_keeps_each_groups_best_score():
    pooled = max_pool([("d1#0", 0.2), ("d2#0", 0.9), ("d1#3", 0.5)], group=lambda c: c.split("#")[0])
    assert pooled == [("d2", 0.9), ("d1", 0.5)]


def test_interleave_puts_each_item_at_its_best_rank_and_counts_it_once():
    from rag.fusion import interleave

    merged = interleave([["a", "b", "c"], ["x", "a", "y"]])
    # rank 1: a (also 2nd elsewhere) before x; rank 2: b before ... a is already placed; then y, c by support
    assert merged == ["a", "x", "b", "c", "y"]
    assert interleave([["a", "a", "b"]]) == ["a", "b"]  # a repeat counts once and does not push b down
    assert interleave([]) == [] and interleave([["only"]]) == ["only"]


def test_interleave_lets_the_main_space_keep_its_first_choice():
    """An item that lives in both spaces (an FAQ question) must not beat the main space's own top hit only
    because the second space also ranked it."""
    from rag.fusion import interleave

    assert interleave([["store-hours", "faq-battery"], ["faq-battery", "faq-orders"]])[:2] == ["store-hours", "faq-battery"]
