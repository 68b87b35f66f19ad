"""The Streamlit chat page under Streamlit's AppTest: the real page script, the real service."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = Path(__file__).resolve().parent.parent / "ui" / "app_pages" / "chat.py"


@pytest.fixture
def app(use_kb):
    from ui.resources import get_service

    get_service.clear()  # a service built for another test's KEFU_HOME must not leak in
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.run()
    assert not at.exception
    return at


def test_chat_answers_with_mode_and_sources(app):
    app.chat_input[0].set_value("How long do I have to return an item?").run()
    assert not app.exception
    answer = app.chat_message[1].markdown[0].value
    assert "30 days" in answer
    captions = " ".join(c.value for c in app.chat_message[1].caption)
    assert "Quoted from the knowledge base" in captions or "Answered from the FAQ" in captions
    sources = app.chat_message[1].expander[0]
    assert sources.label.startswith("Sources (")
    assert any("Returns and Refunds Policy" in m.value for m in sources.markdown)
    assert app.session_state.session_id


def test_chat_keeps_the_conversation_and_answers_in_chinese(app):
    app.chat_input[0].set_value("我有多长时间可以退货？").run()
    app.chat_input[0].set_value("你们卖冰箱吗？").run()  # a shop question the knowledge base cannot answer
    assert not app.exception
    messages = app.chat_message
    assert [m.name for m in messages] == ["user", "assistant", "user", "assistant"]
    assert "30 天" in messages[1].markdown[0].value
    assert "人工客服" in messages[3].markdown[0].value  # abstains and offers a human
    assert "No answer found" in messages[3].caption[0].value


def test_new_conversation_clears_the_chat(app):
    app.chat_input[0].set_value("How much is shipping?").run()
    assert len(app.chat_message) == 2
    app.sidebar.button[0].click().run()
    assert len(app.chat_message) == 0
    assert app.session_state.session_id is None


def test_a_user_error_is_a_message_not_a_traceback(app, monkeypatch):
    monkeypatch.setenv("KEFU_EMBEDDING_MODEL", "/nonexistent/model")
    from ui.resources import get_service

    get_service.clear()
    app.chat_input[0].set_value("hello").run()
    assert not app.exception
    assert "cannot load embedding model" in app.error[0].value


KB_PAGE = PAGE.parent / "knowledge_base.py"


def test_knowledge_base_page_lists_and_deletes_documents(isolated_settings, kb_copy):
    from app.services import KefuService
    from ui.resources import get_service

    service = KefuService()
    service.ingest([kb_copy / "policies" / "en"])
    service.close()
    get_service.clear()
    at = AppTest.from_file(str(KB_PAGE), default_timeout=60).run()
    assert not at.exception
    assert at.metric[0].value == "5"
    table = at.dataframe[0].value
    assert "Returns and Refunds Policy" in set(table["title"])
    returns_id = table.loc[table["title"] == "Returns and Refunds Policy", "id"].iloc[0]
    at.multiselect[0].select(returns_id).run()
    at.button[0].click().run()
    assert not at.exception
    assert at.metric[0].value == "4"
    assert "Returns and Refunds Policy" not in set(at.dataframe[0].value["title"])


def test_knowledge_base_page_on_an_empty_store(isolated_settings):
    from ui.resources import get_service

    get_service.clear()
    at = AppTest.from_file(str(KB_PAGE), default_timeout=60).run()
    assert not at.exception
    assert at.metric[0].value == "0"
    assert "empty" in at.info[0].value
