"""Request batching for the in-process model: the engine's step-wise batched decode gives the tokens one-by-one
decoding gives, and the scheduler serves concurrent streams in shared batches, bounded, with errors and early
exits confined to the requests they belong to. The tiny random Qwen2 (tests/tiny_model.py), greedy."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from inference.errors import GeneratorBusy
from inference.generator import GeneratorConfig
from inference.sampling import SamplingParams
from inference.scheduler import BatchingGenerator
from inference.transformers_backend import TransformersGenerator

GREEDY = SamplingParams(temperature=0.0)
QUESTIONS = ["How much is shipping?", "Do you ship to Hong Kong?", "Can I return opened headphones after two weeks?",
             "退货期限是多久？", "Where is my order?", "What is the warranty on Lumen Buds Pro?"]  # fmt: skip


def conversation(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}]


@pytest.fixture(scope="module")
def inner(tiny_checkpoint, tiny_model) -> TransformersGenerator:
    model, tokenizer = tiny_model
    config = GeneratorConfig(backend="transformers", model=str(tiny_checkpoint), temperature=0, max_new_tokens=24)
    return TransformersGenerator(config, model, tokenizer)


def test_the_step_wise_batched_decode_equals_one_by_one_greedy_decoding(inner):
    prompts = [inner.render(conversation(q))[0] for q in QUESTIONS]
    assert len({len(p) for p in prompts}) > 1  # rows of different lengths: left padding is exercised
    one_by_one = [list(inner.engine.stream(p, 24, GREEDY)) for p in prompts]
    steps = list(inner.engine.stream_batch(prompts, 24, GREEDY, inner.pad_id))
    batched: list[list[int]] = [[] for _ in prompts]
    for step in steps:
        assert len({row for row, _ in step}) == len(step)  # at most one token per row and step
        for row, token in step:
            batched[row].append(token)
    assert batched == one_by_one
    assert inner.engine.generate_batch(prompts, 24, GREEDY, inner.pad_id) == one_by_one


def test_rows_end_at_their_own_limit_or_when_cancelled_and_are_told_at_once(inner):
    prompts = [inner.render(conversation(q))[0] for q in QUESTIONS[:3]]
    reference = [list(inner.engine.stream(p, 20, GREEDY)) for p in prompts]
    ended: list[tuple[int, int]] = []  # (row, step at which it was told)
    seen = [[], [], []]
    step_no = 0

    def cancelled(row: int) -> bool:
        return row == 2 and len(seen[2]) >= 3

    for step in inner.engine.stream_batch(prompts, [20, 5, 20], GREEDY, inner.pad_id, cancelled=cancelled,
                                          finished=lambda row: ended.append((row, step_no))):  # fmt: skip
        step_no += 1
        for row, token in step:
            seen[row].append(token)
    assert seen[0] == reference[0]
    assert seen[1] == reference[1][:5]
    assert seen[2] == reference[2][:3]  # cancelled after its third token; the other rows went on
    assert sorted(row for row, _ in ended) == [0, 1, 2]
    told = dict(ended)
    assert told[1] < told[0] and told[2] < told[0]  # the short rows were ended before the batch was over


def test_concurrent_streams_share_batches_and_each_gets_its_own_answer(inner):
    expected = {q: inner.stream(conversation(q)).text() for q in QUESTIONS}
    sizes: list[int] = []
    batching = BatchingGenerator(inner, window_ms=200, max_batch=8, max_queue=16, on_batch=lambda n, _: sizes.append(n))
    start = threading.Barrier(len(QUESTIONS))

    def ask(question: str) -> tuple[str, str, float | None]:
        start.wait()
        stream = batching.stream(conversation(question))
        return question, stream.text(), stream.stats.first_text_s

    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        results = list(pool.map(ask, QUESTIONS))
    assert {q: text for q, text, _ in results} == expected
    assert max(sizes) > 1 and sum(sizes) == len(QUESTIONS)  # requests shared a generation
    assert all(first is not None for _, _, first in results)
    assert batching.describe().startswith("transformers") and batching.waiting() == 0


def test_a_window_of_zero_serves_requests_one_by_one(inner):
    sizes: list[int] = []
    batching = BatchingGenerator(inner, window_ms=0, max_queue=16, on_batch=lambda n, _: sizes.append(n))
    with ThreadPoolExecutor(3) as pool:
        texts = list(pool.map(lambda q: batching.stream(conversation(q)).text(), QUESTIONS[:3]))
    assert texts == [inner.stream(conversation(q)).text() for q in QUESTIONS[:3]]
    assert sizes == [1, 1, 1]


def test_a_full_queue_says_busy_instead_of_waiting(inner):
    import time

    batching = BatchingGenerator(inner, window_ms=1, max_queue=2)
    with batching._model:  # the model is busy with another batch: requests queue up behind it
        first = batching.stream(conversation(QUESTIONS[0]))
        deadline = time.monotonic() + 10
        while batching.waiting() and time.monotonic() < deadline:  # the worker took it and waits for the model
            time.sleep(0.01)
        queued = [batching.stream(conversation(q)) for q in QUESTIONS[1:3]]
        assert batching.waiting() == 2
        with pytest.raises(GeneratorBusy, match="KEFU_LLM_QUEUE=2") as busy:
            batching.stream(conversation(QUESTIONS[3]))
        assert busy.value.retry_after >= 1
    texts = [s.text() for s in (first, *queued)]  # the model is free again: everyone queued is answered
    assert texts == [inner.stream(conversation(q)).text() for q in QUESTIONS[:3]]


def test_a_failing_batch_raises_in_its_readers_and_the_next_request_is_served(inner, monkeypatch):
    batching = BatchingGenerator(inner, window_ms=50, max_queue=8)
    calls = {"n": 0}
    original = inner.engine._forward

    def broken(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("device lost")
        return original(*args, **kwargs)

    monkeypatch.setattr(inner.engine, "_forward", broken)
    streams = [batching.stream(conversation(q)) for q in QUESTIONS[:2]]
    for stream in streams:
        with pytest.raises(RuntimeError, match="device lost"):
            stream.text()
    monkeypatch.setattr(inner.engine, "_forward", original)
    assert batching.stream(conversation(QUESTIONS[0])).text() == inner.stream(conversation(QUESTIONS[0])).text()


def test_a_reader_that_stops_early_frees_its_row(inner):
    batching = BatchingGenerator(inner, window_ms=100, max_queue=8)
    full = inner.stream(conversation(QUESTIONS[1])).text()
    leaving = batching.stream(conversation(QUESTIONS[0]))
    staying = batching.stream(conversation(QUESTIONS[1]))
    next(leaving)
    leaving.close()  # the client went away after the first piece
    assert staying.text() == full
    assert batching.waiting() == 0
