"""Serving from a hot standby: a primary and a streaming replica (pg_basebackup -R), both throw-away
clusters on this machine. Interactions are written on the primary; after replay the standby serves
the fresh recommendations with rec_recommend, rec_similar and recvector.explain, which write
nothing. Writes sent to the standby fail with PostgreSQL's read-only error: the documented route is
to send them to the primary (docs/scaling.md)."""
from __future__ import annotations

import shutil
import time

import psycopg
import pytest

import clusters
import tiny

PRIMARY_PORT, REPLICA_PORT = 5440, 5441


@pytest.fixture(scope="module")
def pair():
    if not clusters.available():
        pytest.skip("pg_createcluster (postgresql-common) is not available")
    primary = clusters.Cluster("rvprimary", PRIMARY_PORT).create()
    replica = clusters.Cluster("rvreplica", REPLICA_PORT).create("hot_standby=on")
    try:
        primary.ctl("start")
        primary.wait_ready()
        for child in replica.datadir.iterdir():  # pg_basebackup fills the (empty) data directory
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        clusters.run("runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_basebackup",
                     "-h", "127.0.0.1", "-p", str(PRIMARY_PORT), "-U", "postgres", "-D", str(replica.datadir),
                     "-R", "-X", "stream", "-c", "fast")
        replica.ctl("start")
        replica.wait_ready()
        yield primary, replica
    finally:
        replica.drop()
        primary.drop()


def wait_for_replay(replica: psycopg.Connection, lsn: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while replica.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0] is not True:
        assert time.monotonic() < deadline, f"the standby did not replay up to {lsn}"
        time.sleep(0.05)


def test_a_hot_standby_serves_fresh_recommendations(pair):
    primary, replica = pair
    with psycopg.connect(primary.dsn(), autocommit=True) as p, \
            psycopg.connect(replica.dsn(), autocommit=True) as r:
        tiny.setup(p, "incremental", beta=0.0)
        p.execute("SELECT recvector.enable_auto_logging()")
        p.execute(f"INSERT INTO event (user_id, item_id, kind, at) VALUES (1, 1, 'like', '{tiny.T0}')")
        wait_for_replay(r, p.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])
        assert r.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True

        q = "SELECT entity_id, round(score::numeric, 6) FROM rec_recommend(1, 4)"
        first = r.execute(q).fetchall()
        assert first == p.execute(q).fetchall() and first[0][0] == "4"  # closest to item 1 after item 1 itself

        # A new interaction on the primary: the standby's answer changes once it has replayed it.
        p.execute(f"INSERT INTO event (user_id, item_id, kind, at) VALUES (1, 2, 'like', '{tiny.T30}'), "
                  f"(1, 5, 'like', '{tiny.T30}')")
        wait_for_replay(r, p.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])
        fresh = r.execute(q).fetchall()
        assert fresh == p.execute(q).fetchall() and fresh != first
        assert [e for e, _ in fresh][:1] == ["4"] and "2" not in [e for e, _ in fresh]  # seen items excluded

        # The rest of the read path: MMR, exploration, cold start, similar items, explanations.
        for sql in ("SELECT entity_id FROM rec_recommend(1, 3, 0.5)",
                    "SELECT entity_id FROM rec_recommend(1, 3, exploration => 0.5, seed => 7)",
                    "SELECT entity_id FROM rec_recommend(9, 3)",
                    "SELECT entity_id FROM rec_similar('4', 2)",
                    "SELECT entity_id, round(score::numeric, 6), because::text FROM recvector.explain('1', 3)"):
            assert r.execute(sql).fetchall() == p.execute(sql).fetchall(), sql

        # Writes belong to the primary: the standby refuses them with PostgreSQL's own error.
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            r.execute("SELECT recvector.log_interaction(1, 3, 'like')")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            r.execute(f"INSERT INTO event (user_id, item_id, kind, at) VALUES (1, 3, 'like', '{tiny.T30}')")


def test_full_strategy_profiles_reach_the_standby_after_the_queue_runs_on_the_primary(pair):
    primary, replica = pair
    with psycopg.connect(primary.dsn(), autocommit=True) as p, \
            psycopg.connect(replica.dsn(), autocommit=True) as r:
        p.execute("CREATE DATABASE rv_full")
    try:
        with psycopg.connect(primary.dsn("rv_full"), autocommit=True) as p:
            tiny.setup(p, "full")
            p.execute("SELECT recvector.enable_auto_logging()")
            p.execute(f"INSERT INTO event (user_id, item_id, kind, at) VALUES (2, 3, 'like', '{tiny.T0}'), "
                      f"(2, 3, 'view', '{tiny.T0}'), (2, 2, 'like', '{tiny.T0}')")
            assert p.execute("SELECT recvector.process_queue()").fetchone()[0] == 1
            lsn = p.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
            expected = p.execute("SELECT entity_id, score FROM rec_recommend(2, 3)").fetchall()
            profile = p.execute("SELECT embedding::text FROM recvector.rec_user_profiles WHERE user_id = '2'").fetchone()
        with psycopg.connect(replica.dsn("postgres"), autocommit=True) as r:
            wait_for_replay(r, lsn)
        with psycopg.connect(replica.dsn("rv_full"), autocommit=True) as r:
            assert r.execute("SELECT embedding::text FROM recvector.rec_user_profiles WHERE user_id = '2'").fetchone() == profile
            assert r.execute("SELECT entity_id, score FROM rec_recommend(2, 3)").fetchall() == expected
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                r.execute("SELECT recvector.process_queue()")
    finally:
        with psycopg.connect(primary.dsn(), autocommit=True) as p:
            p.execute("DROP DATABASE rv_full WITH (FORCE)")
