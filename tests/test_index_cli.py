"""Collections, audiences, filters and index maintenance through the `kefu` CLI on the real SQLite store and
the real embedding model: `ingest --collection/--audience`, `search --collection/--audience/--language`,
answers limited to KEFU_ANSWER_AUDIENCES, and `kefu index export | import | rebuild`."""

import json

import pytest

from tests.conftest import KB, kefu, kefu_json


@pytest.fixture
def labelled(tmp_path):
    """A public policy in the `shop` collection and an internal note in `staff`."""
    public = tmp_path / "public"
    public.mkdir()
    (public / "returns.md").write_text("# Returns\n\nYou may return any item within 30 days of delivery for a refund.\n")
    internal = tmp_path / "internal"
    internal.mkdir()
    (internal / "escalation.md").write_text(
        "# Refund escalation\n\nAgents may approve a refund after 45 days when the customer is a gold member.\n"
    )
    kefu("ingest", str(public), "--collection", "shop")
    kefu("ingest", str(internal), "--collection", "staff", "--audience", "internal")
    return tmp_path


def test_labels_are_stored_listed_and_filter_searches(labelled):
    docs = {d["title"]: d for d in kefu_json("docs", "list")["documents"]}
    assert (docs["Returns"]["collection"], docs["Returns"]["audience"]) == ("shop", "public")
    assert (docs["Refund escalation"]["collection"], docs["Refund escalation"]["audience"]) == ("staff", "internal")
    assert kefu_json("docs", "list")["stats"]["collections"] == {"shop": 1, "staff": 1}
    assert "[staff/internal]" in kefu("docs", "list")

    everything = {h["title"] for h in kefu_json("search", "refund", "-k", "5")["results"]}
    assert everything == {"Returns", "Refund escalation"}
    for mode in ("lexical", "dense", "hybrid"):
        staff = kefu_json("search", "refund", "-k", "5", "--collection", "staff", "--mode", mode)["results"]
        assert {h["title"] for h in staff} == {"Refund escalation"}, mode
    public = kefu_json("search", "refund", "-k", "5", "--audience", "public")["results"]
    assert {h["title"] for h in public} == {"Returns"}
    assert kefu_json("search", "refund", "-k", "5", "--language", "zh")["results"] == []


def test_answers_quote_only_the_audiences_customers_may_see(labelled, monkeypatch, tmp_path):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path / 'sessions.db'}")
    answer = kefu_json("ask", "Can agents approve a refund for gold members after 45 days?")
    assert all("escalation" not in s["source"] for s in answer["sources"])
    assert "45 days" not in answer["answer"]
    monkeypatch.setenv("KEFU_ANSWER_AUDIENCES", "public,internal")
    answer = kefu_json("ask", "Can agents approve a refund for gold members after 45 days?")
    assert answer["sources"] and answer["sources"][0]["source"].endswith("escalation.md")


def test_moving_a_document_to_another_collection_rewrites_it(labelled):
    again = kefu_json("ingest", str(labelled / "public"), "--collection", "shop")
    assert again["files"][0]["status"] == "unchanged"
    moved = kefu_json("ingest", str(labelled / "public"), "--collection", "archive")
    assert moved["files"][0]["status"] == "indexed"
    assert {d["collection"] for d in kefu_json("docs", "list")["documents"]} == {"archive", "staff"}


@pytest.mark.parametrize("option", ["--collection", "--audience"])
def test_a_bad_label_is_a_clear_error(tmp_path, option):
    out = kefu("ingest", str(KB / "faq.csv"), option, "two words", expect=1)
    assert "name 'two words' is not allowed" in out and "Traceback" not in out


def test_export_then_import_into_a_new_store_gives_the_same_answers(labelled, tmp_path, monkeypatch):
    out = tmp_path / "exports" / "kb.jsonl"
    exported = kefu_json("index", "export", str(out))
    assert exported["documents"] == 2 and exported["chunks"] >= 2 and out.is_file()
    lines = out.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "kefu-index" and len(lines) == 3
    before = kefu_json("search", "refund", "-k", "5")["results"]

    monkeypatch.setenv("KEFU_HOME", str(tmp_path / "other-home"))
    imported = kefu_json("index", "import", str(out))
    assert (imported["indexed"], imported["unchanged"], imported["failed"]) == (2, 0, [])
    after = kefu_json("search", "refund", "-k", "5")["results"]
    assert [(h["chunk_id"], h["score"], h["similarity"]) for h in after] == [
        (h["chunk_id"], h["score"], h["similarity"]) for h in before
    ]
    assert {(d["collection"], d["audience"]) for d in kefu_json("docs", "list")["documents"]} == {
        ("shop", "public"), ("staff", "internal")
    }  # fmt: skip
    again = kefu_json("index", "import", str(out))
    assert (again["indexed"], again["unchanged"]) == (0, 2)
    assert "2 documents in" in kefu("index", "import", str(out))


