"""Two real `kefu serve` processes over one knowledge base and one real Redis: an answer one of them wrote is a
cache hit on the other, and a changed document makes the next answer fresh on both (the store's generation is
in every key). The `redis` tier: skipped, with the reason, where Debian's redis-server is not installed."""

from __future__ import annotations

import httpx
import pytest
from api_server import ApiServer, clean_env
from conftest import kefu_json

pytestmark = pytest.mark.redis

QUESTION = "How long does express delivery take?"
DOCUMENT = "# Delivery\n\n## Express delivery\n\nExpress delivery takes {days} business days to any address we ship to.\n"


def ask(server: ApiServer, question: str = QUESTION) -> dict:
    response = httpx.post(server.url + "/v1/chat/completions", timeout=120,
                          json={"model": "kefu", "messages": [{"role": "user", "content": question}]})  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    return {"text": body["choices"][0]["message"]["content"], **body["kefu"]}


def test_two_servers_share_answers_through_redis_and_a_changed_document_is_never_served_stale(
    tmp_path, monkeypatch, redis_url
):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "delivery.md").write_text(DOCUMENT.format(days="two"), encoding="utf-8")
    home, database = tmp_path / "home", f"sqlite:///{tmp_path / 'sessions.db'}"
    monkeypatch.setenv("KEFU_HOME", str(home))
    monkeypatch.setenv("KEFU_DATABASE_URL", database)
    assert kefu_json("ingest", str(kb))["summary"]["indexed"] == 1
    env = clean_env(home=home, database_url=database, cache_url=redis_url, api_anonymous_chat="true", llm="extractive",
                    rate_per_client=0, rate_per_session=0)  # fmt: skip
    servers = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            servers.append(ApiServer(env, tmp_path / name, via_cli=True))
        first, second = (s.wait_ready() for s in servers)

        written = ask(first)
        assert written["cached"] is False and "two business days" in written["text"]
        shared = ask(second)
        assert shared["cached"] is True and shared["text"] == written["text"]

        (kb / "delivery.md").write_text(DOCUMENT.format(days="five"), encoding="utf-8")
        assert kefu_json("ingest", str(kb))["files"][0]["status"] == "indexed"

        fresh = ask(second)
        assert fresh["cached"] is False and "five business days" in fresh["text"]
        again = ask(first)
        assert again["cached"] is True and "five business days" in again["text"]

        metrics = httpx.get(first.url + "/metrics", timeout=10).text
        assert 'kefu_answer_cache_total{result="hit"}' in metrics
    finally:
        for server in servers:
            server.stop()
