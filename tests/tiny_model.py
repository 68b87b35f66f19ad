"""Builds a tiny, randomly initialised Qwen2 checkpoint with a real BPE tokenizer and DeepSeek-R1's chat
template shape, entirely offline: the fixture every generation test loads instead of downloaded weights.

`build_tiny_checkpoint(folder)` writes `config.json`, `generation_config.json`, safetensors weights and a
tokenizer trained here with the `tokenizers` library on the sample knowledge base. Run as a script to make
one by hand: `python tests/tiny_model.py /tmp/tiny-qwen2`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KB = ROOT / "data" / "kb"

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
SPECIAL_TOKENS = [BOS, EOS, USER, ASSISTANT]
THINK_TOKENS = ["<think>", "</think>"]  # added tokens, but not special: R1's tokenizer keeps them in decoded text

# DeepSeek-R1-Distill's template, cut to what Kefu sends (system, user and assistant turns): the system
# prompt first, turns marked by <｜User｜>/<｜Assistant｜>, earlier answers without their reasoning, and the
# generation prompt opening a <think> block, as the real checkpoints do.
CHAT_TEMPLATE = (
    "{% set ns = namespace(system_prompt='') %}"
    "{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}"
    "{%- endif %}{%- endfor %}"
    "{{ bos_token }}{{ ns.system_prompt }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}{%- endif %}"
    "{%- if message['role'] == 'assistant' %}{% set content = message['content'] %}"
    "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}{%- endif %}"
    "{%- endfor -%}"
    "{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}"
)


def corpus() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(KB.rglob("*")) if p.suffix in (".md", ".csv")]
    return texts + ["How much is shipping? Standard shipping costs $4.99. [1] [2] [3]"]


def build_tokenizer(vocab_size: int = 640):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=EOS, additional_special_tokens=[USER, ASSISTANT]
    )
    fast.add_tokens(THINK_TOKENS)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_config(vocab_size: int, **overrides):
    from transformers import Qwen2Config

    values = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        use_sliding_window=False,
        # A larger spread than the usual 0.02 so random logits are far from ties: greedy decoding then
        # gives the same tokens whatever harmless reordering of floating-point sums a code path does.
        initializer_range=0.5,
    )
    values.update(overrides)
    return Qwen2Config(**values)


def build_tiny_checkpoint(folder: Path | str, seed: int = 0, **config_overrides) -> Path:
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    folder = Path(folder)
    tokenizer = build_tokenizer()
    config = tiny_config(
        len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **config_overrides,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        do_sample=True,
        temperature=0.6,
        top_p=0.95,
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


if __name__ == "__main__":  # pragma: no cover - a helper for trying the CLI by hand
    print(build_tiny_checkpoint(sys.argv[1] if len(sys.argv) > 1 else "tiny-qwen2"))
