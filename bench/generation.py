"""Generation speed of the DeepSeek-R1-Distill-Qwen-7B architecture, on whatever device is here (a GPU when
there is one): time to first token at 0.5k/2k/4k/8k prompt tokens, decode tokens/s at batch 1/4/16, peak
memory, for bf16 vs NF4 vs int8 weights and the full vs the sink-window KV cache; with the memory bandwidth
decoding achieves as a fraction of a device-to-device copy measured in the same run (the roofline).

No weights are needed: the model is built from R1-Distill-Qwen-7B's config (Qwen2, hidden 3584, intermediate
18944, 28 layers, 28 heads, 4 KV heads, vocab 152064, rope_theta 1e4) with random weights, saved once, and
loaded through Kefu's own loader (`inference.loading`) with each quantization; it runs Kefu's decode loop
(`inference.engine`). Speed does not depend on the weights' values.

    python bench/generation.py                      # on a GPU: the full table (~15 GB of disk for the checkpoint)
    python bench/generation.py --quant nf4          # one quantization
    python bench/generation.py --tiny               # a smoke run on CPU at tiny sizes (checks the bench works)
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.engine import Engine  # noqa: E402
from inference.kv_cache import kv_bytes  # noqa: E402
from inference.loading import load_model, locate  # noqa: E402
from inference.sampling import SamplingParams  # noqa: E402

R1_DISTILL_QWEN_7B = dict(
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    vocab_size=152064,
    max_position_embeddings=131072,
    rope_theta=10000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
    use_sliding_window=False,
)
TINY = dict(R1_DISTILL_QWEN_7B, hidden_size=128, intermediate_size=384, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=2048)
GREEDY = SamplingParams()


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux: the process's peak RSS


def copy_bandwidth(device: str, gib: float) -> float:
    """Bytes/s of a device-to-device copy (read + write), the practical roofline of memory-bound decoding."""
    n = int(gib * 2**30 / 2)
    src = torch.empty(n, dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(device)
    repeats = 10
    started = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    sync(device)
    return 2 * src.numel() * src.element_size() * repeats / (time.perf_counter() - started)


def build_checkpoint(folder: Path, sizes: dict) -> None:
    from transformers import AutoTokenizer, GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**sizes, bos_token_id=0, eos_token_id=1, pad_token_id=1, torch_dtype="bfloat16")
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.generation_config = GenerationConfig(do_sample=True, temperature=0.6, top_p=0.95, eos_token_id=1)
    model.save_pretrained(folder)
    del model
    from tokenizers import Tokenizer, models

    # A placeholder tokenizer (the bench feeds token ids); loading needs one, with a chat template.
    vocab = {f"t{i}": i for i in range(sizes["vocab_size"])}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t2")),
                                  bos_token="t0", eos_token="t1", pad_token="t1")
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    tok.save_pretrained(folder)
    assert isinstance(AutoTokenizer.from_pretrained(folder), PreTrainedTokenizerFast)


def timed(device: str, fn) -> tuple[float, object]:
    sync(device)
    started = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - started, out


def ttft(engine: Engine, device: str, vocab: int, length: int) -> float:
    prompt = torch.randint(10, vocab, (1, length), device=device)

    def first_token():
        cache = engine.new_cache()
        with torch.inference_mode():
            logits = engine.prefill(prompt, cache)
            return int(logits.argmax(-1)[0])

    first_token() if length <= 1024 else None  # warm kernels once at a small size
    seconds, _ = timed(device, first_token)
    return seconds


def decode(engine: Engine, device: str, vocab: int, batch: int, prompt_len: int, steps: int) -> tuple[float, int]:
    """Decode tokens/s (all rows) after a prefill, and the cache's KV bytes at the end."""
    prompt = torch.randint(10, vocab, (batch, prompt_len), device=device)
    cache = engine.new_cache()
    with torch.inference_mode():
        logits = engine.prefill(prompt, cache)
        token = logits.argmax(-1).view(batch, 1)
        logits = engine._forward(token, cache)  # one warm step
        sync(device)
        started = time.perf_counter()
        for _ in range(steps):
            token = logits.argmax(-1).view(batch, 1)
            logits = engine._forward(token, cache)
        sync(device)
    return batch * steps / (time.perf_counter() - started), kv_bytes(cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", "--smoke", action="store_true", help="tiny sizes on CPU: checks the bench runs end to end")
    parser.add_argument("--quant", choices=["bf16", "nf4", "int8", "all"], default="all")
    parser.add_argument("--steps", type=int, default=64, help="decode steps per measurement")
    parser.add_argument("--window", type=int, default=1024, help="recent tokens of the sink-window cache")
    parser.add_argument("--checkpoint", type=Path, help="reuse a checkpoint folder built by an earlier run")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    sizes = TINY if args.tiny else R1_DISTILL_QWEN_7B
    lengths = [64, 128, 256] if args.tiny else [512, 2048, 4096, 8192]
    batches = [1, 2, 4] if args.tiny else [1, 4, 16]
    decode_prompt = 128 if args.tiny else 2048
    window = min(args.window, decode_prompt // 2)
    quants = ["bf16", "nf4", "int8"] if args.quant == "all" else [args.quant]
    name = torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or platform.machine())
    copy_bw = copy_bandwidth(device, 0.25 if args.tiny else 2.0)
    print(f"# {'tiny smoke run of ' if args.tiny else ''}DeepSeek-R1-Distill-Qwen-7B architecture, random weights; "
          f"{name}; torch {torch.__version__}; {date.today()}")
    print(f"# device-to-device copy: {copy_bw / 1e9:.0f} GB/s (the roofline); decode after a {decode_prompt}-token "
          f"prompt, {args.steps} steps; sink cache = 4 sinks + {window}")

    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
        folder = args.checkpoint or Path(tmp) / "r1-distill-qwen-7b-random"
        if not (folder / "config.json").exists():
            started = time.perf_counter()
            build_checkpoint(folder, sizes)
            print(f"# built the random checkpoint in {time.perf_counter() - started:.0f} s")
        print("\n| Weights | Cache | Metric | Value | Peak memory GiB | Bandwidth vs copy |")
        print("|---|---|---|---|---|---|")
        for quant in quants:
            reset_peak(device)
            model, _ = load_model(locate(str(folder)), device, "none" if quant == "bf16" else quant, "bfloat16")
            weight_bytes = model.get_memory_footprint()
            print(f"| {quant} | | weights | {weight_bytes / 2**20:,.1f} MiB | {peak_gib(device):.2f} | |", flush=True)
            for cache in ("full", "sink"):
                engine = Engine(model, [], kv_cache=cache, sinks=4, window=window if cache == "sink" else 4096)
                if cache == "full":
                    for length in lengths:
                        reset_peak(device)
                        seconds = ttft(engine, device, sizes["vocab_size"], length)
                        print(f"| {quant} | {cache} | first token, {length} prompt tokens | {seconds:.3f} s | "
                              f"{peak_gib(device):.2f} | |", flush=True)
                for batch in batches:
                    reset_peak(device)
                    tps, kv = decode(engine, device, sizes["vocab_size"], batch, decode_prompt, args.steps)
                    step_s = batch / tps
                    fraction = (weight_bytes + kv) / step_s / copy_bw  # every weight and cached key/value read per step
                    print(f"| {quant} | {cache} | decode batch {batch} | {tps:.1f} tok/s | {peak_gib(device):.2f} | "
                          f"{fraction:.2f} |", flush=True)
            del model, engine
            if device == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
