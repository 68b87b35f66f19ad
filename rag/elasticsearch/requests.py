"""Every request body the Elasticsearch store sends, as pure functions of their inputs: the index template,
bulk lines, the BM25 and kNN searches, filters and the alias swap. `tests/test_es_requests.py` checks them
against Elastic's documented API for 8.12+ and 9.x; `rag.elasticsearch.store` only sends them.

One index (behind an alias) holds three kinds of rows, told apart by the keyword `row`: `chunk` rows (the
analysed terms, the display text, the vector and the keyword labels, denormalised from the document so a
search needs no join), one `document` row per document (its content hash and chunk count, written last),
and one `meta` row (the index spec). One index means one alias swap moves all of it at once.

Ranking parity with the SQLite store: `terms` holds the space-joined output of `rag.analysis`, indexed by a
whitespace tokenizer with no filters (the tokens SQLite's FTS5 `ascii` tokenizer sees) and scored by BM25 with
k1=1.2, b=0.75 (FTS5's fixed values). User text only ever reaches a `match` query, already analysed into
letters-and-digits terms; nothing is parsed as query syntax. Vectors are cosine `dense_vector`s in a quantized
`int8_hnsw` index, one field per model, named from the model (`vector_field`), so a query of one model can
only ever be compared with that model's vectors; the mapping's `_meta.spaces` says which model each field
holds. A zero vector (text the model cannot read, or outside its scope) is left out of the row, since cosine
similarity is undefined for it and Elasticsearch rejects it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.store import ChunkRecord, DocumentRecord, IndexSpec, SearchFilter, VectorSpace

# The server Kefu needs: int8_hnsw (quantized HNSW) arrived in 8.12.
MIN_SERVER = (8, 12)
SCHEMA_VERSION = 2  # bump when the mapping changes; `kefu index rebuild` moves data to the new layout
LEGACY_VECTOR_FIELD = "embedding"  # schema 1: the one model's vectors
BM25_K1, BM25_B = 1.2, 0.75  # SQLite FTS5's bm25() constants, so both stores rank alike
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 100  # Elasticsearch's defaults, stated so the template says what it does
MAX_TOKEN_LENGTH = 1024  # the whitespace tokenizer would split longer terms at 255 characters; FTS5 does not
MAX_NUM_CANDIDATES = 10_000  # Elasticsearch's limit for knn.num_candidates
MAX_RESULT_WINDOW = 10_000  # index.max_result_window: the most hits one search may return
TEMPLATE_PRIORITY = 200  # above the catch-all templates users tend to have; Kefu's pattern is its own
MAX_ID_BYTES = 512  # Elasticsearch's limit for _id
META_ID = "meta|index_spec"
GENERATION_ID = "generation"  # the one row of the generation index
ROW_CHUNK, ROW_DOCUMENT, ROW_META = "chunk", "document", "meta"
# Exact cosine from the stored float vectors (kNN scores come from the int8-quantized copy). Scripts must
# not return negative scores, hence the +1; rows without a vector are filtered out before the script runs.
COSINE_SCRIPT = "cosineSimilarity(params.query_vector, '{field}') + 1.0"

# What a chunk search reads back: everything but the vector and the terms (large, and not shown).
CHUNK_FIELDS = ["chunk_id", "doc_id", "ord", "text", "title", "source", "kind", "section", "page", "language",
                "metadata", "collection", "audience"]  # fmt: skip
DOCUMENT_FIELDS = ["doc_id", "source", "title", "kind", "language", "content_hash", "chunk_count", "updated_at",
                   "metadata", "collection", "audience"]  # fmt: skip


# -- server and layout --------------------------------------------------------------------------------------


def server_version(info: dict[str, Any]) -> tuple[int, int]:
    """(major, minor) from the response of GET /."""
    number = str(info.get("version", {}).get("number", "0.0"))
    parts = (number.split("-")[0].split(".") + ["0", "0"])[:2]
    return int(parts[0]), int(parts[1])


def is_serverless(info: dict[str, Any]) -> bool:
    """Elastic Cloud Serverless reports a fixed old-looking version number; its API is the current one."""
    return info.get("version", {}).get("build_flavor") == "serverless"


def supports_exclude_vectors(version: tuple[int, int]) -> bool:
    """Whether `_source.exclude_vectors` exists (8.19, and 9.1 onwards). From 9.2 new indices leave vectors
    out of `_source` unless a search asks for them with `exclude_vectors: false`; older servers reject it."""
    return version >= (9, 1) or (8, 19) <= version < (9, 0)


def index_settings(shards: int, replicas: str) -> dict[str, Any]:
    """Shards, replicas (a count, or a range for auto_expand_replicas), the BM25 similarity and the
    whitespace analyzer of the `terms` field."""
    settings: dict[str, Any] = {"number_of_shards": shards}
    if "-" in replicas:
        settings["auto_expand_replicas"] = replicas
    else:
        settings["number_of_replicas"] = int(replicas)
    settings["similarity"] = {"kefu_bm25": {"type": "BM25", "k1": BM25_K1, "b": BM25_B}}
    settings["analysis"] = {
        "tokenizer": {"kefu_whitespace": {"type": "whitespace", "max_token_length": MAX_TOKEN_LENGTH}},
        "analyzer": {"kefu_terms": {"type": "custom", "tokenizer": "kefu_whitespace", "filter": []}},
    }
    return settings


def vector_field(model: str) -> str:
    """The field holding `model`'s vectors: a name derived from the model, so fields of two models never mix."""
    return "vector_" + hashlib.sha256(model.encode("utf-8")).hexdigest()[:16]


