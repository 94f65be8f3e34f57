"""A part of the anime dataset (../shared/datasets/anime: real lists of real people) as an application
would hold it, for the quality tests: the first USERS users by id and the anime that at least
MIN_LISTED of them list (so that the local model embeds a few thousand names, not 12,000).

The tables are examples/anime/load_anime.py's; the mapping is examples/anime/rec_schema.json.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "datasets" / "anime"
MAPPING = ROOT / "examples" / "anime" / "rec_schema.json"
USERS = 800
MIN_LISTED = 5


def _loader():
    spec = importlib.util.spec_from_file_location("load_anime", ROOT / "examples" / "anime" / "load_anime.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def available() -> bool:
    return (DATA / "anime_history.dat.gz").is_file()


def load(dsn: str) -> dict[str, int]:
    """The tables, the extension, the mapping and a bootstrap (embeddings, neighbours, profiles)."""
    if not available():
        pytest.skip("../shared/datasets/anime is not beside the checkout")
    _loader().load(dsn, DATA, USERS, holdout=False, seed=42, min_positives=5, replace=False)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("""
            CREATE TEMP TABLE kept AS
                SELECT anime_id FROM anime_list GROUP BY anime_id HAVING count(*) >= %s;
            DELETE FROM anime_rating r WHERE NOT EXISTS (SELECT 1 FROM kept k WHERE k.anime_id = r.anime_id);
            DELETE FROM anime_list l WHERE NOT EXISTS (SELECT 1 FROM kept k WHERE k.anime_id = l.anime_id);
            DELETE FROM anime a WHERE NOT EXISTS (SELECT 1 FROM kept k WHERE k.anime_id = a.anime_id);
            ANALYZE anime; ANALYZE anime_list; ANALYZE anime_rating;
        """ % MIN_LISTED)
        c.execute("CREATE EXTENSION recvector CASCADE")
        c.execute("SELECT recvector.set_schema(%s::jsonb)", (MAPPING.read_text(),))
        c.execute("SELECT recvector.bootstrap()")
        return {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("app_user", "anime", "anime_list")}


def mapping() -> dict:
    return json.loads(MAPPING.read_text())
