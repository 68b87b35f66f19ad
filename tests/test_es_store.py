"""The Elasticsearch store's behaviour against a scripted server at the HTTP boundary (tests/es_fake.py): the
real official client sends every request, so these check paths, parameters, headers and NDJSON bodies as they
would go on the wire. Connection errors use a real socket. Ranking needs a real server: see
tests/test_store_contract.py (`make test-es`)."""

import socket

import numpy as np
import pytest

from rag.elasticsearch import reindex
from rag.elasticsearch.config import ElasticsearchConfig
from rag.elasticsearch.indices import Indices
from rag.elasticsearch.store import ElasticsearchStore
from rag.errors import StoreError
from rag.elasticsearch import requests as rq
from rag.errors import IndexMismatchError
from rag.store import ChunkRecord, DocumentRecord, IndexSpec, SearchFilter, VectorSpace
from tests.es_fake import FakeServer, bulk_answer, with_generation

ALIAS_PATH = "/_alias/kefu"
HAS_INDEX = (200, {"kefu-index-1": {"aliases": {"kefu": {"is_write_index": True}}}})
SPEC = IndexSpec("v1", (VectorSpace("m", 2),))
FIELD = rq.vector_field("m")


def mapping_of(spec, index="kefu-index-1"):
    """The GET {index}/_mapping answer for an index made for `spec`."""
    return 200, {index: {"mappings": rq.mappings(spec.spaces)}}


def open_store(server, **config):
    cfg = ElasticsearchConfig(**config)
    return ElasticsearchStore(cfg, client=server.client(cfg), sleep=lambda s: None)


def doc(doc_id, n_chunks, content_hash):
    record = DocumentRecord(doc_id, f"{doc_id}.md", doc_id.title(), "text", "en", content_hash)
    chunks = [ChunkRecord(f"{doc_id}#{i}", doc_id, i, f"text {i}", f"term{i}", {"m": np.array([1.0, 0.0], np.float32)})
              for i in range(n_chunks)]  # fmt: skip
    return record, chunks


def mget_answer(stored):
    def answer(request):
        docs = []
        for row_id in request.json["ids"]:
            doc_id = row_id.split("|", 1)[1]
            if doc_id in stored:
                docs.append({"_id": row_id, "found": True, "_source": {"doc_id": doc_id, "content_hash": stored[doc_id]}})
            else:
                docs.append({"_id": row_id, "found": False})
        return 200, {"docs": docs}

    return answer


@pytest.fixture
def server():
    s = with_generation(FakeServer())
    s.on("GET", ALIAS_PATH, HAS_INDEX)
    return s


# -- connecting ---------------------------------------------------------------------------------------------


def test_the_client_speaks_the_8x_compatibility_headers_that_8x_and_9x_servers_accept(server):
    open_store(server)
    accept = server.requests[0].headers["accept"]
    assert accept == "application/vnd.elasticsearch+json; compatible-with=8"


def test_an_unreachable_server_is_a_clear_error():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError, match=rf"cannot reach Elasticsearch at http://127.0.0.1:{port}.*KEFU_ES_URL.*KEFU_STORE=sqlite"):
        ElasticsearchStore(ElasticsearchConfig(url=f"http://127.0.0.1:{port}", timeout=2))


@pytest.mark.parametrize(
    "config, message",
    [
        ({}, "needs credentials: set KEFU_ES_API_KEY, or KEFU_ES_USERNAME and KEFU_ES_PASSWORD"),
        ({"api_key": "secret-key"}, "rejected the API key in KEFU_ES_API_KEY"),
        ({"username": "kefu", "password": "wrong"}, "rejected user 'kefu'"),
    ],
)
def test_wrong_credentials_are_a_clear_error_that_never_shows_the_secret(config, message):
    server = with_generation(FakeServer())
    server.on("GET", "/", (401, {"error": {"type": "security_exception", "reason": "unable to authenticate"}, "status": 401}))
    with pytest.raises(StoreError, match=message) as caught:
        open_store(server, **config)
    assert "secret-key" not in str(caught.value) and "wrong" not in str(caught.value)
    if "api_key" in config:
        assert server.requests[0].headers["authorization"] == "ApiKey secret-key"


