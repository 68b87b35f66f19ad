"""Choosing the next token from logits: greedy, or temperature with nucleus (top-p) sampling, after an
optional repetition penalty on the tokens already generated (CTRL, Keskar et al. 2019: positive logits
divided by it, negative ones multiplied), which keeps small models out of loops.

Defaults come from the model's own generation config (DeepSeek-R1 ships temperature 0.6, top_p 0.95, no
penalty); a setting overrides them, and temperature 0 means greedy. Knows nothing about tokenizers or models beyond a
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
    repetition_penalty: float = 1.0  # 1: none

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def describe(self) -> str:
        how = "greedy" if self.greedy else f"temperature {self.temperature:g}, top_p {self.top_p:g}"
        return how + (f", repetition penalty {self.repetition_penalty:g}" if self.repetition_penalty != 1.0 else "")


def sampling_from_config(
    generation_config: Any,
    temperature: float | None = None,
    top_p: float | None = None,
    repetition_penalty: float | None = None,
) -> SamplingParams:
    """The model's sampling defaults (greedy where it does not sample), overridden by explicit values."""
    samples = bool(getattr(generation_config, "do_sample", False))
    default_t = float(getattr(generation_config, "temperature", None) or 1.0) if samples else 0.0
    default_p = float(getattr(generation_config, "top_p", None) or 1.0) if samples else 1.0
    default_r = float(getattr(generation_config, "repetition_penalty", None) or 1.0)
    return SamplingParams(
        temperature=default_t if temperature is None else float(temperature),
        top_p=default_p if top_p is None else float(top_p),
        repetition_penalty=default_r if repetition_penalty is None else float(repetition_penalty),
    )


def penalize_repeats(logits: torch.Tensor, previous: torch.Tensor | None, penalty: float) -> torch.Tensor:
    """Logits [batch, vocab] with every token in `previous` [batch, n] (padding: -1) made less likely."""
    if penalty == 1.0 or previous is None or previous.numel() == 0:
        return logits
    index = previous.clamp(min=0)
    valid = (previous >= 0).to(logits.dtype)
    seen = torch.zeros_like(logits).scatter_add_(-1, index, valid) > 0  # add, so padding cannot unmark a token
    scaled = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, scaled, logits)


def next_tokens(
    logits: torch.Tensor,
    params: SamplingParams,
    generator: torch.Generator | None = None,
    previous: torch.Tensor | None = None,
) -> torch.Tensor:
    """One token id per row of `logits` [batch, vocab]; `previous` [batch, n] are the tokens generated so far
    (-1 for none), for the repetition penalty."""
    logits = penalize_repeats(logits, previous, params.repetition_penalty)
    if params.greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the tokens ranked above each one
        sorted_probs = sorted_probs.masked_fill(before >= params.top_p, 0.0)  # the best token always stays
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
