"""The HTTP API's REST routes, auth, errors, limits, health and metrics, against a real `kefu serve` on a free
loopback port (one server for the module) over a private copy of the sample knowledge base."""

from __future__ import annotations

import json
import re
import shutil

import httpx
import pytest
from api_server import ApiServer, clean_env
from conftest import kefu

MAX_BODY_KB = 8
MAX_UPLOAD_FILES = 3


@pytest.fixture(scope="module")
def server(kb_home, tmp_path_factory):
    """`kefu serve` over a copy of the sample KB (uploads and deletes stay private), with five keys."""
    root = tmp_path_factory.mktemp("api")
    home = root / "home"
    shutil.copytree(kb_home, home)
    database = f"sqlite:///{root / 'sessions.db'}"
    keys = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEFU_HOME", str(home))
        mp.setenv("KEFU_DATABASE_URL", database)
        for name, role in (("alice", "customer"), ("bob", "customer"), ("agent", "agent"), ("admin", "admin")):
            keys[name] = kefu("keys", "create", "--role", role, "--label", name).strip().splitlines()[-1]
    env = clean_env(home=home, database_url=database, max_body_kb=MAX_BODY_KB, max_upload_files=MAX_UPLOAD_FILES)
    api = ApiServer(env, root).wait_ready()
    api.keys = keys
    api.env = {"KEFU_HOME": str(home), "KEFU_DATABASE_URL": database}
    yield api
    api.stop()


def call(server, method: str, path: str, key: str | None = None, **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if key:
        headers["Authorization"] = f"Bearer {server.keys.get(key, key)}"
    return httpx.request(method, server.url + path, headers=headers, timeout=60, **kwargs)


def assert_error(response: httpx.Response, status: int) -> dict:
    """A one-line JSON error in OpenAI's shape, with a request id and no traceback."""
    assert response.status_code == status, response.text
    assert "\n" not in response.text.strip() and "Traceback" not in response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"} and error["message"]
    assert response.headers["x-request-id"]
    return error


def ask(server, key: str, question: str, session_id: str | None = None) -> dict:
    response = call(server, "POST", "/api/v1/ask", key, json={"question": question, "session_id": session_id})
    assert response.status_code == 200, response.text
    return response.json()


def test_health_ready_and_docs(server):
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["chunks"] > 0
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert {"/v1/chat/completions", "/v1/models", "/api/v1/ask", "/api/v1/documents"} <= set(paths)
    assert httpx.get(server.url + "/docs").status_code == 200


def test_the_docs_pages_load_only_from_this_server(server):
    """/docs names no other host (Swagger UI comes from the fastapi-offline package: api/docs.py); every file it
    loads is served. tests/test_browser.py renders it in Chromium with every other host blocked."""
    html = httpx.get(server.url + "/docs").text
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "cdn" not in html.lower() and "https://" not in html
    loaded = [httpx.get(server.url + u) for u in urls if u != "/openapi.json"]
    assert [r.status_code for r in loaded] == [200] * len(loaded) and len(loaded) == 3
    assert sorted(r.headers["content-type"].split(";")[0] for r in loaded) == ["image/png", "text/css", "text/javascript"]
    assert httpx.get(server.url + "/redoc").status_code == 404  # off: ReDoc would load its logo from a CDN
    script = httpx.get(server.url + "/docs/assets/swagger-ui-bundle.js").text
    assert "isOAS31" in script  # Swagger UI 5: it renders the OpenAPI 3.1 schema FastAPI writes
    assert httpx.get(server.url + "/openapi.json").json()["openapi"].startswith("3.1")


def test_request_id_is_echoed_when_sane_and_logged(server):
    mine = call(server, "GET", "/healthz", headers={"X-Request-ID": "shop-42.a_b"})
    assert mine.headers["x-request-id"] == "shop-42.a_b"
    odd = call(server, "GET", "/healthz", headers={"X-Request-ID": "x" * 65})
    assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["x-request-id"])
    answered = call(server, "POST", "/api/v1/ask", "alice", json={"question": "How do I reset my password?"})
    rid = answered.headers["x-request-id"]
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    mine_logged = [line for line in lines if line.get("request_id") == rid]
    assert len(mine_logged) == 1
    assert mine_logged[0]["route"] == "/api/v1/ask" and mine_logged[0]["status"] == 200 and mine_logged[0]["method"] == "POST"
    assert mine_logged[0]["mode"] == answered.json()["mode"] and mine_logged[0]["ms"] >= 0
    assert "password" not in json.dumps(mine_logged[0])  # nothing the customer wrote


