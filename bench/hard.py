"""Hard-data recall benchmark (`python -m bench.hard --entities 100000`): HNSW recall of profile
queries on vectors where approximate search is hard, and what the serving path does about it.
Writes docs/benchmarks-hard-<N>.md and .json.

Why another generator. bench/scale.py's vectors live in a 24-d latent space mapped to 384-d: low
intrinsic dimension, on which HNSW finds almost everything. Here:

* cluster centres are independent N(0, I) vectors in the full 384 dimensions (normalised), so two
  centres are nearly orthogonal (distance ~1.41) and the data has high intrinsic dimension;
* an entity is its centre plus isotropic 384-d Gaussian noise of norm ~``spread`` (default 0.9, so
  an entity lies ~0.9 from its centre: the spread is comparable to the distance between clusters;
  cosine to its own centre ~0.74, to another entity of its cluster ~0.55, to any other ~0),
  normalised; cluster sizes follow a mild Zipf law (size ~ 1/rank^0.5);
* every user draws a history from 2-4 clusters (picked by cluster size), with Dirichlet(2)
  proportions between them, 15-50 interactions, entities by Zipf popularity within a cluster,
  likes/views/dislikes 0.70/0.25/0.05 spread over six months (weights and 30-day half-life of the
  mapping): the time-decayed weighted mean profile lies *between* clusters.

Ground truth is exact, by brute force in numpy over every entity, from the very vectors stored in
the database (the stored profile, the stored interest vectors), excluding what the user has seen
(the ids `rec_recommend` excludes, read with recvector._mapped_seen):

* *mean truth*: top 10 by cosine to the mean profile (recvector.rec_user_profiles.embedding);
* *content truth*: top 10 by the scoring formula's content term, the cosine to the nearest of the
  user's interest vectors (rec_user_profiles.interests, up to K = 3; the profile when none).

Measured: recall@10 of the bare pgvector query (`ORDER BY embedding <=> profile LIMIT 100`, seen
ids dropped afterwards, or filtered in the query as rec_recommend's pool query does) at several
`hnsw.ef_search`, with and without `hnsw.iterative_scan = relaxed_order` (rows read in the order
returned, and sorted again by distance); of `rec_recommend(user, 10, 1.0, alpha => 1, beta => 0, gamma => 0)` (content only,
one HNSW query per interest) at several `scoring.ef_search` and `candidate_pool`, against both
truths; the same for "K = 1 twins" (copies of the query users whose profile rows hold no interest
vectors, i.e. what `aggregation.interests = 1` stores: the same mean, one query); the share of
queries that found none of the true 10; backend time (EXPLAIN ANALYZE planning + execution, TIMING
OFF) of the bare `LIMIT 100` query against rec_recommend (lambda 1 and the default 0.9 with MMR), in
interleaved rounds; where a call's time goes (track_functions, auto_explain plans, the fixed
costs of the seen query); optionally (`--halfvec`) a halfvec copy of the vectors with its own HNSW index.
The item-to-item neighbours are not built (no collaborative candidates): this is about the content
source. Not a test: nothing asserts a figure.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from recvector import __version__

from .common import DOCS, machine, percentiles
from .scale import _copy_vectors, load_app_tables, mapping as scale_mapping

DIM = 384
SEED = 20261201
TWIN = 100_000_000  # K = 1 twins of the query users get the ids TWIN + u


# ----------------------------------------------------------------------------- data

def make_vectors(n: int, clusters: int, spread: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (float32, n x 384) and each one's cluster: full-dimensional centres plus
    isotropic noise of norm ~spread."""
    centers = rng.normal(size=(clusters, DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    size = 1.0 / np.arange(1, clusters + 1) ** 0.5
    labels = rng.choice(clusters, size=n, p=size / size.sum())
    out = np.empty((n, DIM), dtype=np.float32)
    step = 100_000
    for a in range(0, n, step):
        b = min(n, a + step)
        x = centers[labels[a:b]] + spread / np.sqrt(DIM) * rng.normal(size=(b - a, DIM)).astype(np.float32)
        out[a:b] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out, labels


def make_histories(n: int, labels: np.ndarray, users: int, rng: np.random.Generator
                   ) -> tuple[list[tuple[int, int, str, float]], dict[int, list[int]]]:
    """(user, item, kind, seconds ago) rows, each user from 2-4 clusters (Dirichlet(2) shares);
    and each user's clusters, heaviest share first."""
    popularity = 1.0 / np.arange(1, n + 1) ** 1.1
    rng.shuffle(popularity)
    order = np.argsort(labels, kind="stable")
    nclusters = int(labels.max()) + 1
    bounds = np.searchsorted(labels[order], np.arange(nclusters + 1))
    members = [order[bounds[c]:bounds[c + 1]] for c in range(nclusters)]
    sizes = np.array([len(m) for m in members], dtype=float)
    rows: list[tuple[int, int, str, float]] = []
    user_clusters: dict[int, list[int]] = {}
    kinds = np.array(["like", "view", "dislike"])
    for u in range(1, users + 1):
        cs = rng.choice(nclusters, size=int(rng.integers(2, 5)), replace=False, p=sizes / sizes.sum())
        share = rng.dirichlet(np.full(len(cs), 2.0))
        user_clusters[u] = [int(c) for c in cs[np.argsort(-share)]]
        count = int(rng.integers(15, 51))
        for c in rng.choice(cs, size=count, p=share):
            m = members[int(c)]
            p = popularity[m] / popularity[m].sum()
            item = int(m[rng.choice(len(m), p=p)]) + 1
            rows.append((u, item, str(kinds[rng.choice(3, p=[0.7, 0.25, 0.05])]), float(rng.uniform(0, 180 * 86400))))
    return rows, user_clusters


def mapping(ef_search: int = 100) -> dict[str, Any]:
    """bench/scale.py's mapping of the same tables, with K = 3 interests written out."""
    m = scale_mapping(ef_search=ef_search)
    m["aggregation"]["interests"] = 3
    return m


def load(conn: psycopg.Connection, n: int, users: int, clusters: int, spread: float, halfvec: bool,
         res: dict[str, Any]) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    t0 = time.perf_counter()
    vectors, labels = make_vectors(n, clusters, spread, rng)
    history, _ = make_histories(n, labels, users, rng)
    res["data"] = {"entities": n, "clusters": clusters, "spread": spread, "dimensions": DIM, "users": users,
                   "interactions": len(history), "generate_seconds": round(time.perf_counter() - t0, 1)}
    # The geometry, measured on a sample: cosine of an entity to another of its cluster and to one of another.
    s = np.random.default_rng(1).choice(n, size=min(4000, n), replace=False)
    cos = vectors[s] @ vectors[s].T
    same = labels[s][:, None] == labels[s][None, :]
    np.fill_diagonal(same, False)
    other = labels[s][:, None] != labels[s][None, :]
    res["data"]["cosine_same_cluster_mean"] = round(float(cos[same].mean()), 3)
    res["data"]["cosine_other_cluster_mean"] = round(float(cos[other].mean()), 3)
    load_app_tables(conn, users, labels, history)
    conn.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(mapping()),))
    # Precomputed vectors, as bench/scale.py loads them: COPY without the index, then build it.
    conn.execute("DROP INDEX recvector.entity_vectors_embedding_hnsw")
    _copy_vectors(conn, vectors)
    conn.execute("SET maintenance_work_mem = '4GB'")
    t0 = time.perf_counter()
    conn.execute("SELECT recvector.repair()")  # creates the HNSW index as set_schema does
    build_s = time.perf_counter() - t0
    conn.execute("ANALYZE recvector.entity_vectors")
    t0 = time.perf_counter()
    conn.execute("SELECT recvector.rebuild_entity_stats()")
    profiles = conn.execute("SELECT recvector.rebuild_profiles()").fetchone()[0]
    prof_s = time.perf_counter() - t0
    res["load"] = {"hnsw_build_seconds": round(build_s, 1), "profiles": profiles,
                   "stats_and_profiles_seconds": round(prof_s, 1),
                   "hnsw_index_mib": round(conn.execute("SELECT pg_relation_size('recvector.entity_vectors_embedding_hnsw')"
                                                        ).fetchone()[0] / 2 ** 20, 1)}
    res["interests_per_profile"] = dict(conn.execute(
        "SELECT coalesce(cardinality(interests), 1)::text, count(*) FROM recvector.rec_user_profiles "
        "WHERE embedding IS NOT NULL GROUP BY 1 ORDER BY 1").fetchall())
    if halfvec:
        t0 = time.perf_counter()
        conn.execute(f"CREATE TABLE bench_half AS SELECT entity_id, embedding::halfvec({DIM}) AS embedding "
                     "FROM recvector.entity_vectors")
        conn.execute("ALTER TABLE bench_half ADD PRIMARY KEY (entity_id)")
        t1 = time.perf_counter()
        conn.execute("CREATE INDEX bench_half_hnsw ON bench_half USING hnsw (embedding halfvec_cosine_ops) "
                     "WITH (m = 32, ef_construction = 200)")
        res["load"]["halfvec_hnsw_build_seconds"] = round(time.perf_counter() - t1, 1)
        res["load"]["halfvec_copy_seconds"] = round(t1 - t0, 1)
        res["load"]["halfvec_hnsw_index_mib"] = round(
            conn.execute("SELECT pg_relation_size('bench_half_hnsw')").fetchone()[0] / 2 ** 20, 1)
        conn.execute("ANALYZE bench_half")
    conn.execute("RESET maintenance_work_mem")
    return vectors


