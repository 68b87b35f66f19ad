"""The sessions database: migrations (from a database today's release wrote), the write lock that keeps
concurrent writers from failing with "database is locked", concurrent conversations from threads and from
processes, and a turn that dies mid-answer keeping the customer's question. SQLite and PostgreSQL."""

import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from app.dialogue import handoff
from app.db.database import HEAD_REVISION, MIGRATIONS, Database, normalise_url, redacted
from app.dialogue.sessions import NewMessage, SessionStore
from conftest import ROOT


def test_head_revision_is_alembics_head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_urls_use_psycopg_and_passwords_are_never_shown():
    assert normalise_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
    assert redacted("postgresql://kefu:s3cret@db.example/kefu") == "postgresql://kefu:***@db.example/kefu"


def test_a_database_that_cannot_be_opened_is_a_config_error_without_the_password(tmp_path):
    from app.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        Database("postgresql://kefu:s3cret@127.0.0.1:9/kefu?connect_timeout=2")
    assert "s3cret" not in str(caught.value) and "KEFU_DATABASE_URL" in str(caught.value)


def test_the_sqlite_file_is_readable_by_its_owner_only(tmp_path):
    Database(f"sqlite:///{tmp_path / 'private.db'}").close()
    assert stat.S_IMODE((tmp_path / "private.db").stat().st_mode) == 0o600


def _create_at_first_revision(url: str) -> None:
    """A database as the previous release left it: revision 0001, a handed-over conversation with messages."""
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(normalise_url(url))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001_initial")
        now = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
        connection.execute(
            sa.text("INSERT INTO conversations (id, status, created_at, updated_at) VALUES (:id, :s, :t, :t)"),
            [{"id": "old-1", "s": "handoff", "t": now}, {"id": "old-2", "s": "bot", "t": now}],
        )
        for conversation, role, content in [("old-1", "user", "I want a human"), ("old-1", "assistant", "Connecting you"),
                                            ("old-2", "user", "How much is shipping?")]:  # fmt: skip
            connection.execute(
                sa.text("INSERT INTO messages (conversation_id, role, content, sources, created_at) "
                        "VALUES (:c, :r, :x, '[]', :t)"),  # fmt: skip
                {"c": conversation, "r": role, "x": content, "t": now},
            )
    engine.dispose()


def test_upgrading_a_database_from_the_previous_release_keeps_its_conversations(database_url):
    _create_at_first_revision(database_url)
    store = SessionStore(Database(database_url))
    old = store.get("old-1")
    assert old.status == handoff.WAITING and old.status_since  # "handoff" became the queue
    assert [c.id for c in store.list(handoff.WAITING)] == ["old-1"]
    assert [(m.role, m.content) for m in store.messages("old-1")] == [("user", "I want a human"), ("assistant", "Connecting you")]
    assert store.get("old-2").status == handoff.BOT and store.get("old-2").messages == 1
    added = store.add("old-2", NewMessage("assistant", "$4.99", mode="faq", reply_to=store.messages("old-2")[0].id))
    assert added.id > 3 and store.get("old-2").slots == {}


def test_handoff_moves_are_checked_and_atomic(database_url):
    store = SessionStore(Database(database_url))
    sid = store.open("c-1")
    from app.errors import InputError

    with pytest.raises(InputError, match="cannot release a conversation that is bot"):
        store.transition(sid, "release")
    results = []

    def request() -> None:
        try:
            results.append(store.transition(sid, "request", reason="requested").status)
        except InputError as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Exactly one request wins; the others find it already waiting (no move from waiting_agent on request).
    assert results.count(handoff.WAITING) == 1 and len(results) == 4


def test_twenty_conversations_of_five_turns_from_threads_lose_and_duplicate_nothing(use_kb, database_url, monkeypatch):
    from app.services import KefuService

    monkeypatch.setenv("KEFU_DATABASE_URL", database_url)
    service = KefuService()
    questions = ["How much does shipping cost?", "Can I pay with Alipay?", "How long is the warranty?",
                 "退货期限是多久？", "Do you ship internationally?"]  # fmt: skip
    errors: list[BaseException] = []

    def converse(n: int) -> None:
        try:
            for turn, question in enumerate(questions):
                service.ask(f"{question} ({n}.{turn})" if turn % 2 else question, f"thread-{n}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=converse, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    for n in range(20):
        messages = service.history(f"thread-{n}")
        assert [m.role for m in messages] == ["user", "assistant"] * 5
        asked = [m.content for m in messages if m.role == "user"]
        assert asked == [f"{q} ({n}.{t})" if t % 2 else q for t, q in enumerate(questions)]
        assert all(a.reply_to == q.id for q, a in zip(messages[::2], messages[1::2]))
    service.close()


ASKER = textwrap.dedent(
    """
    import json, sys
    from app.services import KefuService
    service = KefuService()
    worker = sys.argv[1]
    ids = []
    for turn in range(5):
        answer = service.ask(f"How much does shipping cost? (worker {worker}, turn {turn})", "shared")
        ids.append([answer.question_id, answer.message_id])
    print(json.dumps(ids))
    """
)


def test_four_processes_asking_in_one_conversation_lose_and_duplicate_nothing(use_kb, database_url):
    env = {**os.environ, "KEFU_DATABASE_URL": database_url}
    procs = [
        subprocess.Popen([sys.executable, "-c", ASKER, str(w)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(4)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-2000:]
        assert "database is locked" not in err
    pairs = [pair for out, _ in outputs for pair in json.loads(out.strip().splitlines()[-1])]
    store = SessionStore(Database(database_url))
    messages = store.messages("shared")
    assert len(messages) == 40 and len({m.id for m in messages}) == 40
    asked = sorted(m.content for m in messages if m.role == "user")
    assert asked == sorted(f"How much does shipping cost? (worker {w}, turn {t})" for w in range(4) for t in range(5))
    by_id = {m.id: m for m in messages}
    for question_id, answer_id in pairs:
        assert by_id[question_id].role == "user" and by_id[answer_id].reply_to == question_id


def test_a_turn_that_dies_mid_answer_keeps_the_customers_question(use_kb, database_url, monkeypatch):
    """The customer's message is stored before anything is answered: a model that fails halfway (or a process
    killed while it writes) leaves the question in the conversation."""
    from app.services import KefuService

    monkeypatch.setenv("KEFU_DATABASE_URL", database_url)
    service = KefuService()

    class Failing:
        context_tokens = 4096

        def count_tokens(self, text: str) -> int:
            return len(text.split())

        def stream(self, messages, max_new_tokens=None):
            yield "Express delivery"
            raise RuntimeError("the GPU fell off the bus")

    service.components.__dict__["generator"] = Failing()
    reply = service.ask_stream("What does express delivery cost?", "dies")
    pieces = iter(reply)
    with pytest.raises(RuntimeError, match="fell off the bus"):
        for _ in pieces:
            pass
    messages = service.history("dies")
    assert [(m.role, m.content) for m in messages] == [("user", "What does express delivery cost?")]
    service.close()
