"""The metrics the answering path reports (`app.metrics`): retrieval time, generation figures from the tiny
local model behind the request batcher (time to first token, decode speed, prompt and answer tokens, batch
sizes, queue depth), answers by mode and cache. Read from the process's Prometheus registry, as `/metrics`
renders it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prometheus_client import REGISTRY

from conftest import ROOT

EXPRESS = "What does express delivery cost?"  # no FAQ entry asks exactly this: the answer is written
FIGURES = ("kefu_retrieval_seconds_count", "kefu_time_to_first_token_seconds_count", "kefu_decode_tokens_per_second_count",
           "kefu_prompt_tokens_total", "kefu_answer_tokens_total", "kefu_generation_batch_size_count")  # fmt: skip


def figures() -> dict[str, float]:
    return {name: REGISTRY.get_sample_value(name) or 0.0 for name in FIGURES}


@pytest.fixture
def tiny_llm(use_kb, tiny_checkpoint, monkeypatch):
    monkeypatch.setenv("KEFU_LLM", "transformers")
    monkeypatch.setenv("KEFU_MODEL", str(tiny_checkpoint))
    monkeypatch.setenv("KEFU_TEMPERATURE", "0")
    monkeypatch.setenv("KEFU_MAX_NEW_TOKENS", "12")
    return tiny_checkpoint


def test_a_generated_answer_moves_the_generation_figures_and_a_cached_one_does_not(tiny_llm):
    from app.services import KefuService

    service = KefuService()
    try:
        before = figures()
        answered = REGISTRY.get_sample_value("kefu_answers_total", {"mode": "generated", "cached": "false"}) or 0.0
        first = service.ask(EXPRESS)
        assert first.mode == "generated" and not first.cached
        after = figures()
        moved = {name for name in FIGURES if after[name] > before[name]}
        assert moved == set(FIGURES)
        assert after["kefu_answer_tokens_total"] - before["kefu_answer_tokens_total"] == 12  # KEFU_MAX_NEW_TOKENS
        assert REGISTRY.get_sample_value("kefu_generation_queue_depth") == 0  # nothing left waiting
        assert REGISTRY.get_sample_value("kefu_answers_total", {"mode": "generated", "cached": "false"}) == answered + 1
        second = service.ask(EXPRESS)
        assert second.cached and second.answer == first.answer
        assert figures() == after  # the cache searched nothing and generated nothing
        assert REGISTRY.get_sample_value("kefu_answers_total", {"mode": "generated", "cached": "true"}) >= 1
    finally:
        service.close()


def test_the_metrics_module_imports_without_loading_models_or_reading_gpus():
    code = (
        "import sys, app.metrics as m; body, kind = m.render(); text = body.decode();"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'a model library was imported';"
        "assert 'kefu_answer_cache_total' in text and 'kefu_retrieval_seconds_bucket' in text, text[:500];"
        "assert kind.startswith('text/plain')"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
