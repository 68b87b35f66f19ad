"""Prefix reuse: the keys and values of the prompt prefix that Kefu's prompts share, computed once.

Every grounded prompt starts the same way (the chat template, Kefu's system prompt with its canary, the
worked example); only the passages, the history and the question differ. On a CPU the prefill of that
shared part is a large share of an answer's time, and batching cannot shrink it (prefill is compute-bound).
`PrefixStore` learns the shared prefix from the prompts themselves: the longest common prefix of the last two
prompts, once it is at least `min_tokens` long, is run through the model once and its per-layer keys and
values kept; a later prompt that starts with it (and is longer) begins from a copy of them (`seed`) and only
its own remainder is prefilled. Nothing about prompts' structure is assumed, and a changed system prompt
is learned again from the next two prompts.

Keys are stored after rotary position embedding, at positions 0…n-1: a prompt reusing them must place its
remainder at positions n, n+1, … (the engine does, for single prompts and for left-padded batches, whose
padding then sits between the prefix and each row's remainder). Not thread-safe: the engine is used by one
thread at a time (`inference.scheduler` holds the model's lock).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from transformers.cache_utils import Cache

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [1, heads, n, head_dim]


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class PrefixStore:
    def __init__(self, build: Callable[[Sequence[int]], KV], min_tokens: int = 32):
        self.build = build  # prefix token ids → its per-layer keys and values (one model pass)
        self.min_tokens = min_tokens
        self.tokens: tuple[int, ...] = ()
        self.kv: KV | None = None
        self._last: tuple[int, ...] = ()
        self.hits = 0

    def match(self, prompt: Sequence[int]) -> int:
        """How many of `prompt`'s first tokens the stored prefix covers: all of it, or 0 (it must leave at
        least one token of the prompt to prefill)."""
        n = len(self.tokens)
        if self.kv is None or len(prompt) <= n or tuple(prompt[:n]) != self.tokens:
            return 0
        return n

    def seed(self, cache: Cache, rows: int = 1) -> None:
        """Fill an empty `cache` with the stored prefix, repeated for `rows` rows."""
        assert self.kv is not None, "seed only after match said the prefix applies"
        for layer, (keys, values) in enumerate(self.kv):
            cache.update(keys.expand(rows, -1, -1, -1).contiguous(), values.expand(rows, -1, -1, -1).contiguous(), layer)
        self.hits += 1

    def learn(self, prompt: Sequence[int]) -> None:
        """Remember `prompt` before it is run. When the stored prefix does not start it, and it shares
        `min_tokens` or more with the prompt before, that shared part becomes the stored prefix (one model pass
        over it, which this prompt's prefill then skips, so learning costs no more than not knowing)."""
        prompt = tuple(prompt)
        last, self._last = self._last, prompt
        if self.match(prompt):
            return
        shared = min(common_prefix_length(last, prompt), len(prompt) - 1)
        if shared >= self.min_tokens:
            self.tokens, self.kv = prompt[:shared], self.build(prompt[:shared])
