"""Hash-partitioned aggregate tables (setting recvector.partitions, read at CREATE EXTENSION and
ALTER EXTENSION UPDATE): the same results as plain tables under both strategies, pg_dump/restore,
switching layouts on an update with every row kept, and a bad setting refused."""
from __future__ import annotations

import subprocess
import uuid
from contextlib import contextmanager
from typing import Iterator

import psycopg
import pytest

import tiny
from conftest import dsn, one
from test_upgrade import _build_module, _extension_dir

EVENTS = [(u, i, k) for u in range(1, 9) for i, k in ((1 + u % 5, "like"), (1 + (u * 2) % 5, "view"),
                                                      (1 + (u * 3) % 5, "dislike" if u % 3 == 0 else "like"))]


@contextmanager
def database(partitions: str | None) -> Iterator[psycopg.Connection]:
    name = f"rv_test_part_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        if partitions is not None:
            admin.execute(f"ALTER DATABASE \"{name}\" SET recvector.partitions = '{partitions}'")
    try:
        with psycopg.connect(dsn(name), autocommit=True) as conn:
            yield conn
    finally:
        with psycopg.connect(dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def layout(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("""
        SELECT c.relname::text, CASE c.relkind WHEN 'p' THEN (SELECT count(*) FROM pg_inherits WHERE inhparent = c.oid)::int
                                               ELSE 1 END
        FROM pg_class c WHERE c.oid IN ('recvector.rec_user_profiles'::regclass, 'recvector.rec_entity_stats'::regclass)
        """).fetchall())


def state(conn: psycopg.Connection) -> tuple:
    profiles = conn.execute("SELECT user_id, embedding::text, interaction_count_since_update, round(accumulated_weight::numeric, 9), "
                            "version FROM recvector.rec_user_profiles ORDER BY 1").fetchall()
    stats = conn.execute("SELECT entity_id, feedback_counts, popularity FROM recvector.rec_entity_stats ORDER BY 1").fetchall()
    recs = [conn.execute("SELECT entity_id, round(score::numeric, 9) FROM rec_recommend(%s, 3)", (u,)).fetchall()
            for u in range(1, 10)]
    return profiles, stats, recs


def load(conn: psycopg.Connection, strategy: str) -> None:
    tiny.setup(conn, strategy)
    conn.execute("SELECT recvector.enable_auto_logging()")
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO event (user_id, item_id, kind, at) VALUES (%s, %s, %s, '{tiny.T0}')", EVENTS)
    conn.execute("SELECT recvector.process_queue()")


@pytest.mark.parametrize("strategy", ["full", "incremental"])
def test_partitioned_tables_give_the_same_results(strategy):
    with database(None) as plain, database("4") as parted:
        load(plain, strategy)
        load(parted, strategy)
        assert layout(plain) == {"rec_user_profiles": 1, "rec_entity_stats": 1}
        assert layout(parted) == {"rec_user_profiles": 4, "rec_entity_stats": 4}
        used = one(parted, "SELECT count(DISTINCT tableoid) FROM recvector.rec_user_profiles")
        assert used > 1
        assert state(parted) == state(plain)
        assert one(parted, "SELECT count(*) FROM recvector.rec_user_profiles") == 8


def test_dump_and_restore_of_a_partitioned_install():
    with database("4") as src:
        load(src, "full")
        expected = state(src)
        dumps = {
            "same layout": subprocess.run(["pg_dump", "-Fc", "-d", dsn(one(src, "SELECT current_database()"))],
                                          check=True, capture_output=True).stdout,
            "via the parent": subprocess.run(["pg_dump", "-Fc", "--load-via-partition-root", "-d",
                                              dsn(one(src, "SELECT current_database()"))],
                                             check=True, capture_output=True).stdout,
        }
        for how, setting in (("same layout", "4"), ("via the parent", None)):
            with database(setting) as dst:
                name = one(dst, "SELECT current_database()")
                r = subprocess.run(["pg_restore", "--exit-on-error", "-d", dsn(name)], input=dumps[how],
                                   capture_output=True)
                assert r.returncode == 0, (how, r.stderr.decode())
                dst.execute("SELECT recvector.repair()")
                assert layout(dst) == ({"rec_user_profiles": 4, "rec_entity_stats": 4} if setting
                                       else {"rec_user_profiles": 1, "rec_entity_stats": 1}), how
                assert state(dst) == expected, how


def test_an_update_switches_the_layout_and_keeps_every_row():
    build = _build_module()
    target_dir = _extension_dir()
    cur = build.versions()[-1]
    with database(None) as conn:
        load(conn, "full")
        expected = state(conn)
        for step, setting in enumerate(("6", "1")):
            nxt = f"{cur}.{step + 1}"
            prev = one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'recvector'")
            script = target_dir / f"recvector--{prev}--{nxt}.sql"
            script.write_text(build.render(sorted(build.SQL.glob("idempotent/*.sql")), cur, f"-- test {prev} -> {nxt}\n"))
            try:
                conn.execute(f"SET recvector.partitions = '{setting}'")
                conn.execute(f"ALTER EXTENSION recvector UPDATE TO '{nxt}'")
            finally:
                script.unlink()
            assert layout(conn) == {"rec_user_profiles": int(setting), "rec_entity_stats": int(setting)}
            assert state(conn) == expected
            # update_user_profile (re-created by the update) works and is still admin-only.
            assert one(conn, "SELECT (recvector.update_user_profile('1')).user_id") == "1"
            assert one(conn, "SELECT has_function_privilege('public', 'recvector.update_user_profile(text)', 'EXECUTE')") is False
        # The replaced tables left nothing behind in the extension or in pg_dump's list.
        assert one(conn, "SELECT count(*) FROM pg_class WHERE relname LIKE 'rec\\_%\\_old%'") == 0
        assert one(conn, "SELECT count(*) FROM unnest((SELECT extconfig FROM pg_extension WHERE extname = 'recvector')) AS o "
                         "WHERE NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = o)") == 0


@pytest.mark.parametrize("bad", ["0", "2000", "four", "-3"])
def test_a_bad_setting_is_refused_and_nothing_is_created(bad):
    with database(bad) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="recvector.partitions must be an integer"):
            conn.execute("CREATE EXTENSION recvector CASCADE")
        assert one(conn, "SELECT count(*) FROM pg_extension WHERE extname = 'recvector'") == 0
        assert one(conn, "SELECT to_regnamespace('recvector')") is None
