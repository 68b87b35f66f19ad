"""Ingest throughput: the whole pipeline (parse in the sandbox, chunk, analyse, embed, write) beside the bare
embedding of the same chunk texts, in the same run, on the same machine.

    python bench/ingest.py                                  # ../shared/datasets/beir-scifact/corpus.jsonl
    python bench/ingest.py data/kb path/to/folder-or-file   # anything `kefu ingest` takes
    python bench/ingest.py corpus.jsonl --limit 300         # the first 300 records of a JSONL corpus
    KEFU_MULTILINGUAL_SCOPE=all python bench/ingest.py ...  # any setting, from the environment

Prints documents/s and chunks/s for both, and the pipeline's overhead (everything that is not embedding)
as a share of the embedding time. The embedding model is loaded before either clock starts.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT = ROOT.parent / "shared" / "datasets" / "beir-scifact" / "corpus.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help=f"files or folders (default: {DEFAULT})")
    parser.add_argument("--limit", type=int, help="only the first N records of each JSONL corpus given")
    args = parser.parse_args()
    paths = args.paths or [DEFAULT]
    home = Path(tempfile.mkdtemp(prefix="kefu-bench-ingest-"))
    os.environ["KEFU_HOME"] = str(home)
    if args.limit:
        subset = []
        for path in paths:
            if path.suffix == ".jsonl":
                part = home / f"first-{args.limit}-{path.name}"
                with path.open(encoding="utf-8") as src:
                    part.write_text("".join(line for _, line in zip(range(args.limit), src)), encoding="utf-8")
                path = part
            subset.append(path)
        paths = subset

    from app.services import KefuService
    from ingest.pipeline import discover
    from rag.indexing import matching_text

    service = KefuService()
    spaces = service.components.spaces
    for e in spaces.embedders:  # load the models outside both clocks (torch too, for the bulk path)
        e.embed_documents(["warm-up"] * 2)
    if hasattr(spaces.main, "_torch"):
        spaces.main._torch.embed_documents(["warm-up"])

    started = time.perf_counter()
    report = service.ingest(paths)
    pipeline_s = time.perf_counter() - started
    summary = report.summary
    if summary["failed"]:
        print(f"warning: {summary['failed']} files failed", file=sys.stderr)

    # The same chunk texts, read again (timed apart), then embedded bare with the indexer's own function.
    started = time.perf_counter()
    texts: list[str] = []
    kinds: list[str] = []
    with service.ingestion.file_loader() as loader:
        for path, problem in discover(paths):
            if problem is None:
                try:
                    documents = loader.load(path)
                except Exception:
                    continue
                texts += [matching_text(d.kind, d.title, c.section, c.match_text) for d in documents for c in d.chunks]
                kinds += [d.kind for d in documents for _ in d.chunks]
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    spaces.embed_passages(texts, kinds)
    embed_s = time.perf_counter() - started

    docs, chunks = summary["documents"], summary["chunks"]
    overhead = pipeline_s - embed_s
    print(f"# Kefu ingest benchmark, {date.today()}, {platform.node()} ({os.cpu_count()} CPUs)")
    models = " + ".join(f"{s.model} ({s.scope})" for s in spaces.spec_spaces())
    print(f"# {', '.join(map(str, paths))}: {docs} documents, {chunks} chunks; {models}\n")
    print("| run | seconds | documents/s | chunks/s |")
    print("|---|---|---|---|")
    print(f"| whole pipeline (parse, chunk, analyse, embed, write) | {pipeline_s:.1f} | {docs / pipeline_s:.1f} | {chunks / pipeline_s:.1f} |")
    print(f"| bare embedding of the same {len(texts)} chunk texts | {embed_s:.1f} | {docs / embed_s:.1f} | {len(texts) / embed_s:.1f} |")
    print(f"| (reading and chunking alone, for reference) | {read_s:.1f} | | |")
    print(
        f"\npipeline overhead: {overhead:.1f} s = {100 * overhead / embed_s:.1f}% of the embedding time "
        f"(ratio pipeline/embedding {pipeline_s / embed_s:.3f})"
    )
    service.close()


if __name__ == "__main__":
    main()
