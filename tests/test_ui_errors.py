"""The web app shows errors as messages, never tracebacks, and renders text it did not write as limited Markdown
(`ui.rendering`: the one place the output policy hardens); `kefu ui` configures Streamlit safely by itself."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui.rendering import escape_markdown, limited_markdown

APP = Path(__file__).resolve().parent.parent / "ui" / "streamlit_app.py"


def test_an_internal_error_is_an_apology_with_a_reference_not_its_text(use_kb, monkeypatch):
    from ui.resources import get_service

    monkeypatch.setenv("KEFU_EMBEDDING_MODEL", "/nonexistent/model")
    monkeypatch.setenv("KEFU_UI_WARM_UP", "false")
    get_service.clear()
    try:
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        at.chat_input[0].set_value("hello").run()
        assert not at.exception
        shown = at.error[0].value
        assert "went wrong on our side" in shown and "reference" in shown
        assert "/nonexistent" not in shown and "KEFU_" not in shown  # no setting, path or detail
    finally:
        get_service.clear()


def test_text_from_answers_and_documents_cannot_embed_link_run_latex_or_html():
    hostile = (
        "Refunds take **5 days** [1]. ![pixel](https://evil.example/t.png) [click](javascript:alert(1)) "
        "<img src=x onerror=alert(1)> costs $4.99 or $14.99 :red[alarm] :material/home:"
    )
    safe = limited_markdown(hostile)
    assert "**5 days** [1]" in safe  # emphasis and citations stay
    assert "![" not in safe and "evil.example/t.png" not in safe and "pixel" in safe
    assert "](javascript" not in safe and "click (javascript:alert(1))" in safe
    assert "\\<img" in safe and "\\$4.99" in safe and "\\$14.99" in safe
    assert "\\:red[" in safe and "\\:material/home:" in safe
    assert len(limited_markdown("x" * 10_000)) == 8000
    assert escape_markdown("[1] *a* <b>") == "\\[1\\] \\*a\\* \\<b\\>"


def test_no_page_renders_html():
    pages = list((APP.parent).rglob("*.py"))
    assert len(pages) >= 10
    for page in pages:
        source = page.read_text(encoding="utf-8")
        assert "unsafe_allow_html=" not in source and "st.html(" not in source, page


def test_kefu_ui_serves_streamlit_with_safe_options():
    from ui.__main__ import server_options

    options = server_options("127.0.0.1", 8600, 25)
    pairs = dict(zip(options[::2], options[1::2]))
    assert pairs["--browser.gatherUsageStats"] == "false"
    assert pairs["--client.showErrorDetails"] == "none"
    assert pairs["--server.maxUploadSize"] == "25"
    assert pairs["--server.address"] == "127.0.0.1" and pairs["--server.port"] == "8600"


def test_a_wrong_database_password_never_reaches_the_customer(use_kb, monkeypatch):
    from ui.resources import get_service

    monkeypatch.setenv("KEFU_DATABASE_URL", "postgresql://kefu:hunter2@127.0.0.1:9/kefu?connect_timeout=1")
    monkeypatch.setenv("KEFU_UI_WARM_UP", "false")
    get_service.clear()
    try:
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        at.chat_input[0].set_value("How much does shipping cost?").run()
        assert not at.exception
        everything = " ".join(str(e.value) for e in [*at.error, *at.markdown, *at.caption, *at.warning, *at.info])
        assert "went wrong on our side" in everything
        assert "hunter2" not in everything and "127.0.0.1" not in everything and "postgresql" not in everything
    finally:
        get_service.clear()
