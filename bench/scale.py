"""Scale benchmark (`make bench` quick: 100k entities; `make bench-full`: 1M): synthetic data with
real structure loaded through ordinary mapped tables, then latency, HNSW recall, write overhead,
queue drain, sizes and a pgbench load run. Writes docs/benchmarks-scale-<N>.md and .json.

Data (never uniform random vectors, on which HNSW recall means nothing):
* entity vectors: a Gaussian mixture in a low-dimensional latent space (many clusters, intrinsic
  dimension 24) mapped linearly to 384-d plus isotropic noise, normalised;
* Zipf popularity over entities; users whose histories come from one to three clusters each (picked
  by cluster popularity), 10-40 interactions over six months, likes/views/dislikes;
* the app's tables (``bench_item``, ``bench_user``, ``bench_event``) are mapped like any others;
  entity vectors are precomputed (written to the vectors table, then the HNSW index is built:
  the "bootstrap with precomputed vectors" figure is that index build).

Not a test: nothing asserts a time.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from recvector import __version__

from .common import DOCS, drain_queue, fold_all, machine, percentiles, timed

DIM = 384
LATENT = 24
SEED = 20261126


# ----------------------------------------------------------------------------- data

def load_app_tables(conn: psycopg.Connection, users: int, labels: np.ndarray, history: list) -> None:
    """The app's tables (bench_user, bench_item, bench_event) by COPY, indexed and analysed, and the
    extension created: what bench/scale.py and bench/hard.py map."""
    conn.execute("""
        CREATE TABLE bench_user (id bigint PRIMARY KEY);
        CREATE TABLE bench_item (id bigint PRIMARY KEY, title text NOT NULL, cluster integer NOT NULL);
        CREATE TABLE bench_event (id bigserial PRIMARY KEY, user_id bigint NOT NULL, item_id bigint NOT NULL,
                                  kind text NOT NULL, at timestamptz NOT NULL);
        CREATE EXTENSION recvector CASCADE;""")
    with conn.cursor() as cur:
        with cur.copy("COPY bench_user (id) FROM STDIN") as cp:
            for u in range(1, users + 1):
                cp.write_row((u,))
        with cur.copy("COPY bench_item (id, title, cluster) FROM STDIN") as cp:
            for i in range(len(labels)):
                cp.write_row((i + 1, f"item {i + 1} of cluster {labels[i]}", int(labels[i])))
        now = datetime.now(timezone.utc).timestamp()
        with cur.copy("COPY bench_event (user_id, item_id, kind, at) FROM STDIN") as cp:
            for u, i, k, ago in history:
                cp.write_row((u, i, k, datetime.fromtimestamp(now - ago, timezone.utc)))
    conn.execute("CREATE INDEX ON bench_event (user_id)")
    conn.execute("ANALYZE bench_user; ANALYZE bench_item; ANALYZE bench_event")


def make_vectors(n: int, clusters: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (float32, n x 384) and each one's cluster."""
    centers = rng.normal(size=(clusters, LATENT)).astype(np.float32)
    w = rng.normal(size=(LATENT, DIM)).astype(np.float32) / np.sqrt(LATENT)
    labels = rng.integers(0, clusters, size=n)
    out = np.empty((n, DIM), dtype=np.float32)
    step = 100_000
    for a in range(0, n, step):
        b = min(n, a + step)
        z = centers[labels[a:b]] + 0.45 * rng.normal(size=(b - a, LATENT)).astype(np.float32)
        x = z @ w
        x += 0.25 * np.linalg.norm(x, axis=1, keepdims=True) / np.sqrt(DIM) * rng.normal(size=(b - a, DIM)).astype(np.float32)
        out[a:b] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out, labels


