"""Evaluation files and metrics: BEIR query and qrels files in, TREC run files out, nDCG@k and Recall@k.
Pure functions and small readers; used by `kefu search --queries ... --run` and `bench/`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from app.errors import InputError

RUN_TAG = "kefu"


def read_queries(path: Path) -> list[tuple[str, str]]:
    """(id, text) from a JSONL file of objects with `_id` (or `id`) and `text`."""
    queries: list[tuple[str, str]] = []
    seen: set[str] = set()
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read queries file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"queries file {path} is not UTF-8 text") from None
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} line {line_no} is not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise InputError(f"{path} line {line_no} is not a JSON object")
        qid = record.get("_id", record.get("id"))
        text = record.get("text")
        if qid is None or not isinstance(text, str):
            raise InputError(f"{path} line {line_no} needs an '_id' (or 'id') and a 'text'")
        qid = str(qid)
        if qid in seen:
            raise InputError(f"{path} line {line_no} repeats the query id {qid!r}")
        seen.add(qid)
        queries.append((qid, text))
    if not queries:
        raise InputError(f"queries file {path} holds no queries")
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """{query id: {doc id: relevance}} from a BEIR qrels TSV (`query-id corpus-id score`, header optional)."""
    qrels: dict[str, dict[str, int]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) < 3 or parts[0] == "query-id":
            continue
        try:
            score = int(float(parts[2]))
        except ValueError:
            continue
        qrels.setdefault(parts[0], {})[parts[1]] = score
    return qrels


def write_trec_run(run: Mapping[str, Sequence[tuple[str, float]]], out: TextIO, tag: str = RUN_TAG) -> int:
    """Write `qid Q0 docid rank score tag` lines; returns the number of lines."""
    lines = 0
    for qid, ranked in run.items():
        for rank, (doc_id, score) in enumerate(ranked, start=1):
            out.write(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n")
            lines += 1
    return lines


def read_trec_run(lines: Iterable[str]) -> dict[str, list[tuple[str, float]]]:
    run: dict[str, list[tuple[str, float]]] = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 6:
            run.setdefault(parts[0], []).append((parts[2], float(parts[4])))
    return run


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with graded gains (rel / log2(rank + 1)), as pytrec_eval computes it for BEIR."""
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((r for r in relevant.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 100) -> float:
    wanted = {doc for doc, r in relevant.items() if r > 0}
    if not wanted:
        return 0.0
    return len(wanted & set(ranked[:k])) / len(wanted)


def evaluate(run: Mapping[str, Sequence[tuple[str, float]]], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """Mean nDCG@10 and Recall@100 over the judged queries (a judged query missing from the run scores 0)."""
    judged = [q for q, rels in qrels.items() if any(r > 0 for r in rels.values())]
    if not judged:
        return {"ndcg@10": 0.0, "recall@100": 0.0, "queries": 0}
    ndcg = recall = 0.0
    for qid in judged:
        ranked = [doc for doc, _ in run.get(qid, [])]
        ndcg += ndcg_at_k(ranked, qrels[qid], 10)
        recall += recall_at_k(ranked, qrels[qid], 100)
    return {"ndcg@10": ndcg / len(judged), "recall@100": recall / len(judged), "queries": len(judged)}