# ----------------------------------------------------------------------------- queries and truth

def _vec(text: str) -> np.ndarray:
    return np.array(json.loads(text), dtype=np.float32)


def make_twins(conn: psycopg.Connection, users: list[str]) -> None:
    """K = 1 twins: user TWIN + u with u's events and u's profile row without interest vectors
    (exactly what aggregation.interests = 1 stores: the same mean, no interests)."""
    ids = [int(u) for u in users]
    conn.execute("INSERT INTO bench_user (id) SELECT %s + u FROM unnest(%s::bigint[]) AS u", (TWIN, ids))
    conn.execute("INSERT INTO bench_event (user_id, item_id, kind, at) SELECT user_id + %s, item_id, kind, at "
                 "FROM bench_event WHERE user_id = ANY (%s::bigint[])", (TWIN, ids))
    cols = [r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'recvector.rec_user_profiles'::regclass AND attnum > 0 "
        "AND NOT attisdropped AND attname NOT IN ('user_id', 'interests', 'interest_weights') ORDER BY attnum").fetchall()]
    collist = ", ".join(cols)
    conn.execute(f"INSERT INTO recvector.rec_user_profiles (user_id, interests, interest_weights, {collist}) "
                 f"SELECT (user_id::bigint + {TWIN})::text, NULL, NULL, {collist} FROM recvector.rec_user_profiles "
                 "WHERE user_id = ANY (%s::text[])", (users,))


