"""Intent benchmark: how well embeddings separate customer intents (banking77), and how well Kefu's own
`IntentClassifier` (rules, then the nearest example of `data/intents.csv`) recognises a support desk's.

1. banking77 (77 banking intents, train → test), on the configured embedding model's vectors (KEFU_EMBEDDING_*,
   queries embedded as Kefu embeds a customer's message): nearest example (1-NN cosine), multinomial logistic
   regression on the whole train set, and the same regression under MTEB's protocol (8 examples per intent, 10
   draws, 100 iterations; the published figure of multilingual-e5-small, 0.704, is on that protocol), beside two
   baselines from the same run: the majority class, and the nearest example by BM25 over Kefu's analysed terms.
2. Kefu's `IntentClassifier`: leave-one-out over `data/intents.csv` and the held-out support-desk messages of
   `data/eval/intents_holdout.csv` (English and Chinese, every intent), beside "always a question" and the
   rules alone; plus the share of banking77's test messages (real customers' questions, almost all of them)
   the classifier keeps as questions, since a question taken for small talk or a handoff is the costly mistake.
   A sweep of `EXAMPLE_MIN_SIMILARITY` shows what the threshold trades.

    python bench/intents.py                               # ../shared/datasets/banking77, data/eval
    python bench/intents.py path/to/banking77 --holdout my_messages.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.dialogue import intents
from app.dialogue.intents import QUESTION, IntentClassifier, read_examples

DEFAULT_BANKING77 = ROOT.parent / "shared" / "datasets" / "banking77"
DEFAULT_HOLDOUT = ROOT / "data" / "eval" / "intents_holdout.csv"
MIN_SIMILARITY_SWEEP = (0.5, 0.55, 0.6, 0.65, 0.7, 0.78, 0.85)


def read_labelled(path: Path, label: str = "category") -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [(r["text"], r[label]) for r in csv.DictReader(fh)]


# -- banking77 ----------------------------------------------------------------------------------------------


def nearest_labels(train: np.ndarray, test: np.ndarray, labels: Sequence[str], batch: int = 1024) -> list[str]:
    """Each test row's nearest train row's label (cosine: the rows are unit vectors)."""
    out: list[str] = []
    for i in range(0, len(test), batch):
        out += [labels[j] for j in np.argmax(test[i : i + batch] @ train.T, axis=1)]
    return out


def bm25_nearest(
    train: Sequence[str], test: Sequence[str], labels: Sequence[str], terms: Callable[[str], list[str]]
) -> list[str]:
    """Each test message's label from the train message BM25 ranks first (bm25s, k1=0.9, b=0.4, Kefu's terms)."""
    import bm25s

    retriever = bm25s.BM25(k1=0.9, b=0.4)
    retriever.index([terms(t) or ["_"] for t in train], show_progress=False)
    docs, _ = retriever.retrieve([terms(t) or ["_"] for t in test], k=1, show_progress=False, n_threads=1)
    return [labels[int(d[0])] for d in docs]


def logistic_regression(train: np.ndarray, labels: Sequence[str], test: np.ndarray, max_iter: int) -> list[str]:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:  # pragma: no cover - scikit-learn is in the dev extra
        raise SystemExit("bench/intents.py needs scikit-learn: pip install -c constraints.txt -e '.[dev]'") from None
    model = LogisticRegression(max_iter=max_iter)
    model.fit(train, list(labels))
    return list(model.predict(test))


def mteb_protocol(
    train: np.ndarray, labels: Sequence[str], test: np.ndarray, gold: Sequence[str], draws: int = 10, per_label: int = 8
) -> float:
    """Mean accuracy of logistic regressions (100 iterations) each trained on `per_label` random examples of
    every intent, as MTEB's classification tasks do."""
    rng = np.random.default_rng(42)
    scores = []
    for _ in range(draws):
        counts: Counter[str] = Counter()
        picked = []
        for i in rng.permutation(len(labels)):
            if counts[labels[i]] < per_label:
                counts[labels[i]] += 1
                picked.append(i)
        predicted = logistic_regression(train[picked], [labels[i] for i in picked], test, max_iter=100)
        scores.append(accuracy(predicted, gold))
    return float(np.mean(scores))


def accuracy(predicted: Sequence[str], gold: Sequence[str]) -> float:
    return sum(p == g for p, g in zip(predicted, gold)) / max(1, len(gold))


