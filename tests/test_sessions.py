"""Sessions in SQLAlchemy with Alembic migrations, and multi-turn dialogue through them."""

from sqlalchemy import inspect

from app.sessions import STATUS_HANDOFF, SessionStore, Turn
from tests.conftest import kefu_json


def test_migrations_create_the_schema_and_turns_persist(tmp_path):
    url = f"sqlite:///{tmp_path / 'db' / 'kefu.db'}"
    store = SessionStore(url)
    tables = set(inspect(store.engine).get_table_names())
    assert {"conversations", "messages", "alembic_version"} <= tables
    sid = store.ensure(None)
    store.add_turn(sid, Turn("user", "hello"))
    store.add_turn(sid, Turn("assistant", "hi", mode="faq", sources=[{"doc_id": "d"}], latency_ms=5))
    store.set_status(sid, STATUS_HANDOFF)
    store.close()

    reopened = SessionStore(url)  # migrating again is a no-op
    history = reopened.history(sid)
    assert [(t.role, t.content, t.mode) for t in history] == [("user", "hello", None), ("assistant", "hi", "faq")]
    assert history[1].sources == [{"doc_id": "d"}]
    assert reopened.status(sid) == STATUS_HANDOFF
    assert reopened.ensure(sid) == sid


def test_a_conversation_is_stored_turn_by_turn(use_kb):
    from app.services import KefuService

    first = kefu_json("ask", "How much is shipping?", "--session", "chat-1")
    second = kefu_json("ask", "Can I pay with Alipay?", "--session", "chat-1")
    assert first["session_id"] == second["session_id"] == "chat-1"
    history = KefuService().history("chat-1")
    assert [t.role for t in history] == ["user", "assistant", "user", "assistant"]
    assert history[2].content == "Can I pay with Alipay?"
    assert history[1].mode == first["mode"] and history[1].sources == first["sources"]


def test_a_follow_up_uses_the_previous_question(use_kb):
    kefu_json("ask", "How long does the Lumen Watch S2 battery last?", "--session", "chat-2")
    follow_up = kefu_json("ask", "and with GPS?", "--session", "chat-2")
    assert follow_up["mode"] != "abstain"
    assert "30 hours" in follow_up["answer"]