def test_no_key_wrong_key_and_revoked_key_are_401(server):
    assert_error(call(server, "POST", "/api/v1/ask", json={"question": "hi"}), 401)
    assert_error(call(server, "GET", "/v1/models"), 401)  # anonymous chat is off by default
    assert call(server, "POST", "/api/v1/ask", json={"question": "hi"}).headers["www-authenticate"] == "Bearer"
    assert_error(call(server, "GET", "/api/v1/documents", "kefu_00000000_" + "a" * 43), 401)
    assert_error(call(server, "GET", "/api/v1/documents", "not-a-key"), 401)
    assert_error(call(server, "GET", "/api/v1/documents", headers={"Authorization": "Basic YTpi"}), 401)

    with pytest.MonkeyPatch.context() as mp:
        for name, value in server.env.items():
            mp.setenv(name, value)
        output = kefu("keys", "create", "--role", "admin", "--label", "temporary")
        key = output.strip().splitlines()[-1]
        assert call(server, "GET", "/api/v1/documents", key).status_code == 200
        listed = json.loads(kefu("keys", "list", "--json"))["keys"]
        assert key not in json.dumps(listed) and key.split("_")[2] not in json.dumps(listed)
        prefix = key.split("_")[1]
        assert [k["label"] for k in listed if k["prefix"] == prefix] == ["temporary"]
        kefu("keys", "revoke", prefix)
    error = assert_error(call(server, "GET", "/api/v1/documents", key), 401)
    assert "revoked" in error["message"]


def test_customer_keys_cannot_do_staff_work_or_read_others(server):
    mine = ask(server, "alice", "How long do I have to return an item?")
    session = mine["session_id"]
    assert mine["sources"] and mine["message_id"]
    assert call(server, "GET", f"/api/v1/sessions/{session}", "alice").status_code == 200
    for key in ("bob",):
        assert_error(call(server, "GET", f"/api/v1/sessions/{session}", key), 403)
        assert_error(call(server, "POST", "/api/v1/ask", key, json={"question": "and exchanges?", "session_id": session}), 403)
        assert_error(call(server, "POST", "/api/v1/feedback", key, json={"message_id": mine["message_id"], "rating": "down"}), 403)
        assert_error(call(server, "DELETE", f"/api/v1/sessions/{session}", key), 403)
    assert_error(call(server, "POST", f"/api/v1/sessions/{session}/reply", "alice", json={"text": "I am an agent"}), 403)
    assert_error(call(server, "POST", f"/api/v1/sessions/{session}/take", "alice"), 403)
    assert_error(call(server, "GET", "/api/v1/handoff/queue", "alice"), 403)
    assert_error(call(server, "GET", "/api/v1/search", "alice", params={"q": "returns"}), 403)
    files = {"files": ("notes.md", b"# Notes\n\nSecret plans.\n", "text/markdown")}
    assert_error(call(server, "POST", "/api/v1/documents", "alice", files=files), 403)
    assert_error(call(server, "GET", "/api/v1/documents", "alice"), 403)
    doc_id = call(server, "GET", "/api/v1/documents", "admin").json()["documents"][0]["doc_id"]
    assert_error(call(server, "DELETE", f"/api/v1/documents/{doc_id}", "alice"), 403)
    assert_error(call(server, "DELETE", f"/api/v1/documents/{doc_id}", "agent"), 403)
    assert_error(call(server, "DELETE", f"/api/v1/sessions/{session}", "agent"), 403)  # agents do not erase
    # nothing of that happened: the conversation holds alice's question and Kefu's answer only
    transcript = call(server, "GET", f"/api/v1/sessions/{session}", "alice").json()
    assert [m["role"] for m in transcript["messages"]] == ["user", "assistant"]


