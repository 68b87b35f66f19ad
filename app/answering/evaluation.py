"""Evaluation files and metrics: BEIR query and qrels files in, TREC run files out, nDCG@k and Recall@k;
corpus BLEU and added-term recall for query rewriting; operating points of a score threshold (for
calibrating Kefu's thresholds). Pure functions and small readers; used by `kefu search --queries ... --run`
and `bench/`.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
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


# -- rewriting: corpus BLEU and the terms a rewrite recovers ----------------------------------------------

_BLEU_PUNCT_RE = re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])")


def bleu_tokens(text: str) -> list[str]:
    """Tokens as sacrebleu's default `13a` tokenizer cuts them (mteval-v13a): punctuation and symbols apart,
    a full stop or comma apart unless it sits between digits; case kept."""
    line = f" {text.strip()} "
    line = _BLEU_PUNCT_RE.sub(r" \1 ", line)
    line = re.sub(r"([^0-9])([\.,])", r"\1 \2 ", line)
    line = re.sub(r"([\.,])([^0-9])", r" \1 \2", line)
    line = re.sub(r"([0-9])(-)", r"\1 \2 ", line)
    return line.split()


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], max_n: int = 4) -> float:
    """Corpus BLEU-4 (Papineni et al. 2002) with one reference per hypothesis, in 0-100: clipped n-gram
    matches and n-gram counts summed over the corpus, their geometric mean, times the brevity penalty
    exp(1 - r/c) when the hypotheses are shorter in total (c) than the references (r). No smoothing: 0 when
    some order has no match at all (never the case on a real corpus)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hypothesis, reference in zip(hypotheses, references):
        hyp, ref = bleu_tokens(hypothesis), bleu_tokens(reference)
        hyp_len, ref_len = hyp_len + len(hyp), ref_len + len(ref)
        for n in range(1, max_n + 1):
            hyp_grams, ref_grams = _ngrams(hyp, n), _ngrams(ref, n)
            matches[n - 1] += sum(min(count, ref_grams[gram]) for gram, count in hyp_grams.items())
            totals[n - 1] += max(0, len(hyp) - n + 1)
    if hyp_len == 0 or min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    brevity = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    return 100 * brevity * math.exp(log_precision)


def added_terms(question_terms: Iterable[str], gold_terms: Iterable[str]) -> set[str]:
    """The terms a gold rewrite adds to the question (what the conversation had to supply)."""
    return set(gold_terms) - set(question_terms)


def added_term_recall(question: str, rewrite: str, gold: str, terms: Callable[[str], Sequence[str]]) -> tuple[int, int]:
    """(found, wanted): how many of the terms the gold rewrite adds to the question the rewrite contains."""
    wanted = added_terms(terms(question), terms(gold))
    return len(wanted & set(terms(rewrite))), len(wanted)


# -- thresholds: operating points on scored positives and negatives -----------------------------------------


def operating_point(positives: Sequence[float], negatives: Sequence[float], threshold: float) -> dict[str, float]:
    """What accepting every score ≥ `threshold` does: the share of positives accepted (recall), the share of
    negatives accepted (false-positive rate), and precision (accepted positives over everything accepted;
    1.0 when nothing is accepted)."""
    tp = sum(s >= threshold for s in positives)
    fp = sum(s >= threshold for s in negatives)
    return {
        "threshold": threshold,
        "recall": tp / len(positives) if positives else 0.0,
        "fpr": fp / len(negatives) if negatives else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
    }


def threshold_for_fpr(negatives: Sequence[float], max_fpr: float, step: float = 0.01) -> float:
    """The lowest threshold on the grid of `step` (0, step, 2·step, …) at which at most `max_fpr` of the
    negatives score ≥ it: the most permissive setting that keeps false positives within the target."""
    ranked = sorted(negatives, reverse=True)
    allowed = math.floor(max_fpr * len(ranked) + 1e-9)  # negatives that may still pass
    if allowed >= len(ranked):
        return 0.0
    # Every threshold above the (allowed+1)-th highest negative lets at most `allowed` through.
    cut = ranked[allowed]
    grid = math.floor(cut / step + 1e-9) * step + step
    return round(grid, 10)