def test_a_broken_export_is_refused_with_its_line_and_nothing_is_written(labelled, tmp_path, monkeypatch):
    good = tmp_path / "kb.jsonl"
    kefu("index", "export", str(good))
    header, first, second = good.read_text().splitlines()
    broken_chunk = json.loads(second)
    broken_chunk["chunks"][0]["vectors"] = {"sentence-transformers/all-MiniLM-L6-v2": [0.5, 0.5]}  # wrong dimension
    cases = {
        "not-json.jsonl": [header, first, "{nope"],
        "bad-vector.jsonl": [header, first, json.dumps(broken_chunk)],
        "twice.jsonl": [header, first, first],
        "no-header.jsonl": [first, second],
    }
    monkeypatch.setenv("KEFU_HOME", str(tmp_path / "target"))
    kefu("ingest", str(KB / "faq.csv"))
    stored = kefu_json("docs", "list")["documents"]
    messages = {}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_text("\n".join(content) + "\n")
        messages[name] = kefu("index", "import", str(path), expect=1)
    assert "not-json.jsonl line 3: not valid JSON" in messages["not-json.jsonl"]
    assert "bad-vector.jsonl line 3: chunk" in messages["bad-vector.jsonl"] and "384 numbers" in messages["bad-vector.jsonl"]
    assert "twice.jsonl line 3: document" in messages["twice.jsonl"] and "appears twice" in messages["twice.jsonl"]
    assert "is not a Kefu index export" in messages["no-header.jsonl"]
    assert all("nothing was imported" in m for n, m in messages.items() if n != "no-header.jsonl")
    assert kefu_json("docs", "list")["documents"] == stored  # untouched
    assert "does not exist" in kefu("index", "import", str(tmp_path / "missing.jsonl"), expect=1)


def test_an_export_from_another_embedding_model_is_refused(labelled, tmp_path, monkeypatch):
    path = tmp_path / "kb.jsonl"
    kefu("index", "export", str(path))
    header, *rest = path.read_text().splitlines()
    meta = json.loads(header)
    meta["index_spec"]["spaces"][0]["model"] = "BAAI/bge-m3"
    path.write_text("\n".join([json.dumps(meta), *rest]) + "\n")
    monkeypatch.setenv("KEFU_HOME", str(tmp_path / "target"))
    out = kefu("index", "import", str(path), expect=1)
    assert "exported with 'BAAI/bge-m3'" in out and "set KEFU_EMBEDDING_MODEL" in out
    assert kefu_json("docs", "list")["documents"] == []


def test_an_export_of_the_first_format_is_still_read(labelled, tmp_path, monkeypatch):
    """Version 1 (one `embedding` per chunk, from the spec's one model) imports into a store configured with that
    model alone, vectors and all."""
    monkeypatch.setenv("KEFU_MULTILINGUAL_MODEL", "none")
    monkeypatch.setenv("KEFU_HOME", str(tmp_path / "main-only"))
    kefu("ingest", str(labelled / "public"), "--collection", "shop")
    path = tmp_path / "v2.jsonl"
    kefu("index", "export", str(path))
    header, *rest = [json.loads(line) for line in path.read_text().splitlines()]
    [space] = header["index_spec"]["spaces"]
    old = [{"format": "kefu-index", "version": 1,
            "index_spec": {"embedding_model": space["model"], "dimension": space["dimension"], "analysis": header["index_spec"]["analysis"]}}]  # fmt: skip
    for line in rest:
        for chunk in line["chunks"]:
            chunk["embedding"] = chunk.pop("vectors").get(space["model"])
        old.append(line)
    v1 = tmp_path / "v1.jsonl"
    v1.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in old))
    monkeypatch.setenv("KEFU_HOME", str(tmp_path / "target"))
    assert kefu_json("index", "import", str(v1))["indexed"] == len(rest)
    hits = kefu_json("search", "refund", "-k", "1", "--mode", "dense")["results"]
    assert hits and hits[0]["similarity"] > 0.3


def test_rebuild_keeps_every_document_searchable(labelled):
    before = kefu_json("search", "refund", "-k", "5")["results"]
    result = kefu_json("index", "rebuild")
    assert result["store"] == "sqlite" and result["bytes_after"] > 0
    assert kefu_json("search", "refund", "-k", "5")["results"] == before
    assert "Rebuilt" in kefu("index", "rebuild")


def test_an_unreachable_elasticsearch_is_one_clear_line(monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("KEFU_STORE", "elasticsearch")
    monkeypatch.setenv("KEFU_ES_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("KEFU_ES_TIMEOUT", "2")
    out = kefu("docs", "list", expect=1)
    assert f"cannot reach Elasticsearch at http://127.0.0.1:{port}" in out and "KEFU_STORE=sqlite" in out
    assert "Traceback" not in out