def make_histories(n: int, labels: np.ndarray, users: int, rng: np.random.Generator
                   ) -> list[tuple[int, int, str, float]]:
    """(user, item, kind, seconds ago) rows: each user draws from 1-3 clusters, items by Zipf popularity."""
    popularity = 1.0 / np.arange(1, n + 1) ** 1.1
    rng.shuffle(popularity)
    by_cluster: dict[int, np.ndarray] = {}
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(labels.max() + 2))
    for c in range(labels.max() + 1):
        by_cluster[c] = order[bounds[c]:bounds[c + 1]]
    cluster_pop = np.array([popularity[by_cluster[c]].sum() if len(by_cluster[c]) else 0.0
                            for c in range(labels.max() + 1)])
    cluster_pop /= cluster_pop.sum()
    rows: list[tuple[int, int, str, float]] = []
    kinds = np.array(["like", "view", "dislike"])
    for u in range(1, users + 1):
        cs = rng.choice(len(cluster_pop), size=rng.integers(1, 4), replace=False, p=cluster_pop)
        count = int(rng.integers(10, 41))
        for _ in range(count):
            members = by_cluster[int(rng.choice(cs))]
            p = popularity[members] / popularity[members].sum()
            item = int(members[rng.choice(len(members), p=p)]) + 1
            rows.append((u, item, str(kinds[rng.choice(3, p=[0.7, 0.25, 0.05])]), float(rng.uniform(0, 180 * 86400))))
    return rows


def _copy_vectors(conn: psycopg.Connection, vectors: np.ndarray) -> None:
    """Binary COPY into recvector.entity_vectors (pgvector's binary format: dim, 0, float4 big-endian)."""
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
    model = b"synthetic-gmm-384"
    with conn.cursor() as cur, cur.copy("COPY recvector.entity_vectors (entity_id, embedding, fingerprint, model) "
                                        "FROM STDIN WITH (FORMAT binary)") as cp:
        cp.write(header)
        step = 20_000
        for a in range(0, len(vectors), step):
            parts = []
            for i in range(a, min(len(vectors), a + step)):
                eid = str(i + 1).encode()
                vec = struct.pack("!hh", DIM, 0) + vectors[i].astype(">f4").tobytes()
                parts.append(struct.pack("!h", 4) + struct.pack("!i", len(eid)) + eid + struct.pack("!i", len(vec)) + vec
                             + struct.pack("!i", len(eid)) + eid + struct.pack("!i", len(model)) + model)
            cp.write(b"".join(parts))
        cp.write(struct.pack("!h", -1))


def mapping(strategy: str = "full", ef_search: int = 100, capture: str = "immediate") -> dict[str, Any]:
    return {
        "version": 1,
        "users": {"table": "public.bench_user", "id": "id"},
        "entities": {"table": "public.bench_item", "id": "id",
                     "features": [{"name": "title", "kind": "text", "column": "title"}]},
        "interactions": [
            {"name": "event", "table": "public.bench_event", "user_column": "user_id", "entity_column": "item_id",
             "timestamp_column": "at",
             "weight": {"by_type": {"column": "kind", "values": {"like": 1, "view": 0.3, "dislike": -1}}}},
        ],
        "aggregation": {"strategy": strategy, "capture": capture, "batch_threshold": 5, "half_life": "30 days"},
        "scoring": {"candidate_pool": 100, "ef_search": ef_search},
        "embedding": {"provider": "local", "model": "all-MiniLM-L6-v2", "dimensions": DIM},
    }


def load(conn: psycopg.Connection, n: int, users: int, res: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    clusters = max(50, n // 500)
    t0 = time.perf_counter()
    vectors, labels = make_vectors(n, clusters, rng)
    history = make_histories(n, labels, users, rng)
    res["data"] = {"entities": n, "clusters": clusters, "latent_dimensions": LATENT, "users": users,
                   "interactions": len(history), "generate_seconds": round(time.perf_counter() - t0, 1)}
    load_app_tables(conn, users, labels, history)
    conn.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(mapping()),))
    # Precomputed vectors: load without the index, then build it (what a bulk bootstrap does).
    conn.execute("DROP INDEX recvector.entity_vectors_embedding_hnsw")
    t0 = time.perf_counter()
    _copy_vectors(conn, vectors)
    load_s = time.perf_counter() - t0
    conn.execute("SET maintenance_work_mem = '4GB'")
    t0 = time.perf_counter()
    conn.execute("SELECT recvector.repair()")  # creates the HNSW index as set_schema does
    build_s = time.perf_counter() - t0
    conn.execute("ANALYZE recvector.entity_vectors")
    t0 = time.perf_counter()
    stats = conn.execute("SELECT recvector.rebuild_entity_stats()").fetchone()[0]
    profiles = conn.execute("SELECT recvector.rebuild_profiles()").fetchone()[0]
    prof_s = time.perf_counter() - t0
    res["load"] = {"copy_vectors_seconds": round(load_s, 1), "vectors_per_second_copy": round(n / load_s),
                   "hnsw_build_seconds": round(build_s, 1), "hnsw_build_entities_per_minute": round(n / build_s * 60),
                   "entity_stats": stats, "profiles": profiles, "stats_and_profiles_seconds": round(prof_s, 1)}
    return vectors, labels


