"""Calibrating Kefu's two answer thresholds on data: the FAQ threshold (KEFU_FAQ_MIN_SIMILARITY: an FAQ entry
answers directly) and the relevance floor (KEFU_MIN_RELEVANCE: below it Kefu abstains).

Everything is computed by Kefu's own components, built by `KefuService()` from the environment's settings, so
re-running this after changing the embedding model (KEFU_EMBEDDING_*) or the analysis recalibrates for it.

1. FAQ threshold. Question pairs (a customer's question, an FAQ entry's question; same question or not): the
   FAQ entries are ingested (a CSV with question/answer columns, `KefuService.ingest`) into a temporary
   KEFU_HOME, and each pair gets the FAQ confidence Kefu would compute for that entry
   (`app.answering.rules.judge` → `faq_confidence`: the better of cosine similarity and idf-weighted term overlap).
   The threshold is the lowest at which at most 5% (and 1%) of the different-question pairs pass.
   - Chinese: AFQMC (Alipay customer-service question pairs, half of CLUE's dev split, labelled by people).
   - English: banking77, 10 training messages of each intent as the FAQ entries and seeded test messages as
     customers; a same-intent entry is a positive, a different-intent one a negative. Two ways to pair: at
     random, and the nearest entry of the same / of another intent by the embedding model (what retrieval
     puts in front of the FAQ decision, so the harder and more honest test).
2. Relevance floor. The sample knowledge base (`data/kb`) ingested into a temporary KEFU_HOME; in-scope
   questions (`data/eval/kb_questions.jsonl`: customers' questions with the file that answers them) against
   out-of-scope ones (banking77 test messages, minus the intents this shop's knowledge base does answer;
   AFQMC's Alipay customers' questions; CMRC2018's Chinese Wikipedia questions). Each goes through
   `Answerer.evidence` (the answer path's search and judging) and `app.answering.rules.plan` at each candidate floor,
   with the FAQ threshold chosen in 1: the floor is the lowest at which at most 5% of each out-of-scope set
   gets an answer. The floor each language would need alone is printed too: without a cosine (a language the
   embedding model cannot read) relevance is term coverage alone, on another scale.

    python bench/calibration.py                  # ../shared/datasets/{afqmc-zh-dev-half,banking77,cmrc2018-zh}
    python bench/calibration.py --faq-threshold 0.85 --out-of-scope 200
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.answering.evaluation import operating_point, threshold_for_fpr

DATASETS = ROOT.parent / "shared" / "datasets"
KB_QUESTIONS = ROOT / "data" / "eval" / "kb_questions.jsonl"
TARGETS = (0.05, 0.01)
# banking77 intents the sample shop's knowledge base answers (refunds, payment methods, declined or pending card
# payments, double charges, passwords, personal details, closing an account, countries served): a banking77
# customer asking these is in scope for the shop, so they are left out of the out-of-scope set.
IN_SCOPE_BANKING77 = frozenset({
    "Refund_not_showing_up", "request_refund", "apple_pay_or_google_pay", "supported_cards_and_currencies",
    "visa_or_mastercard", "declined_card_payment", "pending_card_payment", "reverted_card_payment?",
    "transaction_charged_twice", "passcode_forgotten", "edit_personal_details", "terminate_account", "country_support",
})  # fmt: skip


def service_at(home: Path):
    """A KefuService on `home` with every other setting from the environment."""
    from app.services import KefuService

    os.environ["KEFU_HOME"] = str(home)
    os.environ.pop("KEFU_DATABASE_URL", None)
    return KefuService()


# -- 1. FAQ threshold on question pairs ---------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    customer: str
    faq: str
    same: bool
    kind: str = ""  # how the pair was drawn


@dataclass(frozen=True)
class Scored:
    pair: Pair
    confidence: float  # faq_confidence: max(cosine, overlap)
    cosine: float | None
    overlap: float


def ingest(service, paths: Sequence[Path]) -> None:
    report = service.ingest(list(paths))
    if report.summary["failed"]:
        raise SystemExit(f"ingesting {', '.join(map(str, paths))} failed: {report.to_dict()['files']}")


def score_pairs(pairs: Sequence[Pair], service, sheet: Path) -> list[Scored]:
    """Ingest the pairs' FAQ questions as an FAQ sheet (`sheet`, a CSV with question/answer columns) into
    the service's store, then judge each pair's entry for its customer question as the answer path does."""
    from app.answering.rules import faq_confidence, idf_weights, judge
    from rag.indexing import embed_readable
    from rag.retrieval import SearchHit

    faqs = sorted({p.faq for p in pairs})
    with sheet.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["question", "answer"])
        writer.writerows([q, f"Answer {i}."] for i, q in enumerate(faqs))
    ingest(service, [sheet])
    c = service.components
    # Matched by the answer ("Answer 17.") rather than the question, which the loader may normalise.
    by_answer = {ch.metadata["answer"]: ch.chunk_id for _, chunks in c.store.export_documents() for ch in chunks}
    chunk_of = {q: by_answer[f"Answer {i}."] for i, q in enumerate(faqs)}
    stored = c.store.get_chunks(list(chunk_of.values()))
    customers = sorted({p.customer for p in pairs})
    vectors = dict(zip(customers, embed_readable(c.embedder, customers, query=True)))
    weights_of: dict[str, tuple[list[str], dict[str, float]]] = {}
    out = []
    for p in pairs:
        if p.customer not in weights_of:
            terms = c.analyzer.query_terms(p.customer)
            weights_of[p.customer] = (terms, idf_weights(*c.store.term_statistics(terms)))
        terms, weights = weights_of[p.customer]
        chunk_id = chunk_of[p.faq]
        vector = vectors[p.customer]
        cosine = c.store.similarities(vector, [chunk_id]).get(chunk_id) if vector.any() else None
        judged = judge([SearchHit(stored[chunk_id], 0.0, similarity=cosine)], terms, weights, c.analyzer.terms)[0]
        out.append(Scored(p, faq_confidence(judged), cosine, judged.overlap))
    return out


def afqmc_pairs(path: Path) -> list[Pair]:
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [Pair(r["sentence1"], r["sentence2"], str(r["label"]) == "1", "afqmc") for r in rows]


def banking77_pairs(folder: Path, customers: int, seed: int, embed) -> list[Pair]:
    """10 train messages per intent as FAQ entries; `customers` test messages, each paired with a random and the
    nearest (by `embed`) entry of its own intent and of another intent."""
    rng = random.Random(seed)
    train = list(csv.DictReader((folder / "train.csv").open(encoding="utf-8")))
    test = list(csv.DictReader((folder / "test.csv").open(encoding="utf-8")))
    by_intent: dict[str, list[str]] = {}
    for r in train:
        by_intent.setdefault(r["category"], []).append(r["text"])
    faqs = [(text, intent) for intent, texts in sorted(by_intent.items()) for text in rng.sample(texts, 10)]
    chosen = rng.sample(test, customers)
    faq_vectors = embed([t for t, _ in faqs])
    customer_vectors = embed([r["text"] for r in chosen])
    pairs = []
    for r, vector in zip(chosen, customer_vectors):
        intent = r["category"]
        same = [i for i, (_, label) in enumerate(faqs) if label == intent]
        other = [i for i, (_, label) in enumerate(faqs) if label != intent]
        sims = faq_vectors @ vector
        pairs.append(Pair(r["text"], faqs[rng.choice(same)][0], True, "random"))
        pairs.append(Pair(r["text"], faqs[rng.choice(other)][0], False, "random"))
        pairs.append(Pair(r["text"], faqs[max(same, key=lambda i: sims[i])][0], True, "nearest"))
        pairs.append(Pair(r["text"], faqs[max(other, key=lambda i: sims[i])][0], False, "nearest"))
    return pairs


def threshold_rows(scored: Sequence[Scored], current: float, signal: str = "confidence") -> list[dict]:
    def value(s: Scored) -> float:
        v = getattr(s, signal)
        return 0.0 if v is None else v

    positives = [value(s) for s in scored if s.pair.same]
    negatives = [value(s) for s in scored if not s.pair.same]
    rows = [
        {"target": f"FPR ≤ {t:.0%}", **operating_point(positives, negatives, threshold_for_fpr(negatives, t))}
        for t in TARGETS
    ]
    rows.append({"target": "current default", **operating_point(positives, negatives, current)})
    return rows


def print_thresholds(title: str, scored: Sequence[Scored], current: float) -> dict:
    positives = sum(s.pair.same for s in scored)
    print(f"\n### {title} ({positives} same-question pairs, {len(scored) - positives} different)")
    print("| signal | operating point | threshold | false-positive rate | recall | precision |")
    print("|---|---|---|---|---|---|")
    out = {}
    for signal in ("confidence", "cosine", "overlap"):
        if signal == "cosine" and all(s.cosine is None for s in scored):
            print("| cosine | (the embedding model reads none of these questions) | | | | |")
            continue
        rows = threshold_rows(scored, current, signal)
        out[signal] = rows
        name = "FAQ confidence (Kefu)" if signal == "confidence" else f"{signal} alone"
        for r in rows:
            print(
                f"| {name} | {r['target']} | {r['threshold']:.2f} | {r['fpr']:.3f} | {r['recall']:.3f} | {r['precision']:.3f} |"
            )
    return out


# -- 2. relevance floor -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    text: str
    language: str
    scope: str  # "in" or the out-of-scope set's name
    sources: tuple[str, ...] = ()


def read_kb_questions(path: Path) -> list[Question]:
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [Question(r["text"], r["language"], "in", tuple(r["sources"])) for r in rows]


def out_of_scope(banking77: Path, afqmc: Path, cmrc: Path, n: int, seed: int) -> tuple[list[Question], int]:
    """Seeded samples of n questions from each set: banking77 test messages outside IN_SCOPE_BANKING77 (English
    customer service of a bank), AFQMC customers' questions (Chinese customer service of Alipay) and CMRC2018
    questions (Chinese Wikipedia); also how many banking77 messages were left out as in scope."""
    rng = random.Random(seed)
    out: list[Question] = []
    left_out = 0
    if (banking77 / "test.csv").exists():
        rows = list(csv.DictReader((banking77 / "test.csv").open(encoding="utf-8")))
        kept = [r["text"] for r in rows if r["category"] not in IN_SCOPE_BANKING77]
        left_out = len(rows) - len(kept)
        out += [Question(t, "en", "banking77") for t in rng.sample(kept, min(n, len(kept)))]
    if afqmc.exists():
        texts = sorted({p.customer for p in afqmc_pairs(afqmc)})
        out += [Question(t, "zh", "afqmc") for t in rng.sample(texts, min(n, len(texts)))]
    if (cmrc / "queries.jsonl").exists():
        with (cmrc / "queries.jsonl").open(encoding="utf-8") as fh:
            texts = [json.loads(line)["text"] for line in fh if line.strip()]
        out += [Question(t, "zh", "cmrc2018") for t in rng.sample(texts, min(n, len(texts)))]
    return out, left_out


def outcomes(questions: Sequence[Question], kb: Path, home: Path):
    """Each question's judged evidence from the answer path over the ingested knowledge base."""
    from rag.analysis import detect_language

    service = service_at(home)
    ingest(service, [kb])
    answerer = service.components.answerer
    evidence = answerer.evidence([q.text for q in questions])
    languages = [detect_language(q.text) or "en" for q in questions]
    return evidence, languages, service.settings.answer.max_sources, service


