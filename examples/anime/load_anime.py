"""Load the anime dataset (/work/shared/datasets/anime) into PostgreSQL as an application would hold it.

Tables (no timestamp columns: the data has none):

  anime        (anime_id integer PK, name, genre, type, episodes integer NULL, rating real NULL, members)
  app_user     (user_id integer PK)
  anime_list   (user_id -> app_user, anime_id -> anime, PK (user_id, anime_id))   the users' lists
  anime_rating (user_id -> app_user, anime_id -> anime, rating smallint 1-10, PK (user_id, anime_id))
  anime_heldout(user_id PK -> app_user, anime_id -> anime)                        only with --holdout

The primary keys lead with user_id, so they are the per-user indexes; anime_id gets its own index.
'Unknown' or empty episodes / rating become NULL; names are stored as in the file (HTML entities
such as &#039; included).

--holdout (or --holdout-seed S) loads only the training part of the dataset README's protocol (the split of
bench/evaluation/splits.py: split_random_holdout(anime_history, rng_seed=--holdout-seed,
min_positives=5)): the held-out (user, anime) pairs are left out of anime_list and anime_rating and
written to anime_heldout, so an evaluation inside the database runs on exactly the training rows.
--users N keeps the first N users by id; the held-out items of those users are the same as in the
full protocol (the split visits users in id order).

    .venv/bin/python examples/anime/load_anime.py --dsn "host=127.0.0.1 user=postgres dbname=anime"
    .venv/bin/python examples/anime/load_anime.py --dsn ... --holdout --holdout-seed 42 --replace
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "evaluation"))
import data  # noqa: E402
from splits import split_random_holdout  # noqa: E402

TABLES = ("anime_heldout", "anime_rating", "anime_list", "app_user", "anime")

SCHEMA = """
CREATE TABLE anime (
    anime_id integer PRIMARY KEY,
    name     text NOT NULL,
    genre    text,
    type     text,
    episodes integer,
    rating   real,
    members  integer
);
CREATE TABLE app_user (user_id integer PRIMARY KEY);
CREATE TABLE anime_list (
    user_id  integer NOT NULL REFERENCES app_user,
    anime_id integer NOT NULL REFERENCES anime,
    PRIMARY KEY (user_id, anime_id)
);
CREATE TABLE anime_rating (
    user_id  integer NOT NULL REFERENCES app_user,
    anime_id integer NOT NULL REFERENCES anime,
    rating   smallint NOT NULL CHECK (rating BETWEEN 1 AND 10),
    PRIMARY KEY (user_id, anime_id)
);
CREATE INDEX anime_list_anime_id_idx ON anime_list (anime_id);
CREATE INDEX anime_rating_anime_id_idx ON anime_rating (anime_id);
"""

HELDOUT_SCHEMA = """
CREATE TABLE anime_heldout (
    user_id  integer PRIMARY KEY REFERENCES app_user,
    anime_id integer NOT NULL REFERENCES anime
);
"""


def pair_keys(pairs: np.ndarray) -> np.ndarray:
    """One int64 key per (user, anime) pair."""
    return pairs[:, 0].astype(np.int64) * (1 << 32) + pairs[:, 1]


def without_pairs(rows: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """rows whose (user, anime) is not one of pairs."""
    return rows[~np.isin(pair_keys(rows), pair_keys(pairs))] if len(pairs) else rows


def copy_rows(cur: psycopg.Cursor, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """COPY rows into table; returns the number of rows."""
    n = 0
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def catalogue_rows(c: data.Catalogue) -> Iterable[tuple]:
    """anime rows; empty genre or type and missing episodes or rating become NULL."""
    for i in range(len(c)):
        yield (int(c.ids[i]), c.name[i], c.genre[i] or None, c.type[i] or None, c.episodes[i], c.rating[i],
               int(c.members[i]))


def create_tables(cur: psycopg.Cursor, replace: bool, holdout: bool, description: str) -> None:
    """The schema (and anime_heldout with --holdout), dropping the tables first with --replace."""
    if replace:
        for table in TABLES:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
    cur.execute(SCHEMA)
    if holdout:
        cur.execute(HELDOUT_SCHEMA)
        cur.execute(sql.SQL("COMMENT ON TABLE anime_heldout IS {}").format(sql.Literal(description)))


def load(dsn: str, data_dir: Path, users: int | None, holdout: bool, seed: int, min_positives: int,
         replace: bool) -> dict[str, int]:
    """Read the dataset, split it if asked, COPY it in one transaction; returns rows per table."""
    catalogue = data.read_catalogue(data_dir)
    history = data.unique_pairs(data.read_interactions(data_dir / "anime_history.dat.gz"))
    ratings = data.read_interactions(data_dir / "anime_ratings.dat.gz")
    user_ids = np.unique(np.concatenate([history[:, 0], ratings[:, 0]]))
    if users is not None:
        user_ids = user_ids[:users]
        history = history[np.isin(history[:, 0], user_ids)]
        ratings = ratings[np.isin(ratings[:, 0], user_ids)]
    heldout = np.empty((0, 2), dtype=np.int64)
    description = ""
    if holdout:
        split = split_random_holdout(history, rng_seed=seed, min_positives=min_positives)
        heldout = split.heldout_pairs()
        description = f"held out by bench/evaluation/splits.py: {split.description}"
        history = without_pairs(history, heldout)
        ratings = without_pairs(ratings, heldout)
    counts: dict[str, int] = {}
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        create_tables(cur, replace, holdout, description)
        counts["anime"] = copy_rows(cur, "anime", ("anime_id", "name", "genre", "type", "episodes", "rating",
                                                   "members"), catalogue_rows(catalogue))
        counts["app_user"] = copy_rows(cur, "app_user", ("user_id",), ((int(u),) for u in user_ids))
        counts["anime_list"] = copy_rows(cur, "anime_list", ("user_id", "anime_id"), history[:, :2].tolist())
        counts["anime_rating"] = copy_rows(cur, "anime_rating", ("user_id", "anime_id", "rating"), ratings.tolist())
        if holdout:
            counts["anime_heldout"] = copy_rows(cur, "anime_heldout", ("user_id", "anime_id"), heldout.tolist())
        for table in counts:
            cur.execute(f"ANALYZE {table}")
    return counts


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", default="host=127.0.0.1 user=postgres dbname=anime")
    p.add_argument("--data-dir", type=Path, default=data.DEFAULT_DATA_DIR)
    p.add_argument("--users", type=int, default=None, help="load only the first N users (by id)")
    p.add_argument("--holdout", action="store_true", help="load only the training rows of the README protocol")
    p.add_argument("--holdout-seed", type=int, default=None,
                   help="numpy default_rng seed of the hold-out draw (implies --holdout; default 42)")
    p.add_argument("--min-positives", type=int, default=5, help="users with fewer list items get no held-out item")
    p.add_argument("--replace", action="store_true", help="drop the five tables first if they exist")
    a = p.parse_args(argv)
    start = time.perf_counter()
    holdout = a.holdout or a.holdout_seed is not None
    seed = 42 if a.holdout_seed is None else a.holdout_seed
    counts = load(a.dsn, a.data_dir, a.users, holdout, seed, a.min_positives, a.replace)
    print(", ".join(f"{t}: {n}" for t, n in counts.items()) + f" ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
