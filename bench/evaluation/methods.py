"""Reference recommenders on a dense user x item matrix (numpy only).

Every method is fitted on X, a float32 (users x items) 0/1 matrix of training positives, and returns
a Scorer: a function from user row indices to a float32 (len(rows) x items) score matrix. Items a
user must not get are masked by the caller (evaluate.py), so scorers score the whole catalogue.

Item-kNN: co-occurrence C = XᵀX, n_i = C_ii; the similarity from a history item i to a candidate j
is C_ij / (n_i^α · n_j^(1-α) + shrink) (α = 0.5: cosine; Aiolli 2013's asymmetric cosine otherwise;
α = 1 is the conditional probability P(j | i)); the self-similarity is 0. `prune="row"` keeps the k
most similar candidates of each history item (score_j = Σ_{i in history} S_ij over those), which is
the README's "item-kNN, cosine, 20 neighbours"; `prune="target"` keeps, for each candidate j, its k
most similar items, so only history items among j's k nearest count. Neighbour ties at the k-th
value are broken by lower item index, deterministically.

EASE (Steck 2019): P = (XᵀX + λI)⁻¹, B_ij = -P_ij / P_jj, B_jj = 0, score = X B.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Scorer = Callable[[np.ndarray], np.ndarray]


def popularity_counts(X: np.ndarray) -> np.ndarray:
    """Training positives per item."""
    return X.sum(axis=0, dtype=np.float64)


def popularity(X: np.ndarray) -> Scorer:
    """Most popular first: every user gets the training counts."""
    counts = popularity_counts(X).astype(np.float32)
    return lambda rows: np.broadcast_to(counts, (len(rows), counts.size)).copy()


def random_scores(n_items: int, seed: int = 0) -> Scorer:
    """Uniform random scores, a fixed stream per (seed, user row)."""
    def score(rows: np.ndarray) -> np.ndarray:
        return np.stack([np.random.default_rng([seed, int(r)]).random(n_items, dtype=np.float32)
                         for r in rows])
    return score


def cap_history(X: np.ndarray, cap: int, seed: int = 0) -> np.ndarray:
    """X with each user's positives reduced to a random subset of at most `cap` items (seeded)."""
    rng = np.random.default_rng(seed)
    out = X.copy()
    for r in range(X.shape[0]):
        items = np.flatnonzero(X[r])
        if len(items) > cap:
            out[r, rng.choice(items, len(items) - cap, replace=False)] = 0
    return out


def cooccurrence(X: np.ndarray) -> np.ndarray:
    """C = XᵀX (float32; counts are exact below 2^24)."""
    return X.T @ X


def similarity(C: np.ndarray, shrink: float = 0.0, alpha: float = 0.5) -> np.ndarray:
    """S_ij = C_ij / (n_i^alpha · n_j^(1-alpha) + shrink), S_ii = 0, 0 where the denominator is 0."""
    n = np.diag(C).astype(np.float64)
    denom = np.outer(n ** alpha, n ** (1 - alpha)).astype(np.float32)
    denom += np.float32(shrink)
    with np.errstate(divide="ignore", invalid="ignore"):
        S = np.where(denom > 0, C / denom, 0).astype(np.float32)
    np.fill_diagonal(S, 0)
    return S