@pytest.mark.parametrize("version", ["7.17.25", "8.11.4"])
def test_a_server_older_than_8_12_is_refused(version):
    with pytest.raises(StoreError, match=rf"Elasticsearch {version} at .* too old: Kefu needs 8.12 or newer"):
        open_store(FakeServer(version=version))


@pytest.mark.parametrize("version, flavor, expected", [("8.12.0", "default", (8, 12)), ("9.1.5", "default", (9, 1)),
                                                       ("8.11.0", "serverless", (9, 0))])  # fmt: skip
def test_supported_servers(version, flavor, expected):
    assert open_store(FakeServer(version=version, build_flavor=flavor)).version == expected


def test_a_missing_privilege_names_what_to_grant(server):
    store = open_store(server)
    server.on("POST", "/kefu/_search", (403, {"error": {"root_cause": [{"type": "security_exception", "reason": "action [indices:data/read/search] is unauthorized"}], "type": "security_exception", "reason": "unauthorized"}, "status": 403}))
    with pytest.raises(StoreError, match=r"may not search.*unauthorized.*`all` on the indices `kefu\*`.*`monitor` and `manage_index_templates`"):
        store.lexical_search(["refund"], 5)


def test_config_errors_say_what_is_allowed(tmp_path):
    with pytest.raises(StoreError, match="KEFU_ES_INDEX='Kefu Prod' is not a usable index name"):
        ElasticsearchConfig(index="Kefu Prod")
    with pytest.raises(StoreError, match="KEFU_ES_REPLICAS='many'"):
        ElasticsearchConfig(replicas="many")
    with pytest.raises(StoreError, match="KEFU_ES_CA_CERTS=.* is not a file"):
        ElasticsearchConfig(ca_certs=tmp_path / "missing.crt")
    with pytest.raises(StoreError, match="both KEFU_ES_USERNAME and KEFU_ES_PASSWORD"):
        ElasticsearchConfig(username="elastic")


# -- before the first write ---------------------------------------------------------------------------------


def test_an_empty_cluster_reads_as_an_empty_store():
    server = with_generation(FakeServer())
    server.on("GET", ALIAS_PATH, (404, {"error": "alias [kefu] missing", "status": 404}))
    store = open_store(server)
    assert store.lexical_search(["refund"], 5) == []
    assert store.vector_search(np.ones((1, 2), np.float32), 5, model="m") == [[]]
    assert store.list_documents() == [] and store.content_hashes(["a"]) == {} and store.index_spec() is None
    assert store.stats()["documents"] == 0
    assert not server.sent("POST", ".*_search")


def test_the_first_claim_creates_the_template_the_index_with_its_alias_and_the_spec_row():
    server = with_generation(FakeServer())
    server.on("GET", ALIAS_PATH, (404, {"error": "alias [kefu] missing", "status": 404}))
    server.on("PUT", "/_index_template/kefu-template", (200, {"acknowledged": True}))
    server.on("PUT", "/kefu-index-[0-9]+", (200, {"acknowledged": True}))
    server.on("PUT", "/kefu/_doc/meta%7Cindex_spec", (201, {"result": "created"}))
    store = open_store(server, shards=2, replicas="1")
    store.claim(SPEC)
    [template] = server.sent("PUT", "/_index_template/kefu-template")
    assert template.json["index_patterns"] == ["kefu-index-*"]
    assert template.json["template"]["mappings"]["properties"][FIELD]["dims"] == 2
    assert template.json["template"]["settings"]["number_of_shards"] == 2
    [create] = server.sent("PUT", "/kefu-index-[0-9]+")
    assert create.json == {"aliases": {"kefu": {"is_write_index": True}}}
    [meta] = server.sent("PUT", "/kefu/_doc/meta%7Cindex_spec")
    assert meta.params == {"refresh": "wait_for"} and meta.json["row"] == "meta"


