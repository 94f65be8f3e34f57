"""Offline evaluation on the application's own history: RecVector beside popularity, random,
item-kNN and EASE, on one split, with bootstrap confidence intervals (docs/evaluation.md).

The split holds out, for every user with enough positive interactions, one positive entity: the
most recent (`last`, when the interactions have times) or one drawn at random with a seed
(`random`, for undated data: numpy ``default_rng(seed)``, users in order, the user's entities sorted
by id). Everything the methods learn — popularity, neighbours, profiles — comes from the training
part only: the held-out interactions are removed from every user's history before anything is
built. RecVector's lists come from the production ranking (``recvector._rank``) over the
evaluation's own neighbour and popularity tables; baselines rank the whole catalogue minus the
user's training entities (full ranking). Everything runs in temporary tables: nothing outside this
session's ``pg_temp`` is written.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .errors import ArgumentError, NotEnoughDataError
from .storing import loaded

EASE_BASELINE_MAX_ITEMS = 12000


@dataclass
class Split:
    """Training rows (indexes into the interactions), held-out entities per evaluated user."""

    users: list[str]                      # evaluated users, in order
    heldout: list[list[str]]              # their held-out entities
    train: np.ndarray                     # boolean mask over the interactions
    protocol: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Interactions:
    users: np.ndarray      # object (str)
    entities: np.ndarray   # object (str)
    weights: np.ndarray    # float
    times: np.ndarray      # float, epoch seconds
    dated: bool


def load_interactions(db: Any) -> Interactions:
    """Every mapped interaction (and logged event) as arrays."""
    _doc, compiled = loaded(db)
    plan = db.prepare(
        "SELECT array_agg(t.user_id ORDER BY t.user_id, t.occurred_at, t.entity_id) AS u, "
        "array_agg(t.entity_id ORDER BY t.user_id, t.occurred_at, t.entity_id) AS e, "
        "array_agg(t.weight ORDER BY t.user_id, t.occurred_at, t.entity_id) AS w, "
        "array_agg(extract(epoch FROM t.occurred_at)::float8 ORDER BY t.user_id, t.occurred_at, t.entity_id) AS t, "
        "count(DISTINCT t.occurred_at) > 1 AS dated "
        f"FROM ({compiled['all_interactions']}) AS t", ["jsonb"])
    row = db.execute(plan, [json.dumps(compiled["params"])])[0]
    return Interactions(np.asarray(row["u"] or [], dtype=object), np.asarray(row["e"] or [], dtype=object),
                        np.asarray(row["w"] or [], dtype=float), np.asarray(row["t"] or [], dtype=float),
                        bool(row["dated"]))


def split(inter: Interactions, protocol: str = "auto", seed: int = 42, min_positives: int = 2,
          max_users: int | None = None, holdout: int = 1, part: str = "all", cutoff: float | None = None) -> Split:
    """Hold out ``holdout`` positive entities per user with at least ``min_positives`` distinct
    positive entities (``last``: the most recent; ``random``: drawn with the seed), or with a
    ``cutoff`` (epoch seconds) every positive entity from then on, every interaction from then on
    leaving the training part. ``part`` keeps one of two disjoint halves of the users (validation,
    test), chosen by a hash of the seed and the id."""
    if cutoff is not None:
        protocol = "cutoff"
    elif protocol == "auto":
        protocol = "last" if inter.dated else "random"
    if protocol not in ("last", "random", "cutoff"):
        raise ArgumentError(f"protocol must be auto, last or random, got {protocol!r}")
    if part not in ("all", "validation", "test"):
        raise ArgumentError(f"part must be all, validation or test, got {part!r}")
    rng = np.random.default_rng(seed)
    n = len(inter.users)
    train = np.ones(n, dtype=bool)
    users: list[str] = []
    heldout: list[list[str]] = []
    order = np.argsort(_sort_keys(inter.users), kind="stable")
    bounds = np.flatnonzero(inter.users[order][1:] != inter.users[order][:-1]) + 1
    for rows in np.split(order, bounds):
        if len(rows) == 0:
            continue
        user = inter.users[rows[0]]
        # Positive entities: net weight > 0; for "last", by their most recent positive time.
        net: dict[str, float] = {}
        last: dict[str, float] = {}
        for r in rows:
            e = inter.entities[r]
            net[e] = net.get(e, 0.0) + inter.weights[r]
            if inter.weights[r] > 0:
                last[e] = max(last.get(e, -math.inf), inter.times[r])
        positives = sorted((e for e, w in net.items() if w > 0 and e in last), key=_id_key)
        if protocol == "cutoff":
            assert cutoff is not None
            for r in rows:
                if inter.times[r] >= cutoff:
                    train[r] = False
            held = sorted((e for e in positives if last[e] >= cutoff), key=_id_key)
            before = [e for e in positives if last[e] < cutoff]
            if not held or len(before) < max(min_positives - 1, 1) or (part != "all" and _half(seed, user) != part):
                continue
            users.append(str(user))
            heldout.append(held)
            if max_users is not None and len(users) >= max_users:
                break
            continue
        if len(positives) < max(min_positives, holdout + 1):
            continue
        if part != "all" and (_half(seed, user) != part):
            continue
        if protocol == "random":
            held = [positives[int(rng.integers(len(positives)))]]
            while len(held) < holdout:
                cand = positives[int(rng.integers(len(positives)))]
                if cand not in held:
                    held.append(cand)
        else:
            held = sorted(positives, key=lambda e: (-last[e], _id_key(e)))[:holdout]
        users.append(str(user))
        heldout.append(held)
        held_set = set(held)
        for r in rows:
            if inter.entities[r] in held_set:
                train[r] = False
        if max_users is not None and len(users) >= max_users:
            break
    return Split(users, heldout, train, protocol)


def _id_key(e: Any) -> tuple[int, Any]:
    s = str(e)
    return (0, int(s)) if s.lstrip("-").isdigit() else (1, s)


def _sort_keys(ids: np.ndarray) -> np.ndarray:
    """Users in id order (numeric ids numerically), as the reference protocol visits them."""
    keys = [_id_key(u) for u in ids]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys))
    return rank


def _half(seed: int, user: Any) -> str:
    import hashlib

    h = hashlib.md5(f"split:{seed}:{user}".encode()).hexdigest()
    return "validation" if h[0] < "8" else "test"


# --------------------------------------------------------------------------------------------
# The training part inside the database: temporary tables the production code ranks with.
# --------------------------------------------------------------------------------------------

def drop_temp(db: Any, *names: str) -> None:
    """Drops those of the session's temporary tables that exist (no "does not exist" NOTICEs)."""
    found = db.execute(db.prepare(
        "SELECT c.relname FROM pg_catalog.pg_class AS c WHERE c.relnamespace = pg_catalog.pg_my_temp_schema() "
        "AND c.relname = ANY ($1::text[])", ["text[]"]), [list(names)])
    if found:
        db.execute("DROP TABLE " + ", ".join(f"pg_temp.{r['relname']}" for r in found))