def queries(conn: psycopg.Connection, count: int) -> dict[str, Any]:
    rows = conn.execute("SELECT user_id, embedding::text FROM recvector.rec_user_profiles "
                        "WHERE embedding IS NOT NULL ORDER BY md5(user_id) LIMIT %s", (count,)).fetchall()
    users = [u for u, _ in rows]
    interests: dict[str, list[np.ndarray]] = {u: [] for u in users}
    for u, _, t in conn.execute("SELECT p.user_id, i.o, i.v::text FROM recvector.rec_user_profiles AS p, "
                                "unnest(p.interests) WITH ORDINALITY AS i(v, o) WHERE p.user_id = ANY (%s::text[]) "
                                "ORDER BY 1, 2", (users,)).fetchall():
        interests[u].append(_vec(t))
    seen = dict(conn.execute(
        "SELECT u.id, recvector._mapped_seen(m.compiled -> 'params', u.id, NULL::integer, "
        "recvector._id_or_null(u.id, m.compiled ->> 'user_id_type')) "
        "FROM recvector._mapping() AS m, unnest(%s::text[]) AS u(id)", (users,)).fetchall())
    return {"users": users, "texts": [t for _, t in rows], "profiles": np.stack([_vec(t) for _, t in rows]),
            "interests": [interests[u] or [_vec(t)] for u, t in rows], "seen": [set(seen[u]) for u in users]}


def exact_top10(vectors: np.ndarray, q: dict[str, Any]) -> tuple[list[set[str]], list[set[str]]]:
    """Exact top 10 by brute force, seen ids excluded: by cosine to the mean profile, and by the
    content term (cosine to the nearest interest vector)."""
    def top(sims: np.ndarray, seen: set[str]) -> set[str]:
        if seen:
            sims[np.array([int(s) - 1 for s in seen])] = -np.inf
        return set((np.argpartition(-sims, 10)[:10] + 1).astype(str))

    mean_truth, content_truth = [], []
    p = q["profiles"] / np.linalg.norm(q["profiles"], axis=1, keepdims=True)
    for a in range(0, len(p), 100):
        sims = p[a:a + 100] @ vectors.T
        mean_truth += [top(sims[i], q["seen"][a + i]) for i in range(len(sims))]
        group = q["interests"][a:a + 100]
        stack = np.concatenate([np.stack(g) for g in group])
        stack /= np.linalg.norm(stack, axis=1, keepdims=True)
        isims = stack @ vectors.T
        starts = np.cumsum([0] + [len(g) for g in group[:-1]])
        best = np.maximum.reduceat(isims, starts, axis=0)
        content_truth += [top(best[i], q["seen"][a + i]) for i in range(len(best))]
    return mean_truth, content_truth


