"""The embedded SQLite store: writes, replacement, deletion, search, FTS query safety."""

import sqlite3

import numpy as np
import pytest

from rag.errors import IndexMismatchError
from rag.sqlite_store import SQLiteStore, build_fts_query
from rag.store import ChunkRecord, DocumentRecord, IndexSpec, VectorSpace

SPEC = IndexSpec("v1", (VectorSpace("m", 4),))


def unit(*values):
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def doc(doc_id, chunks, content_hash="h1"):
    record = DocumentRecord(doc_id, f"{doc_id}.md", f"Title {doc_id}", "text", "en", content_hash)
    records = [
        ChunkRecord(f"{doc_id}#{i}", doc_id, i, text, terms, {"m": vector})
        for i, (text, terms, vector) in enumerate(chunks)
    ]
    return record, records


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "kb.sqlite3")
    s.claim(SPEC)
    yield s
    s.close()


def test_build_fts_query_quotes_every_term():
    assert build_fts_query(["refund", "polici"]) == '"refund" OR "polici"'
    assert build_fts_query(['a"b', "a\"b"]) == '"a""b"'
    assert build_fts_query([]) == ""


@pytest.mark.parametrize("hostile", ['refund"', "title:x", "退款政策?", "NEAR(a b)", "*", "AND OR NOT", '"', "^x", "a:b:c"])
def test_hostile_text_never_reaches_fts_syntax(store, hostile):
    from rag.analysis import Analyzer

    stored = "refund polici 退款 政策 titl x"
    store.replace_documents([doc("d", [("refund policy", stored, unit(1, 0, 0, 0))])])
    terms = Analyzer().query_terms(hostile)
    found = [chunk_id for chunk_id, _ in store.lexical_search(terms, 10)]  # never sqlite3.OperationalError
    assert found == (["d#0"] if set(terms) & set(stored.split()) else [])  # a term matches itself, nothing else
    # The raw string, quoted as one term, is a phrase of its words: it breaks nothing, and without words finds nothing.
    raw = [chunk_id for chunk_id, _ in store.lexical_search([hostile], 10)]
    assert raw in ([], ["d#0"]) and (raw == [] or any(ch.isalnum() for ch in hostile))


def test_lexical_search_ranks_by_bm25(store):
    store.replace_documents(
        [
            doc("a", [("", "refund refund polici", unit(1, 0, 0, 0))]),
            doc("b", [("", "ship polici cost", unit(0, 1, 0, 0))]),
        ]
    )
    hits = store.lexical_search(["refund", "polici"], 10)
    assert [h[0] for h in hits] == ["a#0", "b#0"]
    assert hits[0][1] > hits[1][1] > 0


def test_vector_search_is_exact(store):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.replace_documents([doc(f"d{i}", [("t", "x", vectors[i])]) for i in range(50)])
    query = unit(1, 2, 3, 4)
    [hits] = store.vector_search(query[None, :], 5, model="m")
    expected = np.argsort(-(vectors @ query))[:5]
    assert [h[0] for h in hits] == [f"d{i}#0" for i in expected]
    assert hits[0][1] == pytest.approx(float(vectors[expected[0]] @ query), abs=1e-6)


def test_zero_vectors_have_no_similarity(store):
    store.replace_documents([doc("zh", [("中文", "中文", np.zeros(4, dtype=np.float32))]), doc("en", [("x", "x", unit(1, 0, 0, 0))])])
    [hits] = store.vector_search(unit(1, 0, 0, 0)[None, :], 10, model="m")
    assert [h[0] for h in hits] == ["en#0"]
    assert store.similarities(unit(1, 0, 0, 0), ["zh#0", "en#0"], model="m") == {"en#0": pytest.approx(1.0)}


def test_replace_swaps_all_chunks_and_search_sees_only_the_new_ones(store):
    store.replace_documents([doc("a", [("old one", "old", unit(1, 0, 0, 0)), ("old two", "old", unit(1, 0, 0, 0))])])
    store.replace_documents([doc("a", [("new", "new", unit(0, 1, 0, 0))], content_hash="h2")])
    assert store.lexical_search(["old"], 10) == []
    assert [h[0] for h in store.lexical_search(["new"], 10)] == ["a#0"]
    assert store.content_hashes(["a", "missing"]) == {"a": "h2"}
    [info] = store.list_documents()
    assert info.chunks == 1
    [hits] = store.vector_search(unit(1, 0, 0, 0)[None, :], 10, model="m")
    assert len(hits) == 1  # the matrix cache was refreshed


