"""Moving the alias to a fresh index: `rebuild` copies every row as it is (a new template, shard count or
schema-compatible settings take effect), `rewrite` writes rows it is given (re-embedded ones, for `kefu index
rebuild` after a model change) into an index made for the new spec. Both write-block the old index while
they run, swap the alias in one atomic step, drop the old index after, and on any failure delete the new
index and unblock the old one, so searches never stop and nothing half-done is ever read.

Only the order of those steps lives here: each step is one of `Indices`' methods (`rag.elasticsearch.indices`),
which sends the requests. Knows nothing about the store that calls it: the store bumps its generation and
forgets what it cached about the old index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rag.elasticsearch import requests as rq
from rag.elasticsearch.indices import Indices
from rag.errors import StoreError
from rag.store import ChunkRecord, DocumentRecord, IndexSpec, VectorSpace

REWRITE_GROUP_CHUNKS = 512  # chunks written per group of bulk requests during a rewrite


def rebuild(indices: Indices) -> dict[str, Any]:
    """Copy every row into a fresh index made from the current template and settings, then swap the
    alias. The old index is write-blocked meanwhile, so an ingest running at the same time fails loudly
    instead of writing rows the copy would miss; searches go on against the old index until the swap.
    Returns a report: the alias, the old and new index, the rows copied."""
    old = indices.current()
    if old is None:
        return {"store": "elasticsearch", "alias": indices.alias, "old_index": None, "new_index": None, "rows": 0}
    schema, layout = indices.layout(old)
    if schema != rq.SCHEMA_VERSION:
        raise StoreError(
            f"{old} was written by an older Kefu (schema {schema}): its rows must be re-embedded, which "
            "`kefu index rebuild` does when the configured models are set"
        )
    new = indices.create([VectorSpace(s["model"], int(s["dims"])) for s in layout], with_alias=False)
    try:
        indices.block_writes(old)
        indices.copy(old, new)
        expected = indices.count(index=old)
        copied = indices.count(index=new)
        if copied != expected:
            raise StoreError(f"copying {old} into {new} wrote {copied} of {expected} rows")
        indices.swap(old, new)
    except BaseException:
        indices.abandon(new, old, "undo the rebuild")
        raise
    indices.drop(old)
    return {"store": "elasticsearch", "alias": indices.alias, "old_index": old, "new_index": new, "rows": copied}


def rewrite(
    indices: Indices, spec: IndexSpec, documents: Iterable[tuple[DocumentRecord, Sequence[ChunkRecord]]]
) -> dict[str, Any]:
    """Write `documents` into a fresh index made for `spec`, then swap the alias. The old index is
    write-blocked meanwhile (documents may be read from it) and dropped after the swap; on any failure the
    new index is deleted and the old one unblocked, so nothing changes. Returns a report: the alias, the old
    and new index, the rows and documents written."""
    old = indices.current()
    new = indices.create(spec.spaces, with_alias=False)
    count = 0
    try:
        if old is not None:
            indices.block_writes(old)
        indices.record_spec(new, spec)
        group: list[tuple[DocumentRecord, Sequence[ChunkRecord]]] = []
        size = 0
        for doc, chunks in documents:
            group.append((doc, chunks))
            size += len(chunks)
            count += 1
            if size >= REWRITE_GROUP_CHUNKS:
                indices.write_rows(new, group)
                group, size = [], 0
        if group:
            indices.write_rows(new, group)
        indices.refresh(new)
        rows = indices.count(index=new)
        indices.swap(old, new)
    except BaseException:
        indices.abandon(new, old, "undo the rewrite")
        raise
    if old is not None:
        indices.drop(old)
    return {"store": "elasticsearch", "alias": indices.alias, "old_index": old, "new_index": new, "rows": rows,
            "documents": count}  # fmt: skip
