"""The answer cache (`app.answering.cache`) through the real dialogue manager: the second identical first question is
answered from the cache, follow-ups and questions holding personal data never are, a write to the knowledge
store (from another service, as another process would) makes the next answer fresh, erasure removes a
conversation's entries, and a Redis that cannot be reached only costs the cache. The `redis` tier runs against a
real `redis-server` (tests/redis_server.py), shared by two `kefu ask` processes."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from app.answering.cache import AnswerCache, MemoryBackend, make_backend, normalise
from app.answering.rules import Answer
from app.errors import ConfigError, KefuError
from conftest import kefu_json

RETURNS = "How long do I have to return an item?"
SHIPPING = "Do you ship internationally?"
DOCUMENT = """# Returns

## How long do I have to return an item?

You can return an item within {days} days of delivery for a full refund. Items must be unused and in their original packaging.
"""


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


@pytest.fixture
def service(use_kb):
    from app.services import KefuService

    s = KefuService()
    yield s
    s.close()


def stored_values(cache: AnswerCache) -> list[str]:
    """Every value the backend holds, as text."""
    backend = cache.backend
    if isinstance(backend, MemoryBackend):
        return [value for _, value in backend._values.values()]
    client = backend.client
    return [client.get(k).decode() for k in client.scan_iter("kefu:answer:*")]


# -- pure parts -----------------------------------------------------------------------------------------------


def test_questions_are_compared_in_a_normal_form():
    assert normalise("  How long do I have to RETURN an item?? ") == "how long do i have to return an item"
    assert normalise("How long\tdo I have\nto return an item") == "how long do i have to return an item"
    assert normalise("退货期限是多久？") == normalise("退货期限是多久") == "退货期限是多久"
    assert normalise("ＡＢＣ　１２３！") == "abc 123"  # full-width letters, digits and space (NFKC)
    assert normalise("Is 3.5 mm supported?") == "is 3.5 mm supported"  # only trailing punctuation goes
    assert normalise("return an item") != normalise("return an order")


def test_keys_follow_the_normal_form_the_generation_and_the_settings():
    generation = [7]
    cache = AnswerCache(MemoryBackend(), lambda: generation[0], lambda: "settings-a")
    key = cache.key(RETURNS)
    assert key == cache.key("how long do I have to return an item") and key.startswith("kefu:answer:")
    assert RETURNS.lower() not in key
    generation[0] = 8
    assert cache.key(RETURNS) != key  # a write to the store retires every key made before it
    other = AnswerCache(MemoryBackend(), lambda: 7, lambda: "settings-b")
    assert other.key(RETURNS) != key
    assert cache.key("My email is li.wei@example.com, how long do I have to return an item?") is None
    assert cache.key("Call me on +86 138 0013 8000 about my return") is None


def test_the_memory_cache_keeps_at_most_its_entries_dropping_the_least_recently_used():
    backend = MemoryBackend(entries=2)
    backend.put("a", "A", None, 60)
    backend.put("b", "B", None, 60)
    assert backend.get("a") == "A"  # a is now the most recently used
    backend.put("c", "C", None, 60)
    assert len(backend) == 2
    assert backend.get("b") is None and backend.get("a") == "A" and backend.get("c") == "C"
    for n in range(100):
        backend.put(f"k{n}", "v", None, 60)
    assert len(backend) == 2


def test_only_answers_from_the_knowledge_base_are_kept():
    cache = AnswerCache(MemoryBackend(), lambda: 1, lambda: "s")
    for mode in ("abstain", "handoff", "smalltalk"):
        cache.put(cache.key(f"question {mode}"), Answer("text", mode))
        assert cache.get(cache.key(f"question {mode}")) is None
    cache.put(cache.key("question faq"), Answer("We ship to 30 countries.", "faq", [{"source": "faq.csv"}], confidence=0.9))
    hit = cache.get(cache.key("Question FAQ?"))
    assert hit.cached and hit.answer == "We ship to 30 countries." and hit.sources == [{"source": "faq.csv"}]


def test_the_cache_setting_chooses_the_backend():
    assert make_backend("none") is None
    assert isinstance(make_backend("memory", 5), MemoryBackend)
    assert "redis at redis://:***@cache:6379/0" in make_backend("redis://:hunter2@cache:6379/0").describe()
    with pytest.raises(ConfigError, match="use memory, none, or redis://"):
        make_backend("memcached://cache:11211")


# -- through the dialogue manager -----------------------------------------------------------------------------


def test_the_same_first_question_in_a_new_conversation_is_answered_from_the_cache(service):
    hits = sample("kefu_answer_cache_total", {"result": "hit"})
    cached_answers = sample("kefu_answers_total", {"mode": "extractive", "cached": "true"})
    searched = sample("kefu_retrieval_seconds_count")
    first = service.ask(RETURNS)
    assert sample("kefu_retrieval_seconds_count") > searched  # the first answer searched
    searched = sample("kefu_retrieval_seconds_count")
    second = service.ask("how long do I have to return an item")
    assert (first.to_dict()["cached"], second.to_dict()["cached"]) == (False, True)
    assert second.session_id != first.session_id and second.message_id is not None  # still stored in its conversation
    assert (second.answer, second.mode, second.sources) == (first.answer, first.mode, first.sources)
    assert first.mode == "extractive"
    assert sample("kefu_retrieval_seconds_count") == searched  # the cached answer did not search
    assert sample("kefu_answer_cache_total", {"result": "hit"}) == hits + 1
    assert sample("kefu_answers_total", {"mode": "extractive", "cached": "true"}) == cached_answers + 1
    values = stored_values(service.components.answer_cache)
    assert values and not any("how long do i have" in v.lower() for v in values)  # answers, never questions


def test_a_follow_up_is_never_answered_from_or_kept_in_the_cache(service):
    service.ask(SHIPPING, "other")  # kept: a first question
    service.ask(RETURNS, "conversation")
    follow = service.ask(SHIPPING, "conversation")  # the same words, but inside a conversation
    assert not follow.cached and follow.mode == "faq"
    service.ask("and opened headphones?", "conversation")
    fresh = service.ask("and opened headphones?")
    assert not fresh.cached  # the follow-up was not kept for others


def test_a_question_with_personal_data_is_never_cached(service):
    question = "Do you ship internationally? My phone is 13800138000"
    first, second = service.ask(question), service.ask(question)
    assert first.mode == "extractive" and first.personal_data == ["mobile"]
    assert not first.cached and not second.cached
    backend = service.components.answer_cache.backend
    assert len(backend) == 0
    service.ask(SHIPPING)
    assert len(backend) == 1 and not any("13800138000" in v for v in stored_values(service.components.answer_cache))


def test_the_stateless_turn_shares_the_cache_but_not_with_a_history(service):
    from app.answering.rewriting import HistoryItem

    dialogue = service.components.dialogue
    first = dialogue.respond(RETURNS).finish()
    again = dialogue.respond(RETURNS).finish()
    with_history = dialogue.respond(RETURNS, [HistoryItem("user", "Hello"), HistoryItem("assistant", "Hi!")]).finish()
    assert (first.cached, again.cached, with_history.cached) == (False, True, False)
    assert again.answer == first.answer


def test_cache_url_none_turns_the_cache_off(use_kb, monkeypatch):
    from app.services import KefuService

    monkeypatch.setenv("KEFU_CACHE_URL", "none")
    service = KefuService()
    try:
        assert service.components.answer_cache is None
        assert not service.ask(RETURNS).cached and not service.ask(RETURNS).cached
    finally:
        service.close()


def test_erasing_a_conversation_removes_the_entries_its_answers_made(service):
    first = service.ask(RETURNS)
    counts = service.erase(first.session_id)
    assert counts["cached_answers"] == 1 and counts["conversations"] == 1
    assert len(service.components.answer_cache.backend) == 0
    assert not service.ask(RETURNS).cached


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def cache_url(request) -> str:
    return request.getfixturevalue("redis_url") if request.param == "redis" else "memory"


def test_a_changed_document_makes_the_next_answer_fresh(tmp_path, monkeypatch, cache_url):
    """Another service (as another process would) ingests a changed document, then deletes it: the first
    service's next answers are searched again, never the cached ones."""
    from app.services import KefuService

    monkeypatch.setenv("KEFU_CACHE_URL", cache_url)
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "returns.md").write_text(DOCUMENT.format(days=30), encoding="utf-8")
    writer, reader = KefuService(), KefuService()
    try:
        writer.ingest([kb])
        assert "30 days" in reader.ask(RETURNS).answer
        assert reader.ask(RETURNS).cached
        (kb / "returns.md").write_text(DOCUMENT.format(days=45), encoding="utf-8")
        writer.ingest([kb])
        fresh = reader.ask(RETURNS)
        assert not fresh.cached and "45 days" in fresh.answer and "30 days" not in fresh.answer
        assert reader.ask(RETURNS).cached
        writer.knowledge.delete([doc.doc_id for doc in writer.knowledge.documents()])
        gone = reader.ask(RETURNS)
        assert not gone.cached and gone.mode == "abstain"
    finally:
        writer.close()
        reader.close()


