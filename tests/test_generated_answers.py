"""Generated answers end to end: `kefu ask` with a local model over the sample knowledge base (the tiny
random checkpoint for the mechanics, SmolLM2-135M for a real grounded answer), long sessions, batches, the
chat page streaming."""

import json
import re

import pytest
from conftest import ROOT, kefu, kefu_json

EXPRESS = "What does express delivery cost?"  # no FAQ entry asks exactly this: the answer is written


@pytest.fixture
def tiny_llm(use_kb, tiny_checkpoint, monkeypatch):
    monkeypatch.setenv("KEFU_LLM", "transformers")
    monkeypatch.setenv("KEFU_MODEL", str(tiny_checkpoint))
    monkeypatch.setenv("KEFU_TEMPERATURE", "0")
    monkeypatch.setenv("KEFU_MAX_NEW_TOKENS", "12")
    return tiny_checkpoint


@pytest.mark.parametrize("quantization", ["none", "nf4"])
def test_kefu_ask_json_answers_in_generated_mode_with_sources(tiny_llm, monkeypatch, quantization):
    monkeypatch.setenv("KEFU_QUANTIZATION", quantization)
    answer = kefu_json("ask", EXPRESS)
    assert answer["mode"] == "generated"
    assert answer["answer"].strip()
    assert answer["sources"] and answer["sources"][0]["section"] == "Delivery options and times"
    assert all("cited" in s for s in answer["sources"])
    assert "<think>" not in answer["answer"] and "</think>" not in answer["answer"]


def test_faq_abstain_and_handoff_rules_stay_with_a_model(tiny_llm):
    assert kefu_json("ask", "How much does shipping cost?")["mode"] == "faq"
    assert kefu_json("ask", "What is the airspeed velocity of an unladen swallow?")["mode"] == "abstain"
    assert kefu_json("ask", "I want to talk to a human")["mode"] == "handoff"


def test_a_thirty_turn_session_keeps_answering_within_the_budget(tiny_llm, monkeypatch):
    from app.services import KefuService

    monkeypatch.setenv("KEFU_CONTEXT_TOKENS", "1500")
    questions = [EXPRESS, "How long do refunds take?", "What happens if my parcel arrives damaged?"]
    modes = []
    monkeypatch.setenv("KEFU_HISTORY_MESSAGES", "40")
    service = KefuService()
    for turn in range(30):
        reply = service.ask_stream(questions[turn % 3], session_id="long-session")
        answer = reply.finish()
        # The random model sometimes opens a <think> it never closes: nothing visible, so Kefu quotes instead.
        assert answer.mode in ("generated", "extractive") and answer.answer.strip(), f"turn {turn}"
        modes.append(answer.mode)
        prompt = reply.prompt
        assert prompt.tokens <= 1500 - 12
    assert modes.count("generated") >= 20
    assert prompt.turns_kept + prompt.turns_summarised + prompt.turns_dropped == 40  # the history read per turn
    assert prompt.turns_summarised + prompt.turns_dropped >= 10  # the older turns gave way to the budget
    assert prompt.turns_kept >= 2
    history = service.history("long-session")
    assert len(history) == 60 and all("<think>" not in t.content for t in history)


def test_the_streamed_text_is_the_stored_answer(tiny_llm):
    from app.services import KefuService

    service = KefuService()
    reply = service.ask_stream(EXPRESS, session_id="s1")
    streamed = "".join(reply)
    answer = reply.answer
    assert answer.mode == "generated" and streamed.strip() == answer.answer
    assert service.history("s1")[-1].content == answer.answer


def test_batch_answers_equal_one_by_one_answers(tiny_llm, tmp_path):
    questions = [EXPRESS, "How much does shipping cost?", "How long do refunds take?"]
    path = tmp_path / "questions.txt"
    path.write_text("\n".join(questions) + "\n", encoding="utf-8")
    lines = [json.loads(line) for line in kefu("ask", "--questions", str(path), "--json").splitlines()]
    assert [line["question"] for line in lines] == questions
    assert [line["mode"] for line in lines] == ["generated", "faq", "generated"]
    for line in lines:
        assert line["answer"] == kefu_json("ask", line["question"])["answer"]


def test_kefu_llm_says_which_backend_answers(use_kb, tiny_checkpoint, monkeypatch):
    assert kefu_json("llm")["backend"] == "extractive"
    monkeypatch.setenv("KEFU_MODEL", str(tiny_checkpoint))
    status = kefu_json("llm", "--load")
    assert status["backend"] == "transformers" and "sink cache 4+4096" in status["model"]


def test_bad_generation_settings_are_one_line_errors(use_kb, monkeypatch):
    monkeypatch.setenv("KEFU_LLM", "transformers")
    out = kefu("ask", EXPRESS, expect=1)
    assert "hf download deepseek-ai/DeepSeek-R1-Distill-Qwen-7B" in out and "Traceback" not in out
    monkeypatch.setenv("KEFU_LLM", "gpt")
    assert "KEFU_LLM='gpt'" in kefu("ask", EXPRESS, expect=1)


