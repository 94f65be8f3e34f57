"""Hand-computed checks of the metric, split and neighbour code (pytest, or run directly).

    .venv/bin/python -m pytest -q bench/evaluation/test_reference.py
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from methods import similarity, top_k_mask  # noqa: E402
from metrics import bootstrap_indices, coverage, mean_ci, paired_diff_ci, per_user_metrics, top_k  # noqa: E402
from splits import split_kfold, split_random_holdout, with_exclusions  # noqa: E402


def test_top_k_breaks_ties_by_lower_index() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.5, -np.inf, 0.9]], dtype=np.float32)
    assert top_k(scores, 3).tolist() == [[1, 5, 0]]
    assert top_k(scores, 5).tolist() == [[1, 5, 0, 2, 3]]


def test_metrics_by_hand() -> None:
    top = np.array([[4, 7, 1], [2, 3, 5], [9, 8, 6]])
    heldout = [np.array([7]), np.array([2, 5, 6, 8]), np.array([0])]
    m = per_user_metrics(top, heldout)
    d = [1 / math.log2(p + 1) for p in (1, 2, 3)]
    assert np.allclose(m["recall"], [1, 2 / 3, 0])
    assert np.allclose(m["ndcg"], [d[1], (d[0] + d[2]) / sum(d), 0])
    assert np.allclose(m["mrr"], [1 / 2, 1, 0])
    assert coverage(top, 20) == 9 / 20


def test_paired_bootstrap_of_identical_methods_is_zero() -> None:
    values = np.random.default_rng(1).random(50)
    idx = bootstrap_indices(50, 200, seed=3)
    diff = paired_diff_ci(values, values, idx)
    assert diff.value == diff.low == diff.high == 0
    ci = mean_ci(values, idx)
    assert ci.low < values.mean() < ci.high


def test_holdout_draw_is_integers_over_sorted_items() -> None:
    pos = np.array([[2, 9], [1, 5], [1, 3], [1, 8], [1, 1], [1, 2], [2, 1], [3, 4], [3, 6], [3, 7],
                    [3, 2], [3, 9], [3, 1]])
    split = split_random_holdout(pos, rng_seed=42, min_positives=5)
    rng = np.random.default_rng(42)
    expect = {1: [1, 2, 3, 5, 8][rng.integers(5)], 3: [1, 2, 4, 6, 7, 9][rng.integers(6)]}
    assert split.test_users.tolist() == [1, 3]
    assert [h.tolist() for h in split.heldout] == [[expect[1]], [expect[3]]]
    assert len(split.train) == len(pos) - 2
    rng = np.random.default_rng(42)
    assert [rng.choice([1, 2, 3, 5, 8]), rng.choice([1, 2, 4, 6, 7, 9])] == [expect[1], expect[3]]


def test_kfold_folds_partition_each_users_items() -> None:
    pos = np.array([[1, i] for i in range(1, 13)] + [[2, 1], [2, 2]])
    folds = [split_kfold(pos, f, 5, rng_seed=7) for f in range(5)]
    held = np.concatenate([s.heldout[0] for s in folds])
    assert sorted(held.tolist()) == list(range(1, 13))
    assert all(s.test_users.tolist() == [1] for s in folds)


def test_exclusions_keep_heldout_rankable() -> None:
    pos = np.array([[1, i] for i in range(1, 6)])
    split = with_exclusions(split_random_holdout(pos), np.array([[1, i] for i in range(1, 9)]))
    excluded = set(map(tuple, split.exclude.tolist()))
    assert (1, int(split.heldout[0][0])) not in excluded
    assert len(excluded) == 7


def test_neighbour_mask_and_asymmetric_similarity() -> None:
    A = np.array([[3.0, 1.0, 3.0, 2.0, 3.0]])
    assert top_k_mask(A, 2).tolist() == [[True, False, True, False, False]]
    C = np.array([[4.0, 2.0], [2.0, 1.0]], dtype=np.float32)
    S = similarity(C, alpha=1.0)
    assert np.allclose(S, [[0, 2 / 4], [2 / 1, 0]])
    assert np.allclose(similarity(C, shrink=1.0), [[0, 2 / 3], [2 / 3, 0]])


if __name__ == "__main__":
    for name, fn in list(globals().items()):
        if name.startswith("test_"):
            fn()
    print("ok")
