"""Generation settings: read like every other setting, except the API key, which only the environment sets."""

from app.settings import load_settings


def test_generation_defaults():
    g = load_settings().generation
    assert (g.llm, g.model, g.quantization, g.device) == ("auto", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "auto", "auto")
    assert (g.kv_cache, g.kv_sinks, g.reasoning, g.temperature) == ("sink", 4, "fast", None)


def test_the_api_key_comes_from_the_environment_never_from_dotenv(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("KEFU_OPENAI_API_KEY=sk-from-dotenv\nKEFU_MODEL=from-dotenv\n", encoding="utf-8")
    s = load_settings()
    assert s.generation.model == "from-dotenv"  # .env works for ordinary settings
    assert s.secrets.openai_api_key is None
    monkeypatch.setenv("KEFU_OPENAI_API_KEY", "sk-from-env")
    s = load_settings()
    assert s.secrets.openai_api_key.get_secret_value() == "sk-from-env"
    assert "sk-from-env" not in s.model_dump_json()


def test_the_service_passes_settings_to_the_generator(monkeypatch):
    from app.services import KefuService

    monkeypatch.setenv("KEFU_LLM", "openai")
    monkeypatch.setenv("KEFU_OPENAI_API_KEY", "sk-1")
    monkeypatch.setenv("KEFU_KV_WINDOW", "512")
    config = KefuService().generator_config()
    assert (config.backend, config.openai_api_key, config.kv_window) == ("openai", "sk-1", 512)
    assert "sk-1" not in repr(config)