def run_banking77(
    folder: Path, embed: Callable[[list[str]], np.ndarray], terms: Callable[[str], list[str]]
) -> list[tuple[str, float, float]]:
    train, test = read_labelled(folder / "train.csv"), read_labelled(folder / "test.csv")
    train_texts, train_labels = [t for t, _ in train], [c for _, c in train]
    test_texts, gold = [t for t, _ in test], [c for _, c in test]
    rows = []
    majority = Counter(train_labels).most_common(1)[0][0]
    rows.append(("majority class (baseline)", accuracy([majority] * len(gold), gold), 0.0))
    started = time.perf_counter()
    rows.append(
        (
            "BM25 nearest example (baseline)",
            accuracy(bm25_nearest(train_texts, test_texts, train_labels, terms), gold),
            time.perf_counter() - started,
        )
    )
    started = time.perf_counter()
    train_vectors, test_vectors = embed(train_texts), embed(test_texts)
    embed_s = time.perf_counter() - started
    print(f"(embedded {len(train_texts) + len(test_texts)} messages in {embed_s:.0f} s)")
    started = time.perf_counter()
    rows.append(
        (
            "nearest example, cosine (1-NN)",
            accuracy(nearest_labels(train_vectors, test_vectors, train_labels), gold),
            time.perf_counter() - started,
        )
    )
    started = time.perf_counter()
    rows.append(
        (
            "logistic regression, whole train set",
            accuracy(logistic_regression(train_vectors, train_labels, test_vectors, 1000), gold),
            time.perf_counter() - started,
        )
    )
    started = time.perf_counter()
    rows.append(
        (
            "logistic regression, MTEB protocol",
            mteb_protocol(train_vectors, train_labels, test_vectors, gold),
            time.perf_counter() - started,
        )
    )
    return rows


# -- Kefu's intents -----------------------------------------------------------------------------------------


def language(text: str) -> str:
    from rag.analysis import detect_language

    return detect_language(text) or "en"


def evaluate(classify: Callable[[int, str], str], pairs: Sequence[tuple[str, str]]) -> dict:
    """Accuracy, by language, and the share of questions kept as questions."""
    predicted = [classify(i, text) for i, (text, _) in enumerate(pairs)]
    by_language: dict[str, list[bool]] = {}
    for (text, gold), p in zip(pairs, predicted):
        by_language.setdefault(language(text), []).append(p == gold)
    questions = [p == QUESTION for (_, gold), p in zip(pairs, predicted) if gold == QUESTION]
    return {
        "accuracy": accuracy(predicted, [g for _, g in pairs]),
        "by_language": {lang: sum(v) / len(v) for lang, v in sorted(by_language.items())},
        "questions_kept": sum(questions) / max(1, len(questions)),
        "misses": [(text, gold, p) for (text, gold), p in zip(pairs, predicted) if p != gold],
    }


def run_kefu(
    examples: list[tuple[str, str]],
    holdout: list[tuple[str, str]],
    customer_questions: list[str],
    cached: Callable[[Sequence[str]], np.ndarray],
    min_similarity: float = intents.EXAMPLE_MIN_SIMILARITY,
    margin: float = intents.EXAMPLE_MARGIN,
) -> dict:
    """Each system's figures; `cached` embeds any of the messages (looked up, not recomputed)."""
    systems: dict[str, Callable[[list[tuple[str, str]]], IntentClassifier | None]] = {
        "always a question (baseline)": lambda ex: None,
        "rules only": lambda ex: IntentClassifier(ex, None),
        "rules + nearest example (Kefu)": lambda ex: IntentClassifier(
            ex, cached, min_similarity=min_similarity, margin=margin
        ),
    }
    out = {}
    for name, build in systems.items():
        full = build(examples)
        out[name] = {
            "loo": evaluate(
                lambda i, text, build=build: classify_with(build(examples[:i] + examples[i + 1 :]), text), examples
            ),
            "holdout": evaluate(lambda i, text, full=full: classify_with(full, text), holdout),
            "banking77_kept": sum(classify_with(full, q) == QUESTION for q in customer_questions)
            / max(1, len(customer_questions)),
        }
    return out


def classify_with(classifier: IntentClassifier | None, text: str) -> str:
    return classifier.classify(text).name if classifier else QUESTION


