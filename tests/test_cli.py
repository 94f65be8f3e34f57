"""The psycopg client, the `recvector` CLI, and the demo (the main job) as a user runs them."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import psycopg
import pytest

import recvector
from conftest import PAGILA_MAPPING, dsn, one
from recvector.errors import RecVectorError


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recvector.cli", *args], capture_output=True, text=True, timeout=600)


def _db(conn: psycopg.Connection) -> str:
    return dsn(one(conn, "SELECT current_database()"))


def test_client_operations(booted):
    with recvector.connect(_db(booted)) as c:
        recs = c.recommend(1, 5)
        assert len(recs) == 5 and all(isinstance(r.entity_id, str) for r in recs)
        assert [r.entity_id for r in c.recommend(1, 5, 1.0)] == \
            [r[0] for r in booted.execute("SELECT entity_id FROM rec_recommend(1, 5, 1.0)")]
        assert [r.entity_id for r in c.recommend("1", 3, 0.5, exploration=0.3, seed=1)] == \
            [r[0] for r in booted.execute("SELECT entity_id FROM rec_recommend(1, 3, 0.5, exploration => 0.3, seed => 1)")]
        assert len(c.similar(1, 4)) == 4
        assert [r.entity_id for r in c.similar(1, 3, mode="hybrid")] == \
            [r[0] for r in booted.execute("SELECT entity_id FROM rec_similar('1', 3, 'hybrid')")]
        first, second = c.recommend(1, 5, page=1), c.recommend(1, 5, page=2)
        assert len(second) == 5 and not {r.entity_id for r in first} & {r.entity_id for r in second}
        c.hide(1, first[0].entity_id)
        assert first[0].entity_id not in {r.entity_id for r in c.recommend(1, 10)}
        assert c.unhide(1, first[0].entity_id) is True and c.unhide(1, first[0].entity_id) is False
        c.log_interaction(1, 2, "like")
        assert one(booted, "SELECT count(*) FROM recvector.events WHERE user_id = '1'") == 1
        assert c.upsert_entity(1, 2)["up_to_date"] == 2
        c.update_user_profile(1)
        assert c.process_queue() >= 0
        with pytest.raises(RecVectorError) as err:
            c.recommend(1, 0)
        assert err.value.message == "k must be between 1 and 10000, got 0"
        assert err.value.sqlstate == "22023"


def test_client_errors_are_one_family():
    with pytest.raises(RecVectorError) as err:
        recvector.connect("host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=2")
    assert err.value.message.startswith("cannot connect to PostgreSQL")


def test_cli_recommend_and_similar_json(booted):
    r = cli("recommend", "1", "-k", "3", "--json", "--dsn", _db(booted))
    assert r.returncode == 0, r.stderr
    recs = json.loads(r.stdout)
    assert [x["entity_id"] for x in recs] == [x[0] for x in booted.execute("SELECT * FROM rec_recommend(1, 3)")]
    r = cli("similar", "1", "-k", "2", "--dsn", _db(booted))
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 2
    r = cli("similar", "1", "-k", "3", "--mode", "cf", "--json", "--dsn", _db(booted))
    assert r.returncode == 0, r.stderr
    assert [(x["entity_id"], x["score"]) for x in json.loads(r.stdout)] == \
        [tuple(x) for x in booted.execute("SELECT * FROM rec_similar('1', 3, 'cf')")]


def test_cli_errors_are_one_line_and_non_zero(booted):
    r = cli("recommend", "1", "-k", "0", "--dsn", _db(booted))
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == "recvector: error: k must be between 1 and 10000, got 0"
    for mode in ("content", "cf", "hybrid"):
        r = cli("similar", "nope", "--mode", mode, "--dsn", _db(booted))
        assert r.returncode == 1 and r.stderr.startswith("recvector: error: entity 'nope' has no vector"), (mode, r.stderr)
    r = cli("recommend", "1", "--dsn", "host=127.0.0.1 port=1 connect_timeout=2")
    assert r.returncode == 1 and r.stderr.startswith("recvector: error: cannot connect to PostgreSQL")
    r = cli("recommend")
    assert r.returncode == 2


def test_cli_install_set_schema_bootstrap_worker(pagila):
    db = _db(pagila)
    pagila.execute("DROP EXTENSION recvector")
    r = cli("install", "--dsn", db, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["version"] == recvector.__version__
    bad = PAGILA_MAPPING.read_text().replace('"rental_date"', '"rented_on"')
    path = f"/tmp/rv-bad-{uuid.uuid4().hex}.json"
    with open(path, "w") as f:
        f.write(bad)
    r = cli("set-schema", path, "--check", "--dsn", db)
    assert r.returncode == 1
    assert r.stdout.strip() == "$.interactions[0].timestamp_column: column 'rented_on' does not exist in table public.rental"
    r = cli("set-schema", str(PAGILA_MAPPING), "--dsn", db)
    assert r.returncode == 0, r.stderr
    r = cli("bootstrap", "--dsn", db)
    assert r.returncode == 0, r.stderr
    assert "] embedded 1000/1000 entities (" in r.stderr and "left)" in r.stderr
    assert one(pagila, "SELECT count(*) FROM recvector.rec_user_profiles WHERE embedding IS NOT NULL") == 599
    pagila.execute("SELECT recvector.log_interaction(1, 2)")
    r = cli("worker", "--once", "--json", "--dsn", db)
    assert r.returncode == 0 and json.loads(r.stdout) == {"processed": 0}  # 1 < batch threshold
    pagila.execute("UPDATE recvector.rec_user_profiles SET last_updated = now() - interval '1 day' WHERE user_id = '1'")
    r = cli("worker", "--once", "--json", "--dsn", db)
    assert json.loads(r.stdout) == {"processed": 1}


def test_demo_prints_recommendations_by_title():
    name = f"rv_test_demo_{uuid.uuid4().hex[:8]}"
    try:
        r = cli("demo", "--database", name, "--dsn", dsn("postgres"))
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert "Customer 1 (Mary Smith)" in out and "recommended:" in out and "recently rented:" in out
        assert "rec_similar" in out and "cold start" in out
        assert "profile(s) recomputed off the insert path" in out
        r = cli("demo", "--database", name, "--dsn", dsn("postgres"), "--json")
        report = json.loads(r.stdout)
        assert report["bootstrap"]["embedded"] == 1000 and report["bootstrap"]["profiles"] == 599
        for customer in report["customers"]:
            assert len(customer["recommended"]) == 5
            assert not set(customer["rented"]) & {x["title"] for x in customer["recommended"]}
        assert len(report["cold_start"]) == 5
    finally:
        with psycopg.connect(dsn("postgres"), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
