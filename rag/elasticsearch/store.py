"""`KnowledgeStore` over Elasticsearch 8.12+ / 9.x: the production store, interchangeable with the SQLite one
(`tests/test_store_contract.py` holds both to the same expectations).

Kefu owns an index template and an alias (`KEFU_ES_INDEX`, default `kefu`); reads and writes go through the
alias, and `rebuild` copies everything into a fresh index made from the current template, then moves the
alias in one atomic step, so searches never stop. The indices themselves (making, swapping, dropping,
counting) are `self.indices` (`rag.elasticsearch.indices`); the steps of a rebuild are
`rag.elasticsearch.reindex`. Every request body comes from `rag.elasticsearch.requests`.

What is atomic, and what is not. Elasticsearch has no multi-document transactions, so `replace_documents`
orders its steps so that a reader never sees a document without chunks and a failure never marks a document
written: (1) the new chunks are written under ids that name the new version, leaving the stored version's
rows alone; (2) only for documents whose chunks were all written, the stored version's rows are deleted;
(3) the document rows, with the new content hashes, are written last. A document whose chunks partly failed
gets its new rows removed again and keeps its stored version and hash, so it is reported failed and the next
ingest retries it. Between (1) and (2) a search may see both versions of a document for a moment (the
retriever pools chunks per document, and RRF counts a repeated id once), and a crash between (2) and (3)
leaves new chunks under the old hash, which the next ingest rewrites. Writes use `refresh=wait_for` (deletes
by query `refresh=true`, which is all that API offers), so what a call wrote is searchable when it returns.

Generation: a counter in a one-row index of its own (`<alias>-generation`), bumped after every write (also
after a failed one, which may have written part) and read by `generation()` with a realtime get, so every
Kefu process sees a write as soon as it returns. Without transactions the bump follows the write: an answer
cached while the write runs is keyed by the old generation, which the bump retires.

Vectors: one `dense_vector` field per model (`rq.vector_field`), listed in the mapping's `_meta.spaces`; a
vector search names its model and reads only that model's field. `rewrite` (re-embedding, `kefu index
rebuild`) writes everything into a fresh index made for the new spec and swaps the alias, like `rebuild`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import numpy as np

from rag.elasticsearch import bulk, reindex
from rag.elasticsearch import requests as rq
from rag.elasticsearch.config import ElasticsearchConfig
from rag.elasticsearch.connection import check_server, errors_as_store_errors, if_found, make_client, response_body
from rag.elasticsearch.indices import Indices
from rag.errors import StoreError
from rag.store import (
    ChunkRecord,
    DocumentInfo,
    DocumentRecord,
    IndexSpec,
    SearchFilter,
    StoredChunk,
    no_vectors_of,
)

PAGE = 1000  # rows per search page (documents, chunk ids per lookup)
EXPORT_DOCUMENTS = 100  # documents whose chunks are fetched together for an export


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ElasticsearchStore:
    """One alias on one cluster. Safe to share between threads (the client is)."""

    def __init__(self, config: ElasticsearchConfig, client: Any = None, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.alias = config.alias
        self._client = client if client is not None else make_client(config)
        self._sleep = sleep
        self.indices = Indices(config, self._client, sleep)  # the concrete indices behind the alias
        self._fields: dict[str, str] | None = None  # model -> vector field of the current index, once read
        with self._errors("answer"):
            info = response_body(self._client.info())
        self.version = check_server(info, config)

    def _errors(self, action: str):
        return errors_as_store_errors(self.config, action)

    # -- the index behind the alias (its lifecycle is `self.indices`) -------------------------------------

    def _vector_fields(self) -> dict[str, str]:
        """model -> field of the current index (read once per store object; a claim, rebuild or rewrite by
        this object resets it)."""
        if self._fields is None:
            current = self.indices.current()
            if current is None:
                return {}
            schema, spaces = self.indices.layout(current)
            if schema < 2:  # the recorded spec names the one model of a schema-1 index
                spec = self.index_spec()
                self._fields = {spec.models[0]: rq.LEGACY_VECTOR_FIELD} if spec and spec.models else {}
            else:
                self._fields = {s["model"]: s["field"] for s in spaces}
        return self._fields

    def rebuild(self) -> dict[str, Any]:
        """Copy every row into a fresh index made from the current template and settings, then swap the
        alias (`rag.elasticsearch.reindex`). The old index is write-blocked meanwhile, so an ingest running at
        the same time fails loudly instead of writing rows the copy would miss; searches go on against the old
        index until the swap."""
        with self._bumping():
            report = reindex.rebuild(self.indices)
            self._fields = None
            return report

    def rewrite(
        self, spec: IndexSpec, documents: Iterable[tuple[DocumentRecord, Sequence[ChunkRecord]]]
    ) -> dict[str, Any]:
        """Write `documents` into a fresh index made for `spec`, then swap the alias (`rag.elasticsearch.reindex`)."""
        with self._bumping():
            report = reindex.rewrite(self.indices, spec, documents)
            self._fields = None
            return report

    # -- index spec ---------------------------------------------------------------------------------------

    def index_spec(self) -> IndexSpec | None:
        if not self.indices.exists() or not self.indices.count(rq.ROW_CHUNK):
            return None
        with self._errors("read the index spec"):
            row = if_found(lambda: self._client.get(index=self.alias, id=rq.META_ID))
        return None if row is None else IndexSpec.from_dict(json.loads(row["_source"]["spec"]))

    def claim(self, spec: IndexSpec) -> None:
        spec.check(self.index_spec())
        self.indices.ensure(spec)
        self._fields = None
        with self._bumping():
            self.indices.record_spec(self.alias, spec, wait=True)

    # -- generation ---------------------------------------------------------------------------------------

    def generation(self) -> int:
        with self._errors("read the store's generation"):
            row = if_found(lambda: self._client.get(index=self.config.generation_index, id=rq.GENERATION_ID))
        return 0 if row is None else int(row["_source"]["value"])

    @contextmanager
    def _bumping(self):
        """Bump the generation when the block ends, whether it wrote everything, part, or failed."""
        try:
            yield
        finally:
            with self._errors("bump the store's generation"):
                self._client.update(index=self.config.generation_index, id=rq.GENERATION_ID,
                                    body=rq.generation_bump(), retry_on_conflict=10)  # fmt: skip

    # -- writes -------------------------------------------------------------------------------------------

    def _bulk(self, actions: Sequence[bulk.Action], what: str) -> bulk.BulkResult:
        def send(lines: list[dict[str, Any]]) -> dict[str, Any]:
            with self._errors(what):
                return response_body(self._client.bulk(operations=lines, refresh="wait_for"))

        return bulk.write(send, actions, sleep=self._sleep)

    def _delete_by_query(self, body: dict[str, Any], what: str) -> list[Any]:
        """Run a delete by query; returns its failures (empty when every matching row is gone)."""
        with self._errors(what):
            done = response_body(self._client.delete_by_query(index=self.alias, body=body, conflicts="proceed", refresh=True))
        return list(done.get("failures") or [])

    def content_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(doc_ids))
        if not ids or not self.indices.exists():
            return {}
        out: dict[str, str] = {}
        for i in range(0, len(ids), PAGE):
            with self._errors("read documents"):
                found = response_body(
                    self._client.mget(
                        index=self.alias,
                        ids=[rq.document_row_id(d) for d in ids[i : i + PAGE]],
                        source=["doc_id", "content_hash"],
                    )
                )
            for doc in found.get("docs", []):
                if doc.get("found"):
                    out[doc["_source"]["doc_id"]] = doc["_source"]["content_hash"]
        return out

    def replace_documents(self, items: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]) -> dict[str, str]:
        if not items:
            return {}
        with self._bumping():
            return self._replace(items)

    def _replace(self, items: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]) -> dict[str, str]:
        if not self.indices.exists():
            raise StoreError("the store has no index yet: claim an index spec before writing (the indexer does)")
        stored = self.content_hashes([doc.doc_id for doc, _ in items])
        owner: dict[str, DocumentRecord] = {}
        actions: list[bulk.Action] = []
        for doc, chunks in items:
            for chunk in chunks:
                row_id = rq.chunk_row_id(chunk, doc)
                owner[row_id] = doc
                actions.append((row_id, rq.bulk_index_lines(self.alias, [(row_id, rq.chunk_row(doc, chunk))])))
        written = self._bulk(actions, "write chunks")
        failures: dict[str, str] = {}
        for row_id, reason in written.failed.items():
            failures.setdefault(owner[row_id].doc_id, f"a chunk could not be written: {reason}")
        # A failed document's new rows come out again (unless they overwrote the same version in place).
        undo = [r for r in written.written if owner[r].doc_id in failures and stored.get(owner[r].doc_id) != owner[r].content_hash]
        if undo:
            removed = self._bulk([(r, rq.bulk_delete_lines(self.alias, [r])) for r in undo], "remove a failed write")
            for row_id in removed.failed:
                failures[owner[row_id].doc_id] += "; its partly written new version could not be removed either"
        done = [(doc, chunks) for doc, chunks in items if doc.doc_id not in failures]
        if done:
            keep = [rq.chunk_row_id(c, doc) for doc, chunks in done for c in chunks]
            problems = self._delete_by_query(rq.stale_chunks([d.doc_id for d, _ in done], keep), "remove replaced chunks")
            if problems:
                reason = f"its replaced chunks could not all be removed: {json.dumps(problems[0])[:300]}"
                failures.update({doc.doc_id: reason for doc, _ in done})
                done = []
        now = _now()
        rows = [(rq.document_row_id(d.doc_id), rq.document_row(d, len(chunks), now)) for d, chunks in done]
        recorded = self._bulk([(rid, rq.bulk_index_lines(self.alias, [(rid, row)])) for rid, row in rows], "record documents")
        by_row = {rq.document_row_id(d.doc_id): d.doc_id for d, _ in done}
        for row_id, reason in recorded.failed.items():
            failures[by_row[row_id]] = f"its document row could not be written: {reason}"
        return failures

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Chunks first, then the document rows: if the second step fails, the document is still listed and
        the same command can be run again."""
        existing = list(self.content_hashes(doc_ids))
        if not existing:
            return 0
        with self._bumping():
            return self._delete(existing)

    def _delete(self, existing: list[str]) -> int:
        problems = self._delete_by_query(rq.chunks_of_documents(existing), "delete chunks")
        if problems:
            raise StoreError(f"some chunks could not be deleted ({json.dumps(problems[0])[:300]}): run the command again")
        ids = [rq.document_row_id(d) for d in existing]
        removed = self._bulk([(r, rq.bulk_delete_lines(self.alias, [r])) for r in ids], "delete documents")
        if removed.failed:
            raise StoreError(f"some documents could not be deleted ({next(iter(removed.failed.values()))}): run the command again")
        return len(existing)

    # -- reads --------------------------------------------------------------------------------------------

    def _search(self, body: dict[str, Any], what: str, index: str | None = None, bm25: bool = False) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if bm25 and self.config.shards > 1:
            kwargs["search_type"] = "dfs_query_then_fetch"  # collection-wide BM25 statistics, as SQLite has
        with self._errors(what):
            return response_body(self._client.search(index=index or self.alias, body=body, **kwargs))

    def _msearch(self, bodies: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
        with self._errors(what):
            done = response_body(self._client.msearch(searches=rq.msearch_lines(self.alias, bodies)))
        responses = done.get("responses", [])
        for response in responses:
            if "error" in response:
                error = response["error"]
                reason = error.get("reason", error) if isinstance(error, dict) else error
                raise StoreError(f"Elasticsearch at {self.config.url} could not {what}: {reason}")
        return responses

    def _pages(self, make: Callable[[list[Any] | None], dict[str, Any]], what: str) -> Iterator[dict[str, Any]]:
        """Every hit of a sorted search, page by page (search_after)."""
        after = None
        while True:
            hits = self._search(make(after), what)["hits"]["hits"]
            yield from hits
            if len(hits) < make(None)["size"]:
                return
            after = hits[-1]["sort"]

    def list_documents(self) -> list[DocumentInfo]:
        if not self.indices.exists():
            return []
        out = []
        for hit in self._pages(lambda after: rq.documents_page(PAGE, after), "list documents"):
            s = hit["_source"]
            out.append(
                DocumentInfo(s["doc_id"], s["source"], s["title"], s["kind"], s.get("language", ""), s["chunk_count"],
                             s["content_hash"], s["updated_at"], metadata=s.get("metadata") or {},
                             collection=s["collection"], audience=s["audience"])  # fmt: skip
            )
        return out

    def export_documents(self) -> Iterator[tuple[DocumentRecord, list[ChunkRecord]]]:
        documents = self.list_documents()
        fields = self._vector_fields()
        for i in range(0, len(documents), EXPORT_DOCUMENTS):
            group = {d.doc_id: d for d in documents[i : i + EXPORT_DOCUMENTS]}
            chunks: dict[str, list[ChunkRecord]] = {doc_id: [] for doc_id in group}
            pages = self._pages(
                lambda after: rq.export_chunks(list(group), self.version, PAGE, after, list(fields.values())), "export chunks"
            )
            for hit in pages:
                s = hit["_source"]
                doc = group[s["doc_id"]]
                if s.get("content_hash") != doc.content_hash:
                    continue  # a version being replaced right now, or left by an interrupted write
                vectors = {model: np.asarray(s[f], dtype=np.float32) for model, f in fields.items() if s.get(f)}
                chunks[doc.doc_id].append(
                    ChunkRecord(s["chunk_id"], doc.doc_id, s["ord"], s["text"], s["terms"], vectors,
                                section=s.get("section") or "", page=s.get("page"), language=s.get("language") or "",
                                metadata=s.get("metadata") or {})  # fmt: skip
                )
            for doc_id, doc in group.items():
                record = DocumentRecord(doc.doc_id, doc.source, doc.title, doc.kind, doc.language, doc.content_hash,
                                        doc.metadata, collection=doc.collection, audience=doc.audience)  # fmt: skip
                yield record, chunks[doc_id]

    def lexical_search(
        self, terms: Sequence[str], n: int, filters: SearchFilter | None = None
    ) -> list[tuple[str, float]]:
        terms = [t for t in terms if t.strip()]
        if not terms or n <= 0 or not self.indices.exists():
            return []
        hits = self._search(rq.bm25_search(terms, n, filters), "search", bm25=True)["hits"]["hits"]
        return _unique((h["_source"]["chunk_id"], float(h["_score"])) for h in hits)

    def _field_for(self, model: str) -> str | None:
        """The vector field of `model`; None when the store holds nothing; IndexMismatchError when it holds
        chunks but no vectors of `model`."""
        fields = self._vector_fields()
        if model in fields:
            return fields[model]
        if self.indices.exists() and self.indices.count(rq.ROW_CHUNK):
            raise no_vectors_of(model, self.index_spec())
        return None

    def vector_search(
        self, vectors: np.ndarray, n: int, filters: SearchFilter | None = None, *, model: str
    ) -> list[list[tuple[str, float]]]:
        """kNN candidates from the quantized HNSW index of `model`'s field, then their exact cosine from the
        float vectors, so similarities mean the same as the SQLite store's (the answer thresholds depend on them)."""
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if n <= 0 or not self.indices.exists() or queries.shape[0] == 0:
            return [[] for _ in range(queries.shape[0])]
        field = self._field_for(model)
        if field is None:
            return [[] for _ in range(queries.shape[0])]
        found = self._msearch([rq.knn_search(q, n, filters, field) for q in queries], "search by vector")
        candidates = [list(dict.fromkeys(h["_source"]["chunk_id"] for h in r["hits"]["hits"])) for r in found]
        wanted = [(q, ids) for q, ids in zip(queries, candidates) if ids]
        exact = iter(self._msearch([rq.exact_cosine_search(q, ids, field) for q, ids in wanted], "score vectors") if wanted else [])
        results = []
        for ids in candidates:
            if not ids:
                results.append([])
                continue
            scored = _unique((h["_source"]["chunk_id"], float(h["_score"]) - 1.0) for h in next(exact)["hits"]["hits"])
            results.append(sorted(scored, key=lambda item: (-item[1], item[0]))[:n])
        return results

    def similarities(self, vector: np.ndarray, chunk_ids: Sequence[str], *, model: str) -> dict[str, float]:
        ids = list(dict.fromkeys(chunk_ids))
        if not ids or not self.indices.exists():
            return {}
        field = self._field_for(model)
        if field is None:
            return {}
        hits = self._search(rq.exact_cosine_search(vector, ids, field), "score vectors")["hits"]["hits"]
        return dict(_unique((h["_source"]["chunk_id"], float(h["_score"]) - 1.0) for h in hits))

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        ids = list(dict.fromkeys(chunk_ids))
        out: dict[str, StoredChunk] = {}
        if not ids or not self.indices.exists():
            return out
        for i in range(0, len(ids), PAGE):
            for hit in self._search(rq.chunks_by_id(ids[i : i + PAGE]), "read chunks")["hits"]["hits"]:
                s = hit["_source"]
                if s["chunk_id"] not in out:
                    out[s["chunk_id"]] = StoredChunk(
                        s["chunk_id"], s["doc_id"], s["ord"], s["text"], s["title"], s["source"], s["kind"],
                        section=s.get("section") or "", page=s.get("page"), language=s.get("language") or "",
                        metadata=s.get("metadata") or {}, collection=s["collection"], audience=s["audience"],
                    )  # fmt: skip
        return out

    def term_statistics(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        unique = list(dict.fromkeys(terms))
        if not self.indices.exists():
            return 0, {t: 0 for t in unique}
        total = self.indices.count(rq.ROW_CHUNK)
        if not unique:
            return total, {}
        counts = self._msearch([rq.term_count(t) for t in unique], "count terms")
        return total, {t: int(r["hits"]["total"]["value"]) for t, r in zip(unique, counts)}

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"store": "elasticsearch", "url": self.config.url, "alias": self.alias,
                                 "server": ".".join(map(str, self.version)), "index": None,
                                 "documents": 0, "chunks": 0, "collections": {}}  # fmt: skip
        index = self.indices.current()
        if index is not None:
            aggs = self._search(rq.row_counts(), "count rows")["aggregations"]
            rows = {b["key"]: b["doc_count"] for b in aggs["rows"]["buckets"]}
            collections = aggs["documents"]["collections"]["buckets"]
            stats.update(index=index, documents=rows.get(rq.ROW_DOCUMENT, 0), chunks=rows.get(rq.ROW_CHUNK, 0),
                         collections={b["key"]: b["doc_count"] for b in collections})  # fmt: skip
        spec = self.index_spec() if stats["chunks"] else None
        stats["embedding_model"] = spec.models[0] if spec and spec.models else None
        stats["embedding_models"] = list(spec.models) if spec else []
        stats["analysis"] = spec.analysis if spec else None
        return stats

    def close(self) -> None:
        self._client.close()


def _unique(scored: Iterator[tuple[str, float]]) -> list[tuple[str, float]]:
    """First (best) occurrence of each chunk id: while a document is being replaced, two versions of a
    chunk may both match for a moment."""
    seen: set[str] = set()
    out = []
    for chunk_id, score in scored:
        if chunk_id not in seen:
            seen.add(chunk_id)
            out.append((chunk_id, score))
    return out
