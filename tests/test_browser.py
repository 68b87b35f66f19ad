"""End to end in a real browser: `kefu ui` serves the Streamlit app and Debian's Chromium (driven by Playwright)
uses it as a customer, an agent and an admin would, each in a browser context of their own: a cited answer, a
request for a person, the agent's reply appearing in the customer's open page, an upload. Screenshots of every
page go to KEFU_SCREENSHOTS when set (`make screenshots` writes docs/screenshots/), else to the test's folder."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("KEFU_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.environ.get("KEFU_SCREENSHOTS")  # read before the fixtures clear KEFU_* (`make screenshots`)
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

pytestmark = pytest.mark.browser


def _require_browser():
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"Chromium not found at {CHROMIUM} (apt-get install chromium fonts-noto-cjk)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed (pip install playwright; never `playwright install`)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {missing}")
        pytest.skip(missing)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def private_kb(use_kb, tmp_path, monkeypatch):
    """A writable copy of the ingested sample knowledge base (for tests that change it)."""
    home = tmp_path / "private-home"
    shutil.copytree(use_kb, home)
    monkeypatch.setenv("KEFU_HOME", str(home))
    return home


@pytest.fixture
def served_app(use_kb, tmp_path):
    """`kefu ui` serving whatever KEFU_HOME points at when the test starts."""
    _require_browser()
    port = _free_port()
    kefu_bin = shutil.which("kefu", path=str(Path(sys.executable).parent)) or "kefu"
    log = (tmp_path / "ui.log").open("w")
    process = subprocess.Popen(
        [kefu_bin, "ui", "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.time() > deadline:
                raise AssertionError("kefu ui did not start:\n" + (tmp_path / "ui.log").read_text())
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def idle(page) -> None:
    """Wait until the app's script is not running (Streamlit marks its state on the page)."""
    page.wait_for_selector('[data-test-script-state="notRunning"]', timeout=60_000)


def ask(page, question: str, nth_reply: int):
    """Type a question into the chat and return the locator of the assistant's reply."""
    from playwright.sync_api import expect

    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_visible(timeout=60_000)
    idle(page)  # the rerun after the last answer has drawn it from the database; typing now is not lost
    box.fill(question)
    box.press("Enter")
    return page.get_by_test_id("stChatMessage").nth(nth_reply)


PASSWORDS = {"anna": "anna's desk password", "root": "root's admin password"}


@pytest.fixture
def desk_home(private_kb):
    """The private knowledge base with an agent and an admin."""
    from app.services import KefuService

    service = KefuService()
    service.add_user("anna", "agent", PASSWORDS["anna"])
    service.add_user("root", "admin", PASSWORDS["root"])
    service.close()
    return private_kb