def test_a_failed_write_leaves_the_store_as_it_was(store):
    store.replace_documents([doc("a", [("kept", "kept", unit(1, 0, 0, 0))])])
    good = doc("b", [("fine", "fine", unit(1, 0, 0, 0))])
    bad = doc("c", [("dup", "dup", unit(1, 0, 0, 0)), ("dup", "dup", unit(1, 0, 0, 0))])
    bad[1][1].chunk_id = bad[1][0].chunk_id  # a duplicate chunk id violates UNIQUE mid-write
    with pytest.raises(sqlite3.IntegrityError):
        store.replace_documents([good, bad])
    assert [d.doc_id for d in store.list_documents()] == ["a"]
    assert store.lexical_search(["fine"], 10) == []


def test_delete_documents(store):
    store.replace_documents([doc("a", [("x", "x", unit(1, 0, 0, 0))]), doc("b", [("y", "y", unit(0, 1, 0, 0))])])
    assert store.delete_documents(["a", "zzz"]) == 1
    assert [d.doc_id for d in store.list_documents()] == ["b"]
    assert store.lexical_search(["x"], 10) == []
    assert store.get_chunks(["a#0", "b#0"]).keys() == {"b#0"}


def test_term_statistics(store):
    store.replace_documents([doc("a", [("", "x y", unit(1, 0, 0, 0)), ("", "x", unit(1, 0, 0, 0))])])
    assert store.term_statistics(["x", "y", "z"]) == (2, {"x": 2, "y": 1, "z": 0})


def test_index_spec_mismatch_is_refused_until_the_store_is_emptied(store):
    store.replace_documents([doc("a", [("x", "x", unit(1, 0, 0, 0))])])
    other = IndexSpec("v1", (VectorSpace("other", 8),))
    with pytest.raises(IndexMismatchError, match="vectors of 'm'.*KEFU_EMBEDDING_MODEL.*kefu index rebuild"):
        store.claim(other)
    with pytest.raises(IndexMismatchError, match="text analysis.*kefu index rebuild"):
        store.claim(IndexSpec("v2", SPEC.spaces))
    store.delete_documents(["a"])
    store.claim(other)  # an empty store takes the new spec
    assert store.index_spec() is None  # (nothing stored yet under it)


def test_store_persists_and_migrates_once(tmp_path):
    path = tmp_path / "kb.sqlite3"
    s = SQLiteStore(path)
    s.claim(SPEC)
    s.replace_documents([doc("a", [("x", "x", unit(1, 0, 0, 0))])])
    s.close()
    again = SQLiteStore(path)
    assert [d.doc_id for d in again.list_documents()] == ["a"]
    assert again.index_spec() == SPEC
    assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_a_store_from_a_newer_kefu_is_refused(tmp_path):
    from rag.errors import StoreError

    path = tmp_path / "kb.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="newer Kefu"):
        SQLiteStore(path)


def test_a_store_from_before_labels_upgrades_in_place(tmp_path, monkeypatch):
    """m002 adds collection and audience to an existing store; its documents become default / public."""
    import rag.sqlite_store as sqlite_store

    path = tmp_path / "kb.sqlite3"
    monkeypatch.setattr(sqlite_store, "MIGRATIONS", sqlite_store.MIGRATIONS[:1])
    old = SQLiteStore(path)
    old.claim(SPEC)
    old._db.execute(
        "INSERT INTO documents (doc_id, source, title, kind, content_hash, chunk_count, created_at, updated_at)"
        " VALUES ('a', 'a.md', 'A', 'text', 'h1', 0, 'now', 'now')"
    )
    assert old._db.execute("PRAGMA user_version").fetchone()[0] == 1
    old.close()
    monkeypatch.undo()

    upgraded = SQLiteStore(path)
    assert upgraded._db.execute("PRAGMA user_version").fetchone()[0] == len(sqlite_store.MIGRATIONS) == 3
    [info] = upgraded.list_documents()
    assert (info.doc_id, info.collection, info.audience, info.content_hash) == ("a", "default", "public", "h1")
    upgraded.close()


