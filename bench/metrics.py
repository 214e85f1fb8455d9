"""Scores of the descriptor bench, as plain functions over arrays.

Conventions: ranks start at 0 (the nearest); a tie counts against the item looked for
(its rank is the number of other items at a distance no larger than its own), so a
descriptor that maps everything to one point scores 0, not 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def target_ranks(distances: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """distances (Q, G) from each query to the gallery, targets (Q,) the gallery index
    each query should find -> the rank of that index among the gallery."""
    distances = np.asarray(distances)
    own = distances[np.arange(len(targets)), targets]
    return (distances <= own[:, None]).sum(axis=1) - 1


def top_k(ranks: np.ndarray, k: int) -> float:
    """Share of queries whose target is among the k nearest."""
    return float((np.asarray(ranks) < k).mean())


def average_precision(relevant: Sequence[bool], total_relevant: int | None = None) -> float:
    """AP of one ranked list (True = relevant, nearest first): the mean, over the
    `total_relevant` relevant items (default: those in the list), of the precision at
    each one's rank; a relevant item missing from the list counts 0."""
    relevant = np.asarray(relevant, dtype=bool)
    total = int(relevant.sum()) if total_relevant is None else total_relevant
    if total == 0:
        raise ValueError("average precision needs at least one relevant item")
    hits = np.cumsum(relevant)[relevant]
    ranks = np.flatnonzero(relevant) + 1
    return float((hits / ranks).sum() / total)


def precision_at(relevant: Sequence[bool], k: int) -> float:
    """Share of relevant items among the first k (a shorter list counts as padded)."""
    return float(np.asarray(relevant[:k], dtype=bool).sum() / k)