# -- writes ---------------------------------------------------------------------------------------------------


def test_a_document_with_a_failed_chunk_is_not_recorded_and_keeps_its_stored_version(server):
    """a: all chunks written -> stale chunks removed, document row written. b: one chunk rejected -> b's other
    new row is removed again, its stored rows are left alone, no document row, reported failed."""
    server.on("POST", "/kefu/_mget", mget_answer({"a": "old-a", "b": "old-b"}))
    server.on("PUT", "/_bulk", bulk_answer({"chunk|b#1|new-b": 400}, {"chunk|b#1|new-b": "failed to parse field [vector]"}))
    server.on("POST", "/kefu/_delete_by_query", (200, {"deleted": 3, "failures": []}))
    store = open_store(server)
    failures = store.replace_documents([doc("a", 2, "new-a"), doc("b", 2, "new-b")])
    assert failures == {"b": "a chunk could not be written: document_parsing_exception: failed to parse field [vector] (status 400)"}

    chunk_bulk, undo_bulk, record_bulk = server.sent("PUT", "/_bulk")
    assert all(r.params == {"refresh": "wait_for"} for r in (chunk_bulk, undo_bulk, record_bulk))
    assert [line["index"]["_id"] for line in chunk_bulk.lines[::2]] == ["chunk|a#0|new-a", "chunk|a#1|new-a", "chunk|b#0|new-b", "chunk|b#1|new-b"]
    assert chunk_bulk.lines[1]["terms"] == "term0" and chunk_bulk.lines[1][FIELD] == [1.0, 0.0]
    assert undo_bulk.lines == [{"delete": {"_index": "kefu", "_id": "chunk|b#0|new-b"}}]
    [stale] = server.sent("POST", "/kefu/_delete_by_query")
    assert stale.params == {"conflicts": "proceed", "refresh": "true"}
    assert stale.json["query"]["bool"]["filter"][1] == {"terms": {"doc_id": ["a"]}}
    assert stale.json["query"]["bool"]["must_not"] == [{"ids": {"values": ["chunk|a#0|new-a", "chunk|a#1|new-a"]}}]
    assert [line["index"]["_id"] for line in record_bulk.lines[::2]] == ["document|a"]
    assert record_bulk.lines[1]["content_hash"] == "new-a" and record_bulk.lines[1]["chunk_count"] == 2


def test_rejected_chunks_are_retried_and_the_document_is_recorded(server):
    server.on("POST", "/kefu/_mget", mget_answer({}))
    rounds = iter([bulk_answer({"chunk|a#1|h": 429}), bulk_answer(), bulk_answer()])
    server.on("PUT", "/_bulk", lambda request: next(rounds)(request))
    server.on("POST", "/kefu/_delete_by_query", (200, {"deleted": 0, "failures": []}))
    store = open_store(server)
    assert store.replace_documents([doc("a", 2, "h")]) == {}
    first, retry, record = server.sent("PUT", "/_bulk")
    assert [line["index"]["_id"] for line in retry.lines[::2]] == ["chunk|a#1|h"]
    assert [line["index"]["_id"] for line in record.lines[::2]] == ["document|a"]


def test_rewriting_the_same_version_never_deletes_the_rows_it_overwrote(server):
    server.on("POST", "/kefu/_mget", mget_answer({"a": "h"}))
    server.on("PUT", "/_bulk", bulk_answer({"chunk|a#1|h": 400}))
    store = open_store(server)
    assert "a" in store.replace_documents([doc("a", 2, "h")])
    assert len(server.sent("PUT", "/_bulk")) == 1  # no undo: a#0 now holds the same content as before
    assert not server.sent("POST", "/kefu/_delete_by_query")


