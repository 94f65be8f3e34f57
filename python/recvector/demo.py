"""`recvector demo`: the main job, end to end, on the Pagila sample the project carries.

Creates a fresh database, loads Pagila (examples/pagila/data), installs the extension, loads the
mapping examples/pagila/rec_schema.json, bootstraps with the local model (offline), then shows for a
few customers what they rented and what RecVector recommends, by title; then a live rental through
the opt-in auto-logging trigger, and a brand-new customer (cold start).
"""
from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .client import Client
from .errors import RecVectorError

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "pagila"
DEMO_CUSTOMERS = (1, 148, 526)


def _say(msg: str = "") -> None:
    print(msg, flush=True)


def load_sql(dsn: str, files: list[Path]) -> None:
    psql = shutil.which("psql")
    if psql is None:
        raise RecVectorError("psql is not on PATH", hint="Install postgresql-client (it loads the Pagila dump).")
    for f in files:
        data = gzip.decompress(f.read_bytes())
        proc = subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn],
                              input=data, capture_output=True)
        if proc.returncode != 0:
            raise RecVectorError(f"loading {f.name} failed: {proc.stderr.decode(errors='replace').strip()[:500]}")


def _rows(conn: psycopg.Connection, q: str, params: tuple = ()) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(q, params)
        return cur.fetchall()


def _categories(conn: psycopg.Connection, film_ids: list[int]) -> dict[int, str]:
    rows = _rows(conn, "SELECT fc.film_id, string_agg(c.name, '/' ORDER BY c.name) FROM film_category fc "
                       "JOIN category c USING (category_id) WHERE fc.film_id = ANY(%s) GROUP BY fc.film_id",
                 (film_ids,))
    return dict(rows)


def _show_customer(conn: psycopg.Connection, customer_id: int, say: Callable[[str], None],
                   k: int = 5) -> dict[str, Any]:
    name = _rows(conn, "SELECT first_name || ' ' || last_name FROM customer WHERE customer_id = %s", (customer_id,))
    rented = _rows(conn, "SELECT f.film_id, f.title FROM rental r JOIN inventory i USING (inventory_id) "
                         "JOIN film f USING (film_id) WHERE r.customer_id = %s "
                         "ORDER BY r.rental_date DESC, f.film_id LIMIT 6", (customer_id,))
    recs = _rows(conn, "SELECT r.entity_id::int, f.title, r.score FROM rec_recommend(%s, %s) r "
                       "JOIN film f ON f.film_id = r.entity_id::int", (customer_id, k))
    cats = _categories(conn, [r[0] for r in rented] + [r[0] for r in recs])
    who = name[0][0].title() if name else f"customer {customer_id}"
    say(f"\nCustomer {customer_id} ({who})")
    say("  recently rented:")
    for fid, title in rented:
        say(f"    {title.title():<28} {cats.get(fid, '')}")
    say("  recommended:")
    for fid, title, score in recs:
        say(f"    {title.title():<28} {cats.get(fid, ''):<14} score {score:.3f}")
    return {"customer_id": customer_id, "rented": [t for _, t in rented],
            "recommended": [{"film_id": f, "title": t, "score": s} for f, t, s in recs]}