# -- Redis ----------------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_an_unreachable_redis_only_costs_the_cache_but_an_erasure_fails_loudly(use_kb, monkeypatch, caplog):
    from app.services import KefuService

    monkeypatch.setenv("KEFU_CACHE_URL", f"redis://:hunter2@127.0.0.1:{_closed_port()}/0")
    errors = sample("kefu_answer_cache_total", {"result": "error"})
    service = KefuService()
    try:
        with caplog.at_level(logging.WARNING, logger="kefu.cache"):
            first, second = service.ask(RETURNS), service.ask(RETURNS)
        assert first.mode == second.mode == "extractive" and not first.cached and not second.cached
        assert sample("kefu_answer_cache_total", {"result": "error"}) >= errors + 2
        warnings = [r.getMessage() for r in caplog.records if r.name == "kefu.cache"]
        assert len(warnings) == 1 and "answering without it" in warnings[0]  # once per outage, not per request
        assert "hunter2" not in warnings[0]
        with pytest.raises(KefuError, match="Start Redis \\(or fix KEFU_CACHE_URL\\) and erase again") as failed:
            service.erase(first.session_id)
        assert "\n" not in str(failed.value) and "hunter2" not in str(failed.value)
        assert service.conversation(first.session_id).id == first.session_id  # still there to erase again
    finally:
        service.close()


