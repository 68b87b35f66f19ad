"""Intents: the rules in English and Chinese, the nearest labelled example with the real packaged embedder,
and the evaluation data's shape (bench/intents.py and bench/calibration.py read it)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from app.dialogue.intents import (
    CHITCHAT,
    COMPLAINT,
    GOODBYE,
    GREETING,
    HUMAN,
    INTENTS,
    QUESTION,
    THANKS,
    IntentClassifier,
    nearest_example,
    read_examples,
    rule_intent,
)
from rag.analysis import detect_language

ROOT = Path(__file__).resolve().parent.parent
HOLDOUT = ROOT / "data" / "eval" / "intents_holdout.csv"
KB_QUESTIONS = ROOT / "data" / "eval" / "kb_questions.jsonl"


@pytest.mark.parametrize(
    "text, intent",
    [
        ("hello there", GREETING),
        ("good morning!", GREETING),
        ("hey, is anyone there?", GREETING),
        ("你好", GREETING),
        ("在吗？", GREETING),
        ("有人吗", GREETING),
        ("thank you so much", THANKS),
        ("that was really helpful", THANKS),
        ("谢谢", THANKS),
        ("好的，收到", THANKS),
        ("bye", GOODBYE),
        ("see you later", GOODBYE),
        ("that's all for today", GOODBYE),
        ("nothing else, thanks, bye", GOODBYE),
        ("再见", GOODBYE),
        ("就这些了", GOODBYE),
        ("I want to talk to a human", HUMAN),
        ("get me a representative", HUMAN),
        ("is there a person I can talk to?", HUMAN),
        ("I don't want a bot", HUMAN),
        ("转人工", HUMAN),
        ("叫你们经理来", HUMAN),
        ("your service is terrible", COMPLAINT),
        ("I'll never buy from you again", COMPLAINT),
        ("I am extremely disappointed with my order", COMPLAINT),
        ("我要投诉", COMPLAINT),
        ("什么破东西", COMPLAINT),
        ("tell me a joke", CHITCHAT),
        ("are you a robot?", CHITCHAT),
        ("你是机器人吗", CHITCHAT),
        ("今天天气怎么样", CHITCHAT),  # labelled small talk in data/intents.csv, which MiniLM cannot read
    ],
)
def test_rules(text, intent):
    ruled = rule_intent(text)
    assert ruled is not None and ruled.name == intent and ruled.method == "rule"


@pytest.mark.parametrize(
    "text",
    [
        "hi, where is my parcel?",
        "hello how do I return my headphones",
        "thanks but how long does a refund take",
        "ok and what about international shipping",
        "do you deliver in the evening?",
        "is the watch good for swimming",
        "客服电话是多少",  # asks for a number, not for a person
        "你好，我想退货",
        "好的，那运费多少钱",
        "are you a bot? how do I return my watch?",  # small talk beside a question
        "你是机器人吗？我想退货",
    ],
)
def test_a_question_beside_small_talk_stays_a_question(text):
    assert rule_intent(text) is None
    assert IntentClassifier([("hi", GREETING), ("thanks", THANKS)]).classify(text).name == QUESTION


def test_handoff_rules_win_over_small_talk():
    assert rule_intent("hi, this is ridiculous, my order is late").name == COMPLAINT
    assert rule_intent("thanks, but I'd like to speak to a person").name == HUMAN
    assert rule_intent("are you a robot? get me a human").name == HUMAN


def test_nearest_example_needs_closeness_and_a_margin_over_questions():
    labels = [CHITCHAT, QUESTION]
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]])
    near_chitchat = np.array([0.9, np.sqrt(1 - 0.81)])
    assert nearest_example(near_chitchat, vectors, labels, min_similarity=0.8, margin=0.1).name == CHITCHAT
    assert nearest_example(near_chitchat, vectors, labels, min_similarity=0.95, margin=0.1).name == QUESTION
    between = np.array([0.75, 0.66]) / np.linalg.norm([0.75, 0.66])
    assert nearest_example(between, vectors, labels, min_similarity=0.5, margin=0.2).name == QUESTION
    assert nearest_example(between, vectors, labels, min_similarity=0.5, margin=0.0).name == CHITCHAT


def test_nearest_example_with_the_packaged_embedder(embedder):
    from rag.indexing import embed_readable

    classifier = IntentClassifier(read_examples(), lambda texts: embed_readable(embedder, list(texts), query=True))
    weather = classifier.classify("what is the weather like today?")
    assert (weather.name, weather.method) == (CHITCHAT, "examples") and weather.confidence >= 0.78
    parcel = classifier.classify("my parcel came damaged, what should I do?")
    assert parcel.name == QUESTION
    unreadable = classifier.classify("包裹什么时候到")  # no rule, and MiniLM cannot read it
    assert (unreadable.name, unreadable.method) == (QUESTION, "default")


def test_read_examples_rejects_unknown_intents(tmp_path):
    path = tmp_path / "intents.csv"
    path.write_text("text,intent\nhi,greeting\nrefund please,refund\n", encoding="utf-8")
    with pytest.raises(ValueError, match="refund"):
        read_examples(path)


def test_held_out_messages_cover_every_intent_in_both_languages_and_are_not_training_examples():
    held_out = read_examples(HOLDOUT)
    assert {intent for _, intent in held_out} == set(INTENTS)
    for intent in INTENTS:
        languages = {detect_language(text) for text, label in held_out if label == intent}
        assert languages == {"en", "zh"}, intent
    training = {text.lower() for text, _ in read_examples()}
    assert not [text for text, _ in held_out if text.lower() in training]


def test_kb_questions_name_files_of_the_knowledge_base():
    with KB_QUESTIONS.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["language"] for r in rows} == {"en", "zh"}
    for r in rows:
        assert detect_language(r["text"]) == r["language"], r
        assert r["sources"] and all((ROOT / "data" / "kb" / s).is_file() for s in r["sources"]), r
    with (ROOT / "data" / "kb" / "faq.csv").open(encoding="utf-8", newline="") as fh:
        faq_questions = {row["question"].lower().rstrip("?？") for row in csv.DictReader(fh)}
    assert not [r["text"] for r in rows if r["text"].lower().rstrip("?？") in faq_questions]  # asked, not copied
