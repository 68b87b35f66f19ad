"""Retrieval benchmark on BEIR-layout folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).

Runs each dataset through the same code path as the CLI — `kefu ingest corpus.jsonl` and
`kefu search --queries Q.jsonl -k 100 --run OUT.trec --mode M`, invoked in-process — for BM25-only
(lexical), dense-only and hybrid, and prints nDCG@10 and Recall@100 beside a reference BM25 run in the
same process on the same data: bm25s with k1=0.9, b=0.4, Snowball-stemmed English with stop words
(Chinese text cut by jieba for the reference, since bm25s's own tokenizer does not segment Chinese).

    python bench/retrieval.py                      # ../shared/datasets/{beir-scifact,cmrc2018-zh}
    python bench/retrieval.py path/to/beir-folder --split test --home /tmp/kefu-bench
    python bench/retrieval.py DATASET --baseline   # also the setup before issue #12, in the same run
    python bench/retrieval.py DATASET --torch-queries  # also questions embedded by torch, on the same store

The knowledge store is built under --home (a temporary folder by default); with a kept --home an
unchanged corpus is not re-embedded, so repeated runs only measure search. `--baseline` builds a second
store with KEFU_MULTILINGUAL_MODEL=none (MiniLM only: Chinese left to BM25) and reports it beside the default;
`--torch-queries` searches the default store again with KEFU_EMBEDDING_BACKEND=sentence-transformers, so
numpy-embedded questions and torch-embedded ones meet the same (torch-embedded) passages: the proof that
both engines share one vector space. Ingest throughput (documents/s) is printed for each store built.
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

DEFAULT_DATASETS = [ROOT.parent / "shared" / "datasets" / "beir-scifact", ROOT.parent / "shared" / "datasets" / "cmrc2018-zh"]
MODES = ("lexical", "dense", "hybrid")


def _split_for(folder: Path, wanted: str | None) -> Path:
    qrels = sorted((folder / "qrels").glob("*.tsv"))
    if wanted:
        path = folder / "qrels" / f"{wanted}.tsv"
        if not path.exists():
            raise SystemExit(f"{folder} has no qrels/{wanted}.tsv (found: {', '.join(p.stem for p in qrels)})")
        return path
    for name in ("test", "dev", "train"):
        if (folder / "qrels" / f"{name}.tsv").exists():
            return folder / "qrels" / f"{name}.tsv"
    raise SystemExit(f"{folder} has no qrels/*.tsv")


def _kefu(args: list[str]) -> str:
    """Run a `kefu` command in-process, exactly as the console script would; returns its stdout."""
    from click.testing import CliRunner

    from app.cli import main

    result = CliRunner().invoke(main, args, catch_exceptions=False)
    if result.exit_code != 0:
        raise SystemExit(f"kefu {' '.join(args)} failed ({result.exit_code}):\n{result.output}")
    return result.output


def reference_bm25(corpus: Path, queries: list[tuple[str, str]], k: int = 100) -> dict[str, list[tuple[str, float]]]:
    """bm25s (k1=0.9, b=0.4) over title + text; English stemmed with stop words, Chinese cut by jieba."""
    import bm25s
    import jieba
    import Stemmer

    from ingest.cjk import has_cjk

    jieba.setLogLevel(60)
    stemmer = Stemmer.Stemmer("english")
    ids, texts = [], []
    with corpus.open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            ids.append(str(record.get("_id", record.get("id"))))
            texts.append(f"{record.get('title', '')} {record.get('text', '')}")
    chinese = sum(1 for t in texts[:200] if has_cjk(t)) > 100

    def prepare(batch: list[str]) -> list[str]:
        return [" ".join(jieba.cut_for_search(t)) for t in batch] if chinese else batch

    corpus_tokens = bm25s.tokenize(prepare(texts), stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25(k1=0.9, b=0.4)
    retriever.index(corpus_tokens, show_progress=False)
    query_tokens = bm25s.tokenize(prepare([q for _, q in queries]), stopwords="en", stemmer=stemmer, show_progress=False)
    docs, scores = retriever.retrieve(query_tokens, k=min(k, len(ids)), show_progress=False, n_threads=1)
    return {
        qid: [(ids[d], float(s)) for d, s in zip(docs[i], scores[i])] for i, (qid, _) in enumerate(queries)
    }


def _search_rows(query_file: Path, work: Path, qrels: dict, label: str) -> list[dict]:
    from app.answering.evaluation import evaluate, read_trec_run

    rows = []
    for mode in MODES:
        run_file = work / f"{label}-{mode}.trec".replace(" ", "_")
        started = time.perf_counter()
        _kefu(["search", "--queries", str(query_file), "-k", "100", "--run", str(run_file), "--mode", mode])
        seconds = time.perf_counter() - started
        with run_file.open() as fh:
            metrics = evaluate(read_trec_run(fh), qrels)
        rows.append({"system": f"kefu {mode}{label}", **metrics, "seconds": seconds})
    return rows


def _with_env(env: dict[str, str], fn):
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return fn()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_dataset(
    folder: Path, split: str | None, home: Path, max_queries: int | None, baseline: bool = False, torch_queries: bool = False
) -> dict:
    from app.answering.evaluation import evaluate, read_qrels, read_queries

    qrels_path = _split_for(folder, split)
    qrels = read_qrels(qrels_path)
    queries = [(qid, text) for qid, text in read_queries(folder / "queries.jsonl") if qid in qrels]
    if max_queries:
        queries = queries[:max_queries]
        qrels = {qid: qrels[qid] for qid, _ in queries}
    os.environ["KEFU_HOME"] = str(home)
    work = Path(tempfile.mkdtemp(prefix="kefu-bench-"))
    query_file = work / "queries.jsonl"
    query_file.write_text("".join(json.dumps({"_id": q, "text": t}, ensure_ascii=False) + "\n" for q, t in queries))

    started = time.perf_counter()
    report = json.loads(_kefu(["ingest", str(folder / "corpus.jsonl"), "--json"]))
    ingest_s = time.perf_counter() - started
    summary = report["summary"]
    rows = _search_rows(query_file, work, qrels, "")
    ingests = {"default": ingest_s}
    if torch_queries:
        rows += _with_env({"KEFU_EMBEDDING_BACKEND": "sentence-transformers"},
                          lambda: _search_rows(query_file, work, qrels, " (torch queries)"))  # fmt: skip

    if baseline:
        def before() -> list[dict]:
            started = time.perf_counter()
            _kefu(["ingest", str(folder / "corpus.jsonl"), "--json"])
            ingests["main only (before #12)"] = time.perf_counter() - started
            return _search_rows(query_file, work, qrels, " (main only, before #12)")

        rows += _with_env({"KEFU_MULTILINGUAL_MODEL": "none", "KEFU_HOME": str(home) + "-main-only"}, before)
    started = time.perf_counter()
    reference = reference_bm25(folder / "corpus.jsonl", queries)
    rows.append({"system": "bm25s reference", **evaluate(reference, qrels), "seconds": time.perf_counter() - started})
    return {
        "dataset": folder.name,
        "split": qrels_path.stem,
        "queries": len(queries),
        "documents": sum(f["documents"] for f in report["files"]),
        "chunks": sum(f["chunks"] for f in report["files"]),
        "ingest_seconds": ingest_s,
        "ingests": ingests,
        "ingest_status": {k: summary[k] for k in ("indexed", "unchanged", "failed")},
        "rows": rows,
    }


def print_result(result: dict) -> None:
    ref = next(r for r in result["rows"] if r["system"] == "bm25s reference")
    print(
        f"\n## {result['dataset']} ({result['split']}: {result['queries']} queries; ingest "
        f"{result['documents']} documents / {result['chunks']} chunks in {result['ingest_seconds']:.0f} s)"
    )
    print(f"| system | nDCG@10 | ratio to reference | Recall@100 | ratio | search time ({result['queries']} queries) |")
    print("|---|---|---|---|---|---|")
    for row in result["rows"]:
        print(
            f"| {row['system']} | {row['ndcg@10']:.4f} | {row['ndcg@10'] / ref['ndcg@10']:.3f} | "
            f"{row['recall@100']:.4f} | {row['recall@100'] / ref['recall@100']:.3f} | {row['seconds']:.1f} s |"
        )
    docs = result["documents"]
    print("\ningest: " + "; ".join(f"{name} {secs:.1f} s = {docs / secs:.1f} documents/s" for name, secs in result["ingests"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="*", type=Path, help="BEIR-layout folders (default: the shared SciFact and CMRC2018)")
    parser.add_argument("--split", help="qrels split (default: test, else dev, else train)")
    parser.add_argument("--home", type=Path, help="KEFU_HOME for the stores (default: a temporary folder)")
    parser.add_argument("--max-queries", type=int, help="evaluate only the first N judged queries")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--baseline", action="store_true", help="also build and search the setup before issue #12")
    parser.add_argument("--torch-queries", action="store_true", help="also search with questions embedded by torch")
    args = parser.parse_args()
    datasets = args.datasets or [d for d in DEFAULT_DATASETS if d.exists()]
    if not datasets:
        raise SystemExit("no datasets given and none found under ../shared/datasets")
    base = args.home or Path(tempfile.mkdtemp(prefix="kefu-bench-home-"))
    print(f"# Kefu retrieval benchmark, {date.today()}, {platform.node()} ({os.cpu_count()} CPUs), home {base}")
    results = []
    for folder in datasets:
        result = run_dataset(folder, args.split, base / folder.name, args.max_queries, args.baseline, args.torch_queries)
        print_result(result)
        results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
