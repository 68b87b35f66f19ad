"""API keys (real SQLite), the stateless conversation's parsing, the request middleware's concurrency limit and
the error mapping, without a server; and the CLI's promise not to import the web stack."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from app.access.api_keys import ApiKeys, hash_key
from app.access.auth import AuthenticationError
from app.dialogue.completions import ChatMessage, estimate_tokens, message_text, sources_footer, split_conversation, usage
from app.db.database import Database
from app.errors import InputError, NotFoundError, RateLimited
from inference.errors import GeneratorBusy


@pytest.fixture
def keys(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'keys.db'}")
    yield ApiKeys(db), tmp_path / "keys.db"
    db.close()


def test_keys_are_stored_hashed_verified_and_revoked(keys):
    store, path = keys
    made = store.create("agent", "desk")
    assert made.key.startswith(f"kefu_{made.record.prefix}_") and len(made.key) > 40
    who = store.verify(made.key)
    assert (who.kind, who.role, who.name, who.id) == ("key", "agent", "desk", f"key:{made.record.id}")
    raw = path.read_bytes() + (path.with_name("keys.db-wal").read_bytes() if path.with_name("keys.db-wal").exists() else b"")
    assert made.key.encode() not in raw and made.key.split("_")[2].encode() not in raw
    assert hash_key(made.key).encode() in raw
    assert store.list()[0].last_used_at is not None
    with pytest.raises(AuthenticationError, match="unknown"):
        store.verify(made.key[:-1] + ("A" if made.key[-1] != "A" else "B"))
    with pytest.raises(AuthenticationError, match="malformed"):
        store.verify("sk-not-ours")
    store.revoke(made.record.prefix)
    with pytest.raises(AuthenticationError, match="revoked"):
        store.verify(made.key)
    assert store.revoke(str(made.record.id)).revoked_at == store.list()[0].revoked_at  # again: no change
    with pytest.raises(NotFoundError, match="kefu keys list"):
        store.revoke("nope")
    with pytest.raises(Exception, match="unknown role"):
        store.create("root")


def test_conversation_is_split_into_question_and_history():
    messages = [ChatMessage("system", "be a pirate"), ChatMessage("user", "Returns?"),
                ChatMessage("assistant", "30 days [1]"), ChatMessage("tool", "{}"), ChatMessage("user", "And members?")]  # fmt: skip
    question, history = split_conversation(messages, keep=20)
    assert question == "And members?"
    assert [(h.role, h.content) for h in history] == [("user", "Returns?"), ("assistant", "30 days [1]")]
    assert split_conversation(messages, keep=1)[1][0].content == "30 days [1]"
    with pytest.raises(InputError, match="role `user`"):
        split_conversation([ChatMessage("user", "hi"), ChatMessage("assistant", "hello")], 20)
    with pytest.raises(InputError, match="unknown message role"):
        split_conversation([ChatMessage("robot", "hi")], 20)
    assert message_text([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}, {"type": "text", "text": "b"}]) == "a\nb"
    with pytest.raises(InputError):
        message_text({"text": "a"})


def run_requests(app, paths):
    """Send GET requests for `paths` to the ASGI app concurrently; [(status, headers, body)] in order."""

    async def one(path):
        sent = []
        events = iter([{"type": "http.request", "body": b"", "more_body": False}])

        async def receive():
            return next(events, {"type": "http.disconnect"})

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
        await app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], dict(start["headers"]), body

    async def main():
        return await asyncio.gather(*(one(p) for p in paths))

    return asyncio.run(main())


def test_usage_is_the_models_count_or_kefus_estimate():
    from app.answering.answerer import Reply, Usage
    from app.answering.rules import Answer

    assert [estimate_tokens(t) for t in ("", "abcd", "abcde", "退货期限", "退货 30 days")] == [0, 1, 2, 4, 4]

    def reply(model_usage=None) -> Reply:
        def pieces(r: Reply):
            r.answer, r.usage = Answer("You have 30 days. [1]", "faq"), model_usage
            yield r.answer.answer

        done = Reply(pieces)
        done.finish()
        return done

    messages = [ChatMessage("system", "Be brief."), ChatMessage("user", "How long do I have?")]
    estimated = usage(reply(), messages)  # no model wrote it: the client's messages and the answer, estimated
    assert (estimated.prompt_tokens, estimated.completion_tokens) == ((3 + 4) + (5 + 4) + 3, 6)
    assert estimated.to_dict()["total_tokens"] == 25
    assert usage(reply(Usage(812, 40)), messages) == Usage(812, 40)  # a model's own count is kept


def test_the_sources_footer_numbers_sources_as_the_answer_cites_them():
    sources = [
        {"title": "Returns and Refunds Policy", "section": "Return window", "source": "data/kb/policies/en/returns.md"},
        {"title": "Lumen Buds Pro manual", "section": "Lumen Buds Pro manual", "page": 4, "source": "/srv/kb/buds.pdf"},
        {"title": "Kettle warranty", "section": "", "source": "https://help.example.com/kettles"},
    ]
    assert sources_footer(sources, "en") == (
        "\n\nSources:\n[1] Returns and Refunds Policy › Return window\n[2] Lumen Buds Pro manual, p. 4\n"
        "[3] Kettle warranty (https://help.example.com/kettles)"
    )  # a file's path on the server is never shown; a web page's address is
    assert sources_footer(sources[:1], "zh").startswith("\n\n来源：\n[1] ")
    assert sources_footer([], "en") == ""


def test_more_requests_than_allowed_are_refused_503_with_retry_after():
    from api.middleware import RequestMiddleware

    release = None

    async def slow_app(scope, receive, send):
        nonlocal release
        if scope["path"] == "/slow":
            release = release or asyncio.Event()
            await release.wait()
        else:
            release.set()  # the refused request has been answered by now: let the slow one finish
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = RequestMiddleware(slow_app, max_requests=1, max_body_bytes=1024, max_upload_bytes=1024)
    (slow, busy, health) = run_requests(app, ["/slow", "/fast", "/healthz"])
    assert slow[0] == 200 and health[0] == 200  # health is never refused (it released the slow one)
    assert busy[0] == 503 and busy[1][b"retry-after"] == b"1"
    assert json.loads(busy[2])["error"]["code"] == "busy"
    assert app.in_flight == 0


@pytest.mark.parametrize(
    ("exc", "status", "retry"),
    [(GeneratorBusy("12 requests are waiting for the model", 2.5), 503, "3"), (RateLimited("slow down", 60), 429, "60"),
     (InputError("bad"), 400, None), (RuntimeError("db at postgresql://u:pw@h"), 500, None)],
)  # fmt: skip
def test_errors_map_to_status_and_one_line(exc, status, retry):
    from api.errors import response_for

    response = response_for(exc, "rid-1")
    assert response.status_code == status
    assert response.headers.get("retry-after") == retry
    body = json.loads(response.body)
    assert "\n" not in response.body.decode()
    if status == 500:
        assert body["error"]["message"] == "internal error (request id rid-1)"  # nothing of the cause
    else:
        assert body["error"]["message"].startswith(str(exc).split()[0])


def test_the_cli_does_not_import_the_web_stack():
    code = "import sys, app.cli; bad = [m for m in ('fastapi', 'uvicorn', 'api', 'starlette') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
