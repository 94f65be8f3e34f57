"""A server restart loses nothing queued: on a private, throw-away PostgreSQL cluster (another port),
interactions are recorded and queued, the server is restarted (fast shutdown) and the queue,
counters and failed interactions are all still there and get processed."""
from __future__ import annotations

import psycopg
import pytest

import clusters
import tiny

PORT = 5439


def _run(*cmd: str) -> None:
    clusters.run(*cmd)


@pytest.fixture
def cluster():
    if not clusters.available():
        pytest.skip("pg_createcluster (postgresql-common) is not available")
    c = clusters.Cluster("rvrestart", PORT).create()
    try:
        c.ctl("start")
        yield c.name, c.dsn()
    finally:
        c.drop()


def test_restart_loses_nothing_queued(cluster):
    name, dsn = cluster
    with psycopg.connect(dsn, autocommit=True) as c:
        tiny.setup(c, "full")
        c.execute("SELECT recvector.enable_auto_logging()")
        c.execute("INSERT INTO event (user_id, item_id, kind, at) VALUES (1, 1, 'like', now()), (2, 2, 'like', now())")
        c.execute("SELECT recvector.log_interaction('3', '4', 'like')")
        c.execute("ALTER TABLE recvector.rec_entity_stats ADD CONSTRAINT broken CHECK (popularity < 0) NOT VALID")
        c.execute("INSERT INTO event (user_id, item_id, kind, at) VALUES (4, 5, 'like', now())")
        before = (c.execute("SELECT kind, key FROM recvector.queue ORDER BY 1, 2").fetchall(),
                  c.execute("SELECT user_id, interaction_count_since_update FROM recvector.rec_user_profiles "
                            "ORDER BY 1").fetchall(),
                  c.execute("SELECT source, rows FROM recvector.failed_interactions").fetchall())
    assert len(before[0]) == 3 and len(before[2]) == 1
    _run("pg_ctlcluster", "--skip-systemctl-redirect", "15", name, "restart", "-m", "fast")
    with psycopg.connect(dsn, autocommit=True) as c:
        after = (c.execute("SELECT kind, key FROM recvector.queue ORDER BY 1, 2").fetchall(),
                 c.execute("SELECT user_id, interaction_count_since_update FROM recvector.rec_user_profiles "
                           "ORDER BY 1").fetchall(),
                 c.execute("SELECT source, rows FROM recvector.failed_interactions").fetchall())
        assert after == before
        assert c.execute("SELECT recvector.process_queue()").fetchone()[0] == 3
        c.execute("ALTER TABLE recvector.rec_entity_stats DROP CONSTRAINT broken")
        assert c.execute("SELECT recvector.retry_failed()").fetchone()[0] == 1
        assert c.execute("SELECT count(*) FROM recvector.rec_user_profiles WHERE embedding IS NOT NULL").fetchone()[0] == 3
        # user 4, recorded by the retry, is now queued for its first profile
        assert c.execute("SELECT key FROM recvector.queue").fetchall() == [("4",)]