def test_when_stale_chunks_cannot_be_removed_no_document_is_recorded(server):
    server.on("POST", "/kefu/_mget", mget_answer({"a": "old"}))
    server.on("PUT", "/_bulk", bulk_answer())
    server.on("POST", "/kefu/_delete_by_query", (200, {"deleted": 0, "failures": [{"index": "kefu-index-1", "cause": {"type": "search_phase_execution_exception"}}]}))
    store = open_store(server)
    failures = store.replace_documents([doc("a", 1, "new")])
    assert failures["a"].startswith("its replaced chunks could not all be removed")
    assert len(server.sent("PUT", "/_bulk")) == 1  # chunks only, no document row


def test_delete_removes_chunks_then_document_rows(server):
    server.on("POST", "/kefu/_mget", mget_answer({"a": "h"}))
    server.on("POST", "/kefu/_delete_by_query", (200, {"deleted": 2, "failures": []}))
    server.on("PUT", "/_bulk", bulk_answer())
    store = open_store(server)
    assert store.delete_documents(["a", "missing"]) == 1
    [by_query] = server.sent("POST", "/kefu/_delete_by_query")
    assert by_query.json["query"]["bool"]["filter"] == [{"term": {"row": "chunk"}}, {"terms": {"doc_id": ["a"]}}]
    [rows] = server.sent("PUT", "/_bulk")
    assert rows.lines == [{"delete": {"_index": "kefu", "_id": "document|a"}}]


def test_every_write_bumps_the_generation_after_it_even_a_failed_one(server):
    server.on("POST", "/kefu/_mget", mget_answer({"a": "old"}))
    server.on("POST", "/kefu/_delete_by_query", (200, {"deleted": 1, "failures": []}))
    server.on("PUT", "/_bulk", bulk_answer({"chunk|b#0|h": 400}))
    store = open_store(server)
    assert store.generation() == 0  # no row yet: a store never written to
    store.replace_documents([doc("a", 1, "new")])
    assert store.generation() == 1
    assert "b" in store.replace_documents([doc("b", 1, "h")])  # failed: it may have written part, so it counts
    assert store.generation() == 2
    store.delete_documents(["a"])
    assert store.generation() == 3
    assert store.delete_documents(["missing"]) == 0 and store.generation() == 3  # nothing written, nothing bumped
    paths = [(r.method, r.path) for r in server.requests]
    first_bump = paths.index(("POST", "/kefu-generation/_update/generation"))
    assert ("PUT", "/_bulk") in paths[:first_bump]  # the write comes first, then its bump
    [bump, *_] = server.sent("POST", "/kefu-generation/_update/generation")
    assert bump.json == {"script": {"source": "ctx._source.value += 1", "lang": "painless"}, "upsert": {"value": 1}}
    assert bump.params == {"retry_on_conflict": "10"}


# -- reads ----------------------------------------------------------------------------------------------------


def test_lexical_search_across_shards_uses_collection_wide_statistics(server):
    server.on("POST", "/kefu/_search", (200, {"hits": {"hits": [{"_source": {"chunk_id": "a#0"}, "_score": 2.0},
                                                                 {"_source": {"chunk_id": "a#0"}, "_score": 1.0}]}}))  # fmt: skip
    assert open_store(server, shards=3).lexical_search(["refund"], 5, SearchFilter(audiences=("public",))) == [("a#0", 2.0)]
    [search] = server.sent("POST", "/kefu/_search")
    assert search.params == {"search_type": "dfs_query_then_fetch"}
    assert {"terms": {"audience": ["public"]}} in search.json["query"]["bool"]["filter"]