def prepare(db: Any, inter: Interactions, sp: Split, neighbor_settings: dict[str, Any] | None = None,
            notice: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Temporary tables of the training part: interactions, popularity, neighbours (the mapping's
    method and settings unless overridden), and the evaluated users with their seen entities."""
    say = notice or (lambda m: None)
    t0 = time.monotonic()
    drop_temp(db, "rv_eval_train", "rv_eval_stats", "rv_eval_source", "rv_eval_neighbors", "rv_eval_knn",
              "rv_eval_users", "rv_eval_profiles")
    db.execute("CREATE TEMP TABLE rv_eval_train (user_id text, entity_id text, weight float8, occurred_at timestamptz)")
    m = sp.train
    db.execute(db.prepare(
        "INSERT INTO pg_temp.rv_eval_train SELECT u, e, w, to_timestamp(t) FROM unnest($1::text[], $2::text[], "
        "$3::float8[], $4::float8[]) AS x(u, e, w, t)", ["text[]", "text[]", "float8[]", "float8[]"]),
        [list(map(str, inter.users[m])), list(map(str, inter.entities[m])), [float(x) for x in inter.weights[m]],
         [float(x) for x in inter.times[m]]])
    db.execute("CREATE INDEX ON pg_temp.rv_eval_train (user_id)")
    db.execute("ANALYZE pg_temp.rv_eval_train")
    db.execute("CREATE TEMP TABLE rv_eval_stats AS SELECT entity_id, count(*) FILTER (WHERE weight > 0)::float8 "
               "AS popularity FROM pg_temp.rv_eval_train GROUP BY entity_id")
    db.execute("CREATE UNIQUE INDEX ON pg_temp.rv_eval_stats (entity_id)")
    db.execute("CREATE INDEX ON pg_temp.rv_eval_stats (popularity DESC, entity_id)")
    db.execute(db.prepare("CREATE TEMP TABLE rv_eval_users AS SELECT u.user_id, u.o, "
                          "ARRAY(SELECT DISTINCT t.entity_id FROM pg_temp.rv_eval_train AS t WHERE t.user_id = u.user_id) AS seen "
                          "FROM unnest($1::text[]) WITH ORDINALITY AS u(user_id, o)", ["text[]"]), [sp.users])
    settings = json.loads(db.execute("SELECT recvector._neighbor_settings()::text AS s")[0]["s"])
    settings.update(neighbor_settings or {})
    built = build_neighbors(db, settings, "pg_temp.rv_eval_neighbors")
    say(f"recvector: evaluation: training part ready ({int(m.sum())} interactions, {built['method']} neighbours "
        f"of {built['entities']} entities, {time.monotonic() - t0:.1f} s)")
    return {"neighbors": built, "train_interactions": int(m.sum()), "users": len(sp.users)}


def build_neighbors(db: Any, settings: dict[str, Any], target: str) -> dict[str, Any]:
    """Neighbours of the training part into ``target`` (a temporary table), with the production
    builders (cosine in SQL, EASE in numpy)."""
    drop_temp(db, target.split(".")[-1], "rv_eval_source")
    db.execute(f"CREATE TEMP TABLE {target.split('.')[-1]} (LIKE recvector.item_neighbors INCLUDING ALL)")
    db.execute("CREATE TEMP TABLE rv_eval_source (LIKE recvector.neighbor_source INCLUDING ALL)")
    rows = db.execute(db.prepare("SELECT recvector._neighbor_source($1, 'pg_temp.rv_eval_source', 'pg_temp.rv_eval_train') AS n",
                                 ["integer"]), [int(settings["history"])])[0]["n"]
    items = db.execute("SELECT count(DISTINCT entity_id) AS n FROM pg_temp.rv_eval_source")[0]["n"]
    method = settings.get("method", "auto")
    if method == "auto":
        method = "ease" if items <= int(settings["ease_max_items"]) and _has_python(db) else "cosine"
    if settings.get("k") is None:
        settings = {**settings, "k": 100}
    if settings.get("ease_lambda") is None:
        settings = {**settings, "ease_lambda": max(10.0, round(rows / max(items, 1), 1))}
    if method == "ease":
        from .neighbors import build_ease

        build_ease(db, float(settings["ease_lambda"]), int(settings["k"]), "now", "pg_temp.rv_eval_source", target)
    else:
        after = None
        plan = db.prepare("SELECT recvector._cosine_neighbors_chunk($1, $2, $3, $4, $5, now(), "
                          f"'pg_temp.rv_eval_source', '{target}') AS last",
                          ["text", "integer", "integer", "float8", "float8"])
        while True:
            after = db.execute(plan, [after, int(settings.get("chunk", 2000)), int(settings["k"]),
                                      float(settings["shrink"]), float(settings["alpha"])])[0]["last"]
            if after is None:
                break
    db.execute(f"ANALYZE {target}")
    return {"method": method, "entities": int(items), "source_rows": int(rows)}


def _has_python(db: Any) -> bool:
    return bool(db.execute("SELECT to_regprocedure('recvector._ease_model(double precision,integer,timestamp with time zone,"
                           "text,text)') IS NOT NULL AS ok")[0]["ok"])


def build_profiles(db: Any, interests: int | None = None, half_life_days: float | None = None) -> None:
    """Every evaluated user's profile from their training history, with the production formula
    (recvector._profile_of: the last history_limit interactions, decay, interests, seeds)."""
    doc, compiled = loaded(db)
    hl = (half_life_days * 86400.0 if half_life_days is not None
          else float(compiled["aggregation"]["half_life_seconds"]))
    k = int(interests if interests is not None else doc["aggregation"].get("interests", 1))
    drop_temp(db, "rv_eval_profiles")
    db.execute(db.prepare(
        "CREATE TEMP TABLE rv_eval_profiles AS "
        "SELECT u.user_id, u.o, u.seen, p.embedding, p.interests, p.interest_weights, p.cf_candidates, p.cf_scores "
        "FROM pg_temp.rv_eval_users AS u "
        "LEFT JOIN LATERAL (SELECT array_agg(h.entity_id ORDER BY h.occurred_at DESC, h.entity_id DESC) AS ids, "
        "  array_agg(h.weight ORDER BY h.occurred_at DESC, h.entity_id DESC) AS ws, "
        "  array_agg(h.occurred_at ORDER BY h.occurred_at DESC, h.entity_id DESC) AS ts "
        "  FROM (SELECT * FROM pg_temp.rv_eval_train AS t WHERE t.user_id = u.user_id "
        "        ORDER BY t.occurred_at DESC, t.entity_id DESC LIMIT $1) AS h) AS hist ON true "
        "LEFT JOIN LATERAL recvector._profile_of(hist.ids, hist.ws, hist.ts, $2, $3, $4, 'pg_temp.rv_eval_neighbors', $5) AS p ON true",
        ["integer", "float8", "integer", "integer", "integer"]),
        [int(doc["aggregation"]["history_limit"]), hl, k, int(doc["aggregation"].get("cf_candidates", 200)),
         int((doc.get("neighbors") or {}).get("per_candidate", 5))])


def rank_recvector(db: Any, k: int, overrides: dict[str, Any] | None = None, seed: int = 0) -> dict[str, list[str]]:
    """Every evaluated user's top k with the production ranking over the training part's tables."""
    plan = db.prepare(
        "SELECT p.user_id, array_agg(r.entity_id ORDER BY r.o) AS recs "
        "FROM pg_temp.rv_eval_profiles AS p "
        "CROSS JOIN LATERAL recvector._rank(coalesce(p.interests, CASE WHEN p.embedding IS NOT NULL THEN ARRAY[p.embedding] END), "
        "  p.interest_weights, p.cf_candidates, p.cf_scores, p.seen, $1, recvector._scoring($2::jsonb, $1), $3, NULL, "
        "  'pg_temp.rv_eval_stats') WITH ORDINALITY AS r(entity_id, score, similarity, "
        "  popularity_term, collaborative_term, exploration_term, mmr_penalty, sources, o) "
        "GROUP BY p.user_id", ["integer", "text", "bigint"])
    rows = db.execute(plan, [k, json.dumps({**(overrides or {}), "exploration": 0}), seed])
    return {r["user_id"]: list(r["recs"] or []) for r in rows}


def rank_popularity(db: Any, k: int) -> dict[str, list[str]]:
    rows = db.execute(db.prepare(
        "SELECT u.user_id, ARRAY(SELECT s.entity_id FROM pg_temp.rv_eval_stats AS s "
        "WHERE s.popularity > 0 AND NOT (s.entity_id = ANY (u.seen)) "
        # Ties in id order, numeric ids numerically (as the reference evaluation breaks them).
        "ORDER BY s.popularity DESC, CASE WHEN s.entity_id ~ '^[0-9]{1,18}$' THEN s.entity_id::bigint END NULLS LAST, "
        "s.entity_id LIMIT $1) AS recs "
        "FROM pg_temp.rv_eval_users AS u", ["integer"]), [k])
    return {r["user_id"]: list(r["recs"] or []) for r in rows}


def rank_random(db: Any, k: int, seed: int) -> dict[str, list[str]]:
    rows = db.execute(db.prepare(
        "SELECT u.user_id, ARRAY(SELECT v.entity_id FROM recvector.entity_vectors AS v "
        "WHERE NOT (v.entity_id = ANY (u.seen)) ORDER BY md5($2::text || ':' || u.user_id || ':' || v.entity_id) LIMIT $1) AS recs "
        "FROM pg_temp.rv_eval_users AS u", ["integer", "bigint"]), [k, seed])
    return {r["user_id"]: list(r["recs"] or []) for r in rows}


def _train_positives(db: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The training part's positive entities (sorted ids) and each user's as column indexes."""
    rows = db.execute("SELECT array_agg(user_id ORDER BY user_id) AS u, array_agg(entity_id ORDER BY user_id) AS e "
                      "FROM (SELECT user_id, entity_id FROM pg_temp.rv_eval_train GROUP BY 1, 2 HAVING sum(weight) > 0) AS p")
    users, ents = np.asarray(rows[0]["u"] or [], dtype=object), np.asarray(rows[0]["e"] or [], dtype=object)
    ids, col = np.unique(ents, return_inverse=True)
    bounds = np.flatnonzero(users[1:] != users[:-1]) + 1
    per_user = {str(users[g[0]]): col[g] for g in np.split(np.arange(len(users)), bounds) if len(g)}
    return ids, per_user


def _gram(n: int, per_user: dict[str, np.ndarray]) -> np.ndarray:
    gram = np.zeros((n, n))
    for idx in per_user.values():
        gram[np.ix_(idx, idx)] += 1.0
    return gram


def _rank_linear(db: Any, k: int, ids: np.ndarray, per_user: dict[str, np.ndarray], weights: np.ndarray,
                 positive_only: bool = False) -> dict[str, list[str]]:
    """Each evaluated user's top k by sum over their training positives i of weights[i, :], seen
    entities left out, ties by id (only entities scored above 0 with positive_only)."""
    index = {e: i for i, e in enumerate(ids)}
    n = len(ids)
    out: dict[str, list[str]] = {}
    for r in db.execute("SELECT user_id, seen FROM pg_temp.rv_eval_users ORDER BY o"):
        idx = per_user.get(r["user_id"])
        scores = weights[idx].sum(axis=0) if idx is not None and len(idx) else np.zeros(n)
        for e in r["seen"] or []:
            if e in index:
                scores[index[e]] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        out[r["user_id"]] = [str(ids[i]) for i in top if np.isfinite(scores[i]) and (scores[i] > 0 or not positive_only)]
    return out


def rank_itemknn(db: Any, k: int, neighbours: int = 20) -> dict[str, list[str]]:
    """Plain item-kNN: cosine similarity of co-occurrence (no shrinkage), the 20 nearest of each
    entity, a user's score for i the sum of the similarities of i to every training positive. In
    numpy up to EASE_BASELINE_MAX_ITEMS entities, else with the production SQL builder."""
    ids, per_user = _train_positives(db)
    n = len(ids)
    if 0 < n <= EASE_BASELINE_MAX_ITEMS:
        c = _gram(n, per_user)
        norm = np.sqrt(np.diag(c))
        sim = c / np.outer(norm, norm)
        np.fill_diagonal(sim, 0.0)
        m = min(neighbours, n - 1)
        if m > 0:
            # the m largest of each row, ties by id (ids are sorted): a stable sort of -sim
            keep = np.argsort(-sim, axis=1, kind="stable")[:, :m]
            mask = np.zeros_like(sim, dtype=bool)
            np.put_along_axis(mask, keep, True, axis=1)
            sim = np.where(mask & (sim > 0), sim, 0.0)
        return _rank_linear(db, k, ids, per_user, sim, positive_only=True)
    build_neighbors(db, {"method": "cosine", "k": neighbours, "history": 10 ** 9, "shrink": 0.0, "alpha": 0.5,
                         "chunk": 5000}, "pg_temp.rv_eval_knn")
    rows = db.execute(db.prepare(
        "SELECT u.user_id, ARRAY(SELECT c.id FROM (SELECT n.id, sum(n.w) AS s "
        "  FROM pg_temp.rv_eval_knn AS nb, unnest(nb.neighbor_ids, nb.weights) AS n(id, w) "
        "  WHERE nb.entity_id = ANY (u.seen) AND NOT (n.id = ANY (u.seen)) GROUP BY n.id) AS c "
        "  ORDER BY c.s DESC, c.id LIMIT $1) AS recs FROM pg_temp.rv_eval_users AS u", ["integer"]), [k])
    return {r["user_id"]: list(r["recs"] or []) for r in rows}


def rank_ease(db: Any, k: int, lam: float) -> dict[str, list[str]] | None:
    """EASE with its full weight matrix (not truncated), scoring the whole catalogue; None when the
    catalogue is larger than EASE_BASELINE_MAX_ITEMS."""
    ids, per_user = _train_positives(db)
    n = len(ids)
    if n == 0 or n > EASE_BASELINE_MAX_ITEMS:
        return None
    gram = _gram(n, per_user)
    gram[np.diag_indices(n)] += lam
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[np.newaxis, :]
    np.fill_diagonal(b, 0.0)
    return _rank_linear(db, k, ids, per_user, b)


def per_user_metrics(lists: dict[str, list[str]], sp: Split, k: int) -> dict[str, np.ndarray]:
    """Recall@k (hits / min(k, held out)), NDCG@k (binary gains), MRR (0 beyond k), per user."""
    recall, ndcg, mrr = [], [], []
    for user, held in zip(sp.users, sp.heldout):
        recs = lists.get(user, [])[:k]
        hs = set(held)
        hits = [i for i, e in enumerate(recs) if e in hs]
        ideal = sum(1.0 / math.log2(j + 2) for j in range(min(k, len(held))))
        recall.append(len(hits) / min(k, len(held)))
        ndcg.append(sum(1.0 / math.log2(i + 2) for i in hits) / ideal)
        mrr.append(1.0 / (hits[0] + 1) if hits else 0.0)
    return {"recall": np.asarray(recall), "ndcg": np.asarray(ndcg), "mrr": np.asarray(mrr)}


def bootstrap_interval(values: np.ndarray, seed: int = 0, n: int = 1000) -> tuple[float, float]:
    """95 % percentile interval of the mean, resampling users."""
    if len(values) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(axis=1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def list_properties(db: Any, lists: dict[str, list[str]]) -> dict[str, float]:
    """Catalogue coverage, intra-list similarity and popularity bias of a method's lists."""
    users = list(lists)
    row = db.execute(db.prepare(
        "WITH l AS (SELECT u.o, x.e FROM unnest($1::text[]) WITH ORDINALITY AS u(user_id, o) "
        "           CROSS JOIN LATERAL jsonb_array_elements_text($2::jsonb -> u.user_id) AS x(e)), "
        "cat AS (SELECT count(*) AS n, avg(ln(1 + coalesce(s.popularity, 0))) AS pop FROM recvector.entity_vectors AS v "
        "        LEFT JOIN pg_temp.rv_eval_stats AS s USING (entity_id)) "
        "SELECT (SELECT count(DISTINCT e) FROM l)::float8 / nullif((SELECT n FROM cat), 0) AS coverage, "
        "       (SELECT avg(ln(1 + coalesce(s.popularity, 0))) FROM l LEFT JOIN pg_temp.rv_eval_stats AS s ON s.entity_id = l.e) "
        "         / nullif((SELECT pop FROM cat), 0) AS pop_bias", ["text[]", "jsonb"]),
        [users, json.dumps({u: lists[u] for u in users})])[0]
    sample = users[:500]
    ils = db.execute(db.prepare(
        "SELECT avg(s) AS ils FROM (SELECT (SELECT avg(1 - (a.embedding OPERATOR(" + _vector_op(db) + ") b.embedding)) "
        "  FROM recvector.entity_vectors AS a, recvector.entity_vectors AS b "
        "  WHERE a.entity_id = ANY (l.recs) AND b.entity_id = ANY (l.recs) AND a.entity_id < b.entity_id) AS s "
        "  FROM (SELECT ARRAY(SELECT jsonb_array_elements_text($1::jsonb -> u)) AS recs FROM unnest($2::text[]) AS u) AS l) AS x",
        ["jsonb", "text[]"]), [json.dumps({u: lists[u] for u in sample}), sample])[0]["ils"]
    return {"coverage": float(row["coverage"] or 0), "intra_list_similarity": float(ils) if ils is not None else math.nan,
            "popularity_bias": float(row["pop_bias"] or 0)}


def _vector_op(db: Any) -> str:
    return db.execute("SELECT pg_catalog.quote_ident(n.nspname) || '.<=>' AS op FROM pg_catalog.pg_extension e "
                      "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'")[0]["op"]


def summarise(db: Any, method: str, lists: dict[str, list[str]], sp: Split, k: int,
              reference: dict[str, np.ndarray] | None, seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    pu = per_user_metrics(lists, sp, k)
    low, high = bootstrap_interval(pu["ndcg"], seed)
    row: dict[str, Any] = {"method": method, "users": len(sp.users),
                           "recall": float(pu["recall"].mean()) if len(sp.users) else math.nan,
                           "ndcg": float(pu["ndcg"].mean()) if len(sp.users) else math.nan,
                           "mrr": float(pu["mrr"].mean()) if len(sp.users) else math.nan,
                           **list_properties(db, lists), "ndcg_low": low, "ndcg_high": high}
    if reference is not None:
        diff = reference["ndcg"] - pu["ndcg"]
        dl, dh = bootstrap_interval(diff, seed + 1)
        row.update(recvector_minus_this=float(diff.mean()), difference_low=dl, difference_high=dh)
    else:
        row.update(recvector_minus_this=None, difference_low=None, difference_high=None)
    return row, pu


METHODS = ("recvector", "popularity", "random", "itemknn", "ease")


def evaluate(db: Any, k: int = 10, max_users: int | None = None, seed: int = 42, min_positives: int = 2,
             protocol: str = "auto", part: str = "all", overrides: dict[str, Any] | None = None,
             interests: int | None = None, half_life_days: float | None = None, cutoff: float | None = None,
             methods: Sequence[str] = METHODS, notice: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """RecVector beside the baselines on one split; a row per method with 95 % intervals of NDCG and
    of the paired difference RecVector minus that method."""
    if not 1 <= k <= 1000:
        raise ArgumentError(f"k must be between 1 and 1000 for an evaluation, got {k}",
                            hint="The evaluation keeps every user's top-k in memory; rec_recommend itself takes k up to 10000.")
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ArgumentError(f"unknown methods {sorted(unknown)}; known: {', '.join(METHODS)}")
    say = notice or (lambda m: None)
    inter = load_interactions(db)
    sp = split(inter, protocol, seed, min_positives, max_users, part=part, cutoff=cutoff)
    if not sp.users:
        raise NotEnoughDataError("no user has enough positive interactions to hold one out",
                             hint=f"Each evaluated user needs at least {max(min_positives, 2)} positive interactions.")
    say(f"recvector: evaluation: {len(sp.users)} users, protocol {sp.protocol}")
    prepare(db, inter, sp, notice=say)
    build_profiles(db, interests, half_life_days)
    out: list[dict[str, Any]] = []
    reference = None
    lists_by_method: dict[str, dict[str, list[str]] | None] = {}
    for method in ["recvector"] + [m for m in methods if m != "recvector"]:
        t0 = time.monotonic()
        if method == "recvector":
            lists = rank_recvector(db, k, overrides, seed)
        elif method == "popularity":
            lists = rank_popularity(db, k)
        elif method == "random":
            lists = rank_random(db, k, seed)
        elif method == "itemknn":
            lists = rank_itemknn(db, k)
        else:
            settings = json.loads(db.execute("SELECT recvector._neighbor_settings()::text AS s")[0]["s"])
            lam = settings.get("ease_lambda") or max(10.0, db.execute(
                "SELECT count(*)::float8 / greatest(count(DISTINCT entity_id), 1) AS l FROM pg_temp.rv_eval_source")[0]["l"])
            lists = rank_ease(db, k, float(lam))
        lists_by_method[method] = lists
        if lists is None:
            say(f"recvector: evaluation: {method} skipped (catalogue over {EASE_BASELINE_MAX_ITEMS} entities)")
            continue
        row, pu = summarise(db, method, lists, sp, k, reference if method != "recvector" else None, seed)
        if method == "recvector":
            reference = pu
        if method in methods:
            out.append(row)
        say(f"recvector: evaluation: {method}: NDCG@{k} {row['ndcg']:.4f} ({time.monotonic() - t0:.1f} s)")
    return out


__all__ = ["Interactions", "Split", "load_interactions", "split", "prepare", "build_neighbors", "build_profiles",
           "rank_recvector", "rank_popularity", "rank_random", "rank_itemknn", "rank_ease", "per_user_metrics",
           "bootstrap_interval", "evaluate", "METHODS"]
