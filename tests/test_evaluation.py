import io
import math

import pytest

from app.errors import InputError
from app.answering.evaluation import evaluate, ndcg_at_k, read_qrels, read_queries, read_trec_run, recall_at_k, write_trec_run


def test_ndcg_perfect_and_known_value():
    assert ndcg_at_k(["a", "b"], {"a": 1, "b": 1}) == pytest.approx(1.0)
    # one relevant document at rank 2: (1/log2(3)) / (1/log2(2))
    assert ndcg_at_k(["x", "a"], {"a": 1}) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(["x"], {"a": 1}) == 0.0


def test_recall_at_k():
    assert recall_at_k(["a", "x", "b"], {"a": 1, "b": 1, "c": 1}, k=2) == pytest.approx(1 / 3)


def test_trec_run_round_trip_and_evaluate():
    out = io.StringIO()
    lines = write_trec_run({"q1": [("d1", 2.5), ("d2", 1.0)], "q2": [("d9", 0.1)]}, out)
    assert lines == 3
    assert out.getvalue().splitlines()[0] == "q1 Q0 d1 1 2.500000 kefu"
    run = read_trec_run(out.getvalue().splitlines())
    metrics = evaluate(run, {"q1": {"d2": 1}, "q2": {"d9": 1}, "q3": {"d1": 1}})
    assert metrics["queries"] == 3
    assert metrics["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 + 0) / 3)


def test_read_queries_and_qrels(tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_text('{"_id": "1", "text": "a"}\n\n{"id": 2, "text": "b"}\n', encoding="utf-8")
    assert read_queries(q) == [("1", "a"), ("2", "b")]
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t2\n", encoding="utf-8")
    assert read_qrels(qrels) == {"1": {"d1": 1, "d2": 2}}


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"_id": "1", "text": "a"}\nnot json\n', "line 2 is not valid JSON"),
        ('{"text": "a"}\n', "needs an '_id'"),
        ('{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n', "repeats the query id"),
        ("", "holds no queries"),
    ],
)
def test_bad_query_files_get_clear_errors(tmp_path, content, message):
    q = tmp_path / "q.jsonl"
    q.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_queries(q)


# -- rewriting and calibration metrics --------------------------------------------------------------------


def test_bleu_tokens_follow_13a():
    from app.answering.evaluation import bleu_tokens

    assert bleu_tokens("Hello, world! It's 3.5 kg.") == ["Hello", ",", "world", "!", "It's", "3.5", "kg", "."]
    assert bleu_tokens("(Hellraiser's) powers?") == ["(", "Hellraiser's", ")", "powers", "?"]


def test_corpus_bleu_known_values():
    from app.answering.evaluation import corpus_bleu

    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    # clipped n-gram precisions 5/6, 3/5, 2/4, 1/3; same length, so no brevity penalty
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(100 * (1 / 12) ** 0.25)
    # all precisions 1, 4 tokens against 6: brevity penalty exp(1 - 6/4)
    assert corpus_bleu(["the cat sat on"], ["the cat sat on the mat"]) == pytest.approx(100 * math.exp(-0.5))
    assert corpus_bleu(["dog"], ["the cat sat on the mat"]) == 0.0


def test_corpus_bleu_sums_counts_over_the_corpus():
    from app.answering.evaluation import corpus_bleu

    # the second pair has no 3- or 4-gram at all; corpus counts are 5/6, 3/4, 2/2, 1/1
    value = corpus_bleu(["a b c d", "x y"], ["a b c d", "x z"])
    assert value == pytest.approx(100 * (5 / 6 * 3 / 4) ** 0.25)
    with pytest.raises(ValueError):
        corpus_bleu(["a"], [])


def test_added_term_recall_counts_what_the_gold_rewrite_adds():
    from app.answering.evaluation import added_term_recall
    from rag.analysis import Analyzer

    terms = Analyzer().terms
    gold = "When did Zappa and the Mothers of Invention disband?"
    assert added_term_recall("When did they disband?", "When did Zappa disband?", gold, terms) == (1, 3)
    assert added_term_recall("When did they disband?", "When did they disband?", gold, terms) == (0, 3)
    assert added_term_recall("Why?", "Why?", "Why?", terms) == (0, 0)


def test_threshold_for_fpr_is_the_most_permissive_grid_value_within_the_target():
    from app.answering.evaluation import operating_point, threshold_for_fpr

    negatives = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    assert threshold_for_fpr(negatives, 0.10) == pytest.approx(0.91)  # only 0.95 may pass
    assert threshold_for_fpr(negatives, 0.0) == pytest.approx(0.96)
    assert threshold_for_fpr(negatives, 0.25) == pytest.approx(0.81)  # two may pass
    assert threshold_for_fpr(negatives, 1.0) == 0.0
    point = operating_point([0.97, 0.92, 0.5], negatives, 0.91)
    assert point["fpr"] == pytest.approx(0.1) and point["recall"] == pytest.approx(2 / 3)
    assert point["precision"] == pytest.approx(2 / 3)
    assert operating_point([0.1], [0.2], 0.5)["precision"] == 1.0  # nothing accepted
