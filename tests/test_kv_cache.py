"""Kefu's decode loop and its sink-window KV cache, on the tiny random Qwen2 checkpoint (greedy decoding)."""

import pytest
import torch
from transformers.cache_utils import DynamicCache

from inference.engine import Engine
from inference.kv_cache import SinkWindowCache, kv_bytes, make_cache
from inference.sampling import SamplingParams

GREEDY = SamplingParams()
PROMPT = list(range(10, 70))


def test_the_loop_gives_the_tokens_of_transformers_generate(tiny_model):
    model, _ = tiny_model
    expected = model.generate(torch.tensor([PROMPT]), max_new_tokens=40, do_sample=False, eos_token_id=None, pad_token_id=0)
    ours = list(Engine(model, [], kv_cache="full").stream(PROMPT, 40, GREEDY))
    assert ours == expected[0, len(PROMPT) :].tolist()


def test_before_eviction_the_sink_cache_gives_exactly_the_tokens_of_the_default_cache(tiny_model):
    model, _ = tiny_model
    full = list(Engine(model, [], kv_cache="full").stream(PROMPT, 100, GREEDY))
    engine = Engine(model, [], kv_cache="sink", sinks=4, window=200)
    cache = engine.new_cache()
    sink = list(engine.stream(PROMPT, 100, GREEDY, cache=cache))
    assert cache.evicted == 0 and cache.get_seq_length() == len(PROMPT) + 99
    assert sink == full


def test_after_eviction_kv_memory_stays_constant_over_hundreds_of_tokens(tiny_model):
    model, _ = tiny_model
    engine = Engine(model, [], kv_cache="sink", sinks=4, window=32, evict_block=1)
    cache = engine.new_cache()
    sizes = []
    for step, _ in enumerate(engine.stream(PROMPT, 400, GREEDY, cache=cache)):
        sizes.append((cache.get_seq_length(), kv_bytes(cache)))
    assert len(sizes) == 400
    assert cache.evicted > 400  # the 60-token prompt did not fit either
    assert len(set(sizes[1:])) == 1, "after eviction the cache holds sinks + window, always"
    length, size = sizes[-1]
    assert length == 4 + 32
    full = DynamicCache(config=model.config)
    list(Engine(model, [], kv_cache="full").stream(PROMPT, 400, GREEDY, cache=full))
    assert kv_bytes(full) > 10 * size  # the default cache kept growing


def test_with_block_eviction_memory_is_bounded_by_sinks_plus_window(tiny_model):
    model, _ = tiny_model
    engine = Engine(model, [], kv_cache="sink", sinks=4, window=64)
    cache = engine.new_cache()
    lengths = [cache.get_seq_length() for _ in engine.stream(PROMPT, 300, GREEDY, cache=cache)]
    assert max(lengths) == 4 + 64 and cache.evict_block == 8 and min(lengths[100:]) >= 4 + 64 - 8


def test_evicted_keys_are_re_rotated_to_contiguous_positions(tiny_model):
    """Layer 0's keys depend only on token and position: after eviction they must equal the keys of the kept
    tokens prefilled afresh at positions 0…n-1."""
    model, _ = tiny_model
    tokens = list(range(5, 125))
    engine = Engine(model, [], kv_cache="sink", sinks=4, window=50, evict_block=1)
    cache = engine.new_cache()
    with torch.inference_mode():
        engine.prefill(torch.tensor([tokens]), cache)
    assert cache.evicted > 0
    kept = tokens[:4] + tokens[len(tokens) - (cache.get_seq_length() - 4) :]
    fresh = DynamicCache(config=model.config)
    with torch.inference_mode():
        model(input_ids=torch.tensor([kept]), past_key_values=fresh, use_cache=True)
    torch.testing.assert_close(cache.layers[0].keys, fresh.layers[0].keys, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(cache.layers[0].values, fresh.layers[0].values)


def test_a_left_padded_batch_equals_one_by_one_generation(tiny_model):
    model, _ = tiny_model
    engine = Engine(model, [], kv_cache="sink", sinks=4, window=256)
    prompts = [list(range(5, 30)), list(range(40, 95)), list(range(7, 12)), [300]]
    batch = engine.generate_batch(prompts, 24, GREEDY, pad_id=1)
    assert batch == [list(engine.stream(p, 24, GREEDY)) for p in prompts]


def test_stop_tokens_end_generation_in_stream_and_batch(tiny_model):
    model, _ = tiny_model
    free = list(Engine(model, [], kv_cache="full").stream(PROMPT, 30, GREEDY))
    stop = free[5]
    first = free.index(stop)
    engine = Engine(model, [stop], kv_cache="full")
    assert list(engine.stream(PROMPT, 30, GREEDY)) == free[:first]
    assert engine.generate_batch([PROMPT, PROMPT[:20]], 30, GREEDY, pad_id=1)[0] == free[:first]


def test_a_checkpoint_trained_with_sliding_window_attention_keeps_its_window(tmp_path):
    from inference.loading import load_model, locate
    from tiny_model import build_tiny_checkpoint

    folder = build_tiny_checkpoint(tmp_path / "swa", use_sliding_window=True, sliding_window=16, max_window_layers=1)
    model, _ = load_model(locate(str(folder)), "cpu", "none")
    assert model.config.layer_types == ["full_attention", "sliding_attention"]  # layers >= max_window_layers slide
    prompt = list(range(10, 50))  # longer than the window, so the window matters
    expected = model.generate(torch.tensor([prompt]), max_new_tokens=30, do_sample=False, eos_token_id=None, pad_token_id=0)
    ours = list(Engine(model, [], kv_cache="full").stream(prompt, 30, GREEDY))
    assert ours == expected[0, len(prompt) :].tolist()
    model.config.layer_types = ["full_attention", "full_attention"]  # forcing full attention changes the model
    assert list(Engine(model, [], kv_cache="full").stream(prompt, 30, GREEDY)) != ours
    model.config.layer_types = ["full_attention", "sliding_attention"]
    with pytest.raises(ValueError, match="sliding-window attention"):
        make_cache("sink", model)


def test_bad_cache_choices_are_named(tiny_model):
    model, _ = tiny_model
    with pytest.raises(ValueError, match="choose one of: sink, full"):
        make_cache("paged", model)
    with pytest.raises(ValueError, match="window >= 1"):
        SinkWindowCache(2, 4, 0, torch.ones(4))
    cache = SinkWindowCache(2, 4, 8, torch.ones(4))
    with pytest.raises(ValueError, match="prefill in chunks"):
        cache.make_room(9)