# ----------------------------------------------------------------------------- figures

def recall(conn: psycopg.Connection, vectors: np.ndarray, queries: int, ef_values: list[int]) -> dict[str, Any]:
    rows = conn.execute("SELECT user_id, embedding::text FROM recvector.rec_user_profiles "
                        "WHERE embedding IS NOT NULL ORDER BY md5(user_id) LIMIT %s", (queries,)).fetchall()
    users = [u for u, _ in rows]
    q = np.array([json.loads(t) for _, t in rows], dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact = []
    for a in range(0, len(q), 100):
        sims = q[a:a + 100] @ vectors.T
        top = np.argpartition(-sims, 10, axis=1)[:, :10]
        exact += [set((top[i] + 1).astype(str)) for i in range(len(top))]
    out: dict[str, Any] = {"queries": len(q), "bare_hnsw": {}, "rec_recommend": {}}
    for ef in ef_values:
        conn.execute(f"SET hnsw.ef_search = {ef}")
        hits, times = 0, []
        for (_, text), ex in zip(rows, exact):
            t0 = time.perf_counter()
            got = conn.execute("SELECT entity_id FROM recvector.entity_vectors ORDER BY embedding <=> %s::vector "
                               "LIMIT 10", (text,)).fetchall()
            times.append((time.perf_counter() - t0) * 1000)
            hits += len(ex & {g for g, in got})
        out["bare_hnsw"][str(ef)] = {"recall_at_10": round(hits / (10 * len(q)), 4), "latency_ms": percentiles(times)}
    conn.execute("RESET hnsw.ef_search")
    # The product's own path: rec_recommend ranking by similarity only (beta 0, no MMR, nothing
    # excluded), candidate_pool 100, with scoring.ef_search set to each value.
    for ef in ef_values:
        conn.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(mapping(ef_search=ef)),))
        hits, times = 0, []
        for u, ex in zip(users, exact):
            t0 = time.perf_counter()
            got = conn.execute("SELECT entity_id FROM rec_recommend(%s, 10, 1.0, beta => 0, exclude_seen => false)",
                               (u,)).fetchall()
            times.append((time.perf_counter() - t0) * 1000)
            hits += len(ex & {g for g, in got})
        out["rec_recommend"][str(ef)] = {"recall_at_10": round(hits / (10 * len(q)), 4), "latency_ms": percentiles(times)}
    conn.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(mapping()),))
    return out


