"""Moving the alias to a fresh index: `rebuild` copies every row as it is (a new template, shard count or
schema-compatible settings take effect), `rewrite` writes rows it is given (re-embedded ones, for `kefu index
rebuild` after a model change) into an index made for the new spec. Both write-block the old index while
they run, swap the alias in one atomic step, drop the old index after, and on any failure delete the new
index and unblock the old one, so searches never stop and nothing half-done is ever read. Works on an
`ElasticsearchStore`'s client and helpers; every request body comes from `rag.elasticsearch.requests`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from rag.elasticsearch import bulk
from rag.elasticsearch import requests as rq
from rag.errors import StoreError
from rag.store import ChunkRecord, DocumentRecord, IndexSpec, VectorSpace

if TYPE_CHECKING:
    from rag.elasticsearch.store import ElasticsearchStore

REINDEX_TIMEOUT_S = 3600
REWRITE_GROUP_CHUNKS = 512  # chunks written per group of bulk requests during a rewrite


def _body(response: Any) -> Any:
    return getattr(response, "body", response)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def rebuild(store: ElasticsearchStore) -> dict[str, Any]:
    """Copy every row into a fresh index made from the current template and settings, then swap the
    alias. The old index is write-blocked meanwhile, so an ingest running at the same time fails loudly
    instead of writing rows the copy would miss; searches go on against the old index until the swap."""
    old = store._current_index()
    if old is None:
        return {"store": "elasticsearch", "alias": store.alias, "old_index": None, "new_index": None, "rows": 0}
    schema, layout = store._index_layout(old)
    if schema != rq.SCHEMA_VERSION:
        raise StoreError(
            f"{old} was written by an older Kefu (schema {schema}): its rows must be re-embedded, which "
            "`kefu index rebuild` does when the configured models are set"
        )
    new = store._new_index([VectorSpace(s["model"], int(s["dims"])) for s in layout], with_alias=False)
    try:
        with store._errors("block writes to the old index"):
            store._client.indices.add_block(index=old, block="write")
        with store._errors("copy the index"):
            done = _body(
                store._client.options(request_timeout=REINDEX_TIMEOUT_S).reindex(
                    body=rq.reindex_body(old, new), wait_for_completion=True, refresh=True
                )
            )
        if done.get("failures") or done.get("timed_out"):
            raise StoreError(f"copying {old} into {new} failed: {json.dumps(done.get('failures'))[:500]}")
        expected = store._count(None, index=old)
        copied = store._count(None, index=new)
        if copied != expected:
            raise StoreError(f"copying {old} into {new} wrote {copied} of {expected} rows")
        store._swap(old, new)
    except BaseException:
        with store._errors("undo the rebuild"):
            store._client.indices.delete(index=new, ignore_unavailable=True)
            store._client.indices.put_settings(index=old, body={"index.blocks.write": False})
        raise
    store._drop(old)
    store._fields = None
    return {"store": "elasticsearch", "alias": store.alias, "old_index": old, "new_index": new, "rows": copied}


def rewrite(
    store: ElasticsearchStore, spec: IndexSpec, documents: Iterable[tuple[DocumentRecord, Sequence[ChunkRecord]]]
) -> dict[str, Any]:
    """Write `documents` into a fresh index made for `spec`, then swap the alias. The old index is
    write-blocked meanwhile (documents may be read from it) and dropped after the swap; on any failure the
    new index is deleted and the old one unblocked, so nothing changes."""
    old = store._current_index()
    new = store._new_index(spec.spaces, with_alias=False)
    count = 0
    try:
        if old is not None:
            with store._errors("block writes to the old index"):
                store._client.indices.add_block(index=old, block="write")
        with store._errors("record the index spec"):
            store._client.index(index=new, id=rq.META_ID, document=rq.meta_row(spec))
        group: list[tuple[DocumentRecord, Sequence[ChunkRecord]]] = []
        size = 0
        for doc, chunks in documents:
            group.append((doc, chunks))
            size += len(chunks)
            count += 1
            if size >= REWRITE_GROUP_CHUNKS:
                _write_into(store, new, group)
                group, size = [], 0
        if group:
            _write_into(store, new, group)
        with store._errors("refresh the new index"):
            store._client.indices.refresh(index=new)
        rows = store._count(None, index=new)
        store._swap(old, new)
    except BaseException:
        with store._errors("undo the rewrite"):
            store._client.indices.delete(index=new, ignore_unavailable=True)
            if old is not None:
                store._client.indices.put_settings(index=old, body={"index.blocks.write": False})
        raise
    if old is not None:
        store._drop(old)
    store._has_index = True
    store._fields = None
    return {"store": "elasticsearch", "alias": store.alias, "old_index": old, "new_index": new, "rows": rows,
            "documents": count}  # fmt: skip


def _write_into(store: ElasticsearchStore, index: str, items: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]) -> None:
    """Chunk rows, then document rows, into an index no search reads yet; any failed row fails it all."""
    now = _now()
    actions: list[bulk.Action] = []
    for doc, chunks in items:
        for chunk in chunks:
            row_id = rq.chunk_row_id(chunk, doc)
            actions.append((row_id, rq.bulk_index_lines(index, [(row_id, rq.chunk_row(doc, chunk))])))
    for doc, chunks in items:
        row_id = rq.document_row_id(doc.doc_id)
        actions.append((row_id, rq.bulk_index_lines(index, [(row_id, rq.document_row(doc, len(chunks), now))])))

    def send(lines: list[dict[str, Any]]) -> dict[str, Any]:
        with store._errors("write the new index"):
            return _body(store._client.bulk(operations=lines))

    result = bulk.write(send, actions, sleep=store._sleep)
    if result.failed:
        row_id, reason = next(iter(result.failed.items()))
        raise StoreError(f"{len(result.failed)} rows could not be written to {index} ({row_id}: {reason}); nothing changed")
