"""A bounded KV cache for long sessions: attention sinks plus a recent window (StreamingLLM, Xiao et al. 2023).

The first `sinks` tokens stay forever (the model parks attention on them; dropping them is what wrecks a plain
sliding window) and only the most recent `window` tokens follow them. When tokens are evicted, the kept
window's keys are re-rotated so that positions stay contiguous (0 … sinks+window-1): RoPE keys are stored
already rotated, and a rotation by -n moves a key n positions back. So the next token's position is simply
the cache length, and memory stops growing however long the text.

Eviction happens in `make_room(n)`, called by the decode loop (`inference.engine`) before each forward pass,
never behind its back. It drops at least `evict_block` tokens at a time, so each key is re-rotated at most
window/evict_block times before it leaves (bounding bf16 rounding), and the rotation itself runs in float32.

Knows nothing about tokens or models beyond RoPE's inverse frequencies and the transformers `Cache` API.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

KV_CACHES = ("sink", "full")


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def shift_positions(keys: torch.Tensor, shift: int, inv_freq: torch.Tensor) -> torch.Tensor:
    """RoPE-rotated keys [batch, heads, seq, head_dim] moved by `shift` positions (negative: back)."""
    angles = float(shift) * inv_freq.to(device=keys.device, dtype=torch.float32)
    angles = torch.cat((angles, angles))
    cos, sin = angles.cos(), angles.sin()
    k = keys.float()
    return (k * cos + _rotate_half(k) * sin).to(keys.dtype)


class SinkWindowLayer(DynamicLayer):
    """One layer's keys and values: `sinks` first tokens, then at most `window` recent ones."""

    def __init__(self, sinks: int, window: int, inv_freq: torch.Tensor):
        super().__init__()
        self.sinks = sinks
        self.window = window
        self.inv_freq = inv_freq

    def evict(self, n: int) -> None:
        """Drop the `n` oldest tokens after the sinks and move the rest back by n positions."""
        if n <= 0 or not self.is_initialized or self.keys.numel() == 0:
            return
        s = self.sinks
        kept = shift_positions(self.keys[..., s + n :, :], -n, self.inv_freq)
        self.keys = torch.cat((self.keys[..., :s, :], kept), dim=-2)
        self.values = torch.cat((self.values[..., :s, :], self.values[..., s + n :, :]), dim=-2)


class SinkWindowCache(Cache):
    """A transformers `Cache` whose every layer keeps attention sinks plus a recent window."""

    def __init__(self, num_layers: int, sinks: int, window: int, inv_freq: torch.Tensor, evict_block: int | None = None):
        if window < 1 or sinks < 0:
            raise ValueError(f"a sink-window cache needs window >= 1 and sinks >= 0 (got {window}, {sinks})")
        super().__init__(layers=[SinkWindowLayer(sinks, window, inv_freq) for _ in range(num_layers)])
        self.sinks = sinks
        self.window = window
        self.evict_block = max(1, evict_block if evict_block is not None else window // 8)
        self.evicted = 0  # tokens evicted so far

    @property
    def capacity(self) -> int:
        return self.sinks + self.window

    def make_room(self, n_new: int) -> int:
        """Evict so that `n_new` more tokens fit; returns how many were evicted. The decode loop then gives the
        new tokens positions starting at `get_seq_length()`."""
        if n_new > self.window:
            raise ValueError(f"cannot add {n_new} tokens at once to a window of {self.window}; prefill in chunks")
        length = self.get_seq_length()
        overflow = length + n_new - self.capacity
        if overflow <= 0:
            return 0
        n = min(max(overflow, self.evict_block), length - self.sinks)
        for layer in self.layers:
            layer.evict(n)
        self.evicted += n
        return n


def kv_bytes(cache: Cache) -> int:
    """Bytes held by a cache's key and value tensors."""
    total = 0
    for layer in cache.layers:
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total


def rope_inv_freq(model) -> torch.Tensor:
    """The model's RoPE inverse frequencies (what re-rotation needs)."""
    rotary = getattr(getattr(model, "model", model), "rotary_emb", None)
    inv_freq = getattr(rotary, "inv_freq", None)
    if inv_freq is None:
        raise ValueError(f"{type(model).__name__} has no RoPE rotary embedding; use KEFU_KV_CACHE=full")
    if getattr(rotary, "rope_type", "default") not in ("default", "linear"):
        raise ValueError(
            f"the sink-window cache re-rotates keys with fixed frequencies; {rotary.rope_type!r} RoPE changes them "
            "with length: use KEFU_KV_CACHE=full"
        )
    return inv_freq.detach().float().clone()


def has_sliding_layers(config) -> bool:
    return "sliding_attention" in (getattr(config, "layer_types", None) or [])


def make_cache(kind: str, model, sinks: int = 4, window: int = 4096, evict_block: int | None = None) -> Cache:
    """A fresh cache for one generation: `full` (transformers' DynamicCache, which also keeps a checkpoint's
    own sliding-window layers bounded) or `sink`."""
    config = model.config
    if kind == "full":
        return DynamicCache(config=config)
    if kind == "sink":
        if has_sliding_layers(config):
            raise ValueError(
                "this checkpoint was trained with sliding-window attention (use_sliding_window), which already "
                "bounds its window; use KEFU_KV_CACHE=full to keep the model's own window"
            )
        return SinkWindowCache(config.num_hidden_layers, sinks, window, rope_inv_freq(model), evict_block)
    raise ValueError(f"unknown KV cache {kind!r}; choose one of: {', '.join(KV_CACHES)}")