def top_k_mask(A: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the k largest entries of each row of A, ties at the k-th value by lower index."""
    if k >= A.shape[1]:
        return np.ones(A.shape, dtype=bool)
    kth = np.partition(A, A.shape[1] - k, axis=1)[:, A.shape[1] - k][:, None]
    keep = A > kth
    missing = k - keep.sum(axis=1, keepdims=True)
    ties = A == kth
    keep |= ties & (np.cumsum(ties, axis=1) <= missing)
    return keep


def keep_neighbours(S: np.ndarray, k: int | None, prune: str = "row") -> np.ndarray:
    """S with only the k nearest neighbours of each history item (row) or of each candidate (target)."""
    if k is None:
        return S
    if prune == "row":
        return np.where(top_k_mask(S, k), S, 0).astype(np.float32)
    if prune == "target":
        return np.where(top_k_mask(S.T, k).T, S, 0).astype(np.float32)
    raise ValueError("prune must be 'row' or 'target'")


def linear(X: np.ndarray, W: np.ndarray) -> Scorer:
    """score = X[rows] @ W (item-kNN and EASE)."""
    return lambda rows: X[rows] @ W


def itemknn_weights(C: np.ndarray, k: int | None = 20, shrink: float = 0.0, alpha: float = 0.5,
                    prune: str = "row") -> np.ndarray:
    """Item-kNN weight matrix from a co-occurrence matrix: similarity, then neighbour pruning."""
    return keep_neighbours(similarity(C, shrink, alpha), k, prune)


def itemknn(X: np.ndarray, k: int | None = 20, shrink: float = 0.0, alpha: float = 0.5,
            prune: str = "row", history_cap: int | None = None, cap_seed: int = 0) -> Scorer:
    """Item-kNN scorer; co-occurrence from X (capped per user when history_cap), scoring on all of X."""
    source = X if history_cap is None else cap_history(X, history_cap, cap_seed)
    return linear(X, itemknn_weights(cooccurrence(source), k, shrink, alpha, prune))


def ease_weights(X: np.ndarray, lam: float) -> np.ndarray:
    """EASE item-item matrix B (float32), computed in float64."""
    G = X.T.astype(np.float64) @ X.astype(np.float64)
    G[np.diag_indices_from(G)] += lam
    P = np.linalg.inv(G)
    B = P / (-np.diag(P))
    np.fill_diagonal(B, 0)
    return B.astype(np.float32)


def truncate_rows(B: np.ndarray, m: int, by: str = "abs") -> np.ndarray:
    """B with the m largest entries of each row (by absolute value, or the m largest values) kept."""
    key = np.abs(B) if by == "abs" else B
    return np.where(top_k_mask(key, m), B, 0).astype(np.float32)


def content_profile(X: np.ndarray, E: np.ndarray) -> Scorer:
    """Cosine between each item vector and the mean of the user's training item vectors (E unit rows)."""
    def score(rows: np.ndarray) -> np.ndarray:
        profile = X[rows] @ E
        norm = np.linalg.norm(profile, axis=1, keepdims=True)
        return (profile / np.where(norm > 0, norm, 1)) @ E.T
    return score


def normalise_by_max(scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """scores / (max over the user's candidate items), left as is where that max is <= 0."""
    peak = np.where(candidates, scores, -np.inf).max(axis=1, keepdims=True)
    return scores / np.where(peak > 0, peak, 1)


def log_popularity(X: np.ndarray) -> Scorer:
    """log(1 + training count) of every item, the popularity component of the hybrid."""
    counts = np.log1p(popularity_counts(X)).astype(np.float32)
    return lambda rows: np.broadcast_to(counts, (len(rows), counts.size)).copy()


def hybrid(parts: list[tuple[float, Scorer]], exclude: np.ndarray) -> Scorer:
    """Σ weight · (component / its max over the user's candidates); exclude is the users x items mask."""
    def score(rows: np.ndarray) -> np.ndarray:
        candidates = ~exclude[rows]
        total = np.zeros(candidates.shape, dtype=np.float32)
        for weight, part in parts:
            if weight:
                total += np.float32(weight) * normalise_by_max(part(rows), candidates)
        return total
    return score


def precomputed(scorer: Scorer, rows: np.ndarray, batch: int = 1000) -> Scorer:
    """Scores of the sorted `rows` computed once and served from memory (for grids over blends)."""
    rows = np.asarray(rows)
    table = np.concatenate([scorer(rows[b:b + batch]) for b in range(0, len(rows), batch)])
    return lambda wanted: table[np.searchsorted(rows, wanted)]
