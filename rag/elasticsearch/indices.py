"""The concrete indices behind Kefu's alias (`KEFU_ES_INDEX`): which one the alias points at, the layout an
index was made with (schema version and vector spaces, from its mapping's `_meta`), making a new one from the
index template, moving the alias from one to another in one atomic step, dropping one, counting rows,
write-blocking one and lifting the block, refreshing, copying one into another with `_reindex`, recording the
index spec row, and bulk-writing rows into an index no search reads yet.

Every request body comes from `rag.elasticsearch.requests`, and the client's exceptions come out as
`StoreError`s a user can act on (`rag.elasticsearch.connection`). Knows nothing about searching, about keeping
a live index consistent while it is read, or about the store's generation (`store`), nor about the order of a
rebuild's steps (`reindex`). Safe to share between threads, as the client is: the one piece of state, whether
an index is known to be behind the alias, only ever turns true (Kefu never removes the alias).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from rag.elasticsearch import bulk
from rag.elasticsearch import requests as rq
from rag.elasticsearch.config import ElasticsearchConfig
from rag.elasticsearch.connection import errors_as_store_errors, if_found, response_body
from rag.errors import StoreError
from rag.store import ChunkRecord, DocumentRecord, IndexSpec, VectorSpace

COPY_TIMEOUT_S = 3600  # a `_reindex` of a large index runs long; the client waits for it to finish


class Indices:
    """The indices behind `config.alias` on one cluster, reached through `client` (the official client);
    `sleep` paces the retries of bulk writes."""

    def __init__(self, config: ElasticsearchConfig, client: Any, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.alias = config.alias
        self._client = client
        self._sleep = sleep
        self._known = False  # an index is known to be behind the alias

    def _errors(self, action: str):
        return errors_as_store_errors(self.config, action)

    # -- looking ----------------------------------------------------------------------------------------------

    def current(self) -> str | None:
        """The index behind the alias (its write index, if several), or None before the first write."""
        with self._errors("look up the alias"):
            found = if_found(lambda: self._client.indices.get_alias(name=self.alias))
        if found is None:
            return None
        names = sorted(found)
        writers = [n for n in names if found[n].get("aliases", {}).get(self.alias, {}).get("is_write_index")]
        self._known = True
        return (writers or names)[-1]

    def exists(self) -> bool:
        """Whether the alias points at an index (asks the cluster until one has been seen)."""
        return self._known or self.current() is not None

    def layout(self, index: str) -> tuple[int, list[dict[str, Any]]]:
        """(schema version, `_meta.spaces`) of an index's mapping; a schema-1 index has one `embedding` field."""
        with self._errors("read the mapping"):
            mapping = response_body(self._client.indices.get_mapping(index=index))
        meta = mapping.get(index, {}).get("mappings", {}).get("_meta", {})
        schema = int(meta.get("kefu_schema", 1))
        if schema < 2:
            return schema, [{"model": None, "dims": meta.get("dims"), "field": rq.LEGACY_VECTOR_FIELD}]
        return schema, list(meta.get("spaces") or [])

    def count(self, row: str | None = None, index: str | None = None) -> int:
        """Rows of one kind (`rq.ROW_CHUNK`, `rq.ROW_DOCUMENT`), or all rows, in `index` (default: the alias)."""
        with self._errors("count rows"):
            answer = self._client.count(index=index or self.alias, body=rq.count_query(row))
        return int(response_body(answer)["count"])

    # -- making, moving, dropping -----------------------------------------------------------------------------

    def create(self, spaces: Sequence[VectorSpace], *, with_alias: bool) -> str:
        """Put the index template for `spaces`, then create a new, empty index from it; returns its name. With
        `with_alias` the alias points at it at once (the first index); otherwise no search reads it yet."""
        template = rq.index_template(self.config.index_pattern, spaces, self.config.shards, self.config.replicas)
        with self._errors("create the index template"):
            self._client.indices.put_index_template(name=self.config.template, body=template)
        name = self.config.index_name(datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S%f"))
        with self._errors("create an index"):
            self._client.indices.create(index=name, body=rq.create_index_body(self.alias, with_alias))
        if with_alias:
            self._known = True
        return name

    def ensure(self, spec: IndexSpec) -> None:
        """Create the template and the first index on first use; an empty index made for other models (the
        embedding model changed after `kefu docs delete --all`) is replaced by a fresh one. StoreError when
        the index holds chunks of other models."""
        current = self.current()
        if current is None:
            self.create(spec.spaces, with_alias=True)
        elif self.layout(current) != (rq.SCHEMA_VERSION, rq.spaces_meta(spec.spaces)):
            if self.count(rq.ROW_CHUNK):
                raise StoreError(f"the index {current} holds vectors of other models than {spec.describe()}")
            fresh = self.create(spec.spaces, with_alias=False)
            self.swap(current, fresh)
            self.drop(current)

    def swap(self, old: str | None, new: str) -> None:
        """Move the alias from `old` (None: from nowhere) to `new` in one atomic step."""
        with self._errors("move the alias"):
            self._client.indices.update_aliases(body=rq.alias_swap(self.alias, old, new))
        self._known = True

    def drop(self, index: str) -> None:
        """Delete an index the alias has left."""
        with self._errors("delete the old index"):
            self._client.indices.delete(index=index)

    def block_writes(self, index: str) -> None:
        """Make `index` refuse writes (reads go on), so nothing lands in it while it is being moved away from."""
        with self._errors("block writes to the old index"):
            self._client.indices.add_block(index=index, block="write")

    def abandon(self, new: str, old: str | None, action: str) -> None:
        """Undo a move that failed before its swap: delete `new` (already gone is fine), then lift the write
        block of `old`. `action` names the undo in an error ("undo the rebuild")."""
        with self._errors(action):
            self._client.indices.delete(index=new, ignore_unavailable=True)
            if old is not None:
                self._client.indices.put_settings(index=old, body=rq.writes_unblocked())

    # -- filling ----------------------------------------------------------------------------------------------

    def copy(self, source: str, dest: str) -> None:
        """Copy every row of `source` into `dest` with `_reindex`, waiting for it and refreshing `dest`;
        StoreError when any row failed or the copy timed out."""
        with self._errors("copy the index"):
            client = self._client.options(request_timeout=COPY_TIMEOUT_S)
            done = response_body(
                client.reindex(body=rq.reindex_body(source, dest), wait_for_completion=True, refresh=True)
            )
        if done.get("failures") or done.get("timed_out"):
            raise StoreError(f"copying {source} into {dest} failed: {json.dumps(done.get('failures'))[:500]}")

    def refresh(self, index: str) -> None:
        """Make what was written into `index` searchable."""
        with self._errors("refresh the new index"):
            self._client.indices.refresh(index=index)

    def record_spec(self, index: str, spec: IndexSpec, *, wait: bool = False) -> None:
        """Write the index spec row into `index` (or the alias); with `wait`, return once it is searchable."""
        refresh = "wait_for" if wait else None  # None: the client leaves the parameter out
        with self._errors("record the index spec"):
            self._client.index(index=index, id=rq.META_ID, document=rq.meta_row(spec), refresh=refresh)

    def write_rows(self, index: str, items: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]) -> None:
        """Chunk rows, then document rows, into an index no search reads yet; any failed row fails it all."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        actions: list[bulk.Action] = []
        for doc, chunks in items:
            for chunk in chunks:
                row_id = rq.chunk_row_id(chunk, doc)
                actions.append((row_id, rq.bulk_index_lines(index, [(row_id, rq.chunk_row(doc, chunk))])))
        for doc, chunks in items:
            row_id = rq.document_row_id(doc.doc_id)
            actions.append((row_id, rq.bulk_index_lines(index, [(row_id, rq.document_row(doc, len(chunks), now))])))

        def send(lines: list[dict[str, Any]]) -> dict[str, Any]:
            with self._errors("write the new index"):
                return response_body(self._client.bulk(operations=lines))

        result = bulk.write(send, actions, sleep=self._sleep)
        if result.failed:
            row_id, reason = next(iter(result.failed.items()))
            raise StoreError(
                f"{len(result.failed)} rows could not be written to {index} ({row_id}: {reason}); nothing changed"
            )