def latency(conn: psycopg.Connection, users: int, samples: int) -> dict[str, Any]:
    rnd = np.random.default_rng(7)
    pick = lambda: str(int(rnd.integers(1, users + 1)))  # noqa: E731
    profiles = dict(conn.execute("SELECT user_id, embedding::text FROM recvector.rec_user_profiles "
                                 "WHERE embedding IS NOT NULL").fetchall())
    keys = list(profiles)
    q = {
        "bare pgvector k=10 (ef_search 40)": lambda: conn.execute(
            "SELECT entity_id FROM recvector.entity_vectors ORDER BY embedding <=> %s::vector LIMIT 10",
            (profiles[keys[int(rnd.integers(len(keys)))]],)).fetchall(),
        "bare pgvector k=100 (ef_search 100): the shape of rec_recommend's pool query": lambda: conn.execute(
            "SELECT entity_id FROM recvector.entity_vectors ORDER BY embedding <=> %s::vector LIMIT 100",
            (profiles[keys[int(rnd.integers(len(keys)))]],)).fetchall(),
        "rec_recommend k=10, lambda=1": lambda: conn.execute("SELECT * FROM rec_recommend(%s, 10, 1.0)", (pick(),)).fetchall(),
        "rec_recommend k=10, lambda=0.7 (MMR)": lambda: conn.execute("SELECT * FROM rec_recommend(%s, 10, 0.7)", (pick(),)).fetchall(),
        "rec_recommend k=10, MMR + exploration 0.1": lambda: conn.execute(
            "SELECT * FROM rec_recommend(%s, 10, 0.7, exploration => 0.1)", (pick(),)).fetchall(),
        "rec_recommend cold start": lambda: conn.execute("SELECT * FROM rec_recommend('nobody', 10)").fetchall(),
        "rec_similar k=10": lambda: conn.execute("SELECT * FROM rec_similar(%s, 10)", (pick(),)).fetchall(),
        "update_user_profile (full recompute)": lambda: conn.execute(
            "SELECT recvector.update_user_profile(%s)", (pick(),)).fetchall(),
    }
    out = {}
    for name, fn in q.items():
        if "ef_search 100" in name:
            conn.execute("SET hnsw.ef_search = 100")
        out[name] = timed(fn, samples)
        conn.execute("RESET hnsw.ef_search")
    return out


def writes(conn: psycopg.Connection, n: int, users: int, samples: int) -> dict[str, Any]:
    rnd = np.random.default_rng(11)

    def one_insert() -> None:
        conn.execute("INSERT INTO bench_event (user_id, item_id, kind, at) VALUES (%s, %s, 'like', now())",
                     (int(rnd.integers(1, users + 1)), int(rnd.integers(1, n + 1))))

    out: dict[str, Any] = {"insert_ms": {"auto-logging off": timed(one_insert, samples)}}
    conn.execute("SELECT recvector.enable_auto_logging()")
    out["insert_ms"]["auto-logging on, full"] = timed(one_insert, samples)
    conn.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(mapping("incremental")),))
    out["insert_ms"]["auto-logging on, incremental"] = timed(one_insert, samples)
    for strategy in ("full", "incremental"):
        conn.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(mapping(strategy, capture="deferred")),))
        out["insert_ms"][f"auto-logging on, {strategy}, deferred"] = timed(one_insert, samples)
        out[f"fold_{strategy}"] = fold_all(conn)
    conn.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(mapping("full")),))
    off = out["insert_ms"]["auto-logging off"]["median"]
    out["insert_overhead_median"] = {k: round(v["median"] / off, 2) for k, v in out["insert_ms"].items()}
    conn.execute("INSERT INTO recvector.queue (kind, key) SELECT 'profile', id::text FROM bench_user "
                 "WHERE id <= 2000 ON CONFLICT DO NOTHING")
    out["queue_drain"] = drain_queue(conn, 200)
    return out


def storage(conn: psycopg.Connection) -> dict[str, Any]:
    r = conn.execute("""
        SELECT (SELECT avg(pg_column_size(p.*))::int FROM recvector.rec_user_profiles p WHERE embedding IS NOT NULL),
               pg_total_relation_size('recvector.entity_vectors'), pg_relation_size('recvector.entity_vectors_embedding_hnsw'),
               pg_relation_size('recvector.entity_vectors'), (SELECT count(*) FROM recvector.entity_vectors)""").fetchone()
    return {"profile_row_bytes": r[0], "profile_row_vs_4xD": round(r[0] / (4 * DIM), 3),
            "entity_table_bytes_per_entity": round(r[3] / r[4]), "entity_total_bytes_per_entity": round(r[1] / r[4]),
            "hnsw_bytes_per_entity": round(r[2] / r[4]), "hnsw_index_mib": round(r[2] / 2 ** 20, 1)}


def _folder(dsn: str, stop: threading.Event, seen: dict[str, int]) -> None:
    """The worker of a deferred load run: folds what is pending, as `recvector worker` does."""
    with psycopg.connect(dsn, autocommit=True) as c:
        while not stop.is_set():
            seen["max_pending"] = max(seen["max_pending"],
                                      c.execute("SELECT count(*) FROM recvector.pending_interactions").fetchone()[0])
            if c.execute("SELECT recvector.fold_pending(10000)").fetchone()[0] == 0:
                stop.wait(0.5)


