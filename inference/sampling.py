"""Choosing the next token from logits: greedy, or temperature with nucleus (top-p) sampling.

Defaults come from the model's own generation config (DeepSeek-R1 ships temperature 0.6, top_p 0.95); a
setting overrides them, and temperature 0 means greedy. Knows nothing about tokenizers or models beyond a
`GenerationConfig`-like object with `do_sample`, `temperature` and `top_p`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def describe(self) -> str:
        return "greedy" if self.greedy else f"temperature {self.temperature:g}, top_p {self.top_p:g}"


def sampling_from_config(generation_config: Any, temperature: float | None = None, top_p: float | None = None) -> SamplingParams:
    """The model's sampling defaults (greedy where it does not sample), overridden by explicit values."""
    samples = bool(getattr(generation_config, "do_sample", False))
    default_t = float(getattr(generation_config, "temperature", None) or 1.0) if samples else 0.0
    default_p = float(getattr(generation_config, "top_p", None) or 1.0) if samples else 1.0
    return SamplingParams(
        temperature=default_t if temperature is None else float(temperature),
        top_p=default_p if top_p is None else float(top_p),
    )


def next_tokens(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of `logits` [batch, vocab]."""
    if params.greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the tokens ranked above each one
        sorted_probs = sorted_probs.masked_fill(before >= params.top_p, 0.0)  # the best token always stays
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
