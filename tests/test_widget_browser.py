"""The website widget in a real browser (Debian's Chromium driven by Playwright): a sample shop on its own origin,
served with a strict Content-Security-Policy that names only Kefu's origin for scripts and connections, embeds
the one-line snippet of a real `kefu serve`. A visitor opens the chat from the keyboard, asks, gets a cited
answer and opens the passage, rates it, asks for a person, sees the queue position and an agent's reply arrive
(sent with `kefu sessions reply`), and finds the conversation again on another page of the site. A page on an
origin the key does not name gets no answer. No request leaves for any other host, nothing breaks the CSP, and
the page's styles do not reach the widget. The screenshot of the widget on the shop goes to KEFU_SCREENSHOTS
when set (`make screenshots` writes docs/screenshots/), else to the test's folder."""

from __future__ import annotations

import functools
import re
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from api_server import ApiServer, clean_env, free_port
from conftest import kefu
from test_browser import SCREENSHOTS, Screenshots, browser  # noqa: F401 - `browser` is a fixture

pytestmark = pytest.mark.browser
SHOP_FILES = Path(__file__).parent / "widget_shop"


class ShopHandler(SimpleHTTPRequestHandler):
    """The shop's files, with Kefu's address and the widget key filled in, and the shop's CSP on every page."""

    kefu = key = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(SHOP_FILES), **kwargs)

    def do_GET(self):  # noqa: N802 - http.server's name
        name = "index.html" if self.path in ("/", "") else self.path.lstrip("/").split("?")[0]
        path = SHOP_FILES / name
        if "/" in name or not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        kind = "text/css" if name.endswith(".css") else "text/html; charset=utf-8"
        if name.endswith(".html"):
            body = body.decode("utf-8").replace("{{KEFU}}", self.kefu).replace("{{KEY}}", self.key).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", f"default-src 'none'; script-src {self.kefu}; connect-src {self.kefu}; "
                         "style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'")  # fmt: skip
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def kefu_and_shop(kb_home, tmp_path):
    """`kefu serve` over a copy of the sample knowledge base, a widget key for the shop's origin, and the shop
    (http://127.0.0.1:PORT; the same files at http://localhost:PORT are an origin the key does not name)."""
    home = tmp_path / "home"
    shutil.copytree(kb_home, home)
    env = {"KEFU_HOME": str(home), "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'sessions.db'}"}
    shop_port = free_port()
    shop = f"http://127.0.0.1:{shop_port}"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        key = kefu("keys", "create", "--role", "widget", "--origin", shop, "--label", "shop").strip().splitlines()[-1]
    api = ApiServer(clean_env(home=home, database_url=env["KEFU_DATABASE_URL"]), tmp_path).wait_ready()
    handler = type("Handler", (ShopHandler,), {"kefu": api.url, "key": key})
    httpd = ThreadingHTTPServer(("127.0.0.1", shop_port), functools.partial(handler))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield api.url, shop, f"http://localhost:{shop_port}", env
    finally:
        httpd.shutdown()
        httpd.server_close()
        api.stop()


def watched_page(browser, language, requests, console):  # noqa: F811 - the fixture's value
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale=language)
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
    return page


def test_a_shop_embeds_the_widget_and_a_visitor_gets_answers_and_an_agent(browser, kefu_and_shop, tmp_path, monkeypatch):  # noqa: F811
    from playwright.sync_api import expect

    kefu_url, shop, unnamed, env = kefu_and_shop
    shoot = Screenshots(Path(SCREENSHOTS) if SCREENSHOTS else tmp_path / "screenshots")
    requests, console = [], []
    page = watched_page(browser, "en-US", requests, console)
    page.goto(shop)

    # From the keyboard: the launcher opens the panel and puts the focus in the message box.
    launcher = page.get_by_role("button", name=re.compile("Chat"))
    launcher.focus()
    page.keyboard.press("Enter")
    box = page.get_by_role("textbox", name="Your message")
    expect(box).to_be_focused()
    expect(page.get_by_role("dialog", name="Lumen support")).to_be_visible()
    page.keyboard.type("How long do I have to return an item?")
    page.keyboard.press("Enter")
    answer = page.locator('[data-kefu-role="assistant"]').first
    expect(answer).to_contain_text("30 days", timeout=60_000)
    expect(page.locator('[data-kefu-role="user"]')).to_have_text(re.compile("How long do I have to return an item"))
    chip = answer.get_by_role("button", name=re.compile(r"^\[1\] "))
    chip.click()
    passage = answer.get_by_role("region", name=re.compile(r"^\[1\] Returns and Refunds Policy"))
    expect(passage).to_contain_text("30 days")
    answer.get_by_role("button", name="Helpful", exact=True).click()
    expect(answer.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "true")
    send = page.get_by_role("button", name="Send")
    assert send.evaluate("b => getComputedStyle(b).fontFamily").find("Courier") < 0  # the page's !important styles stay out
    passage.evaluate("e => e.scrollIntoView({block: 'end'})")
    shoot(page, "widget")

    # A person: the queue position, then the agent's reply arrives in the open page.
    page.get_by_role("button", name="Talk to a person").click()
    expect(page.get_by_role("status")).to_have_text(re.compile(r"you are number 1 in the queue"), timeout=30_000)
    expect(page.get_by_role("button", name="Talk to a person")).to_be_disabled()
    session = page.evaluate("() => JSON.parse(localStorage.getItem(Object.keys(localStorage)[0])).session")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    kefu("sessions", "reply", session, "Hello, this is Anna from support: I can start the return for you.", "--agent", "Anna")
    agent = page.locator('[data-kefu-role="agent"]')
    expect(agent).to_contain_text("Hello, this is Anna from support", timeout=30_000)
    expect(agent).to_contain_text("Anna (support team)")
    expect(page.get_by_role("status")).to_have_text("Anna from our support team is with you")

    # Another page of the site: the conversation is still there, the panel still open.
    page.get_by_role("link", name="Lumen Buds Pro").click()
    expect(page.locator('[data-kefu-role="agent"]')).to_contain_text("Hello, this is Anna", timeout=30_000)
    expect(page.locator('[data-kefu-role="assistant"]').first).to_contain_text("30 days")
    page.get_by_role("button", name="Close chat").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.get_by_role("button", name=re.compile("Chat"))).to_be_focused()

    # A page on an origin the key does not name: the widget shows (in the page's language), and answers nothing.
    elsewhere = watched_page(browser, "zh-CN", requests, console)
    elsewhere.goto(unnamed + "/zh.html")  # the page says it is Chinese
    elsewhere.get_by_role("button", name=re.compile("在线客服")).click()
    elsewhere.get_by_role("textbox", name="您的消息").fill("我有多长时间可以退货？")
    elsewhere.get_by_role("button", name="发送").click()
    expect(elsewhere.locator('[data-kefu-role="system"]')).to_contain_text("无法使用在线客服", timeout=30_000)
    assert elsewhere.locator('[data-kefu-role="assistant"]').count() == 0

    allowed = (shop, unnamed, kefu_url)
    assert [u for u in requests if not u.startswith(allowed)] == []
    assert any(u.startswith(kefu_url + "/widget/v1/events") for u in requests)
    blocked = [m for m in console if "Content Security Policy" in m]
    assert blocked == []
