"""Seeded train / held-out splits of (user_id, item_id) positive pairs, without timestamps.

The reference protocol of the dataset README is `split_random_holdout(pos, rng_seed=42,
min_positives=5)`. The draw that reproduces the README figures is, exactly:

    rng = numpy.random.default_rng(42)
    for user in sorted(user ids):                    # every user, ascending id
        items = sorted(anime ids of the user)        # ascending id, NOT file order
        if len(items) >= 5:                          # users below the threshold draw nothing
            held_out = items[rng.integers(len(items))]

`rng.choice(items)` gives the same draws; `rng.permutation`, `int(rng.random() * n)` or the
file's item order do not (`anime_reference.py split-draws` measures them all, see README.md).
Users below the threshold keep all their pairs in training and get no held-out item.

Because users are visited in id order and only eligible users consume random numbers, the held-out
item of a user does not depend on the users after it: the split of the first N users is a prefix of
the split of all users.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Split:
    """Training pairs, the held-out items of each evaluated user, and what must not be recommended.

    `train` and `exclude` are (n, 2) int64 arrays of (user_id, item_id); `test_users` is sorted and
    `heldout[k]` is the sorted array of held-out item ids of `test_users[k]`. `exclude` defaults to
    `train`: the items ranked for a user are the catalogue minus the user's other (training) items.
    """

    train: np.ndarray
    test_users: np.ndarray
    heldout: list[np.ndarray]
    description: str
    exclude: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.exclude is None:
            object.__setattr__(self, "exclude", self.train)

    def heldout_pairs(self) -> np.ndarray:
        """(user_id, item_id) rows of every held-out item, sorted."""
        users = np.repeat(self.test_users, [len(h) for h in self.heldout])
        items = np.concatenate(self.heldout) if self.heldout else np.empty(0, dtype=np.int64)
        return np.stack([users, items], axis=1).astype(np.int64)


def group_by_user(pairs: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Distinct users in ascending id and, for each, its item ids sorted ascending."""
    pairs = np.unique(np.asarray(pairs, dtype=np.int64)[:, :2], axis=0)
    users, starts = np.unique(pairs[:, 0], return_index=True)
    return users, np.split(pairs[:, 1], starts[1:])


def assemble(users: np.ndarray, items: list[np.ndarray], held: dict[int, np.ndarray],
             description: str) -> Split:
    """A Split from per-user item lists and the held-out items of some of the users."""
    train_users, train_items = [], []
    for user, user_items in zip(users, items):
        keep = user_items[~np.isin(user_items, held.get(int(user), []))]
        train_users.append(np.full(len(keep), user, dtype=np.int64))
        train_items.append(keep)
    train = np.stack([np.concatenate(train_users), np.concatenate(train_items)], axis=1)
    test_users = np.array(sorted(held), dtype=np.int64)
    return Split(train=train, test_users=test_users,
                 heldout=[np.sort(held[int(u)]) for u in test_users], description=description)


HOLDOUT_DRAWS: dict[str, Callable[[np.random.Generator, np.ndarray], int]] = {
    # name: index of the held-out item among the user's items, from the user's turn of the generator
    "rng.integers(n)": lambda rng, items: int(rng.integers(len(items))),
    "rng.choice(items)": lambda rng, items: int(np.flatnonzero(items == rng.choice(items))[0]),
    "rng.permutation(n)[0]": lambda rng, items: int(rng.permutation(len(items))[0]),
    "rng.permutation(n)[-1]": lambda rng, items: int(rng.permutation(len(items))[-1]),
    "int(rng.random() * n)": lambda rng, items: int(rng.random() * len(items)),
}


def holdout_with_draw(users: np.ndarray, items: list[np.ndarray], draw: str = "rng.integers(n)", rng_seed: int = 42,
                      min_positives: int = 5, order: str = "sorted by id") -> Split:
    """One held-out item per eligible user, users in the given order, each user's items in the given order."""
    rng = np.random.default_rng(rng_seed)
    pick = HOLDOUT_DRAWS[draw]
    held: dict[int, np.ndarray] = {}
    for user, user_items in zip(users, items):
        if len(user_items) >= min_positives:
            held[int(user)] = user_items[[pick(rng, user_items)]]
    return assemble(users, [np.sort(i) for i in items], held,
                    f"one random held-out item per user ({draw.replace('rng.', f'default_rng({rng_seed}).')} over "
                    f"the user's items {order}), users with >= {min_positives} positives")


def split_random_holdout(pos: np.ndarray, rng_seed: int = 42, min_positives: int = 5) -> Split:
    """The README protocol: one random held-out item per user with >= min_positives positives."""
    users, items = group_by_user(pos)
    return holdout_with_draw(users, items, "rng.integers(n)", rng_seed, min_positives)


def items_in_file_order(rows: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Users ascending and each user's items in the order the file lists them (first occurrence)."""
    rows = np.asarray(rows, dtype=np.int64)[np.argsort(rows[:, 0], kind="stable")]
    users, starts = np.unique(rows[:, 0], return_index=True)
    out = []
    for user_items in np.split(rows[:, 1], starts[1:]):
        _, first = np.unique(user_items, return_index=True)
        out.append(user_items[np.sort(first)])
    return users, out


def split_kfold(pos: np.ndarray, fold: int = 0, n_folds: int = 5, rng_seed: int = 42,
                min_positives: int = 5) -> Split:
    """Fold `fold` of a per-user random k-fold: about 1/n_folds of each eligible user's items held out.

    For each user with >= min_positives items (ascending id), `rng.permutation(n)` of the sorted
    items; positions fold, fold + n_folds, ... of the permutation are held out (so every fold holds
    out at least one item when min_positives >= n_folds). The same seed gives disjoint folds.
    """
    if not 0 <= fold < n_folds:
        raise ValueError("fold must be in [0, n_folds)")
    rng = np.random.default_rng(rng_seed)
    users, items = group_by_user(pos)
    held: dict[int, np.ndarray] = {}
    for user, user_items in zip(users, items):
        if len(user_items) >= min_positives:
            order = rng.permutation(len(user_items))
            chosen = user_items[order[fold::n_folds]]
            if len(chosen):
                held[int(user)] = chosen
    return assemble(users, items, held,
                    f"fold {fold} of a per-user random {n_folds}-fold (default_rng({rng_seed})."
                    f"permutation), users with >= {min_positives} positives")


def with_exclusions(split: Split, seen: np.ndarray) -> Split:
    """The same split, excluding from each ranking every `seen` pair except the held-out ones."""
    seen = np.unique(np.asarray(seen, dtype=np.int64)[:, :2], axis=0)
    held = split.heldout_pairs()
    key = seen[:, 0] * (1 << 32) + seen[:, 1]
    held_key = held[:, 0] * (1 << 32) + held[:, 1]
    exclude = np.unique(np.concatenate([seen[~np.isin(key, held_key)], split.train]), axis=0)
    return Split(train=split.train, test_users=split.test_users, heldout=split.heldout,
                 description=split.description, exclude=exclude)