@pytest.mark.redis
def test_kefu_ask_twice_with_redis_the_second_is_cached_and_erase_removes_it(use_kb, monkeypatch, redis_url):
    import redis

    monkeypatch.setenv("KEFU_CACHE_URL", redis_url)
    first = kefu_json("ask", RETURNS)
    second = kefu_json("ask", RETURNS)
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["answer"] == first["answer"] and second["sources"] == first["sources"]
    client = redis.Redis.from_url(redis_url)
    values = [client.get(k).decode() for k in client.scan_iter("kefu:answer:*")]
    assert len(values) == 1 and RETURNS.lower()[:20] not in values[0].lower()
    erased = kefu_json("erase", "--session", first["session_id"])
    assert erased["cached_answers"] == 1
    assert list(client.scan_iter("kefu:*")) == []  # the entry and the conversation's index


@pytest.mark.redis
def test_two_processes_share_the_cache_through_redis(use_kb, redis_url, tmp_path):
    import redis

    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env.update(KEFU_HOME=str(use_kb), KEFU_DATABASE_URL=f"sqlite:///{tmp_path / 'sessions.db'}", KEFU_CACHE_URL=redis_url)
    kefu = str(Path(sys.executable).with_name("kefu"))

    def ask(question: str) -> dict:
        done = subprocess.run([kefu, "ask", "--json", question], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    first, second = ask(SHIPPING), ask("do you ship internationally")
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["answer"] == first["answer"] and second["mode"] == "faq"
    assert second["session_id"] != first["session_id"]
    personal = "Do you ship internationally? My email is li.wei@example.com"
    assert ask(personal)["cached"] is False
    client = redis.Redis.from_url(redis_url)
    assert not any(b"li.wei" in key for key in client.scan_iter("*"))
    values = [client.get(key).decode() for key in client.scan_iter("kefu:answer:*")]
    assert len(values) == 1 and not any("li.wei" in v for v in values)  # only the first question's answer


def test_retention_at_start_waits_for_an_unreachable_redis_and_answers_meanwhile(use_kb, monkeypatch, caplog):
    from datetime import timedelta

    from sqlalchemy import update

    from app.db.schema import Conversation, utcnow
    from app.services import KefuService

    service = KefuService()
    service.ask(SHIPPING, "old")
    with service.components.database.write() as db:
        db.execute(update(Conversation).where(Conversation.id == "old").values(updated_at=utcnow() - timedelta(days=40)))
    service.close()
    monkeypatch.setenv("KEFU_RETENTION_DAYS", "30")
    monkeypatch.setenv("KEFU_CACHE_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    restarted = KefuService()
    try:
        with caplog.at_level(logging.ERROR, logger="app.components"):
            assert restarted.ask(RETURNS).mode == "extractive"
        assert "old" in [c.id for c in restarted.conversations()]  # kept until the cache can be erased too
        assert any("expired conversations kept for now" in r.getMessage() for r in caplog.records)
    finally:
        restarted.close()


def test_the_fingerprint_follows_what_changes_answers_and_the_store_but_not_how_they_are_served(tmp_path):
    from app.answering.cache import settings_fingerprint
    from app.settings import Settings

    def fingerprint(home: Path = tmp_path / "a", backend: str = "extractive", **groups) -> str:
        return settings_fingerprint(Settings(core={"home": home}, **groups), backend)

    base = fingerprint()
    assert fingerprint() == base
    assert fingerprint(answer={"max_sources": 2}) != base
    assert fingerprint(answer={"answer_audiences": "public,staff"}) != base
    assert fingerprint(backend="transformers") != base
    assert fingerprint(home=tmp_path / "b") != base  # another knowledge base
    assert fingerprint(generation={"llm_batch_window_ms": 0, "llm_queue": 8}) == base
