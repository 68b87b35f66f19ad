"""Knowledge gaps grouped by meaning: "how do I get a VAT invoice?" and "can I have an invoice with VAT?"
are one missing answer asked twice. Pure: vectors and a term function are passed in.

Questions are taken newest first and joined to the first group whose centroid they are close to (cosine at
least `min_similarity`) or, where the embedding model could not read them (a zero vector), whose first
question shares enough terms (Jaccard at least `min_overlap`). Groups come back most asked first.

`answered_gaps` finds the gaps an answer to one question fills (an agent's FAQ entry): every group that holds
a record close to that question by the same two measures, so the whole gap, each of its wordings, closes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.dialogue.feedback import GapRecord

MIN_SIMILARITY = 0.8
MIN_OVERLAP = 0.5
EXAMPLES = 5


@dataclass
class GapGroup:
    question: str  # the most frequent wording (ties: the newest)
    count: int
    last_asked: str
    reasons: dict[str, int]
    languages: list[str]
    examples: list[str] = field(default_factory=list)  # other wordings, most frequent first
    conversations: int = 0
    ids: list[int] = field(default_factory=list)  # the gap records it groups

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "ids"}


@dataclass
class _Building:
    records: list[GapRecord]
    terms: set[str]
    total: np.ndarray | None


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def group_gaps(
    records: Sequence[GapRecord],
    vectors: np.ndarray | None,
    terms: Callable[[str], Sequence[str]],
    min_similarity: float = MIN_SIMILARITY,
    min_overlap: float = MIN_OVERLAP,
) -> list[GapGroup]:
    """Group gap records (newest first; `vectors` row-aligned unit vectors, zero rows for unreadable text)."""
    groups: list[_Building] = []
    for i, record in enumerate(records):
        vector = vectors[i] if vectors is not None and vectors[i].any() else None
        words = set(terms(record.question))
        target = None
        for group in groups:
            if vector is not None and group.total is not None:
                centroid = group.total / (np.linalg.norm(group.total) or 1.0)
                if float(centroid @ vector) >= min_similarity:
                    target = group
                    break
            elif _jaccard(words, group.terms) >= min_overlap:
                target = group
                break
        if target is None:
            groups.append(_Building([record], words, None if vector is None else vector.copy()))
        else:
            target.records.append(record)
            if vector is not None:
                target.total = vector.copy() if target.total is None else target.total + vector
    return sorted((_summarise(g.records) for g in groups), key=lambda g: (-g.count, _desc(g.last_asked)))


def _desc(timestamp: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in timestamp)


def _summarise(records: list[GapRecord]) -> GapGroup:
    wordings = Counter(" ".join(r.question.split()) for r in records)
    order = {w: i for i, w in reversed(list(enumerate(" ".join(r.question.split()) for r in records)))}
    ranked = sorted(wordings, key=lambda w: (-wordings[w], order[w]))
    return GapGroup(
        question=ranked[0],
        count=len(records),
        last_asked=max(r.created_at for r in records),
        reasons=dict(Counter(r.reason for r in records)),
        languages=sorted({r.language for r in records if r.language}),
        examples=ranked[1 : 1 + EXAMPLES],
        conversations=len({r.conversation_id for r in records if r.conversation_id}),
        ids=[r.id for r in records],
    )


def answered_gaps(
    question: str,
    vector: np.ndarray | None,
    records: Sequence[GapRecord],
    vectors: np.ndarray | None,
    terms: Callable[[str], Sequence[str]],
    min_similarity: float = MIN_SIMILARITY,
    min_overlap: float = MIN_OVERLAP,
) -> list[int]:
    """The ids of the gap records an answer to `question` fills: all records of every group (as `group_gaps`
    makes them) that holds a record whose cosine with `question` reaches `min_similarity` (both readable:
    non-zero vectors) or, where either vector is missing, whose terms overlap `question`'s by `min_overlap`."""
    if not records:
        return []
    asked = vector if vector is not None and vector.any() else None
    words = set(terms(question))
    close = set()
    for i, record in enumerate(records):
        other = vectors[i] if vectors is not None and vectors[i].any() else None
        if asked is not None and other is not None:
            hit = float(asked @ other) >= min_similarity
        else:
            hit = _jaccard(words, set(terms(record.question))) >= min_overlap
        if hit:
            close.add(record.id)
    groups = group_gaps(records, vectors, terms, min_similarity, min_overlap)
    return sorted(i for g in groups if close.intersection(g.ids) for i in g.ids)
