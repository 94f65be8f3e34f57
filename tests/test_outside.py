"""Out-of-database mode: a database with pgvector but no PL/Python and no RecVector extension
(as on managed PostgreSQL). The plain-SQL install serves from SQL; the CLI runs the Python side."""
from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

from conftest import PAGILA_MAPPING, dsn, one, vec


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recvector.cli", *args], capture_output=True, text=True, timeout=900)


@pytest.fixture
def plain(pagila):
    pagila.execute("DROP EXTENSION recvector")
    pagila.execute("DROP EXTENSION plpython3u")
    return pagila


def test_plain_install_serves_without_plpython(plain, booted_template):
    db = dsn(one(plain, "SELECT current_database()"))
    r = cli("install", "--plain", "--dsn", db, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["mode"].startswith("plain SQL")
    assert {x[0] for x in plain.execute("SELECT extname FROM pg_extension")} == {"plpgsql", "vector"}
    assert one(plain, "SELECT count(*) FROM pg_proc WHERE prolang = (SELECT oid FROM pg_language "
                      "WHERE lanname = 'plpgsql') AND pronamespace = 'recvector'::regnamespace") > 10
    # Mapping validated and compiled here, with the same code and the same errors.
    bad = PAGILA_MAPPING.read_text().replace('"rental_date"', '"rented_on"')
    with open("/tmp/rv-outside-bad.json", "w") as f:
        f.write(bad)
    r = cli("set-schema", "/tmp/rv-outside-bad.json", "--dsn", db)
    assert r.returncode == 1
    assert r.stderr.startswith("recvector: error: invalid mapping at $.interactions[0].timestamp_column")
    assert one(plain, "SELECT count(*) FROM recvector.mapping") == 0
    assert cli("set-schema", str(PAGILA_MAPPING), "--dsn", db).returncode == 0
    r = cli("bootstrap", "--dsn", db)
    assert r.returncode == 0, r.stderr
    assert "] embedded 1000/1000 entities (" in r.stderr and "left)" in r.stderr
    assert one(plain, "SELECT count(*) FROM recvector.rec_user_profiles WHERE embedding IS NOT NULL") == 599

    # Same vectors and profiles as the in-database bootstrap.
    with psycopg.connect(dsn(booted_template)) as ref:
        expected = dict(ref.execute("SELECT entity_id, embedding::text FROM recvector.entity_vectors "
                                    "WHERE entity_id IN ('1', '500', '1000')").fetchall())
        expected_recs = [r[0] for r in ref.execute("SELECT entity_id FROM rec_recommend(1, 10)")]
    got = dict(plain.execute("SELECT entity_id, embedding::text FROM recvector.entity_vectors "
                             "WHERE entity_id IN ('1', '500', '1000')").fetchall())
    for k, v in expected.items():
        assert vec(got[k]) == pytest.approx(vec(v), abs=1e-5)
    recs = [r[0] for r in plain.execute("SELECT entity_id FROM rec_recommend(1, 10)")]
    assert len(set(recs) & set(expected_recs)) >= 9

    # The write path is SQL: triggers, counters and profile recomputes work with no Python here.
    plain.execute("SELECT recvector.enable_auto_logging()")
    plain.execute("SELECT recvector.enable_entity_sync()")
    for i in range(5):
        plain.execute("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) "
                      "VALUES (%s, %s, 1, 1)", (f"2030-01-01 00:0{i}:00", 100 + i))
    plain.execute("UPDATE film SET description = 'An overlooked gem about a lighthouse keeper' WHERE film_id = 42")
    old_fp = one(plain, "SELECT fingerprint FROM recvector.entity_vectors WHERE entity_id = '42'")
    assert one(plain, "SELECT count(*) FROM recvector.queue WHERE kind = 'entity'") == 1
    # In SQL, process_queue does profiles and leaves entities to the worker outside.
    assert one(plain, "SELECT recvector.process_queue()") == 1
    assert one(plain, "SELECT count(*) FROM recvector.queue WHERE kind = 'entity'") == 1
    r = cli("worker", "--once", "--json", "--dsn", db)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"processed": 1}
    assert one(plain, "SELECT count(*) FROM recvector.queue") == 0
    assert one(plain, "SELECT fingerprint FROM recvector.entity_vectors WHERE entity_id = '42'") != old_fp
    r = cli("sync", "--dsn", db, "--json")
    assert json.loads(r.stdout)["embedded"] == 0


def test_plain_install_refuses_to_install_twice(plain):
    db = dsn(one(plain, "SELECT current_database()"))
    assert cli("install", "--plain", "--dsn", db).returncode == 0
    r = cli("install", "--plain", "--dsn", db)
    assert r.returncode == 1 and "already installed" in r.stderr


def test_parameters_are_rewritten_only_outside_quotes():
    """Out of the database the compiled SQL runs through psycopg: its $N become %(pN)s, but a "$1" that
    is part of a quoted column name or of a string literal is left alone, and % is escaped."""
    from recvector.outside import to_psycopg

    assert to_psycopg('SELECT "$1", "a""$2" FROM t WHERE a = $1 AND b = \'$2\'\'$3\' AND c LIKE \'5%\' AND d = $12') == (
        'SELECT "$1", "a""$2" FROM t WHERE a = %(p1)s AND b = \'$2\'\'$3\' AND c LIKE \'5%%\' AND d = %(p12)s')
