"""Rank fusion and pooling: pure functions over ranked id lists, shared by every store.

Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009) scores an item by the sum over rankings
of weight / (k + rank), ranks starting at 1. It needs no score calibration between rankers, which is why
it fuses BM25 scores and cosine similarities without tuning, and why any store can use it client-side.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

DEFAULT_RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[K]],
    k: float = DEFAULT_RRF_K,
    weights: Sequence[float] | None = None,
    limit: int | None = None,
) -> list[tuple[K, float]]:
    """Fuse rankings (each a list of ids, best first) into one list of (id, score), best first.

    Ties are broken by the best rank the item reached in any list, then by first appearance, so the
    result is deterministic. Duplicate ids within one ranking count once, at their first (best) rank, and do not
    push later items down.
    """
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights given for {len(rankings)} rankings")
    scores: dict[K, float] = {}
    best_rank: dict[K, int] = {}
    for ranking, weight in zip(rankings, weights):
        seen: set[K] = set()
        rank = 0
        for item in ranking:
            if item in seen:
                continue
            seen.add(item)
            rank += 1
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
            if rank < best_rank.get(item, 1 << 62):
                best_rank[item] = rank
    order = {item: i for i, item in enumerate(scores)}
    fused = sorted(scores.items(), key=lambda kv: (-kv[1], best_rank[kv[0]], order[kv[0]]))
    return fused[:limit] if limit is not None else fused


def max_pool(scored: Iterable[tuple[K, float]], group: Callable[[K], Hashable]) -> list[tuple[Hashable, float]]:
    """Collapse scored items into groups (chunks into documents), each scored by its best item, best first."""
    best: dict[Hashable, float] = {}
    for item, score in scored:
        key = group(item)
        if key not in best or score > best[key]:
            best[key] = score
    order = {key: i for i, key in enumerate(best)}
    return sorted(best.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def interleave(rankings: Sequence[Sequence[K]]) -> list[K]:
    """Merge rankings of the same kind (one per vector space, the main space first) into one, each item at its
    best rank: the first of every list, then the second of every list, and so on. Ties (the same best rank) go
    to the earlier ranking (the main space's own choice stays first: a chunk that also lives in the second
    space, an FAQ question, must not win only for that), then to the item ranked better elsewhere (higher sum
    of reciprocal ranks), then to first appearance; repeats count once.

    Unlike RRF's sum, an item found by two spaces is not counted twice: the dense side of a hybrid search
    stays one ranking, whatever the number of models behind it."""
    best: dict[K, int] = {}
    source: dict[K, int] = {}
    support: dict[K, float] = {}
    for index, ranking in enumerate(rankings):
        seen: set[K] = set()
        rank = 0
        for item in ranking:
            if item in seen:
                continue
            seen.add(item)
            rank += 1
            if rank < best.get(item, rank + 1):
                best[item], source[item] = rank, index
            support[item] = support.get(item, 0.0) + 1.0 / rank
    order = {item: i for i, item in enumerate(best)}
    return sorted(best, key=lambda item: (best[item], source[item], -support[item], order[item]))