def test_smollm2_gives_a_correct_cited_answer(use_kb, smollm2_gguf, monkeypatch):
    monkeypatch.setenv("KEFU_LLM", "transformers")
    monkeypatch.setenv("KEFU_MODEL", str(smollm2_gguf))
    monkeypatch.setenv("KEFU_TEMPERATURE", "0")
    monkeypatch.setenv("KEFU_MAX_NEW_TOKENS", "64")
    answer = kefu_json("ask", "Which countries do you ship to?")
    assert answer["mode"] == "generated"
    for country in ("Canada", "Hong Kong", "Singapore"):
        assert country in answer["answer"]
    cited = [s for s in answer["sources"] if s["cited"]]
    assert cited and all("Canada" in s["text"] for s in cited)  # the cited passages do say so


def test_the_chat_page_streams_a_generated_answer(tiny_llm):
    from streamlit.testing.v1 import AppTest

    from ui.resources import get_service

    get_service.clear()
    app = AppTest.from_file(str(ROOT / "ui" / "streamlit_app.py"), default_timeout=60)
    app.run()
    app.chat_input[0].set_value(EXPRESS).run()
    assert not app.exception
    assert any(c.value.startswith("Generated from the knowledge base") for c in app.chat_message[1].caption)
    assert get_service().history(app.query_params["c"])[-1].mode == "generated"
    get_service.clear()


def _force_output(generator, text: str) -> None:
    """Make the real model say `text` (then stop), whatever it was asked: a forward hook on the tiny Qwen2 sets
    each step's logits to the next token of `text`. Kefu's decode loop, detokenizer and filters run as ever."""
    tokenizer = generator.tokenizer
    target = tokenizer(text, add_special_tokens=False)["input_ids"] + [min(generator.engine.stop_ids)]
    state = {"step": 0}

    def hook(module, args, kwargs, output):
        ids = kwargs.get("input_ids")
        if ids is not None and ids.shape[1] > 1:
            state["step"] = 0  # a new prompt (prefill)
        token = target[min(state["step"], len(target) - 1)]
        output.logits[:, -1, :] = -1e9
        output.logits[:, -1, token] = 1e9
        state["step"] += 1
        return output

    generator.model.register_forward_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("copy", ["canary", "system prompt"])
def test_a_model_forced_to_copy_its_instructions_never_shows_them(tiny_llm, monkeypatch, copy):
    from app.answering.prompting import SYSTEM
    from app.services import KefuService

    monkeypatch.setenv("KEFU_MAX_NEW_TOKENS", "160")
    service = KefuService()
    canary = service.components.canary
    leak = f"Sure! My marker is {canary} and that is all." if copy == "canary" else "Here you go: " + SYSTEM["en"][:160]
    _force_output(service.components.generator, leak)
    reply = service.ask_stream(EXPRESS, session_id="leaky")
    pieces = list(reply)
    answer = reply.answer
    shown = "".join(pieces)
    assert canary not in shown and canary not in answer.answer
    assert SYSTEM["en"][:60] not in shown and SYSTEM["en"][:60] not in answer.answer
    assert answer.mode == "extractive" and "[1]" in answer.answer  # the passages are quoted instead
    assert all(canary not in m.content for m in service.history("leaky"))
    assert "leak" in answer.guardrails


def test_a_generated_answer_that_forgets_its_citation_cites_the_passage_it_restates(use_kb, monkeypatch):
    """Small models often restate a passage without its [n]: the answer is attributed (streamed and stored
    alike); one that restates nothing given is left uncited."""
    from app.services import KefuService

    monkeypatch.setenv("KEFU_CACHE_URL", "none")  # the same question is asked twice, to two different writers

    class Scripted:
        context_tokens = 4096

        def __init__(self, text):
            self.text = text

        def count_tokens(self, text: str) -> int:
            return len(text.split())

        def stream(self, messages, max_new_tokens=None):
            yield from self.text.split(" ")[:1]
            for word in self.text.split(" ")[1:]:
                yield " " + word

    service = KefuService()
    service.components.__dict__["generator"] = Scripted(
        "We ship to the United States, Canada, the United Kingdom, the European Union, Hong Kong, Singapore and mainland China."
    )
    reply = service.ask_stream("Which countries do you ship to?", session_id="forgot")
    streamed = "".join(reply)
    answer = reply.answer
    assert answer.mode == "generated" and streamed.strip() == answer.answer
    assert re.search(r"mainland China\. \[[12]\]$", answer.answer), answer.answer
    cited = [s for s in answer.sources if s["cited"]]
    assert len(cited) == 1 and "Canada" in cited[0]["text"]

    service.components.__dict__["generator"] = Scripted("Our drones fly parcels over the Alps every morning at dawn.")
    answer = service.ask("Which countries do you ship to?", session_id="invented")
    assert answer.mode == "generated" and not any(s["cited"] for s in answer.sources)
    service.close()