def test_vector_search_takes_knn_candidates_and_ranks_them_by_exact_cosine(server):
    def msearch(request):
        bodies = request.lines[1::2]
        if "knn" in bodies[0]:
            return 200, {"responses": [{"hits": {"hits": [{"_source": {"chunk_id": c}, "_score": 0.9} for c in ("a#0", "b#0")]}}
                                       for _ in bodies]}  # fmt: skip
        return 200, {"responses": [{"hits": {"hits": [{"_source": {"chunk_id": "a#0"}, "_score": 1.5},
                                                      {"_source": {"chunk_id": "b#0"}, "_score": 1.75}]}} for _ in bodies]}  # fmt: skip

    server.on("POST", "/_msearch", msearch)
    server.on("GET", "/kefu-index-1/_mapping", mapping_of(SPEC))
    store = open_store(server)
    [hits] = store.vector_search(np.array([[0.6, 0.8]], np.float32), 5, SearchFilter(collections=("acme",)), model="m")
    assert hits == [("b#0", 0.75), ("a#0", 0.5)]  # exact cosine (score - 1), best first
    knn, exact = server.sent("POST", "/_msearch")
    assert knn.lines[0] == {"index": "kefu"}
    assert knn.lines[1]["knn"]["filter"] == [{"terms": {"collection": ["acme"]}}]
    assert knn.lines[1]["knn"]["field"] == FIELD  # the model's own field, read from the index mapping
    assert exact.lines[1]["query"]["script_score"]["query"]["bool"]["filter"][1] == {"terms": {"chunk_id": ["a#0", "b#0"]}}
    assert FIELD in exact.lines[1]["query"]["script_score"]["script"]["source"]


def test_a_vector_search_with_a_model_the_index_does_not_hold_is_refused(server):
    server.on("GET", "/kefu-index-1/_mapping", mapping_of(SPEC))
    server.on("POST", "/kefu/_count", (200, {"count": 3}))
    server.on("GET", "/kefu/_doc/meta%7Cindex_spec", (200, {"_source": rq.meta_row(SPEC)}))
    with pytest.raises(IndexMismatchError, match="no vectors of 'other'.*it holds: 'm'.*kefu index rebuild"):
        open_store(server).vector_search(np.ones((1, 2), np.float32), 5, model="other")
    assert not server.sent("POST", "/_msearch")


def test_an_error_inside_a_multi_search_is_raised_not_read_as_no_hits(server):
    server.on("POST", "/_msearch", (200, {"responses": [{"error": {"type": "illegal_argument_exception", "reason": "the query vector has a different number of dimensions [3] than the document vectors [2]"}, "status": 400}]}))
    server.on("GET", "/kefu-index-1/_mapping", mapping_of(SPEC))
    with pytest.raises(StoreError, match="different number of dimensions"):
        open_store(server).vector_search(np.ones((1, 3), np.float32), 5, model="m")


# -- the indices behind the alias ----------------------------------------------------------------------------


def open_indices(server):
    cfg = ElasticsearchConfig()
    return Indices(cfg, server.client(cfg), sleep=lambda s: None)


def test_the_current_index_is_the_write_index_of_the_alias():
    """While an alias points at two indices (a swap by hand, an older Kefu), writes go to the write index."""
    server = FakeServer()
    server.on("GET", ALIAS_PATH, (200, {"kefu-index-2": {"aliases": {"kefu": {}}},
                                        "kefu-index-1": {"aliases": {"kefu": {"is_write_index": True}}}}))  # fmt: skip
    indices = open_indices(server)
    assert indices.current() == "kefu-index-1" and indices.exists()


def test_a_rebuild_before_the_first_write_reports_nothing_and_sends_nothing_else():
    server = FakeServer()
    server.on("GET", ALIAS_PATH, (404, {"error": "alias [kefu] missing", "status": 404}))
    report = reindex.rebuild(open_indices(server))
    assert report == {"store": "elasticsearch", "alias": "kefu", "old_index": None, "new_index": None, "rows": 0}
    assert [(r.method, r.path) for r in server.requests] == [("GET", ALIAS_PATH)]


# -- rebuild --------------------------------------------------------------------------------------------------


def rebuild_server(reindex_answer):
    server = with_generation(FakeServer())
    server.on("GET", ALIAS_PATH, HAS_INDEX)
    server.on("GET", "/kefu-index-1/_mapping", mapping_of(SPEC))
    server.on("PUT", "/_index_template/kefu-template", (200, {"acknowledged": True}))
    server.on("PUT", "/kefu-index-[0-9]+", (200, {"acknowledged": True}))
    server.on("PUT", "/kefu-index-1/_block/write", (200, {"acknowledged": True}))
    server.on("POST", "/_reindex", reindex_answer)
    server.on("POST", "/kefu-index-[0-9]+/_count", (200, {"count": 7}))
    server.on("POST", "/_aliases", (200, {"acknowledged": True}))
    server.on("DELETE", "/kefu-index-[0-9]+", (200, {"acknowledged": True}))
    server.on("PUT", "/kefu-index-1/_settings", (200, {"acknowledged": True}))
    return server