def score(got: list[list[str]], truth: list[set[str]]) -> dict[str, Any]:
    hits = [len(truth[i] & set(g[:10])) for i, g in enumerate(got)]
    return {"recall_at_10": round(sum(hits) / (10 * len(hits)), 4),
            "none_of_true_10": round(sum(h == 0 for h in hits) / len(hits), 4),
            "partial": round(sum(0 < h < 10 for h in hits) / len(hits), 4),
            "all_10": round(sum(h == 10 for h in hits) / len(hits), 4)}


def overlap(a: list[set[str]], b: list[set[str]]) -> float:
    return round(sum(len(x & y) for x, y in zip(a, b)) / (10 * len(a)), 4)


# ----------------------------------------------------------------------------- figures

def bare_recall(conn: psycopg.Connection, table: str, cast: str, q: dict[str, Any], truth: list[set[str]],
                ef: int, iterative: str, seen_filter: bool = False) -> dict[str, Any]:
    """The bare query; seen ids dropped from its 100 rows afterwards, or (seen_filter) in the query
    itself as rec_recommend's pool query does (`WHERE NOT (entity_id = ANY (seen))`)."""
    conn.execute(f"SET hnsw.ef_search = {ef}")
    conn.execute(f"SET hnsw.iterative_scan = {iterative}")
    got, times, rows = [], [], []
    where = "WHERE NOT (entity_id = ANY (%s::text[])) " if seen_filter else ""
    stmt = f"SELECT entity_id, embedding <=> %s::{cast} FROM {table} {where}ORDER BY embedding <=> %s::{cast} LIMIT 100"
    resorted = []
    for text, seen in zip(q["texts"], q["seen"]):
        t0 = time.perf_counter()
        r = conn.execute(stmt, (text, list(seen), text) if seen_filter else (text, text)).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
        rows.append(len(r))
        got.append([e for e, _ in r if e not in seen][:10])
        # relaxed_order returns the rows of a later pass after those of the first: sorted again by
        # distance (what pgvector's docs advise, and what rec_recommend's scoring does).
        resorted.append([e for e, _ in sorted(r, key=lambda x: x[1]) if e not in seen][:10])
    conn.execute("RESET hnsw.ef_search")
    conn.execute("RESET hnsw.iterative_scan")
    return {**score(got, truth), "resorted": score(resorted, truth), "rows_returned_min": min(rows),
            "client_ms": percentiles(times), "_got": got}


def rec_recall(conn: psycopg.Connection, users: list[str], pool: int) -> tuple[list[list[str]], dict[str, float]]:
    got, times = [], []
    for u in users:
        t0 = time.perf_counter()
        r = conn.execute("SELECT entity_id FROM rec_recommend(%s::text, 10, 1.0, alpha => 1, beta => 0, gamma => 0, "
                         "candidate_pool => %s)", (u, pool)).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
        got.append([e for e, in r])
    return got, percentiles(times)


def load_avg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def backend_ms(conn: psycopg.Connection, stmt: str, args: tuple) -> float:
    plan = conn.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + stmt, args).fetchone()[0]
    p = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
    return p["Planning Time"] + p["Execution Time"]


def _args(conn: psycopg.Connection, ef: str | None, arg: str, q: dict[str, Any], i: int) -> tuple:
    """Session settings for a variant ("200/it": ef_search 200 with the iterative scan; None: what
    rec_recommend sets itself) and its arguments."""
    e, _, it = (ef or "40").partition("/")
    conn.execute(f"SET hnsw.ef_search = {e}")
    conn.execute(f"SET hnsw.iterative_scan = {'relaxed_order' if it else 'off'}")
    if arg == "seen":
        return (list(q["seen"][i]), q["texts"][i])
    return ({"text": q["texts"][i], "user": q["users"][i], "twin": str(int(q["users"][i]) + TWIN)}[arg],)


