from pathlib import Path

import pytest
from pydantic import ValidationError

from app.errors import ConfigError
from app.settings import Settings, _rows, env_example, load_settings, markdown_table

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_has_a_unique_kefu_variable_and_a_description():
    rows = _rows()
    names = [var for _, var, _, _ in rows]
    assert len(names) == len(set(names))
    assert all(var.startswith("KEFU_") for var in names)
    assert all(desc for _, _, _, desc in rows)


def test_defaults(isolated_settings):
    s = load_settings()
    assert s.core.home == isolated_settings
    assert s.store.store == "sqlite"
    assert s.database_url == f"sqlite:///{isolated_settings / 'kefu.db'}"


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("KEFU_HOME", "relative/home")
    monkeypatch.setenv("KEFU_CANDIDATES", "42")
    monkeypatch.setenv("KEFU_ZH_ANALYZER", "bigram")
    s = load_settings()
    assert s.core.home == (tmp_path / "relative" / "home").resolve()
    assert s.retrieval.candidates == 42
    assert s.analysis.zh_analyzer == "bigram"


def test_bad_values_are_rejected_with_the_variable_named(monkeypatch):
    monkeypatch.setenv("KEFU_STORE", "mongodb")
    with pytest.raises(ValidationError, match="store"):
        Settings()
    with pytest.raises(ConfigError, match="KEFU_STORE='mongodb'"):
        load_settings()


def test_readme_settings_table_is_in_step_with_the_settings():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme, "regenerate with: python -m app.settings --markdown"


def test_env_example_is_in_step_with_the_settings():
    assert (ROOT / ".env.example").read_text(encoding="utf-8") == env_example(), "regenerate with: make docs"


def test_elasticsearch_settings_and_secrets_never_print(monkeypatch):
    monkeypatch.setenv("KEFU_STORE", "elasticsearch")
    monkeypatch.setenv("KEFU_ES_URL", "https://es1:9200,https://es2:9200")
    monkeypatch.setenv("KEFU_ES_API_KEY", "c2VjcmV0LWtleQ==")
    monkeypatch.setenv("KEFU_ES_PASSWORD", "hunter2")
    monkeypatch.setenv("KEFU_ANSWER_AUDIENCES", "public, partners")
    s = load_settings()
    assert s.store.store == "elasticsearch" and s.store.es_api_key.get_secret_value() == "c2VjcmV0LWtleQ=="
    dumped = s.model_dump_json()
    assert "c2VjcmV0LWtleQ==" not in dumped and "hunter2" not in dumped
    assert s.answer.audiences() == ("public", "partners")
    monkeypatch.setenv("KEFU_ANSWER_AUDIENCES", "*")
    assert load_settings().answer.audiences() is None
