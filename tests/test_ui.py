"""The web app under Streamlit's AppTest: the real entry point and pages, the real service over a private copy of
the ingested sample knowledge base (one per module, built through the app's own `get_service`), real staff
accounts. Per page and role: who reaches what (and which service calls), sign-in, the rate limit, the chat, the
agent desk, save-as-FAQ, batch FAQ, the knowledge base with its retrieval test, insights and the team."""

from __future__ import annotations

import csv
import io
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "ui" / "streamlit_app.py"
PAGES = ROOT / "ui" / "app_pages"
PASSWORDS = {"anna": "anna's desk password", "root": "root's admin password", "locky": "locky's password"}


@pytest.fixture(scope="module")
def service(kb_home, tmp_path_factory):
    """The app's shared service (`ui.resources.get_service`), built once for this module."""
    from app.settings import load_settings
    from ui.resources import get_service

    home = tmp_path_factory.mktemp("ui") / "home"
    shutil.copytree(kb_home, home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEFU_HOME", str(home))
        patch.setenv("KEFU_DATABASE_URL", f"sqlite:///{home / 'ui.db'}")
        patch.setenv("KEFU_CRAWL_DELAY", "0")  # the website test crawls a local site: no politeness pause needed
        load_settings()
        get_service.clear()
        shared = get_service()
    shared.add_user("anna", "agent", PASSWORDS["anna"])
    shared.add_user("root", "admin", PASSWORDS["root"])
    shared.add_user("locky", "agent", PASSWORDS["locky"])
    yield shared
    get_service.clear()
    shared.close()


def run_app(page: str | None = None, **query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def sign_in(name: str, page: str = "app_pages/agent_desk.py", password: str | None = None) -> AppTest:
    at = run_app("app_pages/sign_in.py")
    at.text_input[0].input(name)
    at.text_input[1].input(password or PASSWORDS[name])
    at.button[0].click().run()
    assert not at.error, [e.value for e in at.error]
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def popovers(node) -> list[str]:
    return [b.proto.popover.label for b in node.get("popover")]


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


# -- who reaches what -------------------------------------------------------------------------------------


def registered(at: AppTest) -> set[str]:
    """The pages the navigation registered for this session: AppTest refuses to switch to any other. (Switching
    runs nothing; the test runs the page it wants next.)"""
    found = set()
    for name in ("chat", "sign_in", "agent_desk", "batch", "knowledge_base", "insights", "team"):
        try:
            at.switch_page(f"app_pages/{name}.py")
        except ValueError as exc:
            assert "Could not find a navigation page" in str(exc)
        else:
            found.add(name)
    return found


def test_navigation_offers_each_role_only_its_pages(service):
    assert registered(run_app()) == {"chat", "sign_in"}
    agent = sign_in("anna")
    assert titles(agent) == ["Agent desk"]
    assert registered(agent) == {"chat", "agent_desk", "batch"}
    admin = sign_in("root", "app_pages/insights.py")
    assert titles(admin) == ["Insights"]
    assert registered(admin) == {"chat", "agent_desk", "batch", "knowledge_base", "insights", "team"}
    admin.switch_page("app_pages/insights.py").run()
    assert "Signed in as **root** (admin)" in [m.value for m in admin.sidebar.markdown]
    button(admin, "Sign out").click().run()
    assert registered(admin) == {"chat", "sign_in"}


@pytest.mark.parametrize("page", ["agent_desk.py", "batch.py", "knowledge_base.py", "insights.py", "team.py"])
def test_staff_pages_stop_visitors_before_any_service_call(service, page, monkeypatch):
    """Each page checks the role itself, so a page reached without the navigation (or with a forged sign-in)
    stops before it calls the service; the calls themselves are refused by the gate (tests/test_access.py)."""
    from app.access.users import SignIn
    from app.db.schema import utcnow

    called = []
    for name in ("conversations", "suggest_reply", "batch_preview", "answer_upload", "stats", "documents",
                 "compare_rankings", "insights", "gaps", "ingest_uploads", "delete_documents", "generator_status"):  # fmt: skip
        monkeypatch.setattr(service, name, lambda *a, _name=name, **k: called.append(_name))
    sid = service.components.sessions.open(None, owner="anon:someone")
    forged = SignIn(user_id=999, name="root", role="admin", expires_at=utcnow() + timedelta(hours=1), session="made-up")
    for state in ({}, {"kefu_sign_in": forged}):
        at = AppTest.from_file(str(PAGES / page), default_timeout=60)
        at.query_params["c"] = sid  # a customer holding a conversation is still a customer
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
        assert not at.exception
        assert at.error and "Sign in with such an account" in at.error[0].value
        assert not at.text_area and not at.file_uploader and not at.dataframe
    assert called == []


def test_sign_in_wrong_password_rate_limit_and_expiry(service):
    at = run_app("app_pages/sign_in.py")
    at.text_input[0].input("locky")
    at.text_input[1].input("not the password")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["wrong user name or password"]
    for _ in range(service.settings.auth.login_max_failures - 1):
        at.text_input[1].input("still not it")
        at.button[0].click().run()
    at.text_input[1].input(PASSWORDS["locky"])
    at.button[0].click().run()
    assert "too many failed sign-ins for 'locky'" in at.error[0].value
    assert "kefu_sign_in" not in at.session_state and registered(at) == {"chat", "sign_in"}
    # Another account still signs in; its sign-in ends when it expires.
    desk = sign_in("anna")
    expired = desk.session_state["kefu_sign_in"]
    desk.session_state["kefu_sign_in"] = type(expired)(expired.user_id, expired.name, expired.role,
                                                       expired.expires_at - timedelta(days=1))  # fmt: skip
    desk.run()
    assert titles(desk) != ["Agent desk"] and registered(desk) == {"chat", "sign_in"}
    assert any("sign-in has expired" in w.value for w in desk.warning)


# -- customers ---------------------------------------------------------------------------------------------


def test_chat_cites_rates_hands_over_and_survives_a_reload(service, monkeypatch):
    from ui import session

    browser = {session.VISITOR_COOKIE: service.new_web_visitor()}  # what the web app's server gave this browser
    monkeypatch.setattr(session, "cookies", lambda: browser)
    at = ask(run_app(), "How long do I have to return an item?")
    sid = at.query_params["c"]
    assert sid and [m.name for m in at.chat_message] == ["user", "assistant"]
    answer = at.chat_message[1]
    assert "30 days" in answer.markdown[0].value
    chips = popovers(answer)
    assert chips and chips[0] == "[1] Return window"  # named by the passage's section
    assert any(m.value.startswith("**[1] Returns and Refunds Policy**") for m in answer.markdown)  # the passage
    assert any(c.value.startswith("Quoted from the knowledge base") for c in answer.caption)
    at.feedback[0].set_value(0).run()  # 👎
    message_id = service.history(sid)[-1].id
    assert service.ratings(sid) == {message_id: "down"}
    assert service.gaps()[0].question == "How long do I have to return an item?"

    button(at, "Talk to a person").click().run()
    assert service.conversation(sid).status == "waiting_agent"
    assert "number 1 in the queue" in at.info[0].value or "in the queue" in at.info[0].value

    reloaded = run_app(c=sid)  # a new page session of the same browser, with the link
    assert [m.name for m in reloaded.chat_message] == ["user", "assistant", "assistant"]
    assert reloaded.feedback[0].value == 0  # the rating, from the database
    for link in (sid, "0" * 32):  # another browser with the link, or a made-up one: nothing of it
        browser[session.VISITOR_COOKIE] = service.new_web_visitor()
        stranger = run_app(c=link)
        assert "not valid" in stranger.info[0].value and not stranger.chat_message
    assert len(service.history(sid)) == 3


def test_the_interface_follows_the_language_choice(service):
    at = run_app()
    at.sidebar.selectbox[0].select("zh").run()
    assert titles(at) == ["客服助手 Kefu"]
    assert [b.label for b in at.button][:2] == ["转人工客服", "新对话"]
    ask(at, "我有多长时间可以退货？")
    assert "30 天" in at.chat_message[1].markdown[0].value
    assert any(c.value.startswith("摘自知识库") for c in at.chat_message[1].caption)


# -- agents ------------------------------------------------------------------------------------------------


def test_an_agents_reply_reaches_the_customers_chat(service):
    customer = ask(run_app(), "Do you ship to Hong Kong?")
    sid = customer.query_params["c"]
    button(customer, "Talk to a person").click().run()

    desk = sign_in("anna")
    queued = [b for b in desk.button if b.key == f"queue-{sid}"]
    assert queued and "Do you ship to Hong Kong" in queued[0].label
    queued[0].click().run()
    assert f"Conversation {sid[:8]}" in [s.value for s in desk.subheader]
    status = next(c.value for c in desk.caption if "handed over because" in c.value)
    assert status.startswith("Waiting for an agent for ") and "the customer asked for a person" in status
    transcript = " ".join(m.value for m in desk.markdown)
    assert "**Customer**" in transcript and "Handed over to a human agent" in transcript
    assert "waiting\\_agent" not in transcript + status and "mode handoff" not in transcript
    draft = next(t for t in desk.text_area if t.label == "Your reply")
    assert "Hong Kong" in draft.value  # the suggested reply, from the knowledge base
    assert service.history(sid)[-1].role == "assistant"  # a draft is not a message
    draft.input("Hi, Anna here: yes, we ship to Hong Kong in 5-10 business days.")
    button(desk, "Send").click().run()
    assert "Sent" in desk.success[0].value
    assert any(c.value.startswith("With anna for ") for c in desk.caption)

    customer.run()  # what the transcript's timed refresh does
    last = customer.chat_message[-1]
    assert last.name == "agent" and "Anna here" in last.markdown[0].value
    assert "anna (support agent)" in last.caption[0].value
    assert "anna from our support team is with you" in customer.success[0].value
    button(desk, "Mark resolved").click().run()
    assert service.conversation(sid).status == "resolved"


def test_save_as_faq_answers_the_next_identical_question_from_the_faq(service):
    question = "Can I collect my order at the Shenzhen pop-up store?"
    customer = ask(run_app(), question)
    assert any(c.value.startswith("No answer found") for c in customer.chat_message[1].caption)
    sid = customer.query_params["c"]
    button(customer, "Talk to a person").click().run()

    desk = sign_in("anna")
    next(b for b in desk.button if b.key == f"queue-{sid}").click().run()
    reply = next(t for t in desk.text_area if t.label == "Your reply")
    reply.input("Yes: choose pickup at the Shenzhen pop-up store at checkout.")
    button(desk, "Send").click().run()
    assert next(t for t in desk.text_input if t.label == "Customer's question").value == question
    assert next(t for t in desk.text_area if t.label == "Answer").value.startswith("Yes: choose pickup")
    def gap_questions() -> set[str]:
        return {q for g in service.gaps(limit=1000) for q in [g.question, *g.examples]}

    assert question in gap_questions()  # the abstention was recorded as a knowledge gap
    insights = sign_in("root", "app_pages/insights.py")
    assert question in set(insights.dataframe[0].value["question"])
    button(desk, "Save as FAQ").click().run()
    assert "Saved as an FAQ entry" in desk.success[0].value and "knowledge gap record" in desk.success[0].value
    assert question not in gap_questions()  # answered: the gap is closed, so Insights and `kefu gaps` drop it
    insights.run()
    assert not insights.dataframe or question not in set(insights.dataframe[0].value["question"])

    next_customer = ask(run_app(), question)
    answer = next_customer.chat_message[1]
    assert answer.markdown[0].value == "Yes: choose pickup at the Shenzhen pop-up store at checkout."
    assert any(c.value.startswith("Answered from the FAQ") for c in answer.caption)


def test_the_batch_page_answers_a_sheet_and_offers_the_file(service):
    sheet = "Frage,Kunde\nHow much does shipping cost?,A-1\n,A-2\n我有多长时间可以退货？,A-3\n".encode()
    at = sign_in("anna", "app_pages/batch.py")
    at.file_uploader[0].set_value(("questions.csv", sheet, "text/csv")).run()
    assert not at.exception, at.exception
    next(s for s in at.selectbox if s.label == "Question column").select("Frage").run()
    button(at, "Answer 3 questions").click().run()
    assert not at.exception, at.exception
    assert "3 rows answered" in at.success[0].value and "1 with an error" in at.success[0].value
    assert at.download_button[0].label == "Download questions-answers.csv"
    result = at.session_state["kefu_batch_result"][1]
    rows = list(csv.DictReader(io.StringIO(result.data.decode("utf-8-sig"))))
    assert [r["Kunde"] for r in rows] == ["A-1", "A-2", "A-3"]
    assert rows[0]["mode"] == "faq" and "4.99" in rows[0]["answer"]
    assert rows[1]["error"] == "empty question" and "30 天" in rows[2]["answer"]


# -- admins ------------------------------------------------------------------------------------------------


def test_the_knowledge_base_page_uploads_tests_retrieval_and_deletes(service):
    at = sign_in("root", "app_pages/knowledge_base.py")
    documents, chunks = int(at.metric[0].value), int(at.metric[1].value)
    upload = "# Store hours\n\nThe Shanghai flagship store opens from 10:00 to 21:30 every day.\n".encode()
    at.file_uploader[0].set_value(("store-hours.md", upload, "text/markdown")).run()
    button(at, "Index these files").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith("1 indexed, 0 unchanged, 0 failed")
    assert list(at.dataframe[0].value["file"]) == ["upload/store-hours.md"]  # the per-file result
    assert int(at.metric[0].value) == documents + 1 and int(at.metric[1].value) == chunks + 1  # fresh at once

    next(t for t in at.text_input if t.label == "Query").input("When does the Shanghai store close?")
    next(b for b in at.button if b.label == "Search").click().run()
    assert [s.value for s in at.subheader][-3:] == ["BM25", "Dense (embeddings)", "Fused (RRF)"]
    hits = [m.value for m in at.markdown if m.value.startswith("**1. ")]
    assert len(hits) == 3 and all("Store hours" in h for h in hits)
    rankings = service.compare_rankings("When does the Shanghai store close?", 5)
    for column, mode in zip(at.columns[-3:], ("lexical", "dense", "hybrid")):
        scores = [c.value for c in column.caption]
        kind = rankings[mode][0].score_kind  # dense over two vector spaces is fused too: an RRF value
        assert scores and all(line.startswith(f"{kind} ") for line in scores), (mode, scores)
        first = rankings[mode][0]
        assert scores[0].startswith(f"{kind} {first.score:.4f}".replace(".", "\\."))
    assert rankings["dense"][0].score_kind == "rrf"  # the sample store has MiniLM and multilingual-e5 vectors

    table = at.dataframe[0].value
    store_hours = table.loc[table["title"] == "Store hours", "id"].iloc[0]
    at.multiselect[0].select(store_hours).run()
    button(at, "Delete 1 document").click().run()
    assert not at.exception and int(at.metric[0].value) == documents
    assert "Store hours" not in set(at.dataframe[0].value["title"])


def test_the_knowledge_base_page_adds_resyncs_and_removes_a_website_whose_pages_answers_link_to(service):
    from web_site import Site, article

    with Site() as site:
        site.page("/help/", article("Acme help", "Welcome to the help centre.", ["/help/kettles"]))
        site.page("/help/kettles", article("Kettle warranty", "Every Acme kettle carries a seven-year warranty on its "
                                           "heating element."), etag='"k1"')  # fmt: skip
        at = sign_in("root", "app_pages/knowledge_base.py")
        next(t for t in at.text_input if t.label == "Website address").input(site.url + "/help/")
        button(at, "Crawl and index").click().run()
        assert not at.exception, at.exception
        assert at.success[0].value.startswith("2 indexed, 0 unchanged, 0 failed")
        assert set(at.dataframe[0].value["page"]) == {site.url + "/help/", site.url + "/help/kettles"}
        (kept,) = service.sites()
        assert kept.url == site.url + "/help/" and kept.added_by == "root"

        at.run()  # the kept site is listed; re-syncing writes nothing
        assert list(next(d for d in at.dataframe if "site" in d.value.columns).value["site"]) == [site.url + "/help/"]
        button(at, "Re-sync").click().run()
        assert not at.exception and at.success[0].value.startswith("0 indexed, 2 unchanged, 0 failed")

        # A customer's answer cites the page, and its chip opens it.
        chat = ask(run_app(), "How long is the warranty on a kettle's heating element?")
        links = [b.proto.url for b in chat.get("link_button")]
        assert site.url + "/help/kettles" in links

        at = sign_in("root", "app_pages/knowledge_base.py")
        button(at, "Remove the site and its pages").click().run()
        assert not at.exception and service.sites() == []
        assert not any(d.source.startswith(site.url) for d in service.documents())


def test_the_insights_page_shows_what_happened(service):
    figures = service.insights(30)
    at = sign_in("root", "app_pages/insights.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Conversations"] == str(figures.conversations) and figures.conversations >= 1
    assert metrics["Latency p50"] == f"{figures.latency_p50_ms} ms"
    assert metrics["Handed to a person"] == f"{figures.handoff_rate:.0%}"
    assert [s.value for s in at.subheader] == ["Conversations per day", "Answers by mode", "Feedback", "Top knowledge gaps"]
    gaps = at.dataframe[0].value
    assert len(gaps) == len(service.gaps(limit=10)) >= 1


def test_the_team_page_adds_and_disables_accounts(service):
    at = sign_in("root", "app_pages/team.py")
    next(t for t in at.text_input if t.label == "User name").input("bea")
    next(t for t in at.text_input if t.label.startswith("Password")).input("bea's password")
    next(b for b in at.button if b.label == "Add").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "bea" in set(at.dataframe[0].value["name"])
    next(s for s in at.selectbox if s.label == "Account").select("bea").run()
    button(at, "Disable bea").click().run()
    assert service.components.users.get("bea").disabled


# -- languages ---------------------------------------------------------------------------------------------

CJK = re.compile(r"[\u4e00-\u9fff]")
# Not the interface's words: figures and icons, names, file formats, scores (`bm25 3.4`), document titles (numbered).
NOT_WORDS = re.compile(r"^[\d\W_]*$|^(BM25|Kefu|CSV|XLSX|anna|root|locky|bea)$|^(bm25|rrf) [\d\\.]+$|^\\?\[\d+\\?\] ")


def english_left(at: AppTest) -> list[str]:
    """The page's own words (titles, headings, labels, captions, tabs, table headings) that are not Chinese."""
    texts = [e.value for kind in ("title", "subheader", "caption", "info") for e in at.get(kind)]
    texts += [e.label for kind in ("button", "text_input", "text_area", "selectbox", "multiselect", "slider", "metric",
                                   "checkbox", "radio", "file_uploader", "tab", "expander", "download_button") for e in at.get(kind)]  # fmt: skip
    texts += [str(c) for frame in at.dataframe for c in frame.value.columns]
    return [text for text in texts if text and not CJK.search(text) and not NOT_WORDS.match(text.strip())]


@pytest.mark.parametrize("page", ["agent_desk.py", "batch.py", "knowledge_base.py", "insights.py", "team.py"])
def test_every_staff_page_speaks_chinese_too(service, page):
    at = sign_in("root", f"app_pages/{page}")
    at.sidebar.selectbox[0].select("zh").run()
    assert not at.exception, at.exception
    if page == "knowledge_base.py":
        next(t for t in at.text_input if t.label == "查询").input("退货")
        next(b for b in at.button if b.label == "搜索").click().run()
        assert [s.value for s in at.subheader][-3:] == ["BM25", "向量（嵌入）", "融合（RRF）"]
    if page == "agent_desk.py":  # a conversation open, with its status in words
        sid = ask(run_app(), "我要转人工").query_params["c"]
        at.run()
        next(b for b in at.button if b.key == f"queue-{sid}").click().run()
        assert any(c.value.startswith("等待人工接入，已 ") for c in at.caption)
    assert titles(at) and CJK.search(titles(at)[0])
    assert english_left(at) == []
    assert "已登录：**root**（管理员）" in [m.value for m in at.sidebar.markdown]