def timing(conn: psycopg.Connection, q: dict[str, Any], rounds: int, per_round: int, halfvec: bool) -> dict[str, Any]:
    """Interleaved rounds: per user, every variant once in a random order; backend time (EXPLAIN
    ANALYZE, TIMING OFF: planning + execution) of each."""
    bare = "SELECT entity_id FROM recvector.entity_vectors ORDER BY embedding <=> %s::vector LIMIT 100"
    filt = ("SELECT entity_id FROM recvector.entity_vectors WHERE NOT (entity_id = ANY (%s::text[])) "
            "ORDER BY embedding <=> %s::vector LIMIT 100")
    variants: dict[str, tuple[str | None, str, Any]] = {
        "bare LIMIT 100, ef_search 100": ("100", bare, "text"),
        "bare LIMIT 100, ef_search 200": ("200", bare, "text"),
        "bare LIMIT 100, ef_search 400": ("400", bare, "text"),
        "bare LIMIT 100 + seen filter, iterative scan, ef_search 100": ("100/it", filt, "seen"),
        "bare LIMIT 100 + seen filter, iterative scan, ef_search 200": ("200/it", filt, "seen"),
        "rec_recommend lambda 1 (K=3 interests)": (None, "SELECT * FROM rec_recommend(%s::text, 10, 1.0)", "user"),
        "rec_recommend lambda 0.9, MMR (K=3 interests)": (None, "SELECT * FROM rec_recommend(%s::text, 10)", "user"),
        "rec_recommend lambda 1 (K=1 twin)": (None, "SELECT * FROM rec_recommend(%s::text, 10, 1.0)", "twin"),
        "rec_recommend lambda 0.9, MMR (K=1 twin)": (None, "SELECT * FROM rec_recommend(%s::text, 10)", "twin"),
    }
    if halfvec:
        variants["bare halfvec LIMIT 100, ef_search 100"] = (
            "100", f"SELECT entity_id FROM bench_half ORDER BY embedding <=> %s::halfvec({DIM}) LIMIT 100", "text")
    rnd = random.Random(11)
    idx = list(range(len(q["users"])))
    samples: dict[str, list[float]] = {k: [] for k in variants}
    per_round_ratio: dict[str, list[float]] = {k: [] for k in variants}
    before = load_avg()
    for w in range(5):  # warm-up: plans cached, index pages in memory
        for name, (ef, stmt, arg) in variants.items():
            backend_ms(conn, stmt, _args(conn, ef, arg, q, w))
    for r in range(rounds):
        round_samples: dict[str, list[float]] = {k: [] for k in variants}
        for i in rnd.sample(idx, per_round):
            names = list(variants)
            rnd.shuffle(names)
            for name in names:
                ef, stmt, arg = variants[name]
                round_samples[name].append(backend_ms(conn, stmt, _args(conn, ef, arg, q, i)))
        base = statistics.median(round_samples["bare LIMIT 100, ef_search 100"])
        for k, v in round_samples.items():
            samples[k] += v
            per_round_ratio[k].append(round(statistics.median(v) / base, 2))
    conn.execute("RESET hnsw.ef_search")
    conn.execute("RESET hnsw.iterative_scan")
    stats = {k: percentiles(v) for k, v in samples.items()}
    base = stats["bare LIMIT 100, ef_search 100"]
    return {"method": f"{rounds} rounds x {per_round} users, every variant once per user in a random order; "
                      "EXPLAIN (ANALYZE, TIMING OFF) planning + execution time",
            "load_before": before, "load_after": load_avg(), "ms": stats,
            "ratio_median": {k: round(v["median"] / base["median"], 2) for k, v in stats.items()},
            "ratio_p95": {k: round(v["p95"] / base["p95"], 2) for k, v in stats.items()},
            "ratio_median_per_round": per_round_ratio}


