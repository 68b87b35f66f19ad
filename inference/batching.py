"""How many prompts to generate for at once: as many as the free memory holds, from the KV cache size per
token of the model's architecture. Pure arithmetic plus one probe of free memory; knows nothing of prompts.
"""

from __future__ import annotations

# Fraction of free memory left for activations, the allocator's slack and everything else.
RESERVE = 0.3
MAX_BATCH = 64


def kv_bytes_per_token(config, dtype_bytes: int = 2) -> int:
    """Key and value bytes one token occupies across all layers."""
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * heads * head_dim * dtype_bytes


def bytes_per_row(config, tokens: int, dtype_bytes: int = 2) -> int:
    """Memory one batch row needs: its KV cache for `tokens` tokens plus a float32 logits row (twice: the
    softmax copy) and the widest activation of one token."""
    activations = 4 * (config.vocab_size * 2 + config.intermediate_size * 2)
    return kv_bytes_per_token(config, dtype_bytes) * tokens + activations


def batch_size_for(free_bytes: int, row_bytes: int, max_batch: int = MAX_BATCH, reserve: float = RESERVE) -> int:
    """Rows that fit in `free_bytes` after the reserve; at least 1, at most `max_batch`."""
    if row_bytes <= 0:
        raise ValueError("a batch row needs a positive number of bytes")
    return max(1, min(max_batch, int(free_bytes * (1 - reserve)) // row_bytes))


def free_memory_bytes(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info()[0])
    import psutil

    return int(psutil.virtual_memory().available)
