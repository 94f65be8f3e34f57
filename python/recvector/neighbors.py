"""EASE, the closed-form item-to-item model (Steck, "Embarrassingly Shallow Autoencoders", 2019),
as RecVector's collaborative source for catalogues small enough for a dense inverse.

    G = X'X + lambda I        X: users x entities, 1 where a user liked an entity (neighbor_source)
    P = G^-1
    B = -P / diag(P),  diag(B) = 0

A user's score for entity i is sum_j x_uj B_ji: exactly the shape of RecVector's neighbour lists
(entity j -> its neighbours i with weight B_ji), so the model is stored as the k largest weights of
each row of B and served by the same SQL as the cosine neighbours. Memory: two dense
entities x entities float64 matrices (8 x n^2 bytes each): 12,000 entities take 2.3 GB.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .errors import RecVectorError


SOURCES = {"recvector.neighbor_source", "pg_temp.rv_eval_source"}
TARGETS = {"recvector.item_neighbors", "pg_temp.rv_eval_neighbors"}


def build_ease(db: Any, lam: float, k: int, started: str, src: str = "recvector.neighbor_source",
               target: str = "recvector.item_neighbors") -> dict[str, Any]:
    """Build EASE from a neighbour source (user_id, entity_id) and write the top-k weights of every
    row into a neighbour relation, stamped ``started`` (the running build's start)."""
    if src not in SOURCES or target not in TARGETS:
        raise RecVectorError(f"EASE reads {sorted(SOURCES)} and writes {sorted(TARGETS)}, not {src} / {target}")
    t0 = time.monotonic()
    if not lam > 0:
        raise RecVectorError(f"neighbors.ease_lambda must be positive, got {lam}")
    rows = db.execute("SELECT array_agg(user_id ORDER BY user_id) AS u, array_agg(entity_id ORDER BY user_id) AS e "
                      f"FROM {src}")
    users, entities = rows[0]["u"] or [], rows[0]["e"] or []
    if not users:
        return {"entities": 0, "seconds": 0.0}
    ids, col = np.unique(np.asarray(entities, dtype=object), return_inverse=True)
    n = len(ids)
    gram = np.zeros((n, n), dtype=np.float64)
    # X'X user by user (the source is sorted by user, one row per (user, entity)).
    user_arr = np.asarray(users, dtype=object)
    bounds = np.flatnonzero(user_arr[1:] != user_arr[:-1]) + 1
    for idx in np.split(col, bounds):
        gram[np.ix_(idx, idx)] += 1.0
    gram[np.diag_indices(n)] += lam
    inverse = np.linalg.inv(gram)
    del gram
    weights = -inverse / np.diag(inverse)[np.newaxis, :]
    del inverse
    np.fill_diagonal(weights, 0.0)
    k = min(k, n - 1)
    top = np.argpartition(-np.abs(weights), kth=k - 1, axis=1)[:, :k] if k > 0 else np.zeros((n, 0), dtype=int)
    plan = db.prepare(
        f"INSERT INTO {target} AS nb (entity_id, neighbor_ids, weights, method, built_at) "
        "VALUES ($1, $2, $3, 'ease', $4::timestamptz) ON CONFLICT (entity_id) DO UPDATE SET "
        "neighbor_ids = excluded.neighbor_ids, weights = excluded.weights, method = excluded.method, "
        "built_at = excluded.built_at", ["text", "text[]", "real[]", "text"])
    written = 0
    for row in range(n):
        cand = top[row]
        w = weights[row, cand]
        keep = w != 0
        cand, w = cand[keep], w[keep]
        order = np.lexsort((ids[cand], -w))
        if len(order) == 0:
            continue
        db.execute(plan, [str(ids[row]), [str(ids[c]) for c in cand[order]], [float(x) for x in w[order]], started])
        written += 1
    return {"entities": int(n), "written": written, "seconds": round(time.monotonic() - t0, 3)}




def rebuild(db: Any) -> dict[str, Any]:
    """Build the neighbours with the mapping's settings: inside the database the SQL function does
    it all (EASE through PL/Python); outside (a plain-SQL install, the CLI) EASE is built here."""
    import json

    has_python = db.execute("SELECT recvector._has_ease() AS ok")[0]["ok"]
    if has_python:
        built = db.execute("SELECT recvector.rebuild_neighbors()::text AS r")[0]["r"]
        return json.loads(built) if isinstance(built, str) else built
    started = time.monotonic()
    s = db.execute("SELECT recvector._start_neighbor_build(NULL, true)::text AS s")[0]["s"]
    s = json.loads(s) if isinstance(s, str) else s
    db.notice(f"recvector: building {s['method']} neighbours of {s['entities']} entities from {s['source_rows']} "
              "positive interactions")
    if s["method"] == "ease":
        at = db.execute("SELECT started_at::text AS s FROM recvector.neighbor_builds WHERE id = 1")[0]["s"]
        build_ease(db, float(s["ease_lambda"]), int(s["k"]), at)
        db.execute("SELECT recvector._finish_neighbor_build()")
    else:
        while not db.execute("SELECT recvector._neighbor_build_step() AS d")[0]["d"]:
            pass
    n = db.execute("SELECT count(*) AS n FROM recvector.item_neighbors")[0]["n"]
    return {**s, "neighbors": int(n), "seconds": round(time.monotonic() - started, 3)}


def upkeep_outside(db: Any) -> bool:
    """The worker's EASE rebuild in a plain-SQL install (the database cannot build EASE itself):
    when the last build is older than neighbors.rebuild_every. Returns true when it rebuilt."""
    due = db.execute(
        "SELECT b.method = 'ease' AND b.finished_at IS NOT NULL AND b.finished_at <= now() - make_interval(secs => "
        "coalesce((SELECT (m.compiled -> 'neighbors' ->> 'rebuild_every_seconds')::float8 FROM recvector.mapping AS m "
        "WHERE m.id = 1), 86400)) AND NOT recvector._has_ease() AS due FROM recvector.neighbor_builds AS b WHERE b.id = 1")
    if not due or not due[0]["due"]:
        return False
    rebuild(db)
    return True


__all__ = ["build_ease", "rebuild", "upkeep_outside"]