def load_run(dsn: str, n: int, users: int, seconds: int, clients: int, capture: str = "immediate") -> dict[str, Any]:
    """pgbench: clients mixing rec_recommend and interaction inserts 9:1; counts reconciled after.
    With deferred capture a worker thread folds the pending interactions during the run (and once
    more after it), and the counts are reconciled after that last fold."""
    pgbench = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(mapping("full", capture=capture)),))
        c.execute("SELECT recvector.enable_auto_logging()")
        before = c.execute("SELECT (SELECT count(*) FROM bench_event), "
                           "(SELECT coalesce(sum(interaction_count_since_update), 0) FROM recvector.rec_user_profiles), "
                           "(SELECT coalesce(sum((feedback_counts->>'like')::int), 0) FROM recvector.rec_entity_stats)").fetchone()
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp, "rec.sql")
        rec.write_text(f"\\set u random(1, {users})\nSELECT count(*) FROM rec_recommend(:u::text, 10);\n")
        ins = Path(tmp, "ins.sql")
        ins.write_text(f"\\set u random(1, {users})\n\\set i random(1, {n})\n"
                       "INSERT INTO bench_event (user_id, item_id, kind, at) VALUES (:u, :i, 'like', now());\n")
        params = conninfo_to_dict(dsn)
        cmd = [pgbench, "-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds), "-M", "prepared",
               "-f", f"{rec}@9", "-f", f"{ins}@1", "-l", "--log-prefix", str(Path(tmp, "log")),
               "-h", params.get("host", "127.0.0.1"), "-p", str(params.get("port", 5432)),
               "-U", params.get("user", "postgres"), params["dbname"]]
        stop, seen = threading.Event(), {"max_pending": 0}
        folder = threading.Thread(target=_folder, args=(dsn, stop, seen))
        if capture == "deferred":
            folder.start()
        p = subprocess.run(cmd, capture_output=True, text=True)
        stop.set()
        if capture == "deferred":
            folder.join()
        if p.returncode:
            raise RuntimeError(f"pgbench failed: {p.stderr[-2000:]}")
        lat: dict[int, list[float]] = {0: [], 1: []}
        for log in Path(tmp).glob("log*"):
            for line in log.read_text().splitlines():
                f = line.split()
                # client_id transaction_no time script_no time_epoch time_us
                lat[int(f[3])].append(int(f[2]) / 1000)
    m = re.search(r"number of failed transactions: (\d+)", p.stdout)
    failed = int(m.group(1)) if m else 0
    tps = float(re.search(r"tps = ([\d.]+)", p.stdout).group(1))
    with psycopg.connect(dsn, autocommit=True) as c:
        pending_at_end = c.execute("SELECT count(*) FROM recvector.pending_interactions").fetchone()[0]
        while c.execute("SELECT recvector.fold_pending(10000)").fetchone()[0]:
            pass
        after = c.execute("SELECT (SELECT count(*) FROM bench_event), "
                          "(SELECT coalesce(sum(interaction_count_since_update), 0) FROM recvector.rec_user_profiles), "
                          "(SELECT coalesce(sum((feedback_counts->>'like')::int), 0) FROM recvector.rec_entity_stats)").fetchone()
        c.execute("SELECT recvector.disable_auto_logging()")
    inserted = len(lat[1])
    return {
        "capture": capture, **({"max_pending_seen": seen["max_pending"], "pending_at_end": pending_at_end}
                               if capture == "deferred" else {}),
        "clients": clients, "seconds": seconds, "tps": tps, "failed_transactions": failed,
        "rec_recommend_ms": percentiles(lat[0]) if lat[0] else None,
        "insert_ms": percentiles(lat[1]) if lat[1] else None,
        "inserts": inserted, "recommendations": len(lat[0]),
        "reconciled": {"events_added": after[0] - before[0], "profile_counters_added": int(after[1] - before[1]),
                       "like_counts_added": int(after[2] - before[2])},
        "counts_reconcile": after[0] - before[0] == inserted == int(after[1] - before[1]) == int(after[2] - before[2]),
    }


