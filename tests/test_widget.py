"""The website widget without a browser: widget keys and their origins (`kefu keys create --role widget`), visitor
tokens (`app.access.visitors`), what a visitor is shown (`app.dialogue.transcript`), and the `/widget/v1` routes
of a real `kefu serve`: origins checked on every request and stream, CORS for the keys' origins only, a
visitor's conversations its own, answers streamed with their sources, an agent's reply arriving on the live
stream, and messages limited per visitor. `tests/test_widget_browser.py` drives the widget itself."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time

import httpx
import pytest
from api_server import ApiServer, clean_env
from conftest import kefu

SHOP = "http://shop.test:8123"
OTHER = "http://elsewhere.test"
RATE_PER_CLIENT = 5


# -- keys, tokens and the customer's view, in-process ------------------------------------------------------


def test_widget_keys_name_their_origins_and_print_the_snippet_before_the_key(monkeypatch):
    monkeypatch.setenv("KEFU_PUBLIC_URL", "https://kefu.example/")
    lines = kefu("keys", "create", "--role", "widget", "--origin", "https://Shop.Example:443/", "--origin", SHOP,
                 "--label", "shop").strip().splitlines()  # fmt: skip
    key = lines[-1]
    assert re.fullmatch(r"kefu_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", key)
    assert lines[-2] == f'<script src="https://kefu.example/widget.js" data-kefu-key="{key}" defer></script>'
    listed = json.loads(kefu("keys", "list", "--json"))["keys"]
    assert listed[0]["role"] == "widget" and listed[0]["origins"] == ["https://shop.example", SHOP]
    assert f"origins https://shop.example {SHOP}" in kefu("keys", "list")

    assert "needs the site's origin" in kefu("keys", "create", "--role", "widget", expect=1)
    assert "only a widget key" in kefu("keys", "create", "--role", "customer", "--origin", SHOP, expect=1)
    for bad in ("shop.example", "https://shop.example/path", "ftp://shop.example", "https://*.shop.example"):
        assert "is not a web origin" in kefu("keys", "create", "--role", "widget", "--origin", bad, expect=1)


def test_normalised_origins_are_what_browsers_send():
    from app.access.api_keys import normalise_origin

    assert normalise_origin("HTTPS://Shop.Example") == "https://shop.example"
    assert normalise_origin("http://shop.example:80/") == "http://shop.example"
    assert normalise_origin("http://127.0.0.1:8123") == "http://127.0.0.1:8123"
    assert normalise_origin("http://[::1]:9000") == "http://[::1]:9000"


@pytest.fixture
def visitors(tmp_path):
    from app.access.api_keys import ApiKeys
    from app.access.audit import AuditLog
    from app.access.visitors import Visitors
    from app.db.database import Database

    db = Database(f"sqlite:///{tmp_path / 'kefu.db'}")
    keys = ApiKeys(db)
    made = keys.create("widget", "shop", [SHOP])
    return Visitors(keys, AuditLog(db), b"s" * 32, per_minute=3, max_age_days=30), keys, made


def test_a_visitor_token_names_its_visitor_and_is_checked_every_time(visitors, monkeypatch):
    from app.access.auth import AuthenticationError, PermissionDenied
    from app.errors import RateLimited

    service, keys, made = visitors
    first = service.start(made.key, SHOP, "10.0.0.1")
    assert first.principal.id.startswith(f"visitor:{made.record.id}:") and first.principal.role == "customer"
    assert service.principal(first.token, SHOP) == first.principal
    assert service.principal(first.token, SHOP + "/") == first.principal
    with pytest.raises(PermissionDenied):
        service.principal(first.token, OTHER)
    with pytest.raises(PermissionDenied):
        service.principal(first.token, None)
    with pytest.raises(PermissionDenied):
        service.start(made.key, OTHER, "10.0.0.1")
    forged = first.token[:-2] + ("AA" if not first.token.endswith("AA") else "BB")
    with pytest.raises(AuthenticationError):
        service.principal(forged, SHOP)
    with pytest.raises(AuthenticationError):  # the key's own power is nothing: it is no token
        service.principal(made.key, SHOP)
    customer = keys.create("customer", "api")
    with pytest.raises(AuthenticationError):
        service.start(customer.key, SHOP, "10.0.0.1")
    with pytest.raises(AuthenticationError):
        keys.verify(made.key)  # a widget key opens none of the Bearer routes

    # New visitors are limited per address; another address may still start one.
    service.start(made.key, SHOP, "10.0.0.1")
    service.start(made.key, SHOP, "10.0.0.1")
    with pytest.raises(RateLimited):
        service.start(made.key, SHOP, "10.0.0.1")
    service.start(made.key, SHOP, "10.0.0.2")

    # A token outlives neither its age nor its key.
    monkeypatch.setattr("app.access.visitors.time.time", lambda: time.time_ns() / 1e9 + 31 * 86400)
    with pytest.raises(AuthenticationError, match="expired"):
        service.principal(first.token, SHOP)
    monkeypatch.undo()
    keys.revoke(made.record.prefix)
    with pytest.raises(AuthenticationError, match="revoked"):
        service.principal(first.token, SHOP)


def test_what_a_visitor_is_shown_passes_the_output_policy():
    from app.dialogue.sessions import ConversationRecord, MessageRecord
    from app.dialogue.transcript import customer_view
    from app.guardrails.output_policy import OutputPolicy

    conversation = ConversationRecord("c1", "with_agent", "", "", agent="anna")
    source = {"title": "Returns <b>policy</b>", "section": "Window", "source": "/srv/kb/returns.md", "page": 2,
              "text": "Items may be returned within **30 days**. ![x](https://evil.example/p.png)", "score": 0.9,
              "chunk_id": "abc"}  # fmt: skip
    messages = [
        MessageRecord(1, "c1", "user", "<b>hi</b> there"),
        MessageRecord(2, "c1", "assistant", "Within 30 days [1].", mode="extractive", sources=[source]),
        MessageRecord(3, "c1", "agent", "See [this](https://evil.example/x) <script>alert(1)</script>ok", author="anna"),
        MessageRecord(4, "c1", "assistant", "Waiting for a person", mode="handoff"),
    ]
    view = customer_view(conversation, messages, None, {2: "up"}, OutputPolicy()).to_dict()
    user, answer, agent, holding = view["messages"]
    assert user["text"] == "<b>hi</b> there"  # the customer's own words, shown as text by the widget
    assert "evil.example" not in agent["text"] and "<script" not in agent["text"] and agent["author"] == "anna"
    assert answer["sources"] == [{"n": 1, "title": "Returns policy", "section": "Window", "page": 2,
                                  "source": "returns.md", "text": "Items may be returned within 30 days. x"}]  # fmt: skip
    assert (answer["rateable"], answer["rating"], agent["rateable"], holding["rateable"]) == (True, "up", True, False)
    assert view["status"] == "with_agent" and view["agent"] == "anna"


# -- the routes of a real server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(kb_home, tmp_path_factory):
    root = tmp_path_factory.mktemp("widget-api")
    home = root / "home"
    shutil.copytree(kb_home, home)
    database = f"sqlite:///{root / 'sessions.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEFU_HOME", str(home))
        mp.setenv("KEFU_DATABASE_URL", database)
        widget_key = kefu("keys", "create", "--role", "widget", "--origin", SHOP).strip().splitlines()[-1]
        other_key = kefu("keys", "create", "--role", "widget", "--origin", OTHER).strip().splitlines()[-1]
        agent_key = kefu("keys", "create", "--role", "agent").strip().splitlines()[-1]
    env = clean_env(home=home, database_url=database, rate_per_client=RATE_PER_CLIENT, widget_visitors_per_minute=0)
    api = ApiServer(env, root).wait_ready()
    api.widget_key, api.other_key, api.agent_key = widget_key, other_key, agent_key
    api.env = {"KEFU_HOME": str(home), "KEFU_DATABASE_URL": database}
    yield api
    api.stop()


def post(server, path: str, body: dict, token: str | None = None, origin: str | None = SHOP, **kwargs) -> httpx.Response:
    headers = {"Origin": origin} if origin else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(server.url + path, json=body, headers=headers, timeout=60, **kwargs)


def new_visitor(server, key: str | None = None, origin: str = SHOP) -> str:
    response = post(server, "/widget/v1/visitors", {"key": key or server.widget_key}, origin=origin)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def sse(response: httpx.Response) -> list:
    return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ") and line != "data: [DONE]"]


def ask(server, token: str, question: str, session_id: str | None = None) -> tuple[str, dict]:
    response = post(server, "/widget/v1/ask", {"question": question, "session_id": session_id}, token)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == SHOP
    events = sse(response)
    return "".join(e.get("delta", "") for e in events), events[-1]


def test_the_script_is_small_plain_and_loads_nothing_from_elsewhere(server):
    response = httpx.get(server.url + "/widget.js")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/javascript")
    assert len(response.content) < 50 * 1024
    assert "__KEFU_CSS__" not in response.text and ":host" in response.text  # its stylesheet is inside
    assert re.findall(r"https?://[^\s\"']+", response.text.split("*/", 1)[1]) == ["http://www.w3.org/2000/svg"]
    assert "innerHTML" not in response.text and "insertAdjacentHTML" not in response.text
    assert httpx.get(server.url + "/widget.css").headers["content-type"].startswith("text/css")


def test_origins_are_checked_on_every_request_and_cors_answers_only_them(server):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    allowed = httpx.options(server.url + "/widget/v1/ask", headers={"Origin": SHOP, **preflight})
    assert allowed.status_code == 204 and allowed.headers["access-control-allow-origin"] == SHOP
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = httpx.options(server.url + "/widget/v1/ask", headers={"Origin": "http://evil.test", **preflight})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers

    for origin in (None, "http://evil.test", OTHER, "null"):  # OTHER: named by another site's key only
        response = post(server, "/widget/v1/visitors", {"key": server.widget_key}, origin=origin)
        assert response.status_code == 403, (origin, response.text)
    assert post(server, "/widget/v1/visitors", {"key": server.agent_key}).status_code == 401
    # The widget key opens no Bearer route; the visitor's token opens none either.
    token = new_visitor(server)
    for credential in (server.widget_key, token):
        response = httpx.post(server.url + "/api/v1/ask", json={"question": "hi"},
                              headers={"Authorization": f"Bearer {credential}"})  # fmt: skip
        assert response.status_code == 401, response.text
    # The token works only where its key does: every route, the streamed ones included.
    _, done = ask(server, token, "Hello")
    session = done["answer"]["session_id"]
    for path, body in (("/widget/v1/ask", {"question": "How long do I have to return an item?", "session_id": session}),
                       ("/widget/v1/conversation", {"session_id": session}),
                       ("/widget/v1/events", {"session_id": session}),
                       ("/widget/v1/handoff", {"session_id": session})):  # fmt: skip
        for origin in (None, OTHER, "http://evil.test"):
            response = post(server, path, body, token, origin=origin)
            assert response.status_code == 403, (path, origin, response.text)
            assert "data: " not in response.text
    assert post(server, "/widget/v1/conversation", {"session_id": session}, token[:-3] + "abc").status_code == 401
    assert post(server, "/widget/v1/conversation", {"session_id": session}).status_code == 401


def test_a_visitor_asks_gets_cited_answers_and_keeps_the_conversation_to_itself(server):
    token = new_visitor(server)
    streamed, done = ask(server, token, "How long do I have to return an item?")
    answer = done["answer"]
    assert "30 days" in streamed and answer["text"] == streamed and answer["status"] == "bot"
    session = answer["session_id"]
    question, reply = done["messages"]
    assert (question["role"], question["id"], reply["role"], reply["id"]) == ("user", answer["question_id"], "assistant", answer["message_id"])
    assert reply["sources"] and reply["sources"][0]["n"] == 1 and "30" in reply["sources"][0]["text"]
    assert set(reply["sources"][0]) == {"n", "title", "section", "page", "source", "text"}
    assert not reply["sources"][0]["source"].startswith("/")  # no server path
    assert reply["rateable"]
    rated = post(server, "/widget/v1/feedback", {"message_id": reply["id"], "rating": "up"}, token)
    assert rated.json() == {"message_id": reply["id"], "rating": "up"}

    restored = post(server, "/widget/v1/conversation", {"session_id": session}, token).json()
    assert [m["id"] for m in restored["messages"]] == [question["id"], reply["id"]]
    assert restored["messages"][1]["rating"] == "up"

    stranger = new_visitor(server)
    for path, body in (("/widget/v1/conversation", {"session_id": session}),
                       ("/widget/v1/events", {"session_id": session}),
                       ("/widget/v1/handoff", {"session_id": session}),
                       ("/widget/v1/feedback", {"message_id": reply["id"], "rating": "down"}),
                       ("/widget/v1/ask", {"question": "And shipping?", "session_id": session})):  # fmt: skip
        response = post(server, path, body, stranger)
        assert response.status_code == 403 and "not yours" in response.text, (path, response.text)
    on_other_site = new_visitor(server, server.other_key, OTHER)
    assert post(server, "/widget/v1/conversation", {"session_id": session}, on_other_site, origin=OTHER).status_code == 403


def test_an_agents_reply_arrives_on_the_live_stream(server, monkeypatch):
    token = new_visitor(server)
    _, done = ask(server, token, "Do you ship to Canada?")
    session = done["answer"]["session_id"]
    handed = post(server, "/widget/v1/handoff", {"session_id": session, "language": "zh"}, token).json()
    assert handed["status"] == "waiting_agent" and handed["queue_position"] >= 1
    assert handed["messages"][-1]["role"] == "assistant" and re.search(r"[\u4e00-\u9fff]", handed["messages"][-1]["text"])
    after = handed["messages"][-1]["id"]
    again = post(server, "/widget/v1/handoff", {"session_id": session}, token).json()  # asked twice: the state, nothing stored
    assert again["messages"] == [] and again["status"] == "waiting_agent" and again["answer"]["message_id"] is None

    received, failed = [], []

    def listen():
        try:
            with httpx.stream("POST", server.url + "/widget/v1/events", json={"session_id": session, "after": after},
                              headers={"Origin": SHOP, "Authorization": f"Bearer {token}"}, timeout=60) as response:  # fmt: skip
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                for line in response.iter_lines():
                    if line.startswith("data: {"):
                        received.append(json.loads(line[6:]))
                        if any(m["role"] == "agent" for m in received[-1]["messages"]):
                            return
        except Exception as exc:  # noqa: BLE001 - reported below
            failed.append(exc)

    thread = threading.Thread(target=listen)
    thread.start()
    deadline = time.monotonic() + 20
    while not received and time.monotonic() < deadline:
        time.sleep(0.1)
    assert received and received[0]["status"] == "waiting_agent" and received[0]["queue_position"] >= 1
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    kefu("sessions", "reply", session, "Hi, this is Anna: yes, we ship to Canada. <img src=x onerror=alert(1)>",
         "--agent", "anna")  # fmt: skip
    thread.join(30)
    assert not failed and not thread.is_alive()
    agent = [m for m in received[-1]["messages"] if m["role"] == "agent"][0]
    assert agent["text"].startswith("Hi, this is Anna") and "<img" not in agent["text"] and agent["author"] == "anna"
    assert received[-1]["status"] == "with_agent" and received[-1]["agent"] == "anna"


def test_messages_are_limited_per_visitor_not_per_address(server):
    greedy, patient = new_visitor(server), new_visitor(server)
    session = None
    for _ in range(RATE_PER_CLIENT):
        _, done = ask(server, greedy, "Hello", session)
        session = done["answer"]["session_id"]
    limited = post(server, "/widget/v1/ask", {"question": "Hello", "session_id": session}, greedy)
    assert limited.status_code == 429 and limited.headers["retry-after"]
    assert limited.headers["access-control-allow-origin"] == SHOP  # the widget can read why
    streamed, _ = ask(server, patient, "Hello")  # the same address, another visitor
    assert streamed


def test_revoking_the_key_ends_its_visitors_live_streams(server, monkeypatch):
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    output = kefu("keys", "create", "--role", "widget", "--origin", SHOP, "--label", "short-lived")
    key, prefix = output.strip().splitlines()[-1], re.search(r"prefix ([0-9a-f]{8})", output).group(1)
    token = new_visitor(server, key)
    handed = post(server, "/widget/v1/handoff", {"language": "en"}, token).json()  # a new conversation, handed over
    session = handed["session_id"]
    assert handed["status"] == "waiting_agent" and handed["answer"]["session_id"] == session

    lines: list[str] = []
    with httpx.stream("POST", server.url + "/widget/v1/events", json={"session_id": session},
                      headers={"Origin": SHOP, "Authorization": f"Bearer {token}"}, timeout=60) as response:  # fmt: skip
        for line in response.iter_lines():
            lines.append(line)
            if line.startswith("data: {") and len(lines) < 3:
                kefu("keys", "revoke", prefix)
            if line == "data: [DONE]":
                break
    errors = [json.loads(line[6:])["error"] for line in lines if line.startswith('data: {"error"')]
    assert errors and "revoked" in errors[0]["message"]
    assert post(server, "/widget/v1/conversation", {"session_id": session}, token).status_code == 401