def test_filters_restrict_candidates_before_ranking(store):
    from rag.store import SearchFilter

    record, chunks = doc("a", [("refund", "refund refund", unit(1, 0, 0, 0))])
    store.replace_documents([(record, chunks)])
    other, other_chunks = doc("b", [("refund", "refund", unit(0.9, 0.1, 0, 0))])
    other.collection, other.audience = "staff-notes", "internal"
    store.replace_documents([(other, other_chunks)])
    only_b = SearchFilter(collections=("staff-notes",))
    assert [c for c, _ in store.lexical_search(["refund"], 1, only_b)] == ["b#0"]  # not a's leftovers after top-1
    [hits] = store.vector_search(unit(1, 0, 0, 0)[None, :], 1, only_b, model="m")
    assert [c for c, _ in hits] == ["b#0"]
    assert store.lexical_search(["refund"], 10, SearchFilter(audiences=())) == []
    both = SearchFilter(audiences=("public", "internal")) & SearchFilter(audiences=("internal",), languages=("en",))
    assert both == SearchFilter(audiences=("internal",), languages=("en",))
    assert store.get_chunks(["b#0"])["b#0"].collection == "staff-notes"


def test_a_search_only_meets_vectors_of_its_own_model(tmp_path):
    """Two models' vectors of the same chunks live apart: each search reads its model's, another is refused."""
    from rag.errors import IndexMismatchError

    s = SQLiteStore(tmp_path / "kb.sqlite3")
    s.claim(IndexSpec("v1", (VectorSpace("m", 4), VectorSpace("multi", 4, "all"))))
    record = DocumentRecord("a", "a.md", "A", "text", "en", "h1")
    chunks = [ChunkRecord("a#0", "a", 0, "x", "x", {"m": unit(1, 0, 0, 0), "multi": unit(0, 1, 0, 0)}),
              ChunkRecord("a#1", "a", 1, "y", "y", {"m": unit(0, 1, 0, 0)})]  # fmt: skip
    s.replace_documents([(record, chunks)])
    [by_m] = s.vector_search(unit(0, 1, 0, 0)[None, :], 5, model="m")
    [by_multi] = s.vector_search(unit(0, 1, 0, 0)[None, :], 5, model="multi")
    assert [c for c, _ in by_m] == ["a#1", "a#0"] and by_m[1][1] == pytest.approx(0.0, abs=1e-6)
    assert by_multi == [("a#0", pytest.approx(1.0))]  # a#1 has no vector of "multi"
    with pytest.raises(IndexMismatchError, match="no vectors of 'another'.*kefu index rebuild"):
        s.vector_search(unit(1, 0, 0, 0)[None, :], 5, model="another")
    [(_, exported)] = list(s.export_documents())
    assert set(exported[0].vectors) == {"m", "multi"} and set(exported[1].vectors) == {"m"}
    s.close()


def test_a_store_from_before_vector_spaces_upgrades_in_place(tmp_path, monkeypatch):
    """m003 moves each chunk's `embedding` under the model its spec names (zero vectors are no vectors) and
    records the spec in layout 2, so the same configuration keeps working without re-embedding."""
    import json

    import rag.sqlite_store as sqlite_store

    path = tmp_path / "kb.sqlite3"
    monkeypatch.setattr(sqlite_store, "MIGRATIONS", sqlite_store.MIGRATIONS[:2])
    old = SQLiteStore(path)
    old._db.execute("INSERT INTO meta (key, value) VALUES ('index_spec', ?)",
                    (json.dumps({"embedding_model": "m", "dimension": 4, "analysis": "v1"}),))  # fmt: skip
    old._db.execute("INSERT INTO documents (doc_id, source, title, kind, content_hash, chunk_count, created_at, updated_at)"
                    " VALUES ('a', 'a.md', 'A', 'text', 'h1', 2, 'now', 'now')")  # fmt: skip
    for rowid, vector in ((1, unit(1, 0, 0, 0)), (2, np.zeros(4, np.float32))):
        old._db.execute("INSERT INTO chunks (id, chunk_id, doc_id, ord, text, embedding) VALUES (?, ?, 'a', ?, 't', ?)",
                        (rowid, f"a#{rowid - 1}", rowid - 1, vector.tobytes()))  # fmt: skip
        old._db.execute("INSERT INTO chunks_fts (rowid, terms) VALUES (?, 't')", (rowid,))
    old.close()
    monkeypatch.undo()

    upgraded = SQLiteStore(path)
    assert upgraded.index_spec() == SPEC  # layout 2 now
    [hits] = upgraded.vector_search(unit(1, 0, 0, 0)[None, :], 5, model="m")
    assert hits == [("a#0", pytest.approx(1.0))]
    assert "embedding" not in {row[1] for row in upgraded._db.execute("PRAGMA table_info(chunks)")}
    upgraded.close()
