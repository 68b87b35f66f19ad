"""Erasure and retention, the audit log, rate limits, and secrets that are never shown."""

import sqlite3
from datetime import timedelta

import pytest

from app.access.auth import anonymous, operator_as
from app.errors import RateLimited, customer_message, redact
from conftest import kefu, kefu_json


def rows_mentioning(db_path, needle: str) -> list[tuple[str, tuple]]:
    """Every row of every table whose text holds `needle`."""
    db = sqlite3.connect(db_path)
    found = []
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for row in db.execute(f'SELECT * FROM "{table}"'):
            if any(needle in str(v) for v in row):
                found.append((table, row))
    db.close()
    return found


def test_erase_a_session_leaves_no_row_that_mentions_it(use_kb, tmp_path):
    kefu_json("ask", "How much does shipping cost?", "--session", "erase-me")
    answer = kefu_json("ask", "What is the airspeed of a swallow?", "--session", "erase-me")  # a gap record too
    kefu("feedback", str(answer["message_id"]), "down")
    kefu_json("ask", "Can I pay with Alipay?", "--session", "keep-me")
    db_path = tmp_path / "sessions.db"
    assert {t for t, _ in rows_mentioning(db_path, "erase-me")} >= {"conversations", "messages", "feedback", "knowledge_gaps", "audit_log"}
    erased = kefu_json("erase", "--session", "erase-me")
    assert erased["conversations"] == 1 and erased["messages"] == 4 and erased["feedback"] == 1
    assert erased["knowledge_gaps"] == 2 and erased["audit_records"] == 2 and erased["sessions"] == ["erase-me"]
    assert rows_mentioning(db_path, "erase-me") == []
    assert rows_mentioning(db_path, "keep-me")  # nobody else's conversation went
    assert "Erased 1 conversation" in kefu("erase", "--session", "keep-me")
    assert "no session 'keep-me'" in kefu("erase", "--session", "keep-me", expect=1)
    assert "one --session ID or one --user ID" in kefu("erase", expect=1)


def test_erase_a_customer_removes_every_conversation_of_theirs(use_kb):
    from app.services import KefuService

    service = KefuService()
    for session in ("c-1", "c-2"):
        service.ask_stream("How much does shipping cost?", session, customer_id="wechat:ou_123").finish()
    service.ask_stream("How much does shipping cost?", "c-3", customer_id="wechat:ou_999").finish()
    counts = service.erase(customer_id="wechat:ou_123")
    assert sorted(counts["sessions"]) == ["c-1", "c-2"] and counts["messages"] == 4
    assert [c.id for c in service.conversations()] == ["c-3"]


def test_retention_removes_old_conversations_when_the_service_starts(use_kb, monkeypatch):
    from sqlalchemy import update

    from app.db.schema import Conversation, utcnow
    from app.services import KefuService

    service = KefuService()
    service.ask("How much does shipping cost?", "old")
    service.ask("How much does shipping cost?", "new")
    with service.components.database.write() as db:
        db.execute(update(Conversation).where(Conversation.id == "old").values(updated_at=utcnow() - timedelta(days=40)))
    monkeypatch.setenv("KEFU_RETENTION_DAYS", "30")
    restarted = KefuService()
    assert [c.id for c in restarted.conversations()] == ["new"]
    assert kefu_json("erase", "--expired")["conversations"] == 0


def test_every_turn_and_privileged_action_is_audited_without_text(use_kb):
    from app.services import KefuService

    service = KefuService()
    answer = service.ask("How much does shipping cost? My email is secret.person@example.com", "aud-1")
    service.agent_reply("aud-1", "Hello from Anna", actor=operator_as("anna"))
    with pytest.raises(Exception):
        service.ask("", "aud-1")
    records = kefu_json("audit")["records"]
    assert [r["action"] for r in records] == ["turn", "agent_reply", "turn"]  # newest first
    turn = records[-1]
    assert turn["mode"] == answer.mode and turn["answer_chars"] == len(answer.answer) and turn["latency_ms"] >= 0
    assert turn["session_id"] == "aud-1" and turn["actor"] == "local" and turn["role"] == "admin"
    assert records[0]["error_code"] == "InputError"
    text = kefu("audit")
    assert "secret.person" not in text and "Hello from Anna" not in text and "agent_reply" in text


def test_rate_limits_per_conversation_and_per_client(use_kb, monkeypatch):
    from app.services import KefuService

    monkeypatch.setenv("KEFU_RATE_PER_SESSION", "3")
    monkeypatch.setenv("KEFU_RATE_PER_CLIENT", "5")
    service = KefuService()
    browser = anonymous("browser-1")
    sid = service.ask_stream("How much does shipping cost?", actor=browser).finish().session_id
    for _ in range(2):
        service.ask_stream("How much does shipping cost?", sid, actor=browser).finish()
    with pytest.raises(RateLimited, match="at most 3 a minute") as caught:
        service.ask_stream("And now?", sid, actor=browser)
    assert caught.value.retry_after > 0
    service.ask_stream("Can I pay with Alipay?", actor=browser).finish()  # a new conversation, same client
    with pytest.raises(RateLimited, match="at most 5 a minute"):  # refused attempts count too
        service.ask_stream("Can I pay with Alipay?", actor=browser)
    service.ask_stream("Can I pay with Alipay?", actor=anonymous("browser-2")).finish()  # another client is fine
    service.ask("Can I pay with Alipay?", sid)  # the local operator is not limited


def test_passwords_in_urls_never_show(use_kb, monkeypatch, capsys):
    assert redact("postgresql://kefu:hunter2@db:5432/kefu and https://u:p%40ss@es:9200") == (
        "postgresql://kefu:***@db:5432/kefu and https://u:***@es:9200"
    )
    monkeypatch.setenv("KEFU_DATABASE_URL", "postgresql://kefu:hunter2@127.0.0.1:9/kefu?connect_timeout=1")
    out = kefu("ask", "How much does shipping cost?", expect=1)
    assert "hunter2" not in out and "kefu:***@127.0.0.1" in out
    from app.services import KefuService

    try:
        KefuService().ask("How much does shipping cost?")
    except Exception as exc:  # noqa: BLE001 - what a customer would be told
        told = customer_message(exc)
    assert "hunter2" not in told and "127.0.0.1" not in told and "reference" in told
    assert "hunter2" not in capsys.readouterr().err


def test_the_knowledge_store_and_uploads_are_readable_by_their_owner_only(tmp_path, monkeypatch):
    from app.services import KefuService

    home = tmp_path / "home"
    monkeypatch.setenv("KEFU_HOME", str(home))
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path / 'sessions.db'}")
    service = KefuService()
    report = service.ingest_uploads([("prices.md", b"# Prices\n\nThe Aurora lamp costs 49 euros.\n")])
    assert report.summary["indexed"] == 1
    store = home / "knowledge.sqlite3"
    modes = {p.name: p.stat().st_mode & 0o777 for p in home.iterdir() if p.name.startswith("knowledge.sqlite3")}
    assert store.name in modes and set(modes.values()) == {0o600}, modes
    uploads = home / "uploads"
    assert uploads.stat().st_mode & 0o777 == 0o700
    assert [p.stat().st_mode & 0o777 for p in uploads.iterdir()] == [0o600]
    service.close()
