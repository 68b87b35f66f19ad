"""Request batching for the in-process model: concurrent streams share one batched generation.

`BatchingGenerator` wraps a `TransformersGenerator` and keeps its `Generator` contract. A `stream` call renders
its prompt in the caller's thread and joins a bounded queue; one worker thread takes the oldest request, waits
for more while they keep arriving (until `batch_window_ms` passes with none, and at most MAX_WINDOWS windows in
all; at most `max_batch` requests), and decodes them together with the
engine's step-wise `stream_batch`, handing each row's tokens to its own reader as they are chosen. Each
caller still reads its own `TextStream` (detokenized, reasoning hidden, loops cut) in its own thread, so the
first token of every request arrives after one shared prefill, not after the requests before it. A request
whose reader stops (a loop, a client that left) ends its row; the others go on. A full queue raises
`GeneratorBusy` (the API answers 503 with Retry-After) instead of letting waits grow without bound.

This is micro-batching, not continuous batching: requests arriving while a batch decodes wait for the next
one. vLLM and SGLang batch continuously on their side (`KEFU_LLM=openai`); this serves one machine. With a
window of 0 requests are served one by one, in arrival order (the baseline `bench/load.py` measures).
Knows nothing of prompts' content, retrieval or HTTP.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from inference.errors import GeneratorBusy
from inference.generator import Message, TextStream

_END = object()
MAX_WINDOWS = 4  # a batch waits at most this many windows for requests that keep arriving


@dataclass
class _Request:
    prompt: list[int]
    max_new: int
    tokens: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)  # ints, then an exception or _END
    enqueued: float = field(default_factory=time.monotonic)
    cancelled: bool = False


class BatchingGenerator:
    """A `Generator` over a `TransformersGenerator` that serves concurrent streams in micro-batches."""

    name = "transformers"

    def __init__(
        self,
        inner,
        window_ms: float = 10.0,
        max_batch: int | None = None,
        max_queue: int = 64,
        on_batch: Callable[[int, int], None] | None = None,
        on_queue: Callable[[int], None] | None = None,
    ):
        self.inner = inner
        self.context_tokens = inner.context_tokens
        self.window_s = max(0.0, window_ms) / 1000
        if self.window_s == 0:
            self.max_batch = 1
        else:
            self.max_batch = max_batch or inner.batch_size(inner.context_tokens, 0)
        self.max_queue = max_queue
        self.on_batch = on_batch  # (rows in the batch, requests still waiting), after each batch starts
        self.on_queue = on_queue  # (requests waiting), after a request joins the queue
        self._waiting: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._model = threading.Lock()  # held while the model runs: a micro-batch, or a whole generate_batch
        self._worker: threading.Thread | None = None

    def __getattr__(self, name: str):
        """Anything else (model, tokenizer, engine, config, sampling) is the wrapped generator's."""
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    # -- the Generator contract ---------------------------------------------------------------------------

    def stream(self, messages: Sequence[Message], max_new_tokens: int | None = None) -> TextStream:
        prompt, inside, max_new = self.inner.prepare(messages, max_new_tokens)
        request = _Request(prompt, max_new)
        with self._cond:
            if len(self._waiting) >= self.max_queue:
                raise GeneratorBusy(
                    f"the model is busy: {len(self._waiting)} requests are waiting (KEFU_LLM_QUEUE={self.max_queue}); "
                    "try again in a moment",
                    retry_after=max(1.0, self.window_s * 10),
                )
            self._waiting.append(request)
            waiting = len(self._waiting)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="kefu-batcher", daemon=True)
                self._worker.start()
            self._cond.notify_all()
        if self.on_queue is not None:
            self.on_queue(waiting)
        return self.inner.text_stream(prompt, inside, self._tokens(request))

    def generate_batch(self, conversations: Sequence[Sequence[Message]], max_new_tokens: int | None = None) -> list[str]:
        with self._model:
            return self.inner.generate_batch(conversations, max_new_tokens)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def exclusive(self) -> threading.Lock:
        """The model's lock: hold it (`with g.exclusive():`) to run the wrapped engine directly while no batch
        runs. The engine is not safe for two threads at once."""
        return self._model

    def describe(self) -> str:
        how = f"batching up to {self.max_batch} requests within {self.window_s * 1000:g} ms" if self.window_s else "one request at a time"
        return f"{self.inner.describe()}, {how}, queue {self.max_queue}"

    def waiting(self) -> int:
        """Requests queued and not yet in a batch."""
        with self._cond:
            return len(self._waiting)

    # -- the reader's side --------------------------------------------------------------------------------

    def _tokens(self, request: _Request) -> Iterator[int]:
        try:
            while True:
                item = request.tokens.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            request.cancelled = True  # the reader has gone (finished, stopped early, or failed): free the row
            with self._cond:
                if request in self._waiting:
                    self._waiting.remove(request)

    # -- the worker ---------------------------------------------------------------------------------------

    def _next_batch(self) -> list[_Request]:
        with self._cond:
            while not self._waiting:
                self._cond.wait()
            first = self._waiting[0].enqueued
            while len(self._waiting) < self.max_batch:
                # wait while requests keep coming (a window after the latest), never more than MAX_WINDOWS windows
                deadline = min(first + MAX_WINDOWS * self.window_s, self._waiting[-1].enqueued + self.window_s)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch = [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
            left = len(self._waiting)
        batch = [r for r in batch if not r.cancelled]
        if batch and self.on_batch is not None:
            self.on_batch(len(batch), left)
        elif not batch and self.on_queue is not None:  # every request taken had left: the queue still shrank
            self.on_queue(left)
        return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch:
                self._serve(batch)

    def _serve(self, batch: list[_Request]) -> None:
        ended = [False] * len(batch)

        def finished(row: int) -> None:
            if not ended[row]:
                ended[row] = True
                batch[row].tokens.put(_END)

        inner = self.inner
        try:
            with self._model:
                steps = inner.engine.stream_batch(
                    [r.prompt for r in batch], [r.max_new for r in batch], inner.sampling, inner.pad_id,
                    cancelled=lambda row: batch[row].cancelled, finished=finished,
                )  # fmt: skip
                for step in steps:
                    for row, token_id in step:
                        batch[row].tokens.put(token_id)
        except BaseException as exc:  # every reader of the batch gets the error; the worker lives on
            for row, request in enumerate(batch):
                if not ended[row]:
                    request.tokens.put(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            for row in range(len(batch)):
                finished(row)