def diagnostics(conn: psycopg.Connection, q: dict[str, Any]) -> dict[str, Any]:
    """Fixed costs inside rec_recommend, and the plan of its candidate query (auto_explain, rows
    only, no timing) for one K=3 user and one K=1 twin."""
    users = q["users"][:50]
    check = [backend_ms(conn, "SELECT recvector._check_columns(m.compiled -> 'columns') FROM recvector.mapping AS m", ())
             for _ in range(50)]
    seen = [backend_ms(conn, "SELECT recvector._mapped_seen(m.compiled -> 'params', %s::text, NULL::integer, "
                             "recvector._id_or_null(%s::text, m.compiled ->> 'user_id_type')) FROM recvector.mapping AS m",
                       (u, u)) for u in users]
    out: dict[str, Any] = {"check_columns_ms": percentiles(check), "mapped_seen_ms": percentiles(seen),
                           "pg_attribute_rows": conn.execute("SELECT count(*) FROM pg_attribute").fetchone()[0]}
    for name, ids in (("K=3 users", users), ("K=1 twins", [str(int(u) + TWIN) for u in users])):
        # Where a call's time goes: per-function totals of 50 calls (track_functions), per call.
        with conn.transaction():
            conn.execute("SET LOCAL track_functions = 'all'")
            for u in ids:
                conn.execute("SELECT * FROM rec_recommend(%s::text, 10, 1.0)", (u,)).fetchall()
            out[f"function_ms_per_call_{name}"] = {
                f: round(float(t) / len(ids), 3) for f, t in conn.execute(
                    "SELECT schemaname || '.' || funcname, total_time FROM pg_stat_xact_user_functions "
                    "ORDER BY total_time DESC LIMIT 12").fetchall()}
    logs: list[str] = []
    conn.add_notice_handler(lambda d: logs.append(d.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    for k, v in {"log_min_duration": "0", "log_nested_statements": "on", "log_analyze": "on", "log_timing": "off"}.items():
        conn.execute(f"SET auto_explain.{k} = {v}")
    conn.execute("SET client_min_messages = log")
    for name, u in (("K=3 user", users[0]), ("K=1 twin", str(int(users[0]) + TWIN))):
        logs.clear()
        conn.execute("SELECT * FROM rec_recommend(%s::text, 10, 1.0)", (u,)).fetchall()
        plan = next((m for m in logs if "WITH content AS" in m), "")
        out[f"candidate_plan_{name}"] = [ln.split("  (cost")[0].strip() + (
            "  (" + ln.split("(actual ")[1] if "(actual " in ln else "") for ln in plan.splitlines() if "->" in ln]
    conn.execute("RESET client_min_messages")
    return out


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def run(dsn: str, n: int, users: int, clusters: int, spread: float, nq: int, efs: list[int], pools: list[int],
        rounds: int, per_round: int, halfvec: bool, keep: bool) -> dict[str, Any]:
    database = f"bench_hard_{n}"
    admin_dsn = make_conninfo(dsn, dbname=conninfo_to_dict(dsn).get("dbname") or "postgres")
    bench_dsn = make_conninfo(dsn, dbname=database)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    res: dict[str, Any] = {"recvector": __version__, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "machine": {**machine(), "nproc": os.cpu_count()},
                           "uptime_before": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}
    started = time.perf_counter()
    try:
        with psycopg.connect(bench_dsn, autocommit=True) as c:
            res["postgresql"] = c.execute("SHOW server_version").fetchone()[0]
            log(f"loading {n} entities")
            vectors = load(c, n, users, clusters, spread, halfvec, res)
            log(f"loaded: {res['load']}")
            res["pgvector"] = c.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
            res["hnsw_options"] = c.execute("SELECT reloptions FROM pg_class "
                                            "WHERE relname = 'entity_vectors_embedding_hnsw'").fetchone()[0]
            q = queries(c, nq)
            make_twins(c, q["users"])
            t0 = time.perf_counter()
            mean_truth, content_truth = exact_top10(vectors, q)
            res["ground_truth_seconds"] = round(time.perf_counter() - t0, 1)
            res["queries"] = len(q["users"])
            res["interests_of_query_users"] = {str(k): sum(len(g) == k for g in q["interests"]) for k in (1, 2, 3)}
            res["truths_overlap"] = overlap(mean_truth, content_truth)
            del vectors
            log("bare recall")
            res["bare"] = {}
            for ef in efs:
                for it, filt in (("off", False), ("relaxed_order", False), ("relaxed_order", True)):
                    r = bare_recall(c, "recvector.entity_vectors", "vector", q, mean_truth, ef, it, filt)
                    r.pop("_got")
                    key = f"{ef}/{it}" + ("/seen filter in query" if filt else "")
                    res["bare"][key] = r
                    log(f"bare {key}: {r['recall_at_10']} none {r['none_of_true_10']} {r['client_ms']['median']} ms")
            if halfvec:
                res["bare_halfvec"] = {}
                for ef in efs:
                    r = bare_recall(c, "bench_half", f"halfvec({DIM})", q, mean_truth, ef, "off")
                    r.pop("_got")
                    res["bare_halfvec"][str(ef)] = r
                    log(f"halfvec ef {ef}: {r['recall_at_10']}")
            log("rec_recommend recall")
            res["rec_recommend"] = {}
            twins = [str(int(u) + TWIN) for u in q["users"]]
            for ef in efs:
                c.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(mapping(ef_search=ef)),))
                for pool in pools:
                    got, ms = rec_recall(c, q["users"], pool)
                    got1, ms1 = rec_recall(c, twins, pool)
                    res["rec_recommend"][f"{ef}/{pool}"] = {
                        "K3_vs_content_truth": score(got, content_truth), "K3_vs_mean_truth": score(got, mean_truth),
                        "K3_client_ms": ms,
                        "K1_vs_mean_truth": score(got1, mean_truth), "K1_vs_content_truth": score(got1, content_truth),
                        "K1_client_ms": ms1}
                    log(f"rec ef {ef} pool {pool}: K3/content {res['rec_recommend'][f'{ef}/{pool}']['K3_vs_content_truth']}"
                        f" K1/mean {res['rec_recommend'][f'{ef}/{pool}']['K1_vs_mean_truth']}")
            c.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(mapping()),))
            log("timing")
            res["timing"] = timing(c, q, rounds, per_round, halfvec)
        with psycopg.connect(bench_dsn, autocommit=True) as c:
            res["diagnostics"] = diagnostics(c, q)
            log(f"timing: {res['timing']['ratio_median']}")
    finally:
        res["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        res["total_seconds"] = round(time.perf_counter() - started, 1)
        if not keep:
            with psycopg.connect(admin_dsn, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    return res


def write(res: dict[str, Any]) -> Path:
    n = res["data"]["entities"]
    (DOCS / f"benchmarks-hard-{n}.json").write_text(json.dumps(res, indent=2) + "\n")
    m, d, ld = res["machine"], res["data"], res["load"]
    lines = [f"# Hard-data recall benchmark: {n:,} entities", "",
             "Written by `python -m bench.hard`; raw figures in "
             f"`benchmarks-hard-{n}.json`. Generator and method in the module's docstring.", "",
             f"- date: {res['date']}; total run {res['total_seconds']} s",
             f"- machine: {m['cpu']}, {m['nproc']} cores, {m['memory']}, {m['os']}; other jobs were running "
             "on this shared machine",
             f"- load: before `{res['uptime_before']}`; after `{res['uptime_after']}`",
             f"- PostgreSQL {res['postgresql']}, pgvector {res['pgvector']}, RecVector {res['recvector']}; "
             f"HNSW {', '.join(res['hnsw_options'] or [])} (build {ld['hnsw_build_seconds']} s, "
             f"{ld['hnsw_index_mib']} MiB)",
             f"- data: {d['entities']:,} entities in {d['clusters']:,} full-dimensional clusters ({d['dimensions']}-d, "
             f"spread {d['spread']}: mean cosine {d['cosine_same_cluster_mean']} within a cluster, "
             f"{d['cosine_other_cluster_mean']} across), {d['users']:,} users of 2-4 clusters each, "
             f"{d['interactions']:,} interactions; interest vectors per profile (K = 3): "
             f"{', '.join(f'{k}: {v:,}' for k, v in res['interests_per_profile'].items())}",
             f"- {res['queries']} query users (interests {res['interests_of_query_users']}); exact top 10 by brute "
             f"force, seen entities excluded; the mean-profile truth and the content-term truth share "
             f"{res['truths_overlap']} of their entities", "",
             "## Bare pgvector query, mean profile", "",
             "`SELECT entity_id FROM recvector.entity_vectors ORDER BY embedding <=> profile LIMIT 100`, seen ids "
             "dropped, first 10 against the exact top 10 by the mean profile. \"none\": share of queries that "
             "found none of the true 10; \"all\": found all 10.", "",
             "\"re-sorted\": the 100 rows sorted again by distance before taking 10 (relaxed_order returns the rows "
             "of a later pass after those of the first)."
             + ("" if all("resorted" in v for v in res["bare"].values()) else
                " Not measured in this run: the column was added to bench/hard.py after it; the recall column "
                "reads the rows in the order returned."), "",
             "| ef_search | iterative scan | seen ids | recall@10 | re-sorted | none | partial | all | client median / p95 ms |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for key, v in res["bare"].items():
        ef, it, *filt = key.split("/")
        lines.append(f"| {ef} | {it} | {'in the query' if filt else 'dropped after'} | {v['recall_at_10']} | "
                     f"{v.get('resorted', {}).get('recall_at_10', 'not measured')} | {v['none_of_true_10']} | {v['partial']} | {v['all_10']} | "
                     f"{v['client_ms']['median']} / {v['client_ms']['p95']} |")
    if res.get("bare_halfvec"):
        lines += ["", f"halfvec copy (HNSW halfvec_cosine_ops, m 32, ef_construction 200; build "
                      f"{ld.get('halfvec_hnsw_build_seconds')} s, {ld.get('halfvec_hnsw_index_mib')} MiB), iterative scan off, "
                      "against the same float32 truth:", "",
                  "| ef_search | recall@10 | none | all | client median / p95 ms |", "|---:|---:|---:|---:|---:|"]
        for ef, v in res["bare_halfvec"].items():
            lines.append(f"| {ef} | {v['recall_at_10']} | {v['none_of_true_10']} | {v['all_10']} | "
                         f"{v['client_ms']['median']} / {v['client_ms']['p95']} |")
    lines += ["", "## rec_recommend, content only", "",
              "`rec_recommend(user, 10, 1.0, alpha => 1, beta => 0, gamma => 0, candidate_pool => P)` with "
              "`scoring.ef_search` = E (popular_pool 50 as shipped; no collaborative candidates). K=3: the stored "
              "profiles (one HNSW query per interest vector); K=1: twins of the same users whose rows hold only the "
              "mean (one query). Content truth: exact top 10 by cosine to the nearest interest (the scoring "
              "formula's content term); mean truth: by cosine to the mean profile.", "",
              "| E / P | K=3 vs content truth (none) | K=3 vs mean truth | K=1 vs mean truth (none) | K=1 vs content truth "
              "| K=3 / K=1 client median ms |", "|---|---:|---:|---:|---:|---:|"]
    for key, v in res["rec_recommend"].items():
        lines.append(f"| {key} | {v['K3_vs_content_truth']['recall_at_10']} ({v['K3_vs_content_truth']['none_of_true_10']}) | "
                     f"{v['K3_vs_mean_truth']['recall_at_10']} | {v['K1_vs_mean_truth']['recall_at_10']} "
                     f"({v['K1_vs_mean_truth']['none_of_true_10']}) | {v['K1_vs_content_truth']['recall_at_10']} | "
                     f"{v['K3_client_ms']['median']} / {v['K1_client_ms']['median']} |")
    t = res["timing"]
    lines += ["", "## Backend time", "", f"{t['method']}; load average before `{t['load_before']}`, after "
              f"`{t['load_after']}`. Ratios to the bare `LIMIT 100` query at ef_search 100 of the same run; rec_recommend "
              "with the shipped scoring (alpha 0.5, beta 0.1, gamma 1, candidate_pool 100, ef_search 100).", "",
              "| query | median ms | p95 ms | median ratio | p95 ratio | median ratio per round |",
              "|---|---:|---:|---:|---:|---|"]
    for k, v in t["ms"].items():
        lines.append(f"| {k} | {v['median']} | {v['p95']} | {t['ratio_median'][k]}x | {t['ratio_p95'][k]}x | "
                     f"{', '.join(str(x) for x in t['ratio_median_per_round'][k])} |")
    dg = res.get("diagnostics")
    if dg:
        lines += ["", "## Fixed costs inside rec_recommend", "",
                  f"- `recvector._check_columns` (run by the seen query on every call; a join over pg_attribute, "
                  f"{dg['pg_attribute_rows']:,} rows in this database): median {dg['check_columns_ms']['median']} ms, "
                  f"p95 {dg['check_columns_ms']['p95']} ms",
                  f"- `recvector._mapped_seen` (the seen query, including that check): median "
                  f"{dg['mapped_seen_ms']['median']} ms, p95 {dg['mapped_seen_ms']['p95']} ms",
                  "- candidate query plan (auto_explain, rows only), K=1 twin:", "", "```",
                  *dg.get("candidate_plan_K=1 twin", []), "```"]
    out = DOCS / f"benchmarks-hard-{n}.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hard")
    p.add_argument("--dsn", default=os.environ.get("RECVECTOR_DSN", "host=127.0.0.1 user=postgres dbname=postgres"))
    p.add_argument("--entities", type=int, default=100_000)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--spread", type=float, default=0.9, help="norm of an entity's offset from its cluster centre")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--ef", default="100,200,400,800", help="ef_search values")
    p.add_argument("--pools", default="100,200", help="candidate_pool values for rec_recommend")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--per-round", type=int, default=100)
    p.add_argument("--halfvec", action="store_true", help="also measure a halfvec copy with its own HNSW index")
    p.add_argument("--keep", action="store_true", help="keep the database bench_hard_<N>")
    args = p.parse_args()
    res = run(args.dsn, args.entities, args.users, args.clusters, args.spread, args.queries,
              [int(x) for x in args.ef.split(",")], [int(x) for x in args.pools.split(",")],
              args.rounds, args.per_round, args.halfvec, args.keep)
    print(f"wrote {write(res)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