def spaces_meta(spaces: Sequence[VectorSpace]) -> list[dict[str, Any]]:
    """What the mapping's `_meta.spaces` records: each model, its dimensions and its field."""
    return [{"model": s.model, "dims": s.dimension, "field": vector_field(s.model)} for s in spaces]


def mappings(spaces: Sequence[VectorSpace]) -> dict[str, Any]:
    keyword = {"type": "keyword"}
    shown = {"type": "text", "index": False}  # kept in _source for display, never searched
    return {
        "dynamic": "strict",
        "_meta": {"kefu_schema": SCHEMA_VERSION, "spaces": spaces_meta(spaces)},
        "properties": {
            "row": keyword,
            "doc_id": keyword,
            "chunk_id": keyword,
            "source": keyword,
            "collection": keyword,
            "language": keyword,
            "audience": keyword,
            "kind": keyword,
            "content_hash": keyword,
            "ord": {"type": "integer"},
            "terms": {"type": "text", "analyzer": "kefu_terms", "similarity": "kefu_bm25", "index_options": "freqs"},
            "text": shown,
            "title": shown,
            "section": shown,
            "page": {"type": "integer", "index": False},
            "chunk_count": {"type": "integer", "index": False},
            "updated_at": {"type": "date"},
            "metadata": {"type": "object", "enabled": False},
            "spec": {"type": "keyword", "index": False, "doc_values": False},
            **{
                vector_field(space.model): {
                    "type": "dense_vector",
                    "dims": space.dimension,
                    "index": True,
                    "similarity": "cosine",
                    "index_options": {"type": "int8_hnsw", "m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
                }
                for space in spaces
            },
        },
    }


def index_template(pattern: str, spaces: Sequence[VectorSpace], shards: int, replicas: str) -> dict[str, Any]:
    """Body of PUT _index_template/{name}: every index Kefu creates under `pattern` gets these settings."""
    return {
        "index_patterns": [pattern],
        "priority": TEMPLATE_PRIORITY,
        "template": {"settings": index_settings(shards, replicas), "mappings": mappings(spaces)},
        "_meta": {"managed_by": "kefu", "kefu_schema": SCHEMA_VERSION},
    }


def create_index_body(alias: str, with_alias: bool) -> dict[str, Any]:
    """Body of PUT {index}: settings and mappings come from the template; the first index takes the alias."""
    return {"aliases": {alias: {"is_write_index": True}}} if with_alias else {}


def alias_swap(alias: str, old: str | None, new: str) -> dict[str, Any]:
    """Body of POST _aliases moving the alias from old to new in one atomic step."""
    actions: list[dict[str, Any]] = [{"add": {"index": new, "alias": alias, "is_write_index": True}}]
    if old:
        actions.append({"remove": {"index": old, "alias": alias}})
    return {"actions": actions}


def reindex_body(source: str, dest: str) -> dict[str, Any]:
    """Body of POST _reindex copying every row (vectors are rehydrated by the server where `_source` omits them)."""
    return {"source": {"index": source}, "dest": {"index": dest, "op_type": "create"}, "conflicts": "abort"}


def writes_unblocked() -> dict[str, Any]:
    """Body of PUT {index}/_settings lifting the write block that PUT {index}/_block/write set."""
    return {"index.blocks.write": False}


# -- rows -----------------------------------------------------------------------------------------------------


def generation_bump() -> dict[str, Any]:
    """The update that adds one to the store's write counter, creating the row (at 1) the first time."""
    return {"script": {"source": "ctx._source.value += 1", "lang": "painless"}, "upsert": {"value": 1}}


def es_id(*parts: str) -> str:
    """A row's _id: the parts joined by '|', or a hash of them where that would pass Elasticsearch's limit."""
    joined = "|".join(parts)
    if len(joined.encode("utf-8")) <= MAX_ID_BYTES - 8:
        return joined
    return "sha256|" + hashlib.sha256(joined.encode("utf-8")).hexdigest()


def chunk_row_id(chunk: ChunkRecord, doc: DocumentRecord) -> str:
    """A chunk row's _id names the document version (its content hash), so writing a new version never
    overwrites the stored one: the old rows stay whole until the new ones are all written."""
    return es_id(ROW_CHUNK, chunk.chunk_id, doc.content_hash[:16])


def document_row_id(doc_id: str) -> str:
    return es_id(ROW_DOCUMENT, doc_id)


def vector_value(embedding: np.ndarray) -> list[float] | None:
    """The vector as JSON numbers, or None for a zero vector (no vector: the field is left out)."""
    vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
    if not np.any(vector):
        return None
    return vector.astype(float).tolist()


def chunk_row(doc: DocumentRecord, chunk: ChunkRecord) -> dict[str, Any]:
    row: dict[str, Any] = {
        "row": ROW_CHUNK,
        "chunk_id": chunk.chunk_id,
        "doc_id": doc.doc_id,
        "ord": chunk.ord,
        "terms": chunk.terms,
        "text": chunk.text,
        "title": doc.title,
        "source": doc.source,
        "kind": doc.kind,
        "section": chunk.section,
        "page": chunk.page,
        "language": chunk.language,
        "collection": doc.collection,
        "audience": doc.audience,
        "content_hash": doc.content_hash,
        "metadata": chunk.metadata,
    }
    for model, vector in chunk.vectors.items():
        value = vector_value(vector)
        if value is not None:
            row[vector_field(model)] = value
    return row


def document_row(doc: DocumentRecord, chunk_count: int, updated_at: str) -> dict[str, Any]:
    return {
        "row": ROW_DOCUMENT,
        "doc_id": doc.doc_id,
        "source": doc.source,
        "title": doc.title,
        "kind": doc.kind,
        "language": doc.language,
        "collection": doc.collection,
        "audience": doc.audience,
        "content_hash": doc.content_hash,
        "chunk_count": chunk_count,
        "updated_at": updated_at,
        "metadata": doc.metadata,
    }


def meta_row(spec: IndexSpec) -> dict[str, Any]:
    return {"row": ROW_META, "spec": json.dumps(spec.to_dict(), sort_keys=True)}


def bulk_index_lines(index: str, rows: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """NDJSON lines of a _bulk request indexing (id, row) pairs: an action line, then the row."""
    lines: list[dict[str, Any]] = []
    for row_id, row in rows:
        lines.append({"index": {"_index": index, "_id": row_id}})
        lines.append(row)
    return lines


def bulk_delete_lines(index: str, row_ids: Sequence[str]) -> list[dict[str, Any]]:
    return [{"delete": {"_index": index, "_id": row_id}} for row_id in row_ids]


# -- searches -----------------------------------------------------------------------------------------------


def filter_clauses(filters: SearchFilter | None) -> list[dict[str, Any]]:
    """`bool.filter` clauses for a SearchFilter: one `terms` per restricted field; nothing allowed, no match."""
    clauses = []
    for name, values in filters.clauses() if filters else []:
        clauses.append({"terms": {name: list(values)}} if values else {"match_none": {}})
    return clauses


def _chunks_only(filters: SearchFilter | None) -> list[dict[str, Any]]:
    return [{"term": {"row": ROW_CHUNK}}, *filter_clauses(filters)]


def bm25_search(terms: Sequence[str], n: int, filters: SearchFilter | None) -> dict[str, Any]:
    """Body of the lexical search: BM25 over `terms`, any term may match (operator or), filters in
    bool.filter (they restrict, they do not score). Ties are broken by chunk id, so results are stable."""
    return {
        "size": min(n, MAX_RESULT_WINDOW),
        "query": {
            "bool": {
                "must": [{"match": {"terms": {"query": " ".join(dict.fromkeys(terms)), "operator": "or"}}}],
                "filter": _chunks_only(filters),
            }
        },
        "sort": [{"_score": "desc"}, {"chunk_id": "asc"}],
        "track_scores": True,
        "_source": ["chunk_id"],
        "track_total_hits": False,
    }


def num_candidates(k: int) -> int:
    """HNSW candidates per shard: twice k (at least 100), within Elasticsearch's limit."""
    return min(MAX_NUM_CANDIDATES, max(2 * k, 100))


def knn_search(vector: np.ndarray, k: int, filters: SearchFilter | None, field: str) -> dict[str, Any]:
    """Body of the dense search over one model's `field`: the top-level `knn` option (8.x and 9.x alike, no
    licence needed), with the filters applied inside the HNSW search so k filtered neighbours come back, not
    k filtered leftovers."""
    k = min(k, MAX_NUM_CANDIDATES)
    knn: dict[str, Any] = {
        "field": field,
        "query_vector": np.asarray(vector, dtype=np.float32).reshape(-1).astype(float).tolist(),
        "k": k,
        "num_candidates": num_candidates(k),
    }
    clauses = filter_clauses(filters)
    if clauses:
        knn["filter"] = clauses
    return {"size": k, "knn": knn, "_source": ["chunk_id"], "track_total_hits": False}


def exact_cosine_search(vector: np.ndarray, chunk_ids: Sequence[str], field: str) -> dict[str, Any]:
    """Body of a search scoring the given chunks by exact cosine (script_score over one model's float vectors
    in `field`); score - 1 is the cosine. Chunks without a vector in that field are filtered out first."""
    return {
        "size": min(2 * len(chunk_ids), MAX_RESULT_WINDOW),  # a replaced document has two versions for a moment
        "query": {
            "script_score": {
                "query": {
                    "bool": {
                        "filter": [
                            {"term": {"row": ROW_CHUNK}},
                            {"terms": {"chunk_id": list(chunk_ids)}},
                            {"exists": {"field": field}},
                        ]
                    }
                },
                "script": {
                    "source": COSINE_SCRIPT.format(field=field),
                    "params": {"query_vector": np.asarray(vector, dtype=np.float32).reshape(-1).astype(float).tolist()},
                },
            }
        },
        "_source": ["chunk_id"],
        "track_total_hits": False,
    }


def chunks_by_id(chunk_ids: Sequence[str]) -> dict[str, Any]:
    return {
        "size": min(2 * len(chunk_ids), MAX_RESULT_WINDOW),
        "query": {"bool": {"filter": [{"term": {"row": ROW_CHUNK}}, {"terms": {"chunk_id": list(chunk_ids)}}]}},
        "_source": CHUNK_FIELDS,
        "track_total_hits": False,
    }


def chunks_of_documents(doc_ids: Sequence[str]) -> dict[str, Any]:
    """Query of a _delete_by_query removing every chunk of these documents."""
    return {"query": {"bool": {"filter": [{"term": {"row": ROW_CHUNK}}, {"terms": {"doc_id": list(doc_ids)}}]}}}


def stale_chunks(doc_ids: Sequence[str], keep_row_ids: Sequence[str]) -> dict[str, Any]:
    """Query of a _delete_by_query removing these documents' chunks other than the rows just written."""
    body = chunks_of_documents(doc_ids)
    body["query"]["bool"]["must_not"] = [{"ids": {"values": list(keep_row_ids)}}]
    return body


def export_chunks(
    doc_ids: Sequence[str], version: tuple[int, int], size: int, after: list[Any] | None, vector_fields: Sequence[str]
) -> dict[str, Any]:
    """One page of these documents' chunks with their terms and vectors (`vector_fields`), for `kefu index
    export` and re-embedding, ordered by document, position and version (search_after paging)."""
    source: dict[str, Any] = {"includes": [*CHUNK_FIELDS, "terms", *vector_fields, "content_hash"]}
    if supports_exclude_vectors(version):
        source["exclude_vectors"] = False
    body: dict[str, Any] = {
        "size": size,
        "query": {"bool": {"filter": [{"term": {"row": ROW_CHUNK}}, {"terms": {"doc_id": list(doc_ids)}}]}},
        "sort": [{"doc_id": "asc"}, {"ord": "asc"}, {"content_hash": "asc"}],
        "_source": source,
        "track_total_hits": False,
    }
    if after is not None:
        body["search_after"] = after
    return body


def documents_page(size: int, after: list[Any] | None) -> dict[str, Any]:
    """One page of document rows ordered by source then id (search_after paging)."""
    body: dict[str, Any] = {
        "size": size,
        "query": {"bool": {"filter": [{"term": {"row": ROW_DOCUMENT}}]}},
        "sort": [{"source": "asc"}, {"doc_id": "asc"}],
        "_source": DOCUMENT_FIELDS,
        "track_total_hits": False,
    }
    if after is not None:
        body["search_after"] = after
    return body


def term_count(term: str) -> dict[str, Any]:
    """How many chunks hold `term` (for idf weights): an exact count, no hits."""
    return {
        "size": 0,
        "track_total_hits": True,
        "query": {"bool": {"filter": [{"term": {"row": ROW_CHUNK}}, {"term": {"terms": term}}]}},
    }


def count_query(row: str | None) -> dict[str, Any]:
    """Body of POST {index}/_count: the rows of one kind (ROW_CHUNK, ROW_DOCUMENT), or every row for None."""
    return {"query": {"term": {"row": row}} if row else {"match_all": {}}}


def row_counts() -> dict[str, Any]:
    """Rows of each kind and documents per collection, in one request."""
    return {
        "size": 0,
        "track_total_hits": False,
        "aggs": {
            "rows": {"terms": {"field": "row", "size": 10}},
            "documents": {
                "filter": {"term": {"row": ROW_DOCUMENT}},
                "aggs": {"collections": {"terms": {"field": "collection", "size": 1000, "order": {"_key": "asc"}}}},
            },
        },
    }


def msearch_lines(index: str, bodies: Sequence[dict[str, Any]], search_type: str | None = None) -> list[dict[str, Any]]:
    """NDJSON lines of a _msearch request: a header, then the body, per search."""
    header: dict[str, Any] = {"index": index}
    if search_type:
        header["search_type"] = search_type
    lines: list[dict[str, Any]] = []
    for body in bodies:
        lines.extend((dict(header), body))
    return lines