def run_demo(dsn: str = "", *, database: str = "recvector_demo", json_output: bool = False) -> int:
    mapping_file = EXAMPLE_DIR / "rec_schema.json"
    data = [EXAMPLE_DIR / "data" / "pagila-schema.sql.gz", EXAMPLE_DIR / "data" / "pagila-data.sql.gz"]
    for f in [mapping_file, *data]:
        if not f.is_file():
            raise RecVectorError(f"demo file {f} is missing", hint="Run the demo from a RecVector source checkout.")
    say: Callable[[str], None] = (lambda m="": None) if json_output else _say

    params = conninfo_to_dict(dsn)
    admin_dsn = make_conninfo(dsn, dbname=params.get("dbname") or "postgres")
    demo_dsn = make_conninfo(dsn, dbname=database)
    say(f"==> creating database {database}")
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    say("==> loading the Pagila sample (1,000 films, 599 customers, 16,044 rentals)")
    load_sql(demo_dsn, data)

    notices: list[str] = []

    def on_notice(msg: str) -> None:
        notices.append(msg)
        say(f"    {msg}")

    report: dict[str, Any] = {"database": database}
    with Client.connect(demo_dsn, on_notice=on_notice) as c:
        say("==> CREATE EXTENSION recvector CASCADE")
        report["version"] = c.install()
        say(f"==> SELECT recvector.set_schema(<{mapping_file.relative_to(EXAMPLE_DIR.parents[1])}>)")
        report["mapping"] = c.set_schema(mapping_file.read_text(encoding="utf-8"))
        say("==> SELECT recvector.bootstrap()   -- local all-MiniLM-L6-v2, no network")
        report["bootstrap"] = c.bootstrap(resumable=False)
        conn = c.conn
        report["customers"] = [_show_customer(conn, cid, say) for cid in DEMO_CUSTOMERS]

        film = _rows(conn, "SELECT film_id, title FROM film WHERE film_id = 1")[0]
        sims = _rows(conn, "SELECT f.title, s.score FROM rec_similar(%s, 5) s JOIN film f ON f.film_id = s.entity_id::int",
                     (film[0],))
        say(f"\nFilms like {film[1].title()} (rec_similar):")
        for title, score in sims:
            say(f"    {title.title():<28} similarity {score:.3f}")
        report["similar"] = {"film": film[1], "similar": [t for t, _ in sims]}

        say("\n==> SELECT recvector.enable_auto_logging()   -- opt-in trigger on rental")
        c.rows("SELECT recvector.enable_auto_logging()")
        cid = DEMO_CUSTOMERS[0]
        threshold = int(report["mapping"] and _rows(
            conn, "SELECT document -> 'aggregation' ->> 'batch_threshold' FROM recvector.mapping")[0][0])
        new_films = _rows(conn, "SELECT r.entity_id::int FROM rec_recommend(%s, %s) r", (cid, threshold))
        with conn.transaction():
            for (fid,) in new_films:
                conn.execute("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) "
                             "SELECT now(), min(inventory_id), %s, 1 FROM inventory WHERE film_id = %s", (cid, fid))
        counter = _rows(conn, "SELECT interaction_count_since_update FROM recvector.rec_user_profiles WHERE user_id = %s",
                        (str(cid),))[0][0]
        say(f"    the app inserted {len(new_films)} rentals for customer {cid} in one statement each: "
            f"counter {counter} (batch threshold {threshold}) -> profile update queued")
        done = c.process_queue()
        say(f"==> SELECT recvector.process_queue()   -- {done} profile(s) recomputed off the insert path")
        report["after_rentals"] = _show_customer(conn, cid, say)

        conn.execute("INSERT INTO customer (store_id, first_name, last_name, email, address_id, active) "
                     "VALUES (1, 'NEW', 'VISITOR', 'new.visitor@example.com', 1, 1)")
        new_id = _rows(conn, "SELECT max(customer_id) FROM customer")[0][0]
        cold = _rows(conn, "SELECT f.title FROM rec_recommend(%s, 5) r JOIN film f ON f.film_id = r.entity_id::int",
                     (new_id,))
        say(f"\nNew customer {new_id} with no rentals (cold start: most rented films):")
        for (title,) in cold:
            say(f"    {title.title()}")
        report["cold_start"] = [t for (t,) in cold]
        c.rows("SELECT recvector.disable_auto_logging()")
    if json_output:
        print(json.dumps(report, indent=2, default=str))
    else:
        say(f"\nDone. Explore it: psql -d {database} -c 'SELECT * FROM rec_recommend(1, 10)'")
    return 0


if __name__ == "__main__":
    sys.exit(run_demo())
