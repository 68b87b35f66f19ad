import io
import math

import pytest

from app.errors import InputError
from app.evaluation import evaluate, ndcg_at_k, read_qrels, read_queries, read_trec_run, recall_at_k, write_trec_run


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