def test_session_ids_are_the_servers_not_the_callers(server):
    """Issue 18, item 3: a customer key cannot open a conversation under an id of its choosing (to squat one,
    or to reach one made elsewhere): it continues only the ids the server gave it."""
    for chosen in ("alice-picked-this", "0" * 32):
        assert_error(call(server, "POST", "/api/v1/ask", "alice", json={"question": "Hi there", "session_id": chosen}), 403)
        assert_error(call(server, "POST", f"/api/v1/sessions/{chosen}/handoff", "alice"), 403)
        assert_error(call(server, "GET", f"/api/v1/sessions/{chosen}", "agent"), 404)  # nothing was created
    given = ask(server, "alice", "Do you ship to Canada?")["session_id"]
    assert len(given) == 32 and ask(server, "alice", "And to Mexico?", given)["session_id"] == given


def test_conversation_feedback_handoff_and_agent_reply(server):
    first = ask(server, "alice", "Do you ship to Canada?")
    session = first["session_id"]
    rated = call(server, "POST", "/api/v1/feedback", "alice", json={"message_id": first["message_id"], "rating": "up"})
    assert rated.status_code == 200 and rated.json()["rating"] == "up"
    handed = call(server, "POST", f"/api/v1/sessions/{session}/handoff", "alice").json()
    assert handed["mode"] == "handoff" and handed["status"] == "waiting_agent"
    queue = call(server, "GET", "/api/v1/handoff/queue", "agent").json()["sessions"]
    assert session in [c["id"] for c in queue]
    assert call(server, "POST", f"/api/v1/sessions/{session}/take", "agent").json()["status"] == "with_agent"
    reply = call(server, "POST", f"/api/v1/sessions/{session}/reply", "agent", json={"text": "Yes, we ship to Canada."})
    assert reply.status_code == 200 and reply.json()["role"] == "agent"
    assert call(server, "POST", f"/api/v1/sessions/{session}/resolve", "agent").json()["status"] == "resolved"
    transcript = call(server, "GET", f"/api/v1/sessions/{session}", "alice").json()
    assert "Yes, we ship to Canada." in [m["content"] for m in transcript["messages"] if m["role"] == "agent"]
    assert call(server, "GET", f"/api/v1/sessions/{session}", "agent").status_code == 200  # any transcript
    assert_error(call(server, "POST", "/api/v1/sessions/no-such-session/take", "agent"), 404)


def test_ask_streams_events_and_the_same_json_as_the_cli(server):
    with httpx.stream("POST", server.url + "/api/v1/ask", json={"question": "How do I reset my password?", "stream": True},
                      headers={"Authorization": f"Bearer {server.keys['alice']}"}, timeout=60) as response:  # fmt: skip
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    parsed = [json.loads(e) for e in events[:-1]]
    text = "".join(p["delta"] for p in parsed if "delta" in p)
    answer = parsed[-1]["answer"]
    assert text == answer["answer"] and answer["session_id"]
    assert set(answer) == {"answer", "mode", "sources", "latency_ms", "session_id", "language", "confidence", "query",
                           "intent", "message_id", "question_id", "status", "cached"}  # fmt: skip


