"""The `transformers` backend: local weights, the model's own chat template, Kefu's decode loop.

Renders messages with the tokenizer's chat template; for reasoning models (DeepSeek-R1, whose template opens
`<think>` at the end of the prompt) `fast` mode prefills an empty think block so the answer starts at once,
and `think` mode lets it reason while `ThinkFilter` hides every reasoning character. Stops at the model's end
tokens (generation config, tokenizer, end-of-turn markers). Sampling defaults come from the model's
generation config. A checkpoint trained with sliding-window attention keeps it (transformers builds its
layers from `use_sliding_window`/`sliding_window`/`max_window_layers`); nothing forces a window on a model
trained without one. Knows nothing about retrieval.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from inference.batching import bytes_per_row, batch_size_for, free_memory_bytes
from inference.detokenize import IncrementalDetokenizer
from inference.engine import Engine
from inference.errors import InferenceError
from inference.generator import GenerationStats, GeneratorConfig, Message, TextStream, check_messages
from inference.kv_cache import has_sliding_layers
from inference.loading import (
    is_out_of_memory,
    load_model,
    out_of_memory_message,
    require_source,
    resolve_device,
    resolve_quantization,
)
from inference.repetition import LoopGuard
from inference.sampling import SamplingParams, sampling_from_config
from inference.thinking import CLOSE_TAG, OPEN_TAG, ThinkFilter, strip_think

# End-of-turn markers of common chat templates, used as stop tokens when the tokenizer has them.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<｜end▁of▁sentence｜>", "<|endoftext|>", "<end_of_turn>")


def stop_token_ids(model, tokenizer) -> set[int]:
    ids: set[int] = set()
    eos = getattr(model.generation_config, "eos_token_id", None)
    ids.update([eos] if isinstance(eos, int) else (eos or []))
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN if t in vocab)
    return ids


class TransformersGenerator:
    name = "transformers"

    def __init__(self, config: GeneratorConfig, model=None, tokenizer=None):
        self.config = config
        self.device = resolve_device(config.device)
        self.quantization = resolve_quantization(config.quantization, self.device)
        if model is None:
            source = require_source(config.model)
            model, tokenizer = load_model(source, self.device, self.quantization, config.dtype)
        self.model, self.tokenizer = model, tokenizer
        vocab = tokenizer.get_vocab()
        self.reasons = OPEN_TAG in vocab and CLOSE_TAG in vocab  # a reasoning model (R1 family)
        self.think_ids = {vocab[OPEN_TAG], vocab[CLOSE_TAG]} if self.reasons else set()
        kv_cache = "full" if has_sliding_layers(model.config) else config.kv_cache
        try:
            self.engine = Engine(
                model, stop_token_ids(model, tokenizer), kv_cache=kv_cache, sinks=config.kv_sinks, window=config.kv_window
            )
        except ValueError as exc:
            raise InferenceError(str(exc)) from exc
        sampling = sampling_from_config(
            model.generation_config, config.temperature, config.top_p, config.repetition_penalty
        )
        self.sampling = SamplingParams(sampling.temperature, sampling.top_p, config.seed, sampling.repetition_penalty)
        # The prompt budget never exceeds what the model was trained on, nor what the sink cache holds: the
        # retrieved passages are never evicted; the cache bounds memory beyond that (long generations).
        limits = [config.context_tokens, getattr(model.config, "max_position_embeddings", None) or config.context_tokens]
        if kv_cache == "sink":
            limits.append(config.kv_sinks + config.kv_window)
        self.context_tokens = min(limits)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.engine.stop_ids, default=0)

    # -- prompts ------------------------------------------------------------------------------------------

    def render(self, messages: Sequence[Message]) -> tuple[list[int], bool]:
        """Prompt token ids, and whether the model's output starts inside a reasoning block."""
        text = self.tokenizer.apply_chat_template(check_messages(messages), add_generation_prompt=True, tokenize=False)
        inside = False
        if self.reasons:
            opened = text.rstrip().endswith(OPEN_TAG)
            if self.config.reasoning == "fast":
                text += ("\n" if opened else f"{OPEN_TAG}\n\n") + f"{CLOSE_TAG}\n\n"
            else:
                inside = opened
        return self.tokenizer(text, add_special_tokens=False)["input_ids"], inside

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _budget(self, prompt: list[int], max_new_tokens: int) -> None:
        if len(prompt) > self.context_tokens or (len(prompt) + max_new_tokens > self.context_tokens and self.engine.kv_cache == "full"):
            raise InferenceError(
                f"the prompt has {len(prompt)} tokens and the answer may take {max_new_tokens}, more than the "
                f"{self.context_tokens} of KEFU_CONTEXT_TOKENS: shorten the question or raise the budget"
            )

    # -- generation ---------------------------------------------------------------------------------------

    def prepare(self, messages: Sequence[Message], max_new_tokens: int | None = None) -> tuple[list[int], bool, int]:
        """(prompt token ids, whether the output starts inside a reasoning block, token limit), the budget checked."""
        max_new = max_new_tokens or self.config.max_new_tokens
        prompt, inside = self.render(messages)
        self._budget(prompt, max_new)
        return prompt, inside, max_new

    def stream(self, messages: Sequence[Message], max_new_tokens: int | None = None) -> TextStream:
        prompt, inside, max_new = self.prepare(messages, max_new_tokens)
        return self.text_stream(prompt, inside, self.engine.stream(prompt, max_new, self.sampling))

    def text_stream(self, prompt: list[int], inside: bool, tokens: Iterator[int]) -> TextStream:
        """The visible text of generated token ids, piece by piece: detokenized without breaking a character,
        reasoning hidden, a degenerate loop cut short. Stopping early (a loop, a reader that left) closes
        `tokens`, which ends that generation."""

        def pieces(stats: GenerationStats) -> Iterator[str]:
            stats.prompt_tokens = len(prompt)
            text = IncrementalDetokenizer(self.tokenizer, keep_special=self.think_ids)
            visible = ThinkFilter(inside=inside)
            guard = LoopGuard()
            try:
                for token_id in tokens:
                    stats.generated_tokens += 1
                    piece = visible.feed(text.feed(token_id))
                    yield piece
                    if guard.feed(piece):
                        stats.stopped_looping = True
                        break
                yield visible.feed(text.flush())
                yield visible.flush()
            except RuntimeError as exc:
                if is_out_of_memory(exc):
                    raise InferenceError(out_of_memory_message(self.config.model, self.quantization, self.device, "generating with")) from exc
                raise
            finally:
                stats.hidden_chars = visible.hidden_chars
                close = getattr(tokens, "close", None)
                if close is not None:
                    close()

        return TextStream(pieces)

    def batch_size(self, longest_prompt: int, max_new_tokens: int) -> int:
        if self.config.batch_size:
            return self.config.batch_size
        dtype_bytes = next(self.model.parameters()).element_size() if self.quantization == "none" else 2
        row = bytes_per_row(self.model.config, longest_prompt + max_new_tokens, max(dtype_bytes, 2))
        return batch_size_for(free_memory_bytes(self.device), row)

    def generate_batch(self, conversations: Sequence[Sequence[Message]], max_new_tokens: int | None = None) -> list[str]:
        max_new = max_new_tokens or self.config.max_new_tokens
        rendered = [self.render(m) for m in conversations]
        for prompt, _ in rendered:
            self._budget(prompt, max_new)
        # Similar lengths together: less padding.
        order = sorted(range(len(rendered)), key=lambda i: len(rendered[i][0]))
        answers: list[str] = [""] * len(rendered)
        size = self.batch_size(max((len(p) for p, _ in rendered), default=1), max_new)
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            try:
                outputs = self.engine.generate_batch([rendered[i][0] for i in rows], max_new, self.sampling, self.pad_id)
            except RuntimeError as exc:
                if is_out_of_memory(exc):
                    raise InferenceError(out_of_memory_message(self.config.model, self.quantization, self.device, "batch generating with")) from exc
                raise
            for i, ids in zip(rows, outputs):
                answers[i] = self._visible_text(ids, rendered[i][1])
        return answers

    def _visible_text(self, ids: list[int], inside: bool) -> str:
        text = IncrementalDetokenizer(self.tokenizer, keep_special=self.think_ids)
        return strip_think("".join(text.feed(t) for t in ids) + text.flush(), inside=inside)

    def describe(self) -> str:
        window = getattr(self.model.config, "sliding_window", None) if has_sliding_layers(self.model.config) else None
        cache = (
            f"model's own sliding window {window}"
            if window
            else (f"sink cache {self.config.kv_sinks}+{self.config.kv_window}" if self.engine.kv_cache == "sink" else "full cache")
        )
        reasoning = f", reasoning {self.config.reasoning}" if self.reasons else ""
        return (
            f"transformers: {self.config.model} on {self.device}, quantization {self.quantization}, {cache}, "
            f"{self.sampling.describe()}{reasoning}"
        )
