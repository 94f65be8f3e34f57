"""Run scorers on a Split and report metrics with bootstrap intervals as Markdown tables.

`prepare` turns a Split (ids) into dense matrices indexed by user row and catalogue column; `run`
scores the evaluated users in batches, masks the excluded items, keeps the top k (ties by lower item
id) and computes the per-user metrics of metrics.py; `results_table` and `diff_table` print means
with 95% per-user bootstrap intervals, all methods sharing the same resampled users.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from metrics import (METRICS, Estimate, bootstrap_indices, coverage, mean_ci, paired_diff_ci,
                     per_user_metrics, top_k)
from methods import Scorer
from splits import Split


@dataclass(frozen=True)
class Prepared:
    """A split as matrices: X (float32 training positives) and exclude (bool), users x items."""

    split: Split
    users: np.ndarray
    X: np.ndarray
    exclude: np.ndarray
    test_rows: np.ndarray
    heldout_cols: list[np.ndarray]

    @property
    def n_items(self) -> int:
        return self.X.shape[1]


@dataclass(frozen=True)
class Result:
    name: str
    top: np.ndarray
    per_user: dict[str, np.ndarray]
    seconds: float


def prepare(split: Split, item_ids: np.ndarray) -> Prepared:
    """Dense matrices for a split over the catalogue `item_ids` (sorted)."""
    users = np.unique(np.concatenate([split.train[:, 0], split.exclude[:, 0], split.test_users]))
    col = lambda ids: np.searchsorted(item_ids, ids)  # noqa: E731
    X = np.zeros((len(users), len(item_ids)), dtype=np.float32)
    X[np.searchsorted(users, split.train[:, 0]), col(split.train[:, 1])] = 1
    exclude = np.zeros(X.shape, dtype=bool)
    exclude[np.searchsorted(users, split.exclude[:, 0]), col(split.exclude[:, 1])] = True
    heldout_cols = [col(h) for h in split.heldout]
    test_rows = np.searchsorted(users, split.test_users)
    if any(exclude[r, c].any() for r, c in zip(test_rows, heldout_cols)):
        raise ValueError("a held-out item is excluded from its user's ranking")
    return Prepared(split, users, X, exclude, test_rows, heldout_cols)


def run(name: str, scorer: Scorer, prep: Prepared, k: int = 10, batch: int = 1000) -> Result:
    """Top-k lists of every evaluated user and their per-user metrics."""
    start = time.perf_counter()
    tops = []
    for b in range(0, len(prep.test_rows), batch):
        rows = prep.test_rows[b:b + batch]
        scores = np.asarray(scorer(rows), dtype=np.float32)
        scores[prep.exclude[rows]] = -np.inf
        tops.append(top_k(scores, k))
    top = np.concatenate(tops)
    return Result(name, top, per_user_metrics(top, prep.heldout_cols), time.perf_counter() - start)


def estimates(result: Result, idx: np.ndarray, n_items: int) -> dict[str, Estimate]:
    """Mean and bootstrap interval of each per-user metric."""
    return {m: mean_ci(result.per_user[m], idx) for m in METRICS}


def results_table(results: list[Result], idx: np.ndarray, n_items: int, k: int = 10) -> str:
    """Markdown table: method, NDCG, Recall, MRR with 95% bootstrap intervals, and coverage."""
    lines = [f"| method | NDCG@{k} | Recall@{k} | MRR@{k} | coverage |", "|---|---:|---:|---:|---:|"]
    for r in results:
        e = estimates(r, idx, n_items)
        cells = [e[m].format() for m in METRICS] + [f"{coverage(r.top, n_items):.3f}"]
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def diff_estimates(a: Result, b: Result, idx: np.ndarray, n_items: int) -> dict[str, Estimate]:
    """Paired bootstrap difference a - b of each per-user metric."""
    return {m: paired_diff_ci(a.per_user[m], b.per_user[m], idx) for m in METRICS}


def diff_table(pairs: list[tuple[Result, Result]], idx: np.ndarray, n_items: int, k: int = 10) -> str:
    """Markdown table of paired bootstrap differences a - b."""
    lines = [f"| difference | ΔNDCG@{k} | ΔRecall@{k} | ΔMRR@{k} | Δcoverage |", "|---|---:|---:|---:|---:|"]
    for a, b in pairs:
        e = diff_estimates(a, b, idx, n_items)
        cells = [e[m].format(signed=True) + ("" if e[m].excludes_zero else " (ns)") for m in METRICS]
        cells.append(f"{coverage(a.top, n_items) - coverage(b.top, n_items):+.3f}")
        lines.append(f"| {a.name} − {b.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(results: list[Result], n_items: int) -> dict[str, dict[str, float]]:
    """Plain means (no intervals) per method, for comparisons in code."""
    return {r.name: {**{m: float(r.per_user[m].mean()) for m in METRICS},
                     "coverage": coverage(r.top, n_items)} for r in results}


def make_bootstrap(prep: Prepared, n_boot: int, seed: int) -> np.ndarray:
    """Resampled user indices shared by every method evaluated on this split."""
    return bootstrap_indices(len(prep.test_rows), n_boot, seed)