def decide(evidence, language: str, faq_threshold: float, floor: float, max_sources: int) -> tuple[bool, str | None]:
    """(answered, the source of the answer's first passage or FAQ entry) under the given thresholds."""
    from app.answering.rules import plan

    if not evidence.judged:
        return False, None
    answer, chosen = plan(language, evidence.judged, faq_threshold, floor, max_sources)
    if answer is not None:
        return answer.mode != "abstain", (answer.sources[0]["source"] if answer.sources else None)
    return True, chosen[0].hit.chunk.source


def floor_table(
    questions, evidence, languages, faq_threshold: float, max_sources: int, floors: Sequence[float]
) -> list[dict]:
    rows = []
    for floor in floors:
        counts: dict[str, list[int]] = {}
        for q, ev, lang in zip(questions, evidence, languages):
            answered, source = decide(ev, lang, faq_threshold, floor, max_sources)
            key = f"in-{q.language}" if q.scope == "in" else q.scope
            right = (
                answered and source is not None and any(source.replace("\\", "/").endswith("/" + s) for s in q.sources)
            )
            c = counts.setdefault(key, [0, 0, 0])
            c[0], c[1], c[2] = c[0] + 1, c[1] + answered, c[2] + right
        rows.append(
            {
                "floor": floor,
                **{k: {"n": v[0], "answered": v[1] / v[0], "right_source": v[2] / v[0]} for k, v in counts.items()},
            }
        )
    return rows


