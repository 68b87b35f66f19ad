"""Batch sizes from free memory (pure arithmetic over the architecture's KV cache size)."""

import pytest
from transformers import Qwen2Config

from inference.batching import batch_size_for, bytes_per_row, kv_bytes_per_token
from inference.openai_backend import estimate_tokens

R1_7B = Qwen2Config(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                    num_key_value_heads=4, vocab_size=152064)


def test_kv_bytes_per_token_of_r1_distill_qwen_7b():
    # 2 (K and V) x 28 layers x 4 KV heads x 128 dims x 2 bytes (bf16) = 57,344 bytes: 56 KiB a token.
    assert kv_bytes_per_token(R1_7B) == 57_344


def test_batch_size_grows_with_free_memory_and_stays_within_limits():
    row = bytes_per_row(R1_7B, tokens=2048)
    assert batch_size_for(0, row) == 1  # always at least one
    assert batch_size_for(10 * 2**30, row) == int(10 * 2**30 * 0.7) // row
    assert batch_size_for(10 * 2**30, row) < batch_size_for(40 * 2**30, row)
    assert batch_size_for(10**15, row) == 64
    with pytest.raises(ValueError):
        batch_size_for(2**30, 0)


def test_token_estimate_counts_chinese_characters_one_each():
    assert estimate_tokens("运费多少") == 4
    assert 3 <= estimate_tokens("How much is shipping?") <= 8
