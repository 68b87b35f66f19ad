"""Agent assist (`app.desk.assist`), insights (`app.desk.insights`) and the warm-up (`app.warmup`) on the real service over the
sample knowledge base: a suggested reply answers the customer's latest question in context and is never stored; an
answer saved as FAQ answers the next identical question in `faq` mode; the insights count what happened."""

import shutil

import pytest

from app.access.auth import operator_as
from app.answering.rules import MODE_FAQ
from app.services import KefuService


@pytest.fixture(scope="module")
def service(kb_home, tmp_path_factory):
    """One service for the module, over a private copy of the ingested knowledge base (save-as-FAQ writes to it)."""
    from app.settings import load_settings

    home = tmp_path_factory.mktemp("assist") / "home"
    shutil.copytree(kb_home, home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEFU_HOME", str(home))
        patch.setenv("KEFU_DATABASE_URL", f"sqlite:///{home / 'assist.db'}")
        settings = load_settings()
    s = KefuService(settings)
    yield s
    s.close()


def test_a_suggested_reply_answers_the_latest_question_in_context_and_is_not_stored(service):
    sid = service.ask("How long do I have to return an item?").session_id
    service.ask("and opened headphones?", sid)
    service.request_human(sid)
    before = service.history(sid)
    draft = service.suggest_reply(sid)
    assert draft.question == "and opened headphones?"  # the latest question, not the request for a person
    assert "return" in draft.answer.query.lower() and "headphones" in draft.answer.query.lower()
    assert draft.answer.mode in ("extractive", "faq") and draft.answer.sources
    # The draft is in the agent's voice: no "Here is what I found", no [n] the customer cannot open.
    assert draft.draft and "[1]" not in draft.draft and "Here is what I found" not in draft.draft
    if draft.answer.mode == "extractive":
        assert f"({draft.answer.sources[0]['title']})" in draft.draft
    assert service.history(sid) == before
    empty = service.components.sessions.open(None)
    with pytest.raises(Exception, match="nothing to draft"):
        service.suggest_reply(empty)


def test_an_answer_saved_as_faq_answers_the_next_identical_question(service):
    question = "Can I pick up my order at the Shanghai flagship store?"
    first = service.ask(question)
    assert first.mode != MODE_FAQ
    answer = "Yes: choose Store pickup at checkout; orders are ready within 2 hours."
    saved = service.save_faq(question, answer, actor=operator_as("anna"))
    assert saved.entries == 1 and not saved.replaced and saved.doc_id
    again = service.ask(question)
    assert again.mode == MODE_FAQ and again.answer == answer
    assert again.sources[0]["title"] == "FAQ: Agent answers"
    # Saved again with another answer: replaced, not duplicated.
    changed = service.save_faq("  can I pick up my order at the shanghai flagship store? ", "No, not yet.", actor=operator_as("bob"))
    assert changed.entries == 1 and changed.replaced
    assert service.ask(question).answer == "No, not yet."
    documents = [d for d in service.documents() if d.doc_id == saved.doc_id]
    assert len(documents) == 1 and documents[0].chunks == 1
    with pytest.raises(Exception, match="answer is empty"):
        service.save_faq(question, "  ", actor=operator_as("anna"))


def test_an_answer_saved_as_faq_closes_the_knowledge_gap_it_answers(service, monkeypatch):
    from conftest import kefu_json

    monkeypatch.setenv("KEFU_HOME", str(service.settings.core.home))  # `kefu gaps` on this service's data
    monkeypatch.setenv("KEFU_DATABASE_URL", service.settings.database_url)
    for question in ("Do you sell gift wrapping paper?", "do you sell gift wrapping paper", "Can I buy a drone from you?"):
        assert service.ask(question).mode == "abstain"

    def open_gaps() -> dict[str, int]:
        return {g["question"].lower().rstrip("?"): g["count"] for g in kefu_json("gaps")["gaps"]}

    assert open_gaps() == {"do you sell gift wrapping paper": 2, "can i buy a drone from you": 1}
    saved = service.save_faq("Do you sell gift-wrapping paper?", "Yes: add gift wrapping at checkout for $3.",
                             actor=operator_as("anna"))  # fmt: skip
    assert saved.gaps_closed == 2  # both wordings of that gap, and not the other one
    assert open_gaps() == {"can i buy a drone from you": 1}
    closed = [g for g in service.components.feedback.gaps(closed=True) if g.question.lower().startswith("do you sell")]
    assert len(closed) == 2  # kept, marked answered
    assert service.ask("Do you sell gift wrapping paper?").mode == MODE_FAQ  # the next customer gets the answer


def test_insights_count_conversations_modes_handoffs_latency_and_feedback(database_url):
    from app.db.database import Database
    from app.dialogue.feedback import FeedbackStore
    from app.desk.insights import compute
    from app.dialogue.sessions import NewMessage, SessionStore

    db = Database(database_url)
    sessions, feedback = SessionStore(db), FeedbackStore(db)
    latencies = [40, 10, 30, 20, 900]
    modes = ["faq", "extractive", "extractive", "abstain", "handoff"]
    answers = []
    for i, (latency, mode) in enumerate(zip(latencies, modes)):
        sid = sessions.open(None)
        sessions.add(sid, NewMessage("user", f"question {i}"))
        answers.append(sessions.add(sid, NewMessage("assistant", "…", mode, latency_ms=latency)))
        if mode == "handoff":
            sessions.transition(sid, "request", reason="requested")
            sessions.add(sid, NewMessage("agent", "Hello", author="anna"))  # agents' messages are not answers
    feedback.rate(answers[0].id, "up")
    feedback.rate(answers[1].id, "up")
    feedback.rate(answers[3].id, "down")
    figures = compute(db, days=7)
    assert figures.conversations == 5 and figures.handed_over == 1 and figures.handoff_rate == pytest.approx(0.2)
    assert figures.modes == {"extractive": 2, "faq": 1, "abstain": 1, "handoff": 1} and figures.answers == 5
    assert (figures.latency_p50_ms, figures.latency_p95_ms) == (30, 900)  # nearest rank of 10, 20, 30, 40, 900
    assert figures.feedback == {"up": 2, "down": 1}
    assert len(figures.per_day) == 7 and figures.per_day[-1][1] == 5 and sum(n for _, n in figures.per_day) == 5
    assert compute(db, days=7, today=__import__("datetime").date(2000, 1, 1)).conversations == 0
    db.close()


def test_the_warm_up_builds_what_answers_need_before_the_first_question(use_kb):
    service = KefuService()
    try:
        assert not service.components.built("embedder")
        warm = service.warm_up()
        assert service.warm_up() is warm  # once
        assert warm.wait(120) and warm.state == "ready", warm.error
        for name in ("analyzer", "embedder", "store", "database", "sessions", "intents", "answerer", "dialogue"):
            assert service.components.built(name), name
        assert service.conversations() == []  # it asked nothing in anyone's name
    finally:
        service.close()


def test_a_failing_warm_up_reports_the_problem(use_kb, monkeypatch):
    monkeypatch.setenv("KEFU_EMBEDDING_MODEL", "/nonexistent/model")
    service = KefuService()
    warm = service.warm_up()
    assert warm.wait(60) and warm.state == "failed" and "cannot load embedding model" in warm.error
    service.close()


def test_a_question_the_knowledge_base_cannot_answer_gets_an_empty_draft_and_the_closest_passages(service):
    sid = service.ask("Do you repair vintage typewriters from the 1920s?").session_id
    service.request_human(sid)
    suggestion = service.suggest_reply(sid)
    assert suggestion.answer.mode == "abstain"
    assert suggestion.draft == ""  # never the assistant's refusal as an agent's reply
    assert 1 <= len(suggestion.answer.sources) <= 3 and all(s["title"] for s in suggestion.answer.sources)


def test_the_offer_of_a_person_is_made_only_where_a_person_can_take_over(service):
    chat = service.ask("Do you repair vintage typewriters from the 1920s?")
    assert chat.mode == "abstain" and "human agent" in chat.answer  # a stored conversation: agents can take it
    [row] = service.ask_batch(["Do you repair vintage typewriters from the 1920s?"])
    assert row.mode == "abstain" and "human" not in row.answer and "kefu" not in row.answer.lower()
    held = service.components.dialogue.respond("Do you repair vintage typewriters from the 1920s?").finish()
    assert held.mode == "abstain" and "human" not in held.answer
