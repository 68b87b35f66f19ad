"""`Answerer.evidence`, what `bench/calibration.py` measures, is what answers are decided from: the same
thresholds applied to it by `app.answering.rules.plan` give the mode a real answer gets, on the sample knowledge base."""

import pytest

from app.answering import rules as answering

QUESTIONS = [
    "How much does shipping cost?",  # an FAQ entry, word for word
    "how long until the refund shows up on my credit card",  # the returns policy
    "退货期限是多久？",  # the Chinese returns policy
    "What is the capital of France?",  # nothing relevant
    "你们卖冰箱吗？",
]


@pytest.fixture
def service(use_kb):
    from app.services import KefuService

    s = KefuService()
    yield s
    s.close()


def test_plan_on_the_evidence_gives_the_answers_mode(service):
    answerer = service.components.answerer
    settings = service.settings.answer
    evidence = answerer.evidence(QUESTIONS)
    answers = service.ask_batch(QUESTIONS)
    modes = []
    for question, found, answer in zip(QUESTIONS, evidence, answers):
        language = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in question) else "en"
        decided, chosen = answering.plan(language, found.judged, settings.faq_min_similarity, settings.min_relevance, 3)
        mode = decided.mode if decided is not None else answering.MODE_EXTRACTIVE
        assert mode == answer.mode, question
        if chosen:
            assert chosen[0].hit.chunk.chunk_id == answer.sources[0]["chunk_id"]
        modes.append(mode)
    assert modes == ["faq", "extractive", "extractive", "abstain", "abstain"]
