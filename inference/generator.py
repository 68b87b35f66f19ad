"""The generator protocol: what every backend does (`inference.factory` builds them).

A generator turns a list of chat messages (`{"role": "system"|"user"|"assistant", "content": str}`) into the
text of the next assistant turn: streamed piece by piece for one conversation, or all at once for a batch.
What it yields is only what a customer may see: a reasoning model's `<think>` block never comes out.

Backends (`inference.factory.BACKENDS`): `transformers` (local weights, Kefu's own decode loop), `openai` (any OpenAI-compatible
server: vLLM or SGLang for scale-out), `extractive` (no model: `make_generator` returns None and the caller
quotes passages itself). `auto` resolves to transformers when the weights are on this machine, else extractive,
and `resolve_backend` says why. Knows nothing about retrieval: prompts arrive as finished messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from inference.errors import InferenceError

Message = dict[str, str]
DEFAULT_MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
REASONING_MODES = ("fast", "think")


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything a backend needs; `app` builds it from its settings."""

    backend: str = "auto"
    model: str = DEFAULT_MODEL
    quantization: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    reasoning: str = "fast"
    max_new_tokens: int = 512
    temperature: float | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    context_tokens: int = 4096
    kv_cache: str = "sink"
    kv_sinks: int = 4
    kv_window: int = 4096
    batch_size: int = 0
    batch_window_ms: float = 10.0  # requests arriving within it share one batched generation; 0: one by one
    queue: int = 64  # most requests waiting for the in-process model
    openai_base_url: str = "http://localhost:8000/v1"
    openai_model: str | None = None
    openai_api_key: str | None = field(default=None, repr=False)
    openai_timeout: float = 120.0


@dataclass
class GenerationStats:
    """What one generation cost: filled in while a `TextStream` is read."""

    prompt_tokens: int = 0
    generated_tokens: int = 0  # reasoning included
    hidden_chars: int = 0  # reasoning withheld from the customer
    first_text_s: float | None = None  # seconds until the first visible text
    seconds: float = 0.0
    stopped_looping: bool = False  # the loop guard ended a degenerate repetition early

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds > 0 else 0.0


class TextStream:
    """An iterator over visible text pieces that records its `stats`; `text()` reads it to the end."""

    def __init__(self, pieces: Callable[[GenerationStats], Iterator[str]]):
        self.stats = GenerationStats()
        self._started = time.perf_counter()
        self._pieces = pieces(self.stats)

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        try:
            while True:
                piece = next(self._pieces)
                if piece:
                    if self.stats.first_text_s is None:
                        self.stats.first_text_s = time.perf_counter() - self._started
                    return piece
        finally:
            self.stats.seconds = time.perf_counter() - self._started

    def text(self) -> str:
        return "".join(self)

    def close(self) -> None:
        """Stop early: the generation behind the stream ends (a reader that left frees its batch row)."""
        self._pieces.close()


@runtime_checkable
class Generator(Protocol):
    name: str  # the backend
    context_tokens: int  # prompt plus answer must fit in this many tokens

    def stream(self, messages: Sequence[Message], max_new_tokens: int | None = None) -> TextStream:
        """The next assistant turn for one conversation, piece by piece (reasoning never included)."""
        ...

    def generate_batch(self, conversations: Sequence[Sequence[Message]], max_new_tokens: int | None = None) -> list[str]:
        """The next assistant turn for each conversation, generated together."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in a prompt (exact for local models, an upper estimate for servers)."""
        ...

    def describe(self) -> str:
        """One line for people: backend, model, device, quantization, cache."""
        ...


def check_messages(messages: Sequence[Message]) -> list[Message]:
    """Messages as plain dicts; a clear error for anything a chat template cannot take."""
    out = []
    for i, m in enumerate(messages):
        role, content = (m.get("role"), m.get("content")) if isinstance(m, dict) else (None, None)
        if role not in ("system", "user", "assistant") or not isinstance(content, str):
            raise InferenceError(f"message {i} must be {{'role': system|user|assistant, 'content': text}}, got {m!r}")
        out.append({"role": role, "content": content})
    if not out or out[-1]["role"] != "user":
        raise InferenceError("a conversation to answer must end with a user message")
    return out
