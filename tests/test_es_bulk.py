"""Checked bulk writes: every item's result is read, retryable rejections are retried, the rest reported."""

import pytest

from rag.elasticsearch import bulk
from rag.elasticsearch.requests import bulk_delete_lines, bulk_index_lines
from rag.errors import StoreError


def index_action(row_id):
    return row_id, bulk_index_lines("kefu", [(row_id, {"row": "chunk", "n": row_id})])


def scripted(*rounds):
    """A send function answering the n-th request with rounds[n]: {row id: status} (others 201)."""
    calls = []

    def send(lines):
        statuses = rounds[len(calls)] if len(calls) < len(rounds) else {}
        calls.append(lines)
        items = []
        for line in lines:
            if set(line) <= {"index", "delete"} and len(line) == 1:
                ((op, meta),) = line.items()
                status = statuses.get(meta["_id"], 201 if op == "index" else 200)
                item = {"_id": meta["_id"], "status": status}
                if status >= 300:
                    item["error"] = {"type": "es_rejected_execution_exception" if status == 429 else "mapper_parsing_exception",
                                     "reason": "queue full" if status == 429 else "bad vector",
                                     "caused_by": {"type": "illegal_argument_exception", "reason": "dims"}}  # fmt: skip
                items.append({op: item})
        return {"errors": any("error" in i[next(iter(i))] for i in items), "items": items}

    return send, calls


def test_retryable_items_are_sent_again_and_only_they():
    send, calls = scripted({"b": 429}, {})
    sleeps = []
    result = bulk.write(send, [index_action("a"), index_action("b"), index_action("c")], sleep=sleeps.append)
    assert sorted(result.written) == ["a", "b", "c"] and result.failed == {} and result.retried == 1
    assert [line["index"]["_id"] for line in calls[1] if "index" in line] == ["b"]  # only the rejected item
    assert sleeps == [bulk.BACKOFF_SECONDS]


def test_permanent_failures_are_reported_with_the_servers_reason_and_not_retried():
    send, calls = scripted({"b": 400})
    result = bulk.write(send, [index_action("a"), index_action("b")], sleep=lambda s: None)
    assert result.written == ["a"]
    assert result.failed == {"b": "mapper_parsing_exception: bad vector (illegal_argument_exception: dims) (status 400)"}
    assert len(calls) == 1


def test_an_item_still_rejected_after_every_try_is_reported():
    send, calls = scripted(*[{"a": 503}] * 10)
    sleeps = []
    result = bulk.write(send, [index_action("a")], max_attempts=3, sleep=sleeps.append)
    assert result.written == [] and "status 503 after 3 tries" in result.failed["a"]
    assert len(calls) == 3 and sleeps == [0.5, 1.0]


def test_deleting_a_row_that_is_already_gone_succeeds():
    send, _ = scripted({"gone": 404})
    result = bulk.write(send, [("gone", bulk_delete_lines("kefu", ["gone"]))])
    assert result.written == ["gone"] and result.failed == {}


def test_a_response_that_does_not_account_for_every_item_is_an_error():
    with pytest.raises(StoreError, match="2 actions with 1 results"):
        bulk.write(lambda lines: {"errors": False, "items": [{"index": {"_id": "a", "status": 201}}]},
                   [index_action("a"), index_action("b")])  # fmt: skip


def test_requests_are_split_by_count_and_size():
    actions = [index_action(str(i)) for i in range(5)]
    assert [len(b) for b in bulk.batches(actions, max_actions=2)] == [2, 2, 1]
    assert [len(b) for b in bulk.batches(actions, max_bytes=1)] == [1, 1, 1, 1, 1]  # one oversized action per request
    send, calls = scripted()
    assert sorted(bulk.write(send, actions, max_actions=2).written) == ["0", "1", "2", "3", "4"]
    assert len(calls) == 3
