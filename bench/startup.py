"""Cold start: how long one `kefu ask` process takes, from exec to the printed answer, on the sample knowledge
base: an FAQ hit, an extractive answer, a Chinese question. Each run is a fresh process (nothing warm but the
OS file cache). The baseline, in the same run: the same commands with KEFU_EMBEDDING_BACKEND=sentence-transformers,
the query path Kefu had before (it imports torch, transformers and sentence-transformers to embed one question).

    python bench/startup.py            # 5 runs of each
    python bench/startup.py --runs 3

Prints the median seconds of each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    ("FAQ", "Do you ship internationally?"),
    ("extractive", "How long do I have to return an item?"),
    ("Chinese", "退货期限是多久？"),
]


def kefu(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="kefu-bench-startup-")
    env = {**os.environ, "KEFU_HOME": home, "KEFU_LLM": "extractive"}
    kefu(env, "ingest", str(ROOT / "data" / "kb"))
    baseline_env = {**env, "KEFU_EMBEDDING_BACKEND": "sentence-transformers"}
    print(f"# Cold `kefu ask` · {date.today()} · {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs · "
          f"median of {args.runs} fresh processes")  # fmt: skip
    print("| question | Kefu (s) | before: sentence-transformers query path (s) | ratio |")
    print("|---|---|---|---|")
    for label, question in QUESTIONS:
        kefu(env, "ask", question, "--json")  # the OS file cache warm for both
        ours = statistics.median(kefu(env, "ask", question, "--json") for _ in range(args.runs))
        before = statistics.median(kefu(baseline_env, "ask", question, "--json") for _ in range(args.runs))
        print(f"| {label}: {question} | {ours:.2f} | {before:.2f} | {before / ours:.1f}× faster |")


if __name__ == "__main__":
    main()
