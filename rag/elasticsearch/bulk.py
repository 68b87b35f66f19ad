"""Checked bulk writes: send _bulk requests, read every item's result, retry the items the server could not take
yet (429 rejections from a busy write queue, 502/503/504 from a node in trouble) with exponential backoff, and
report each item that still failed with Elasticsearch's reason.

A _bulk response is 200 even when items failed (`errors: true`, each item with its own status), which is why
nothing here trusts the HTTP status alone. Whole-request failures (the node is down, the request was
rejected) raise from the client, whose transport retries them first. Knows nothing about Kefu's rows: it
sends lines it is given through a `send` function.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag.errors import StoreError

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 5  # the first try and four retries: 0.5 + 1 + 2 + 4 s of backoff in all
BACKOFF_SECONDS = 0.5
BATCH_ACTIONS = 1000
BATCH_BYTES = 8 * 1024 * 1024  # well under Elasticsearch's 100 MB http.max_content_length

# (row id, the lines of its action: the action line, then the row for index/create)
Action = tuple[str, list[dict[str, Any]]]
Send = Callable[[list[dict[str, Any]]], dict[str, Any]]


@dataclass
class BulkResult:
    written: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # row id -> reason
    retried: int = 0  # items sent again after a retryable status


def item_results(response: dict[str, Any]) -> list[tuple[str, int, str | None]]:
    """(row id, status, error or None) for each item of a _bulk response, in request order."""
    out = []
    for item in response.get("items", []):
        ((_op, result),) = item.items()
        error = result.get("error")
        if isinstance(error, dict):
            reason = f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
            cause = error.get("caused_by")
            if isinstance(cause, dict) and cause.get("reason"):
                reason += f" ({cause.get('type', '')}: {cause['reason']})"
        else:
            reason = str(error) if error else None
        out.append((str(result.get("_id")), int(result.get("status", 0)), reason))
    return out


def succeeded(action: str, status: int) -> bool:
    """2xx, or a delete of a row that was already gone (the goal, no row, is reached)."""
    return 200 <= status < 300 or (action == "delete" and status == 404)


def batches(actions: Sequence[Action], max_actions: int = BATCH_ACTIONS, max_bytes: int = BATCH_BYTES) -> Iterator[list[Action]]:
    """Split actions into requests of at most max_actions items and about max_bytes of JSON each."""
    batch: list[Action] = []
    size = 0
    for action in actions:
        action_bytes = sum(len(json.dumps(line, ensure_ascii=False)) + 1 for line in action[1])
        if batch and (len(batch) >= max_actions or size + action_bytes > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(action)
        size += action_bytes
    if batch:
        yield batch


def write(
    send: Send,
    actions: Sequence[Action],
    max_attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    max_actions: int = BATCH_ACTIONS,
) -> BulkResult:
    """Send every action, retry retryable item failures, and account for each row id exactly once."""
    result = BulkResult()
    pending = list(actions)
    for attempt in range(max_attempts):
        retry: list[Action] = []
        for batch in batches(pending, max_actions=max_actions):
            response = send([line for _, lines in batch for line in lines])
            items = item_results(response)
            if len(items) != len(batch):
                raise StoreError(
                    f"Elasticsearch answered a bulk request of {len(batch)} actions with {len(items)} results; "
                    "nothing is marked written. Check the cluster's logs and ingest again"
                )
            for (row_id, lines), (_, status, reason) in zip(batch, items):
                (op,) = lines[0].keys()
                if succeeded(op, status):
                    result.written.append(row_id)
                elif status in RETRYABLE_STATUS and attempt + 1 < max_attempts:
                    retry.append((row_id, lines))
                else:
                    tries = f" after {attempt + 1} tries" if status in RETRYABLE_STATUS else ""
                    result.failed[row_id] = f"{reason or 'no reason given'} (status {status}{tries})"
        if not retry:
            break
        result.retried += len(retry)
        sleep(BACKOFF_SECONDS * 2**attempt)
        pending = retry
    return result