def run(dsn: str, n: int, users: int, samples: int, queries: int, load_seconds: int, keep: bool) -> dict[str, Any]:
    database = f"recvector_bench_{n}"
    admin_dsn = make_conninfo(dsn, dbname=conninfo_to_dict(dsn).get("dbname") or "postgres")
    bench_dsn = make_conninfo(dsn, dbname=database)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    res: dict[str, Any] = {"recvector": __version__, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "machine": machine(), "samples": samples}
    started = time.perf_counter()
    with psycopg.connect(bench_dsn, autocommit=True) as c:
        res["postgresql"] = c.execute("SHOW server_version").fetchone()[0]
        vectors, _ = load(c, n, users, res)
        res["pgvector"] = c.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        res["hnsw_options"] = c.execute("SELECT reloptions FROM pg_class WHERE relname = 'entity_vectors_embedding_hnsw'").fetchone()[0]
        res["candidate_pool_default"] = c.execute("SELECT document->'scoring'->>'candidate_pool' FROM recvector.mapping").fetchone()[0]
        res["ef_search_default"] = c.execute("SELECT document->'scoring'->>'ef_search' FROM recvector.mapping").fetchone()[0]
        res["recall"] = recall(c, vectors, queries, [40, 100, 200, 400, 800])
        del vectors
        res["latency_ms"] = latency(c, users, samples)
        lat = res["latency_ms"]
        bare = lat["bare pgvector k=10 (ef_search 40)"]["median"]
        pool = lat["bare pgvector k=100 (ef_search 100): the shape of rec_recommend's pool query"]["median"]
        res["overhead_vs_bare_median"] = {f"{k} / bare k=10 ef 40": round(v["median"] / bare, 2)
                                          for k, v in lat.items() if k.startswith("rec_recommend")}
        res["overhead_vs_bare_median"].update({f"{k} / bare k=100 ef 100": round(v["median"] / pool, 2)
                                               for k, v in lat.items() if k.startswith("rec_recommend k=10")})
        res.update(writes(c, n, users, samples))
        res["storage"] = storage(c)
    res["load_run"] = load_run(bench_dsn, n, users, load_seconds, clients=4)
    res["load_run_deferred"] = load_run(bench_dsn, n, users, load_seconds, clients=4, capture="deferred")
    res["total_seconds"] = round(time.perf_counter() - started, 1)
    if not keep:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    return res


