"""Batch FAQ answering throughput: `kefu batch`'s engine (`app.answering.batch.run_batch` over the answerer's batch: one
embedding batch per group of rows) beside answering the same questions one at a time (`KefuService.ask_batch`
with one question per call), in the same run, extractive mode, on the sample knowledge base.

    python bench/batch.py                 # 1,000 questions drawn from data/kb (FAQ questions, paraphrases, misses)
    python bench/batch.py --rows 300

The knowledge base is ingested into a temporary KEFU_HOME and the models are loaded before either clock starts.
Prints questions/s for both and the ratio.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXTRA = [
    "How long do I have to return an item?", "What does express delivery cost?", "退货期限是多久？",
    "Can I pay with Alipay?", "How do I reset my Lumen Buds Pro?", "保修期多长？", "Do you sell drones?",
    "How long does the watch battery last with GPS?", "What is the airspeed velocity of an unladen swallow?",
]  # fmt: skip


def questions(rows: int, seed: int = 7) -> list[str]:
    with (ROOT / "data" / "kb" / "faq.csv").open(encoding="utf-8") as fh:
        faq = [r["question"] for r in csv.DictReader(fh)]
    pool = faq + EXTRA
    rng = random.Random(seed)
    return [f"{rng.choice(pool)} (ticket {i})" for i in range(rows)]  # all distinct: no cache helps either side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="kefu-bench-batch-"))
    os.environ["KEFU_HOME"] = str(home)
    os.environ["KEFU_LLM"] = "extractive"

    from app.answering.batch import run_batch
    from app.services import KefuService

    KefuService().ingest([ROOT / "data" / "kb"])
    asked = questions(args.rows)
    service, single = KefuService(), KefuService()  # each its own query cache
    for s in (service, single):
        s.ask_batch(["warm-up: how much is shipping?"])  # load the models outside both clocks
    source = home / "questions.csv"
    with source.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "question"])
        writer.writerows([i, q] for i, q in enumerate(asked))

    started = time.perf_counter()
    report = run_batch(service.ask_batch, source, home / "answers.csv")
    batch_s = time.perf_counter() - started

    started = time.perf_counter()
    for question in asked:
        single.ask_batch([question])
    single_s = time.perf_counter() - started

    batch_rate, single_rate = args.rows / batch_s, args.rows / single_s
    print(f"# Batch FAQ answering, {args.rows} questions, extractive · {date.today()} · {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print("| | questions/s | seconds |")
    print("|---|---|---|")
    print(f"| `kefu batch` engine (groups of 32) | {batch_rate:.1f} | {batch_s:.1f} |")
    print(f"| one question at a time (baseline) | {single_rate:.1f} | {single_s:.1f} |")
    print(f"| ratio | {batch_rate / single_rate:.2f}× | |")
    print(f"modes: {report.modes}")


if __name__ == "__main__":
    main()
