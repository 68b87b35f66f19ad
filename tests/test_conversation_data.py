"""The conversation benchmark's data (bench/conversations.py, issue 16) is well formed: every turn labelled, every
labelled document in its knowledge base, every labelled fact in one of its documents (read by Kefu's own loaders),
and the conversations cover what the issue asks for. Reads files only: no model, no store."""

from __future__ import annotations

import importlib.util
import json
import sys
from functools import cache
from pathlib import Path

import pytest

from ingest.loaders import LoadOptions
from ingest.registry import loader_for

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("bench_conversations", ROOT / "bench" / "conversations.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _bench()
MAIN = bench.read_conversations(bench.CONVERSATIONS)
HELD_BACK = bench.read_conversations([bench.HELD_BACK])


@cache
def document_text(path: Path) -> str:
    documents = loader_for(path)(path, LoadOptions())
    return bench.normalise("\n".join(d.text + "\n" + json.dumps(d.metadata, ensure_ascii=False) for d in documents))


@pytest.mark.parametrize("conversations", [MAIN, HELD_BACK], ids=["main", "held-back"])
def test_every_turn_is_labelled_and_every_fact_is_in_its_documents(conversations):
    assert bench.check_conversations(conversations) == []
    missing = []
    for c in conversations:
        for i, turn in enumerate(c.turns):
            texts = [document_text(ROOT / c.kb / d) for d in turn.docs]
            if turn.covered and not any(bench.normalise(f) in t for f in turn.fact for t in texts):
                missing.append(f"{c.id} turn {i + 1}: none of {turn.fact} in {turn.docs}")
    assert missing == []


def test_the_conversations_cover_what_issue_16_asks_for():
    kbs = {c.kb for c in MAIN}
    assert len(MAIN) >= 60 and kbs == {"data/kb", "data/kb-telecom"}
    assert {c.language for c in MAIN if c.kb == "data/kb-telecom"} == {"en", "zh"}
    assert {c.language for c in MAIN if c.kb == "data/kb"} == {"en", "zh"}
    follow_up_tags = [tag for c in MAIN for t in c.turns[1:] for tag in t.tags]
    for tag in ("cue-less", "price", "time", "amount", "place", "pronoun", "ellipsis", "topic-switch",
                "language-switch", "not-covered"):  # fmt: skip
        assert follow_up_tags.count(tag) >= 2, tag
    all_tags = [tag for c in MAIN for t in c.turns for tag in t.tags]
    for tag in ("identifier", "email", "phone", "number"):  # in opening questions and in follow-ups
        assert all_tags.count(tag) >= 3 and tag in follow_up_tags, tag
    cue_less = [t for c in MAIN for t in c.turns[1:] if "cue-less" in t.tags]
    for aspect in ("price", "time", "amount", "place"):
        assert any(aspect in t.tags for t in cue_less), aspect
    assert sum(not c.turns[0].covered for c in MAIN) >= 4  # not covered at the first turn
    assert sum(not t.covered for c in MAIN for t in c.turns[1:]) >= 4  # and later
    assert len({c.id for c in MAIN} & {c.id for c in HELD_BACK}) == 0


def test_the_second_knowledge_base_has_an_faq_sheet_and_eight_documents_in_two_languages():
    kb = ROOT / "data" / "kb-telecom"
    files = [p for p in kb.rglob("*") if p.is_file()]
    assert (kb / "faq.csv") in files
    faq = document_text(kb / "faq.csv")
    assert "halo" in faq and "光环" in faq
    for language in ("en", "zh"):
        assert len(list((kb / "policies" / language).glob("*.md"))) >= 8


def test_a_badly_labelled_conversation_is_caught(tmp_path):
    rows = [
        {"conv": "x", "kb": "data/kb", "ask": "How long is the warranty?", "docs": ["policies/en/nothing.md"],
         "fact": ["2-year"], "mode": "answered", "tags": []},
        {"conv": "x", "kb": "data/kb", "ask": "And batteries?", "docs": ["policies/en/warranty.md"], "fact": [],
         "mode": "answered", "tags": ["elipsis"]},
        {"conv": "x", "kb": "data/kb", "ask": "Do you sell cars?", "docs": "not covered", "mode": "answered",
         "tags": []},
    ]  # fmt: skip
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    problems = bench.check_conversations(bench.read_conversations([path]))
    assert any("no document policies/en/nothing.md" in p for p in problems)
    assert any("turn 2: no fact" in p for p in problems) and any("unknown tag 'elipsis'" in p for p in problems)
    assert any("turn 3: not covered with mode 'answered'" in p for p in problems)
    path.write_text('{"conv": "y", "kb": "data/kb", "ask": "Hi?"}\n', encoding="utf-8")
    with pytest.raises(bench.DataError, match="bad.jsonl:1"):
        bench.read_conversations([path])


def test_judging_a_turn():
    conversation = bench.read_conversations([bench.CONVERSATIONS[0]])[0]  # data/kb: returns, refund time, postage
    assert conversation.turns[0].fact == ("30 days",)
    right = {"mode": "extractive", "answer": "You have **30 days from the date of delivery** [1]",
             "docs": ["policies/en/returns.md"], "query": conversation.turns[0].ask}  # fmt: skip
    assert bench.judge(conversation, 0, right).right
    assert bench.judge(conversation, 0, dict(right, docs=["faq.csv"])).why.startswith("cites")
    assert "not in the answer" in bench.judge(conversation, 0, dict(right, answer="Within 14 days.")).why
    assert bench.judge(conversation, 0, dict(right, mode="abstain")).why == "abstain instead of an answer"