def test_rebuild_copies_into_a_fresh_index_and_swaps_the_alias():
    server = rebuild_server((200, {"total": 7, "created": 7, "failures": [], "timed_out": False}))
    result = open_store(server).rebuild()
    new = result["new_index"]
    assert result["old_index"] == "kefu-index-1" and new.startswith("kefu-index-") and result["rows"] == 7
    [reindex] = server.sent("POST", "/_reindex")
    assert reindex.json == {"source": {"index": "kefu-index-1"}, "dest": {"index": new, "op_type": "create"}, "conflicts": "abort"}
    assert reindex.params == {"refresh": "true", "wait_for_completion": "true"}
    [swap] = server.sent("POST", "/_aliases")
    assert swap.json["actions"] == [{"add": {"index": new, "alias": "kefu", "is_write_index": True}},
                                    {"remove": {"index": "kefu-index-1", "alias": "kefu"}}]  # fmt: skip
    assert [r.path for r in server.sent("DELETE", ".*")] == ["/kefu-index-1"]


def rewrite_server(bulk):
    server = rebuild_server((200, {}))
    server.on("PUT", "/kefu-index-[0-9]+/_doc/meta%7Cindex_spec", (201, {"result": "created"}))
    server.on("PUT", "/_bulk", bulk)
    server.on("POST", "/kefu-index-[0-9]+/_refresh", (200, {}))
    return server


def test_rewrite_writes_a_fresh_index_for_the_new_spec_then_swaps_the_alias():
    """Re-embedding (kefu index rebuild): rows go into a new index made for the new models, never into the one
    searches read; the alias moves only when all are written."""
    server = rewrite_server(bulk_answer())
    new_spec = IndexSpec("v1", (VectorSpace("m", 2), VectorSpace("multi", 3, "all")))
    record, chunks = doc("a", 2, "h1")
    for c in chunks:
        c.vectors["multi"] = np.array([0.0, 1.0, 0.0], np.float32)
    result = open_store(server).rewrite(new_spec, iter([(record, chunks)]))
    new = result["new_index"]
    assert result["old_index"] == "kefu-index-1" and result["documents"] == 1
    [template] = server.sent("PUT", "/_index_template/kefu-template")
    props = template.json["template"]["mappings"]["properties"]
    assert props[FIELD]["dims"] == 2 and props[rq.vector_field("multi")]["dims"] == 3
    assert server.sent("PUT", "/kefu-index-1/_block/write")  # no ingest can slip in meanwhile
    [meta] = server.sent("PUT", f"/{new}/_doc/meta%7Cindex_spec")
    assert IndexSpec.from_dict(__import__("json").loads(meta.json["spec"])) == new_spec
    [rows] = server.sent("PUT", "/_bulk")
    assert {line["index"]["_index"] for line in rows.lines[::2]} == {new}
    assert rows.lines[1][rq.vector_field("multi")] == [0.0, 1.0, 0.0] and rows.lines[1][FIELD] == [1.0, 0.0]
    assert [line["index"]["_id"] for line in rows.lines[::2]][-1] == "document|a"  # the document row last
    [swap] = server.sent("POST", "/_aliases")
    assert swap.json["actions"][0] == {"add": {"index": new, "alias": "kefu", "is_write_index": True}}
    assert [r.path for r in server.sent("DELETE", ".*")] == ["/kefu-index-1"]