def write(res: dict[str, Any]) -> Path:
    n = res["data"]["entities"]
    (DOCS / f"benchmarks-scale-{n}.json").write_text(json.dumps(res, indent=2) + "\n")
    m, d, ld = res["machine"], res["data"], res["load"]
    lines = [f"# Scale benchmark: {n:,} entities", "",
             "Written by `python -m bench.scale` (`make bench`: 100k, `make bench-full`: 1M); raw figures in "
             f"`benchmarks-scale-{n}.json`. Method in the module's docstring.", "",
             f"- date: {res['date']}; total run {res['total_seconds']} s",
             f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}",
             f"- PostgreSQL {res['postgresql']}, pgvector {res['pgvector']}, RecVector {res['recvector']}; "
             f"HNSW {', '.join(res['hnsw_options'] or [])}; scoring: candidate_pool {res['candidate_pool_default']}, "
             f"ef_search {res['ef_search_default']}",
             f"- data: {d['entities']:,} entities in {d['clusters']:,} clusters (latent dimension {d['latent_dimensions']}, "
             f"{DIM}-d), {d['users']:,} users, {d['interactions']:,} interactions",
             "", "## Recall@10 against exact search (profile vectors as queries)", "",
             f"{res['recall']['queries']} queries. Bare: `ORDER BY embedding <=> profile LIMIT 10` at each `hnsw.ef_search`; "
             "rec_recommend: similarity-only ranking (beta 0, lambda 1, nothing excluded), candidate_pool 100, "
             "scoring.ef_search at each value.", "",
             "| ef_search | bare HNSW recall | bare median / p95 ms | rec_recommend recall | rec_recommend median / p95 ms |",
             "|---:|---:|---:|---:|---:|"]
    for ef, v in res["recall"]["bare_hnsw"].items():
        rr = res["recall"]["rec_recommend"].get(ef, {})
        rl = rr.get("latency_ms", {})
        lines.append(f"| {ef} | {v['recall_at_10']} | {v['latency_ms']['median']} / {v['latency_ms']['p95']} | "
                     f"{rr.get('recall_at_10', '')} | {rl.get('median', '')} / {rl.get('p95', '')} |")
    lines += ["", "## Latency (ms, client round trip included)", "", "| operation | min | median | p95 | p99 |",
              "|---|---:|---:|---:|---:|"]
    for name, v in {**res["latency_ms"], **{f"INSERT one event, {k}": v for k, v in res["insert_ms"].items()}}.items():
        lines.append(f"| {name} | {v['min']} | {v['median']} | {v['p95']} | {v['p99']} |")
    lines += ["", "| ratio (medians) | value |", "|---|---:|"]
    for k, v in res["overhead_vs_bare_median"].items():
        lines.append(f"| {k} | {v}x |")
    for k, v in res["insert_overhead_median"].items():
        lines.append(f"| INSERT {k} / off | {v}x |")
    s, q, lr = res["storage"], res["queue_drain"], res["load_run"]
    lines += ["", "## Throughput and storage", "",
              f"- vectors loaded by binary COPY: {ld['vectors_per_second_copy']:,}/s; HNSW build: {ld['hnsw_build_seconds']} s "
              f"= {ld['hnsw_build_entities_per_minute']:,} entities/min",
              f"- entity stats + {ld['profiles']:,} profiles from history: {ld['stats_and_profiles_seconds']} s",
              f"- queue drain (full recomputes): {q['done']} profiles at {q['per_second']}/s",
              *[f"- deferred captures folded by the worker ({k}): {res[f'fold_{k}']['folded']} at {res[f'fold_{k}']['per_second']:,}/s"
                for k in ("full", "incremental") if res.get(f"fold_{k}")],
              f"- profile row {s['profile_row_bytes']} bytes ({s['profile_row_vs_4xD']} x 4 x {DIM}); entity: table "
              f"{s['entity_table_bytes_per_entity']} + all indexes = {s['entity_total_bytes_per_entity']} bytes, "
              f"HNSW {s['hnsw_bytes_per_entity']} bytes/entity ({s['hnsw_index_mib']} MiB in all)",
              ""]
    for lr in [res["load_run"], *([res["load_run_deferred"]] if res.get("load_run_deferred") else [])]:
        deferred = lr.get("capture") == "deferred"
        lines += [f"## Load run (pgbench, {lr['clients']} clients, {lr['seconds']} s, rec_recommend : INSERT = 9 : 1, "
                  f"capture {lr.get('capture', 'immediate')})", "",
                  *([f"- a worker folds the deferred captures during the run: at most {lr['max_pending_seen']:,} pending "
                     f"when it looked, {lr['pending_at_end']:,} at the end (folded before reconciling)"] if deferred else []),
                  f"- {round(lr['tps'], 1)} transactions/s, {lr['failed_transactions']} failed; {lr['recommendations']:,} recommendations, "
                  f"{lr['inserts']:,} inserts",
                  f"- rec_recommend ms: median {lr['rec_recommend_ms']['median']}, p99 {lr['rec_recommend_ms']['p99']}; "
                  f"INSERT ms: median {lr['insert_ms']['median']}, p99 {lr['insert_ms']['p99']}",
                  f"- counts reconcile exactly: {lr['counts_reconcile']} ({lr['reconciled']})", ""]
    out = DOCS / f"benchmarks-scale-{n}.md"
    out.write_text("\n".join(lines))
    return out


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scale")
    p.add_argument("--dsn", default=os.environ.get("RECVECTOR_DSN", ""))
    p.add_argument("--entities", type=int, default=100_000)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("-n", type=int, default=300, help="samples per latency figure")
    p.add_argument("--queries", type=int, default=1000, help="queries for recall")
    p.add_argument("--load-seconds", type=int, default=60)
    p.add_argument("--keep", action="store_true", help="keep the database recvector_bench_<N>")
    args = p.parse_args()
    res = run(args.dsn, args.entities, args.users, args.n, args.queries, args.load_seconds, args.keep)
    print(f"wrote {write(res)}")
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