def lowest_floor(rows: list[dict], target: float, sets: Sequence[str] | None = None) -> dict | None:
    """The first row (lowest floor) at which no out-of-scope set (or none of `sets`) gets answers above `target`."""
    for row in rows:
        checked = [
            v for k, v in row.items() if k != "floor" and not k.startswith("in-") and (sets is None or k in sets)
        ]
        if all(v["answered"] <= target for v in checked):
            return row
    return None


def print_floor_rows(rows: Sequence[dict], note: dict[float, str]) -> None:
    print(
        "| floor | in scope answered EN / ZH | from the right file EN / ZH | out of scope answered: banking77 (EN) / AFQMC (ZH) / CMRC2018 (ZH) |"
    )
    print("|---|---|---|---|")
    for r in rows:
        en, zh = r.get("in-en", {}), r.get("in-zh", {})
        oos = " / ".join(f"{r.get(k, {}).get('answered', 0):.3f}" for k in ("banking77", "afqmc", "cmrc2018"))
        print(
            f"| {r['floor']:.2f}{note.get(r['floor'], '')} | {en.get('answered', 0):.3f} / {zh.get('answered', 0):.3f} | "
            f"{en.get('right_source', 0):.3f} / {zh.get('right_source', 0):.3f} | {oos} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--afqmc", type=Path, default=DATASETS / "afqmc-zh-dev-half" / "pairs.jsonl")
    parser.add_argument("--banking77", type=Path, default=DATASETS / "banking77")
    parser.add_argument("--cmrc", type=Path, default=DATASETS / "cmrc2018-zh")
    parser.add_argument("--kb", type=Path, default=ROOT / "data" / "kb", help="the knowledge base the floor is set on")
    parser.add_argument(
        "--questions", type=Path, default=KB_QUESTIONS, help="in-scope questions (JSONL: text, language, sources)"
    )
    parser.add_argument("--customers", type=int, default=1000, help="banking77 test messages paired with FAQ entries")
    parser.add_argument("--out-of-scope", type=int, default=400, help="questions sampled from each out-of-scope set")
    parser.add_argument("--faq-threshold", type=float, help="FAQ threshold for the floor (default: the calibrated one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--home", type=Path, help="folder for the temporary stores (default: a new temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from app.settings import AnswerSettings, EmbeddingSettings

    current = AnswerSettings()
    base = args.home or Path(tempfile.mkdtemp(prefix="kefu-calibration-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"# Kefu threshold calibration, {date.today()}, {platform.node()} ({os.cpu_count()} CPUs), "
          f"embedding model {EmbeddingSettings().embedding_model}, stores under {base}")  # fmt: skip
    print(
        f"Current defaults: KEFU_FAQ_MIN_SIMILARITY={current.faq_min_similarity}, KEFU_MIN_RELEVANCE={current.min_relevance}"
    )
    result: dict = {
        "current": {"faq_min_similarity": current.faq_min_similarity, "min_relevance": current.min_relevance}
    }

    print("\n## FAQ threshold")
    chosen: list[float] = []
    scored_sets: dict[str, list[Scored]] = {}
    if args.afqmc.exists():
        service = service_at(base / "afqmc")
        scored = scored_sets["AFQMC"] = score_pairs(afqmc_pairs(args.afqmc), service, base / "afqmc.csv")
        service.close()
        result["afqmc"] = print_thresholds("Chinese: AFQMC", scored, current.faq_min_similarity)
        chosen.append(result["afqmc"]["confidence"][0]["threshold"])
    if (args.banking77 / "train.csv").exists():
        from rag.indexing import embed_readable

        service = service_at(base / "banking77")
        embedder = service.components.embedder
        pairs = banking77_pairs(
            args.banking77, args.customers, args.seed, lambda t: embed_readable(embedder, t, query=True)
        )
        scored = score_pairs(pairs, service, base / "banking77.csv")
        service.close()
        for kind in ("random", "nearest"):
            part = scored_sets[f"banking77 {kind}"] = [s for s in scored if s.pair.kind == kind]
            result[f"banking77-{kind}"] = print_thresholds(
                f"English: banking77, {kind} pairs", part, current.faq_min_similarity
            )
        chosen.append(result["banking77-nearest"]["confidence"][0]["threshold"])
    faq_threshold = (
        args.faq_threshold
        if args.faq_threshold is not None
        else (max(chosen) if chosen else current.faq_min_similarity)
    )
    print(f"\nFAQ threshold for the floor below: {faq_threshold:.2f}" + ("" if args.faq_threshold is not None else
          " (the higher of the Chinese and the English nearest-pair thresholds at a 5% false-positive rate)"))  # fmt: skip
    print("| pairs | threshold | false-positive rate | recall | precision |")
    print("|---|---|---|---|---|")
    for name, scored in scored_sets.items():
        positives = [s.confidence for s in scored if s.pair.same]
        negatives = [s.confidence for s in scored if not s.pair.same]
        for value in (current.faq_min_similarity, faq_threshold):
            r = operating_point(positives, negatives, value)
            print(f"| {name} | {value:.2f} | {r['fpr']:.3f} | {r['recall']:.3f} | {r['precision']:.3f} |")
    result["faq_threshold"] = faq_threshold

    print("\n## Relevance floor")
    questions = read_kb_questions(args.questions)
    oos, left_out = out_of_scope(args.banking77, args.afqmc, args.cmrc, args.out_of_scope, args.seed)
    print(f"{sum(q.language == 'en' for q in questions)} English and {sum(q.language == 'zh' for q in questions)} Chinese "
          f"in-scope questions; out of scope: {sum(q.scope == 'banking77' for q in oos)} banking77 ({left_out} test messages of "
          f"{len(IN_SCOPE_BANKING77)} intents this shop answers left out), {sum(q.scope == 'afqmc' for q in oos)} AFQMC, "
          f"{sum(q.scope == 'cmrc2018' for q in oos)} CMRC2018")  # fmt: skip
    everything = questions + oos
    evidence, languages, max_sources, service = outcomes(everything, args.kb, base / "kb")
    grid = [round(x, 2) for x in np.arange(0.0, 1.0001, 0.01)]
    rows = floor_table(everything, evidence, languages, faq_threshold, max_sources, grid)
    best = lowest_floor(rows, 0.05)
    strict = lowest_floor(rows, 0.01)
    baseline = floor_table(
        everything, evidence, languages, current.faq_min_similarity, max_sources, [current.min_relevance]
    )[0]
    shown = sorted({r["floor"] for r in rows if round(r["floor"] * 100) % 5 == 0 and 0.2 <= r["floor"] <= 0.8}
                   | {r["floor"] for r in (best, strict) if r})  # fmt: skip
    notes = {}
    if best:
        notes[best["floor"]] = " (out of scope ≤ 5%)"
    if strict:
        notes[strict["floor"]] = notes.get(strict["floor"], "") + " (out of scope ≤ 1%)"
    print(f"\nWith the FAQ threshold at {faq_threshold:.2f}:")
    print_floor_rows([r for r in rows if r["floor"] in shown], notes)
    print(f"\nBaseline: the current defaults (FAQ {current.faq_min_similarity}, floor {current.min_relevance}):")
    print_floor_rows([baseline], {})
    result |= {"floors": rows, "floor_5": best, "floor_1": strict, "baseline": baseline}
    # One floor serves relevance with and without a cosine: where the embedding model cannot read a language,
    # its relevance is term coverage alone, on another scale. The floor each language alone would need:
    for language, sets in (("English", ("banking77",)), ("Chinese", ("afqmc", "cmrc2018"))):
        own = lowest_floor(rows, 0.05, sets)
        if own:
            key = "in-en" if language == "English" else "in-zh"
            print(f"{language} alone: floor {own['floor']:.2f} (in scope answered {own[key]['answered']:.3f}, "
                  f"from the right file {own[key]['right_source']:.3f})")  # fmt: skip
            result[f"floor_5_{language.lower()}"] = own
    if best:
        print(f"\nProposed: KEFU_FAQ_MIN_SIMILARITY={faq_threshold:.2f}, KEFU_MIN_RELEVANCE={best['floor']:.2f}")
    service.close()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
