"""Crash safety: `kefu ingest` killed with SIGKILL at random moments, five times, then run once more,
leaves exactly the store a clean run builds — every document all or nothing — and search works."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import kefu_json

TOPICS = ["refund", "delivery", "warranty", "battery", "invoice", "password", "earbuds", "charger", "screen", "voucher"]


def write_corpus(path: Path, n: int) -> None:
    rng = random.Random(11)
    with path.open("w") as fh:
        for i in range(n):
            a, b = rng.sample(TOPICS, 2)
            text = f"Note {i} about the {a} and the {b}. Customers asked {rng.randint(1, 99)} times this week."
            fh.write(json.dumps({"_id": f"doc-{i}", "title": f"{a.title()} note {i}", "text": text}) + "\n")


def ingest(corpus: Path, home: Path) -> subprocess.Popen:
    env = {**os.environ, "KEFU_HOME": str(home)}
    kefu = str(Path(sys.executable).parent / "kefu")
    return subprocess.Popen([kefu, "ingest", str(corpus), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def snapshot(home: Path, monkeypatch) -> dict:
    monkeypatch.setenv("KEFU_HOME", str(home))
    docs = kefu_json("docs", "list")["documents"]
    return {d["doc_id"]: (d["chunks"], d["content_hash"]) for d in docs}


def test_sigkill_at_random_moments_then_resume_equals_a_clean_run(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus.jsonl"
    write_corpus(corpus, 2000)

    clean_home = tmp_path / "clean"
    started = time.perf_counter()
    clean = ingest(corpus, clean_home)
    assert clean.wait(timeout=600) == 0, clean.stderr.read().decode()
    clean_seconds = time.perf_counter() - started

    home = tmp_path / "crashed"
    rng = random.Random(2026)
    kills = []
    for _ in range(5):
        process = ingest(corpus, home)
        delay = rng.uniform(0.3, clean_seconds)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
        kills.append((round(delay, 1), process.returncode))
    assert any(code == -signal.SIGKILL for _, code in kills), kills
    final = ingest(corpus, home)
    assert final.wait(timeout=600) == 0, final.stderr.read().decode()

    db = sqlite3.connect(home / "knowledge.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")  # raises if FTS5 is inconsistent
    orphans = db.execute("SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM documents)").fetchone()[0]
    fts_rows = db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
    chunk_rows = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    db.close()
    assert orphans == 0 and fts_rows == chunk_rows

    expected = snapshot(clean_home, monkeypatch)
    assert len(expected) == 2000
    assert snapshot(home, monkeypatch) == expected, f"kills at {kills}"
    for query in ("battery warranty", "refund voucher"):
        monkeypatch.setenv("KEFU_HOME", str(home))
        got = [h["chunk_id"] for h in kefu_json("search", query, "-k", "5")["results"]]
        monkeypatch.setenv("KEFU_HOME", str(clean_home))
        assert got == [h["chunk_id"] for h in kefu_json("search", query, "-k", "5")["results"]]