def test_after_a_rewrite_the_store_searches_the_fields_of_the_new_index():
    """The store read its vector fields from the old index; once the alias has moved it reads the new one's."""
    server = rewrite_server(bulk_answer())
    server.on("POST", "/_msearch", (200, {"responses": [{"hits": {"hits": []}}]}))
    store = open_store(server)
    assert store.vector_search(np.ones((1, 2), np.float32), 5, model="m") == [[]]
    new_spec = IndexSpec("v1", (VectorSpace("multi", 3),))
    record, chunks = doc("a", 1, "h1")
    chunks[0].vectors = {"multi": np.array([0.0, 1.0, 0.0], np.float32)}
    new = store.rewrite(new_spec, iter([(record, chunks)]))["new_index"]
    server.on("GET", ALIAS_PATH, (200, {new: {"aliases": {"kefu": {"is_write_index": True}}}}))
    server.on("GET", f"/{new}/_mapping", mapping_of(new_spec, new))
    assert store.vector_search(np.ones((1, 3), np.float32), 5, model="multi") == [[]]
    assert server.sent("POST", "/_msearch")[-1].lines[1]["knn"]["field"] == rq.vector_field("multi")


def test_a_failed_rewrite_changes_nothing():
    server = rewrite_server(bulk_answer({"chunk|a#1|h1": 400}))
    with pytest.raises(StoreError, match="could not be written.*nothing changed"):
        open_store(server).rewrite(SPEC, iter([doc("a", 2, "h1")]))
    assert not server.sent("POST", "/_aliases")
    [dropped] = server.sent("DELETE", ".*")
    assert dropped.path != "/kefu-index-1"
    [settings] = server.sent("PUT", "/kefu-index-1/_settings")
    assert settings.json == {"index.blocks.write": False}


def test_a_failed_rebuild_drops_the_new_index_and_reopens_the_old_one():
    server = rebuild_server((200, {"total": 7, "created": 5, "failures": [{"cause": {"type": "mapper_parsing_exception"}}]}))
    with pytest.raises(StoreError, match="copying kefu-index-1 into kefu-index-.* failed"):
        open_store(server).rebuild()
    assert not server.sent("POST", "/_aliases")
    [dropped] = server.sent("DELETE", ".*")
    assert dropped.path != "/kefu-index-1"
    [settings] = server.sent("PUT", "/kefu-index-1/_settings")
    assert settings.json == {"index.blocks.write": False}


def test_ingest_reports_a_document_the_cluster_rejected_as_failed_and_the_rest_as_indexed(server, embedder):
    """Through the real Indexer: a rejected chunk makes its document `failed` with the server's reason."""
    from ingest.documents import Chunk, Document
    from rag.analysis import Analyzer
    from rag.indexing import Indexer, index_spec
    from rag.vector_spaces import VectorSpaces

    spaces = VectorSpaces(embedder)
    server.on("POST", "/kefu/_count", (200, {"count": 0}))
    server.on("GET", "/kefu-index-1/_mapping", mapping_of(index_spec(spaces, Analyzer())))
    server.on("PUT", "/kefu/_doc/meta%7Cindex_spec", (201, {"result": "created"}))
    server.on("POST", "/kefu/_mget", mget_answer({}))
    server.on("POST", "/kefu/_delete_by_query", (200, {"deleted": 0, "failures": []}))
    good = Document("good", "good.md", "Good", "text", "x", chunks=[Chunk(0, "Refunds take five days.", "Refunds take five days.")])
    bad = Document("bad", "bad.md", "Bad", "text", "y", chunks=[Chunk(0, "Shipping is free.", "Shipping is free.")])
    bad_row = f"chunk|bad#0|{bad.content_hash[:16]}"
    server.on("PUT", "/_bulk", bulk_answer({bad_row: 400}, {bad_row: "mapper_parsing_exception"}))
    outcomes = Indexer(open_store(server), spaces, Analyzer()).index([good, bad])
    assert [(o.doc_id, o.status) for o in outcomes] == [("good", "indexed"), ("bad", "failed")]
    assert "mapper_parsing_exception" in outcomes[1].error
    recorded = server.sent("PUT", "/_bulk")[-1]
    assert [line["index"]["_id"] for line in recorded.lines[::2]] == ["document|good"]