@pytest.fixture
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Screenshots:
    """Small PNGs of each page (a 1280×800 viewport, reduced to 256 colours)."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, page, name: str) -> None:
        from PIL import Image

        page.wait_for_timeout(500)  # let the last rerun settle
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path))
        Image.open(path).convert("RGB").quantize(colors=256).save(path, optimize=True)


def new_page(browser, language: str = "en-US"):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale=language)
    return context.new_page()


def sign_in(page, url: str, name: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{url}/sign_in")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORDS[name])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Agent desk")).to_be_visible(timeout=60_000)


def test_the_support_desk_end_to_end(desk_home, served_app, browser, tmp_path):
    from playwright.sync_api import expect

    shoot = Screenshots(Path(SCREENSHOTS) if SCREENSHOTS else tmp_path / "screenshots")
    question = "How long do I have to return an item?"

    # A customer asks, sees the cited answer and opens a citation; then asks for a person.
    customer = new_page(browser)
    customer.goto(served_app)
    answer = ask(customer, question, 1)
    expect(answer).to_contain_text("30 days", timeout=60_000)
    answer.get_by_role("button", name="[1] Return window").click()
    expect(customer.get_by_text("Return window · data/kb/policies/en/returns.md")).to_be_visible()
    shoot(customer, "chat")
    customer.keyboard.press("Escape")
    customer.get_by_role("button", name="Talk to a person").click()
    expect(customer.get_by_text("Waiting for a person to join")).to_be_visible(timeout=60_000)
    assert "?c=" in customer.url  # the conversation is in the link

    # The sign-in page, as anyone sees it.
    visitor = new_page(browser)
    visitor.goto(f"{served_app}/sign_in")
    expect(visitor.get_by_label("User name")).to_be_visible(timeout=60_000)
    shoot(visitor, "sign-in")

    # An agent signs in, finds the conversation in the queue, gets a draft, sends a reply.
    agent = new_page(browser)
    sign_in(agent, served_app, "anna")
    agent.get_by_role("button", name=re.compile(re.escape(question[:20]))).click()
    draft = agent.get_by_label("Your reply")
    expect(draft).to_have_value(re.compile("30 days"), timeout=60_000)
    expect(agent.get_by_text("Suggested reply")).to_be_visible()
    agent.get_by_text("Suggested reply").evaluate("e => e.scrollIntoView({block: 'start'})")
    shoot(agent, "agent-desk")
    draft.fill("Hello, this is Anna from support: you have 30 days from delivery. Shall I start the return?")
    agent.get_by_role("button", name="Send").click()
    expect(agent.get_by_text("Sent. The customer sees it in their chat.")).to_be_visible(timeout=60_000)

    # The customer's open page shows the reply without a reload.
    expect(customer.get_by_text("Hello, this is Anna from support")).to_be_visible(timeout=60_000)
    expect(customer.get_by_text("anna from our support team is with you")).to_be_visible()
    talk = customer.get_by_role("button", name="Talk to a person")
    expect(talk).to_be_disabled()
    shoot(customer, "chat-with-agent")

    # The agent resolves it: the customer may ask for a person again, still without a reload.
    agent.get_by_role("button", name="Mark resolved").click()
    expect(agent.get_by_text("Marked resolved.")).to_be_visible(timeout=60_000)
    expect(customer.get_by_text("This conversation was marked resolved.")).to_be_visible(timeout=60_000)
    expect(talk).to_be_enabled(timeout=30_000)

    # Batch FAQ: a sheet of questions answered, ready to download.
    sheet = tmp_path / "questions.csv"
    sheet.write_text("question,ticket\nHow much does shipping cost?,T-1\n我有多长时间可以退货？,T-2\n", encoding="utf-8")
    agent.get_by_role("link", name="Batch FAQ").click()
    agent.locator("input[type=file]").set_input_files(str(sheet))
    agent.get_by_role("button", name="Answer 2 questions").click()
    expect(agent.get_by_role("button", name="Download questions-answers.csv")).to_be_visible(timeout=60_000)
    agent.get_by_text("2 rows answered").evaluate("e => e.scrollIntoView({block: 'start'})")
    shoot(agent, "batch-faq")

    # An admin uploads a file, tests retrieval, and looks at the insights and the team.
    admin = new_page(browser)
    sign_in(admin, served_app, "root")
    admin.get_by_role("link", name="Knowledge base").click()
    upload = tmp_path / "store-hours.md"
    upload.write_text("# Store hours\n\nThe Shanghai flagship store opens from 10:00 to 21:30 every day.\n")
    admin.locator("input[type=file]").set_input_files(str(upload))
    admin.get_by_role("button", name="Index these files").click()
    expect(admin.get_by_text("1 indexed")).to_be_visible(timeout=60_000)
    shoot(admin, "knowledge-base")
    admin.get_by_role("tab", name="Retrieval test").click()
    admin.get_by_label("Query").fill("When does the Shanghai store close?")
    admin.get_by_role("button", name="Search").click()
    expect(admin.get_by_role("heading", name="Fused (RRF)")).to_be_visible(timeout=60_000)
    admin.get_by_role("heading", name="Fused (RRF)").evaluate("e => e.scrollIntoView({block: 'start'})")
    shoot(admin, "retrieval-test")
    admin.get_by_role("link", name="Insights").click()
    expect(admin.get_by_role("heading", name="Top knowledge gaps")).to_be_visible(timeout=60_000)
    shoot(admin, "insights")
    admin.get_by_role("link", name="Team").click()
    expect(admin.get_by_role("heading", name="Add an account")).to_be_visible(timeout=60_000)
    shoot(admin, "team")

    # What the admin uploaded answers the next customer; a Chinese question gets the Chinese policy, cited.
    for done in (customer, visitor, agent, admin):
        done.context.close()  # their pages stop polling the server
    later = new_page(browser, "zh-CN")
    later.goto(served_app)
    expect(later.get_by_role("heading", name="客服助手 Kefu")).to_be_visible(timeout=60_000)  # the browser's language
    expect(ask(later, "When does the Shanghai store close?", 1)).to_contain_text("21:30", timeout=60_000)
    chinese = ask(later, "我有多长时间可以退货？", 3)
    expect(chinese).to_contain_text("30 天", timeout=60_000)
    chip = chinese.get_by_role("button", name=re.compile(r"^\[1\] "))
    expect(chip).to_be_visible(timeout=60_000)  # after the rerun that follows the stream
    chip.click()
    expect(later.get_by_text(re.compile(r"^\[1\] 退货与退款政策"))).to_be_visible()


def test_the_api_docs_work_without_the_internet(kb_home, browser, tmp_path):
    """/docs renders in Chromium with every host but Kefu's blocked, as on a machine without the internet."""
    from api_server import ApiServer, clean_env
    from playwright.sync_api import expect

    api = ApiServer(clean_env(home=kb_home, database_url=f"sqlite:///{tmp_path / 'sessions.db'}"), tmp_path).wait_ready()
    elsewhere = []
    try:
        page = new_page(browser)

        def only_kefu(route):
            if route.request.url.startswith(api.url + "/"):
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort()

        page.route("**/*", only_kefu)
        page.goto(api.url + "/docs")
        expect(page.locator(".opblock-summary-path", has_text="/v1/chat/completions")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Kefu answers customers from your knowledge base")).to_be_visible()
        page.locator(".opblock-summary-path", has_text="/v1/chat/completions").click()  # the page works: it opens
        expect(page.get_by_role("button", name="Try it out")).to_be_visible(timeout=30_000)
    finally:
        api.stop()
    assert elsewhere == []
