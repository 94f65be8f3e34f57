"""A tiny application schema with hand-chosen 3-d vectors, for checking the arithmetic by hand.

Vectors are written straight into recvector.entity_vectors (as if embedded), so profiles, scores
and MMR can be compared with values computed on paper.
"""
from __future__ import annotations

import json
import math
from typing import Any

import psycopg

SCHEMA = """
CREATE TABLE app_user (id integer PRIMARY KEY, name text);
CREATE TABLE item (id integer PRIMARY KEY, title text NOT NULL, genre text);
CREATE TABLE event (id serial PRIMARY KEY, user_id integer NOT NULL REFERENCES app_user,
                    item_id integer NOT NULL REFERENCES item, kind text NOT NULL, at timestamptz NOT NULL);
CREATE TABLE rating (user_id integer NOT NULL, item_id integer NOT NULL, stars smallint NOT NULL,
                     rated_at timestamptz NOT NULL);
INSERT INTO app_user SELECT g, 'user ' || g FROM generate_series(1, 9) g;
INSERT INTO item VALUES (1, 'one', 'x'), (2, 'two', 'y'), (3, 'three', 'z'), (4, 'four', 'xy'), (5, 'five', 'xy');
"""

R2 = 1 / math.sqrt(2)
VECTORS = {
    "1": [1.0, 0.0, 0.0],
    "2": [0.0, 1.0, 0.0],
    "3": [0.0, 0.0, 1.0],
    "4": [R2, R2, 0.0],
    "5": [0.6, 0.8, 0.0],
}

T0 = "2024-01-01 00:00:00+00"
T30 = "2024-01-31 00:00:00+00"  # 30 days later = one half-life


def mapping(strategy: str = "full", **scoring: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "users": {"table": "app_user", "id": "id"},
        "entities": {"table": "public.item", "id": "id",
                     "features": [{"name": "title", "kind": "text", "column": "title"}]},
        "interactions": [
            {"name": "event", "table": "event", "user_column": "user_id", "entity_column": "item_id",
             "timestamp_column": "at",
             "weight": {"by_type": {"column": "kind", "values": {"like": 1, "view": 0.5, "dislike": -1}}}},
        ],
        "aggregation": {"strategy": strategy, "batch_threshold": 3, "half_life": "30 days",
                        "full_refresh_every": 1000},
        "scoring": {"alpha": 1.0, "beta": 0.1, "candidate_pool": 50, "lambda": 1.0, "exploration": 0.0, **scoring},
        "embedding": {"provider": "local", "model": "all-MiniLM-L6-v2", "dimensions": 3},
    }


def setup(conn: psycopg.Connection, strategy: str = "full", **scoring: Any) -> None:
    conn.execute("CREATE EXTENSION IF NOT EXISTS recvector CASCADE")
    conn.execute(SCHEMA)
    conn.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(mapping(strategy, **scoring)),))
    for eid, v in VECTORS.items():
        conn.execute("INSERT INTO recvector.entity_vectors (entity_id, embedding, fingerprint, model) "
                     "VALUES (%s, %s::vector, 'hand', 'hand')", (eid, str(v)))


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
