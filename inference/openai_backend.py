"""The `openai` backend: any OpenAI-compatible chat server (vLLM, SGLang, llama.cpp's server…) over HTTP.

The scale-out path: serve DeepSeek on many GPUs with vLLM or SGLang and point `KEFU_OPENAI_BASE_URL` at it.
Streams `/chat/completions` server-sent events; drops `reasoning_content` (what vLLM's and SGLang's reasoning
parsers split off) and any `<think>` block left in `content`. A batch is sent as concurrent requests, which
the server batches itself. Token counts are estimated (no tokenizer here). Knows nothing about retrieval.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from inference.errors import InferenceError
from inference.generator import GenerationStats, GeneratorConfig, Message, TextStream, check_messages
from inference.thinking import ThinkFilter

_CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]")


def estimate_tokens(text: str) -> int:
    """An upper-leaning estimate: one token per CJK character, one per three other characters."""
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 2) // 3


class OpenAIGenerator:
    name = "openai"

    def __init__(self, config: GeneratorConfig):
        self.config = config
        self.model = config.openai_model or config.model
        self.context_tokens = config.context_tokens
        headers = {"Authorization": f"Bearer {config.openai_api_key}"} if config.openai_api_key else {}
        self.base_url = config.openai_base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=config.openai_timeout)

    def _body(self, messages: Sequence[Message], max_new_tokens: int | None, stream: bool) -> dict:
        body: dict = {
            "model": self.model,
            "messages": check_messages(messages),
            "max_tokens": max_new_tokens or self.config.max_new_tokens,
            "stream": stream,
        }
        if self.config.temperature is not None:
            body["temperature"] = self.config.temperature
        if self.config.top_p is not None:
            body["top_p"] = self.config.top_p
        if self.config.repetition_penalty is not None:
            body["repetition_penalty"] = self.config.repetition_penalty  # vLLM's and SGLang's extra parameter
        if self.config.seed is not None:
            body["seed"] = self.config.seed
        return body

    def _fail(self, exc: Exception) -> InferenceError:
        if isinstance(exc, httpx.HTTPStatusError):
            try:
                detail = exc.response.text[:300]
            except httpx.ResponseNotRead:
                detail = ""
            return InferenceError(
                f"the OpenAI-compatible server at {self.base_url} answered {exc.response.status_code}: {detail}. "
                "Check KEFU_OPENAI_MODEL and KEFU_OPENAI_API_KEY"
            )
        return InferenceError(
            f"cannot reach the OpenAI-compatible server at {self.base_url} ({type(exc).__name__}: {exc}): start it "
            "(e.g. `vllm serve MODEL`) or fix KEFU_OPENAI_BASE_URL"
        )

    def stream(self, messages: Sequence[Message], max_new_tokens: int | None = None) -> TextStream:
        body = self._body(messages, max_new_tokens, stream=True)

        def pieces(stats: GenerationStats) -> Iterator[str]:
            stats.prompt_tokens = sum(estimate_tokens(m["content"]) for m in body["messages"])
            visible = ThinkFilter()
            try:
                with self.client.stream("POST", "/chat/completions", json=body) as response:
                    if response.status_code >= 400:
                        response.read()
                        response.raise_for_status()
                    for line in response.iter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            break
                        event = json.loads(data)
                        if event.get("error"):
                            raise InferenceError(f"the server at {self.base_url} failed: {event['error']}")
                        for choice in event.get("choices") or []:
                            delta = choice.get("delta") or {}
                            if delta.get("reasoning_content"):
                                stats.hidden_chars += len(delta["reasoning_content"])
                                stats.generated_tokens += 1
                            if delta.get("content"):
                                stats.generated_tokens += 1
                                yield visible.feed(delta["content"])
                        if event.get("usage"):
                            stats.generated_tokens = event["usage"].get("completion_tokens", stats.generated_tokens)
                yield visible.flush()
            except (httpx.HTTPError, json.JSONDecodeError) as exc:
                raise self._fail(exc) from exc
            finally:
                stats.hidden_chars += visible.hidden_chars

        return TextStream(pieces)

    def _complete(self, messages: Sequence[Message], max_new_tokens: int | None) -> str:
        try:
            response = self.client.post("/chat/completions", json=self._body(messages, max_new_tokens, stream=False))
            response.raise_for_status()
            message = response.json()["choices"][0]["message"]
        except (httpx.HTTPError, KeyError, IndexError, json.JSONDecodeError) as exc:
            raise self._fail(exc) from exc
        visible = ThinkFilter()
        return (visible.feed(message.get("content") or "") + visible.flush()).strip()

    def generate_batch(self, conversations: Sequence[Sequence[Message]], max_new_tokens: int | None = None) -> list[str]:
        workers = max(1, min(len(conversations), self.config.batch_size or 16))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda m: self._complete(m, max_new_tokens), conversations))

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def describe(self) -> str:
        return f"openai: {self.model} at {self.base_url}"
