"""Top-k ranking metrics and seeded per-user bootstrap intervals (numpy only).

Definitions (the same as the project's `recvector.evaluate`, docs/evaluation.md), for one user with
held-out set T and a top-k list L (excluded items never appear in L):

- Recall@k = |L ∩ T| / min(k, |T|)
- NDCG@k   = Σ_{p: L_p ∈ T} 1/log2(p + 1)  /  Σ_{p=1..min(k,|T|)} 1/log2(p + 1)   (binary gains)
- MRR@k    = 1 / (position of the first hit in L), 0 without a hit
- coverage = distinct items in all users' lists / catalogue size

Ties: a higher score ranks first; equal scores rank by ascending column index (= ascending item id
in this package), deterministically. With one held-out item, Recall@k is the hit rate.

Confidence intervals resample users with replacement (`bootstrap_indices`, seeded); a paired
interval for the difference of two methods applies the same resampled users to both. Coverage gets
no interval: it is a property of the set of lists, not a mean over users, and a bootstrap resample
holds only ~63% distinct users, so its coverage is biased low (percentile intervals then miss the
point value altogether).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRICS = ("ndcg", "recall", "mrr")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k best scores of each row: higher score first, ties by lower index.

    Rows must hold at least k finite scores (excluded items are -inf).
    """
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    n_rows = scores.shape[0]
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = scores[np.arange(n_rows)[:, None], part].min(axis=1)
    out = np.empty((n_rows, k), dtype=np.int64)
    for r in range(n_rows):
        row = scores[r]
        above = np.flatnonzero(row > kth[r])
        ties = np.flatnonzero(row == kth[r])[: k - len(above)]
        chosen = np.concatenate([above, ties])
        out[r] = chosen[np.lexsort((chosen, -row[chosen]))]
    return out


def hit_matrix(top: np.ndarray, heldout: list[np.ndarray]) -> np.ndarray:
    """hits[u, p] is True when top[u, p] is one of user u's held-out column indices."""
    return np.array([np.isin(row, held) for row, held in zip(top, heldout)], dtype=bool).reshape(top.shape)


def per_user_metrics(top: np.ndarray, heldout: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Recall@k, NDCG@k and MRR@k of every user (k = top.shape[1]) as float64 arrays."""
    k = top.shape[1]
    hits = hit_matrix(top, heldout)
    n_held = np.array([len(h) for h in heldout])
    if (n_held == 0).any():
        raise ValueError("every evaluated user needs at least one held-out item")
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(n_held, k) - 1]
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0)
    return {
        "recall": hits.sum(axis=1) / np.minimum(n_held, k),
        "ndcg": (hits * discount).sum(axis=1) / ideal,
        "mrr": np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0),
    }


def coverage(top: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    return float(np.unique(top).size / n_items)


def bootstrap_indices(n_users: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """(n_boot, n_users) user indices drawn with replacement; share them to pair methods."""
    return np.random.default_rng(seed).integers(0, n_users, size=(n_boot, n_users), dtype=np.int64)


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its percentile bootstrap interval."""

    value: float
    low: float
    high: float

    def format(self, digits: int = 3, signed: bool = False) -> str:
        sign = "+" if signed else ""
        return f"{self.value:{sign}.{digits}f} [{self.low:{sign}.{digits}f}, {self.high:{sign}.{digits}f}]"

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def percentile_interval(value: float, replicates: np.ndarray, level: float = 0.95) -> Estimate:
    """Point value with the (1-level)/2 and (1+level)/2 percentiles of the replicates."""
    low, high = np.percentile(replicates, [50 * (1 - level), 50 * (1 + level)])
    return Estimate(float(value), float(low), float(high))


def mean_ci(values: np.ndarray, idx: np.ndarray, level: float = 0.95) -> Estimate:
    """Mean over users with a per-user bootstrap interval."""
    return percentile_interval(values.mean(), values[idx].mean(axis=1), level)


def paired_diff_ci(a: np.ndarray, b: np.ndarray, idx: np.ndarray, level: float = 0.95) -> Estimate:
    """mean(a) - mean(b) over the same users, resampling users jointly (paired bootstrap)."""
    return mean_ci(a - b, idx, level)
