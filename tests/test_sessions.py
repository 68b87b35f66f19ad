"""Sessions in SQLAlchemy with Alembic migrations, and multi-turn dialogue through them."""

from sqlalchemy import inspect

from app.dialogue import handoff
from app.db.database import Database
from app.dialogue.sessions import NewMessage, SessionStore
from tests.conftest import kefu_json


def test_migrations_create_the_schema_and_messages_persist(tmp_path):
    url = f"sqlite:///{tmp_path / 'db' / 'kefu.db'}"
    db = Database(url)
    tables = set(inspect(db.engine).get_table_names())
    assert {"conversations", "messages", "feedback", "knowledge_gaps", "alembic_version"} <= tables
    store = SessionStore(db)
    sid = store.open(None)
    question = store.add(sid, NewMessage("user", "hello"))
    store.add(sid, NewMessage("assistant", "hi", mode="faq", sources=[{"doc_id": "d"}], latency_ms=5, reply_to=question.id))
    store.transition(sid, "request", reason=handoff.REASON_REQUESTED)
    db.close()

    reopened = SessionStore(Database(url))  # migrating again is a no-op
    history = reopened.messages(sid)
    assert [(m.role, m.content, m.mode) for m in history] == [("user", "hello", None), ("assistant", "hi", "faq")]
    assert history[1].sources == [{"doc_id": "d"}] and history[1].reply_to == history[0].id
    assert reopened.get(sid).status == handoff.WAITING
    assert reopened.open(sid) == sid


def test_a_conversation_is_stored_turn_by_turn(use_kb):
    from app.services import KefuService

    first = kefu_json("ask", "How much is shipping?", "--session", "chat-1")
    second = kefu_json("ask", "Can I pay with Alipay?", "--session", "chat-1")
    assert first["session_id"] == second["session_id"] == "chat-1"
    history = KefuService().history("chat-1")
    assert [t.role for t in history] == ["user", "assistant", "user", "assistant"]
    assert history[2].content == "Can I pay with Alipay?"
    assert history[1].mode == first["mode"] and history[1].sources == first["sources"]
    assert [history[1].id, history[3].id] == [first["message_id"], second["message_id"]]


def test_a_follow_up_uses_the_previous_question(use_kb):
    kefu_json("ask", "How long does the Lumen Watch S2 battery last?", "--session", "chat-2")
    follow_up = kefu_json("ask", "and with GPS?", "--session", "chat-2")
    assert follow_up["mode"] != "abstain"
    assert "30 hours" in follow_up["answer"]