def print_kefu(result: dict, examples: int, holdout: int, customers: int) -> None:
    print(f"\n## Kefu's IntentClassifier (leave-one-out over {examples} examples; {holdout} held-out messages; "
          f"{customers} banking77 test questions)")  # fmt: skip
    print(
        "| system | leave-one-out | ratio to baseline | held-out | ratio | held-out EN / ZH | banking77 kept as questions |"
    )
    print("|---|---|---|---|---|---|---|")
    base = result["always a question (baseline)"]
    for name, r in result.items():
        loo, ho = r["loo"]["accuracy"], r["holdout"]["accuracy"]
        langs = r["holdout"]["by_language"]
        print(
            f"| {name} | {loo:.3f} | {loo / base['loo']['accuracy']:.2f} | {ho:.3f} | {ho / base['holdout']['accuracy']:.2f} | "
            f"{langs.get('en', 0):.3f} / {langs.get('zh', 0):.3f} | {r['banking77_kept']:.4f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "banking77", nargs="?", type=Path, default=DEFAULT_BANKING77, help="folder with train.csv and test.csv"
    )
    parser.add_argument("--holdout", type=Path, default=DEFAULT_HOLDOUT, help="held-out messages (text,intent)")
    parser.add_argument("--misses", action="store_true", help="list Kefu's wrong answers")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from app.components import Components
    from rag.indexing import embed_readable

    components = Components()
    embedder, terms = components.embedder, components.analyzer.terms

    def embed(texts: list[str]) -> np.ndarray:
        return embed_readable(embedder, texts, query=True)

    print(f"# Kefu intent benchmark, {date.today()}, {platform.node()} ({os.cpu_count()} CPUs), "
          f"embedding model {embedder.name}")  # fmt: skip
    result: dict = {}
    customer_questions: list[str] = []
    if (args.banking77 / "test.csv").exists():
        rows = run_banking77(args.banking77, embed, terms)
        base = rows[1][1]
        print("\n## banking77 (train 10,003 → test 3,080)")
        print("| classifier | accuracy | ratio to BM25 nearest | seconds |")
        print("|---|---|---|---|")
        for name, acc, seconds in rows:
            print(f"| {name} | {acc:.4f} | {acc / base:.3f} | {seconds:.1f} |")
        result["banking77"] = {name: acc for name, acc, _ in rows}
        customer_questions = [t for t, _ in read_labelled(args.banking77 / "test.csv")]
    else:
        print(f"\n(no banking77 at {args.banking77}: its part is skipped)")

    examples, holdout = read_examples(), read_examples(args.holdout)
    texts = list(dict.fromkeys([t for t, _ in examples] + [t for t, _ in holdout] + customer_questions))
    cache = dict(zip(texts, embed(texts)))

    def cached(batch: Sequence[str]) -> np.ndarray:
        return np.stack([cache[t] for t in batch])

    kefu = run_kefu(examples, holdout, customer_questions, cached)
    print_kefu(kefu, len(examples), len(holdout), len(customer_questions))
    result["kefu"] = kefu
    if args.misses:
        for where in ("loo", "holdout"):
            for text, gold, got in kefu["rules + nearest example (Kefu)"][where]["misses"]:
                print(f"- {where}: {text!r} is {gold}, classified {got}")

    print(f"\n## EXAMPLE_MIN_SIMILARITY (margin {intents.EXAMPLE_MARGIN}; now {intents.EXAMPLE_MIN_SIMILARITY})")
    print("| min similarity | leave-one-out | held-out | questions kept (LOO) | banking77 kept as questions |")
    print("|---|---|---|---|---|")
    result["sweep"] = {}
    for value in MIN_SIMILARITY_SWEEP:
        r = run_kefu(examples, holdout, customer_questions, cached, min_similarity=value)[
            "rules + nearest example (Kefu)"
        ]
        result["sweep"][value] = {
            "loo": r["loo"]["accuracy"],
            "holdout": r["holdout"]["accuracy"],
            "banking77_kept": r["banking77_kept"],
        }
        print(
            f"| {value:.2f} | {r['loo']['accuracy']:.3f} | {r['holdout']['accuracy']:.3f} | {r['loo']['questions_kept']:.3f} | {r['banking77_kept']:.4f} |"
        )
    if args.json:
        for r in result["kefu"].values():
            for part in ("loo", "holdout"):
                r[part]["misses"] = [list(m) for m in r[part]["misses"]]
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
