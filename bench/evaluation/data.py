"""Readers for the anime dataset in /work/shared/datasets/anime (see its README.md).

`anime_info.dat` is tab-separated with a header (`anime_ids, name, genre, type, episodes, rating,
members`); the interaction files are gzipped, tab-separated, with a header (`User_ID, Anime_ID,
Feedback`). Interactions are returned as int64 arrays of (user_id, anime_id[, feedback]) rows; the
catalogue keeps the raw strings (names contain HTML entities such as `&#039;`, left as they are) and
maps anime ids to the 0-based column index used by every score matrix (ids sorted ascending).
"""
from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_DATA_DIR = Path("/work/shared/datasets/anime")
MISSING = {"", "Unknown"}


@dataclass(frozen=True)
class Catalogue:
    """Anime metadata, one entry per anime, sorted by id."""

    ids: np.ndarray
    name: list[str]
    genre: list[str]
    type: list[str]
    episodes: list[int | None]
    rating: list[float | None]
    members: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, anime_ids: np.ndarray) -> np.ndarray:
        """Column index of each anime id; raises if an id is not in the catalogue."""
        anime_ids = np.asarray(anime_ids, dtype=np.int64)
        pos = np.searchsorted(self.ids, anime_ids)
        pos = np.minimum(pos, len(self.ids) - 1)
        if not np.array_equal(self.ids[pos], anime_ids):
            raise ValueError("interaction refers to an anime id missing from anime_info.dat")
        return pos


def optional_int(text: str) -> int | None:
    """An integer field, None for 'Unknown' or empty."""
    return None if text.strip() in MISSING else int(text)


def optional_float(text: str) -> float | None:
    """A real field, None for 'Unknown', empty or not finite."""
    if text.strip() in MISSING:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def read_rows(path: Path) -> list[list[str]]:
    """Tab-separated rows of a (possibly gzipped) file, header dropped."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    return [line.split("\t") for line in lines[1:] if line]


def read_catalogue(data_dir: Path = DEFAULT_DATA_DIR) -> Catalogue:
    """anime_info.dat, sorted by anime id."""
    rows = sorted(read_rows(data_dir / "anime_info.dat"), key=lambda r: int(r[0]))
    if any(len(r) != 7 for r in rows):
        raise ValueError("anime_info.dat: expected 7 tab-separated fields per line")
    return Catalogue(
        ids=np.array([int(r[0]) for r in rows], dtype=np.int64),
        name=[r[1] for r in rows],
        genre=[r[2] for r in rows],
        type=[r[3] for r in rows],
        episodes=[optional_int(r[4]) for r in rows],
        rating=[optional_float(r[5]) for r in rows],
        members=np.array([int(r[6]) for r in rows], dtype=np.int64),
    )


def read_interactions(path: Path) -> np.ndarray:
    """(user_id, anime_id, feedback) int64 rows in file order."""
    rows = read_rows(path)
    return np.array([[int(u), int(i), int(f)] for u, i, f in rows], dtype=np.int64).reshape(-1, 3)


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Distinct (user, item) pairs sorted by user, then item."""
    return np.unique(np.asarray(pairs, dtype=np.int64)[:, :2], axis=0)


def history_positives(data_dir: Path = DEFAULT_DATA_DIR) -> np.ndarray:
    """Every (user, anime) on a user's list (anime_history, Feedback = 1)."""
    rows = read_interactions(data_dir / "anime_history.dat.gz")
    return unique_pairs(rows[rows[:, 2] > 0])


def rating_positives(threshold: int, data_dir: Path = DEFAULT_DATA_DIR) -> np.ndarray:
    """(user, anime) pairs the user rated at least `threshold` (1-10)."""
    rows = read_interactions(data_dir / "anime_ratings.dat.gz")
    return unique_pairs(rows[rows[:, 2] >= threshold])
