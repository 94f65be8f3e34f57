"""`make bench`: latency and throughput of RecVector on the Pagila sample, written to
docs/benchmarks.md and docs/benchmarks.json (machine, date, versions, min/median/p95/p99).

Not a test: nothing here asserts a time. Scale benchmarks (100k-1M entities) are a separate job.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from recvector import __version__
from recvector.demo import EXAMPLE_DIR, load_sql

from .common import DOCS, drain_queue, fold_all, machine, timed



def bootstrap_chinook(dsn: str, script: Path) -> dict[str, Any]:
    """Bootstrap throughput with the local model on Chinook's 3,503 tracks (short texts), when the
    Chinook script is at hand (``--chinook``: ../shared/datasets/chinook in this workplace)."""
    import subprocess

    database = "recvector_bench_chinook"
    admin_dsn = make_conninfo(dsn, dbname=conninfo_to_dict(dsn).get("dbname") or "postgres")
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    body = "\n".join(ln for ln in script.read_text(encoding="utf-8").splitlines()
                     if not ln.lstrip().upper().startswith(("DROP DATABASE", "CREATE DATABASE", "\\C ")))
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", make_conninfo(dsn, dbname=database)],
                   input=body.encode(), check=True, capture_output=True)
    try:
        with psycopg.connect(make_conninfo(dsn, dbname=database), autocommit=True) as c:
            c.execute("CREATE EXTENSION recvector CASCADE")
            c.execute("SELECT recvector.set_schema(%s::jsonb)",
                      ((EXAMPLE_DIR.parent / "chinook" / "rec_schema.json").read_text(),))
            t0 = time.perf_counter()
            boot = c.execute("SELECT recvector.bootstrap()").fetchone()[0]
            secs = time.perf_counter() - t0
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    return {"entities": boot["embedded"], "seconds": round(secs, 2), "entities_per_minute": round(boot["embedded"] / secs * 60),
            "profiles": boot["profiles"]}


def run(dsn: str, database: str, n: int) -> dict[str, Any]:
    params = conninfo_to_dict(dsn)
    admin_dsn = make_conninfo(dsn, dbname=params.get("dbname") or "postgres")
    bench_dsn = make_conninfo(dsn, dbname=database)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    load_sql(bench_dsn, [EXAMPLE_DIR / "data" / "pagila-schema.sql.gz", EXAMPLE_DIR / "data" / "pagila-data.sql.gz"])
    res: dict[str, Any] = {"recvector": __version__, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "machine": machine(), "dataset": "Pagila: 1,000 films, 599 customers, 16,044 rentals",
                           "samples": n}
    rnd = random.Random(7)
    with psycopg.connect(bench_dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION recvector CASCADE")
        res["postgresql"] = c.execute("SHOW server_version").fetchone()[0]
        res["pgvector"] = c.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        summary = c.execute("SELECT recvector.set_schema(%s::jsonb)",
                            ((EXAMPLE_DIR / "rec_schema.json").read_text(),)).fetchone()[0]

        t0 = time.perf_counter()
        boot = c.execute("SELECT recvector.bootstrap()").fetchone()[0]
        secs = time.perf_counter() - t0
        res["bootstrap"] = {"seconds": round(secs, 2), "embed_seconds_note": "includes model load, stats and profiles",
                            "entities_per_minute": round(boot["embedded"] / secs * 60),
                            "profiles": boot["profiles"]}
        users = [str(u) for u in range(1, 600)]
        pick = lambda: rnd.choice(users)  # noqa: E731
        profiles = {u: v for u, v in c.execute("SELECT user_id, embedding::text FROM recvector.rec_user_profiles")}

        q = {
            "rec_recommend k=10, lambda=1 (no MMR)": lambda: c.execute(
                "SELECT * FROM rec_recommend(%s, 10, 1.0)", (pick(),)).fetchall(),
            "rec_recommend k=10, lambda=0.7 (MMR)": lambda: c.execute(
                "SELECT * FROM rec_recommend(%s, 10, 0.7)", (pick(),)).fetchall(),
            "rec_recommend k=10, MMR + exploration 0.1": lambda: c.execute(
                "SELECT * FROM rec_recommend(%s, 10, 0.7, exploration => 0.1)", (pick(),)).fetchall(),
            "rec_recommend cold start (popularity)": lambda: c.execute(
                "SELECT * FROM rec_recommend('nobody', 10)").fetchall(),
            "bare pgvector: ORDER BY embedding <=> profile LIMIT 10": lambda: c.execute(
                "SELECT entity_id FROM recvector.entity_vectors ORDER BY embedding <=> %s::vector LIMIT 10",
                (profiles[pick()],)).fetchall(),
            "rec_similar k=10": lambda: c.execute(
                "SELECT * FROM rec_similar(%s, 10)", (str(rnd.randint(1, 1000)),)).fetchall(),
            "recvector.update_user_profile (full recompute)": lambda: c.execute(
                "SELECT recvector.update_user_profile(%s)", (pick(),)).fetchall(),
        }
        res["latency_ms"] = {name: timed(fn, n) for name, fn in q.items()}
        # Pagila has no index on rental.customer_id; set_schema advises one. With it:
        for stmt in summary["index_advice"]:
            c.execute(stmt)
        res["index_advice_applied"] = summary["index_advice"]
        for name in ("rec_recommend k=10, lambda=1 (no MMR)", "rec_recommend k=10, lambda=0.7 (MMR)",
                     "recvector.update_user_profile (full recompute)"):
            res["latency_ms"][f"{name}, with advised index"] = timed(q[name], n)
        bare = res["latency_ms"]["bare pgvector: ORDER BY embedding <=> profile LIMIT 10"]["median"]
        res["overhead_vs_bare_hnsw_median"] = {
            name: round(v["median"] / bare, 1) for name, v in res["latency_ms"].items() if name.startswith("rec_recommend")}

        insert = ("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) "
                  "VALUES (%s, %s, %s, 1)")
        stamp = [datetime(2031, 1, 1, tzinfo=timezone.utc).timestamp()]

        def one_insert() -> None:
            stamp[0] += 1
            c.execute(insert, (datetime.fromtimestamp(stamp[0], timezone.utc), rnd.randint(1, 4581), int(pick())))

        res["insert_ms"] = {"auto-logging off": timed(one_insert, n)}
        c.execute("SELECT recvector.enable_auto_logging()")
        res["insert_ms"]["auto-logging on, full"] = timed(one_insert, n)
        c.execute("INSERT INTO recvector.queue (kind, key) SELECT 'profile', user_id FROM recvector.rec_user_profiles "
                  "ON CONFLICT DO NOTHING")
        res["queue_drain"] = drain_queue(c, 100)
        doc = c.execute("SELECT document FROM recvector.mapping").fetchone()[0]
        doc["aggregation"]["strategy"] = "incremental"
        c.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
        res["insert_ms"]["auto-logging on, incremental"] = timed(one_insert, n)
        for strategy in ("full", "incremental"):
            doc["aggregation"].update(strategy=strategy, capture="deferred")
            c.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
            res["insert_ms"][f"auto-logging on, {strategy}, deferred"] = timed(one_insert, n)
            res[f"fold_{strategy}"] = fold_all(c)
        c.execute("SELECT recvector.disable_auto_logging()")
        off = res["insert_ms"]["auto-logging off"]["median"]
        res["insert_overhead_median"] = {k: round(v["median"] / off, 2) for k, v in res["insert_ms"].items()}

        sizes = c.execute("""
            SELECT (SELECT avg(pg_column_size(p.*))::int FROM recvector.rec_user_profiles p WHERE embedding IS NOT NULL),
                   (SELECT avg(pg_column_size(v.*))::int FROM recvector.entity_vectors v),
                   pg_total_relation_size('recvector.entity_vectors'),
                   pg_relation_size('recvector.entity_vectors_embedding_hnsw'),
                   (SELECT count(*) FROM recvector.entity_vectors)""").fetchone()
        res["storage"] = {"profile_row_bytes": sizes[0], "profile_row_vs_4xD": round(sizes[0] / (4 * 384), 2),
                          "entity_vector_row_bytes": sizes[1],
                          "entity_vectors_total_bytes_per_entity": round(sizes[2] / sizes[4]),
                          "hnsw_index_bytes_per_entity": round(sizes[3] / sizes[4])}
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    return res


def write(res: dict[str, Any]) -> None:
    DOCS.mkdir(exist_ok=True)
    (DOCS / "benchmarks.json").write_text(json.dumps(res, indent=2) + "\n")
    m = res["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench.pagila`); the raw figures are in `benchmarks.json`.",
        "Tests never assert times; this file is where speed is recorded. Scale runs: [100k](benchmarks-scale-100000.md)",
        "and [1M](benchmarks-scale-1000000.md) entities; targets and analysis in [performance.md](performance.md).",
        "",
        f"- date: {res['date']}",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}",
        f"- PostgreSQL {res['postgresql']}, pgvector {res['pgvector']}, RecVector {res['recvector']}",
        f"- data: {res['dataset']}; {res['samples']} samples per figure after 5 warm-up calls",
        "",
        "## Latency (ms, client round trip included)",
        "",
        "| operation | min | median | p95 | p99 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, v in {**res["latency_ms"], **{f"INSERT one rental, {k}": v for k, v in res["insert_ms"].items()}}.items():
        lines.append(f"| {name} | {v['min']} | {v['median']} | {v['p95']} | {v['p99']} |")
    lines += ["", "## Ratios", "", "| figure | value |", "|---|---:|"]
    for k, v in res["overhead_vs_bare_hnsw_median"].items():
        lines.append(f"| {k} / bare HNSW query (median) | {v}x |")
    for k, v in res["insert_overhead_median"].items():
        lines.append(f"| INSERT, {k} / auto-logging off (median) | {v}x |")
    b, q, s = res["bootstrap"], res["queue_drain"], res["storage"]
    lines += [
        "",
        "## Throughput and storage",
        "",
        f"- bootstrap with the local model (1,000 films, long texts, fp32, 2 cores): {b['seconds']} s "
        f"= {b['entities_per_minute']} entities/min, including model load, stats and {b['profiles']} profiles",
        *([f"- bootstrap with the local model on Chinook ({res['bootstrap_chinook']['entities']:,} tracks, short texts): "
           f"{res['bootstrap_chinook']['seconds']} s = {res['bootstrap_chinook']['entities_per_minute']} entities/min, "
           f"including model load, stats and {res['bootstrap_chinook']['profiles']} profiles"]
          if res.get("bootstrap_chinook") else []),
        f"- queue drain (full recomputes, advised index present): {q['done']} profiles at {q['per_second']}/s",
        *[f"- deferred captures folded by the worker ({k}): {res[f'fold_{k}']['folded']} at {res[f'fold_{k}']['per_second']:,}/s"
          for k in ("full", "incremental") if res.get(f"fold_{k}")],
        f"- index advice applied for the rows marked *with advised index*: `{'`, `'.join(res['index_advice_applied'])}`",
        f"- profile row: {s['profile_row_bytes']} bytes ({s['profile_row_vs_4xD']} x 4 bytes x 384)",
        f"- entity vector row: {s['entity_vector_row_bytes']} bytes; table + indexes "
        f"{s['entity_vectors_total_bytes_per_entity']} bytes/entity, of which HNSW {s['hnsw_index_bytes_per_entity']}",
        "",
    ]
    (DOCS / "benchmarks.md").write_text("\n".join(lines))


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pagila")
    p.add_argument("--dsn", default=os.environ.get("RECVECTOR_DSN", ""))
    p.add_argument("--database", default="recvector_bench")
    p.add_argument("-n", type=int, default=300, help="samples per figure")
    p.add_argument("--chinook", type=Path, help="Chinook_PostgreSql.sql: also time a bootstrap of its 3,503 tracks")
    args = p.parse_args()
    res = run(args.dsn, args.database, args.n)
    if args.chinook and args.chinook.is_file():
        res["bootstrap_chinook"] = bootstrap_chinook(args.dsn, args.chinook)
    write(res)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