def test_admin_uploads_lists_searches_and_deletes_a_document(server):
    text = b"# Zebra care\n\nThe quokka-zebra warranty covers striped devices for 7 years.\n"
    uploaded = call(server, "POST", "/api/v1/documents", "admin", files=[("files", ("zebra.md", text, "text/markdown"))])
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["summary"]["documents"] >= 1
    documents = call(server, "GET", "/api/v1/documents", "admin").json()["documents"]
    zebra = [d for d in documents if d["title"] == "Zebra care"]
    assert len(zebra) == 1
    found = call(server, "GET", "/api/v1/search", "agent", params={"q": "quokka-zebra warranty", "k": 3}).json()
    assert found["results"][0]["doc_id"] == zebra[0]["doc_id"]
    assert call(server, "DELETE", f"/api/v1/documents/{zebra[0]['doc_id']}", "admin").json() == {"deleted": 1}
    assert_error(call(server, "DELETE", f"/api/v1/documents/{zebra[0]['doc_id']}", "admin"), 404)
    bad = call(server, "POST", "/api/v1/documents", "admin", files=[("files", ("tool.exe", b"MZ\x90\x00", "application/octet-stream"))])
    assert bad.status_code == 200 and bad.json()["files"][0]["status"] == "skipped"
    assert "unsupported file type" in bad.json()["files"][0]["error"]
    many = [("files", (f"n{i}.md", b"# N\n\nnote\n", "text/markdown")) for i in range(MAX_UPLOAD_FILES + 1)]
    assert "KEFU_MAX_UPLOAD_FILES" in assert_error(call(server, "POST", "/api/v1/documents", "admin", files=many), 400)["message"]


def test_bad_json_and_oversized_bodies_are_one_line_4xx(server):
    bad = call(server, "POST", "/api/v1/ask", "alice", content=b"{not json", headers={"Content-Type": "application/json"})
    assert "not valid JSON" in assert_error(bad, 400)["message"]
    missing = call(server, "POST", "/api/v1/ask", "alice", json={"session_id": None})
    assert "question" in assert_error(missing, 400)["message"]
    empty = call(server, "POST", "/api/v1/ask", "alice", json={"question": "   "})
    assert "empty" in assert_error(empty, 400)["message"]
    big = {"question": "x" * (MAX_BODY_KB * 1024 + 10)}
    assert "KEFU_MAX_BODY_KB" in assert_error(call(server, "POST", "/api/v1/ask", "alice", json=big), 413)["message"]

    def chunked():  # no Content-Length: the limit is counted while the body is read
        for _ in range(MAX_BODY_KB + 2):
            yield b" " * 1024

    streamed = call(server, "POST", "/api/v1/ask", "alice", content=chunked(), headers={"Content-Type": "application/json"})
    assert_error(streamed, 413)
    assert_error(call(server, "GET", "/no/such/route", "alice"), 404)
    assert_error(call(server, "PUT", "/api/v1/ask", "alice"), 405)


def test_customer_erases_own_conversation(server):
    session = ask(server, "bob", "What payment methods do you accept?")["session_id"]
    erased = call(server, "DELETE", f"/api/v1/sessions/{session}", "bob")
    assert erased.status_code == 200 and erased.json()["conversations"] == 1
    assert_error(call(server, "GET", f"/api/v1/sessions/{session}", "bob"), 403)  # gone (and not told apart)
    assert_error(call(server, "GET", f"/api/v1/sessions/{session}", "agent"), 404)


def scrape(server) -> dict[str, float]:
    samples = {}
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_metrics_counters_move(server):
    before = scrape(server)
    for _ in range(3):
        ask(server, "alice", "How do I reset my password?")
    call(server, "GET", "/api/v1/documents", "alice")
    after = scrape(server)
    ok = 'kefu_requests_total{method="POST",route="/api/v1/ask",status="200"}'
    denied = 'kefu_requests_total{method="GET",route="/api/v1/documents",status="403"}'
    assert after[ok] - before.get(ok, 0) == 3
    assert after[denied] - before.get(denied, 0) == 1
    latency = 'kefu_request_seconds_count{method="POST",mode="faq",route="/api/v1/ask"}'
    assert after[latency] - before.get(latency, 0) == 3
    assert "kefu_requests_in_flight" in after
