"""Upgrade mechanics. An upgrade script is the incremental SQL added since the installed version
plus every idempotent file, re-run. This test builds such a script for a next patch version
(no incremental files), applies it with ALTER EXTENSION UPDATE to a bootstrapped install, and
checks that every profile, vector, setting and trigger survives and the extension's objects are
exactly those of a fresh install. (A test from one released version to the next comes with the
second release.)"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from conftest import ROOT, dsn, one

NEXT = (ROOT / "sql" / "versions.txt").read_text().split()[-1] + ".1"  # a next patch version


def _build_module():
    spec = importlib.util.spec_from_file_location("build_sql", ROOT / "scripts" / "build_sql.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _objects(conn):
    return conn.execute("""
        SELECT p.oid::regprocedure::text, p.prosecdef, p.proconfig, obj_description(p.oid, 'pg_proc'),
               md5(p.prosrc), has_function_privilege('public', p.oid, 'EXECUTE')
        FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
        JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'recvector' ORDER BY 1""").fetchall()


def _data(conn):
    return {t: conn.execute(f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM recvector.{t} x").fetchone()[0]
            for t in ("mapping", "entity_vectors", "rec_user_profiles", "rec_entity_stats", "events", "queue",
                      "triggers", "failed_interactions", "filters")}


def _extension_dir() -> Path:
    pg_config = next((p for p in ("/usr/lib/postgresql/15/bin/pg_config",) if os.path.exists(p)), "pg_config")
    sharedir = subprocess.run([pg_config, "--sharedir"], capture_output=True, text=True).stdout.strip()
    target = Path(sharedir) / "extension"
    if not os.access(target, os.W_OK):
        pytest.skip("the extension directory is not writable")
    return target


def test_idempotent_upgrade_keeps_everything(booted):
    build = _build_module()
    target = _extension_dir() / f"recvector--{build.versions()[-1]}--{NEXT}.sql"
    cur = build.versions()[-1]
    idem = sorted(build.SQL.glob("idempotent/*.sql"))
    script = build.render(build.incremental(cur, cur) + idem, cur, f"-- test upgrade {cur} -> {NEXT}\n")
    booted.execute("SELECT recvector.enable_auto_logging()")
    booted.execute("SELECT recvector.log_interaction(3, 4, 'like')")
    before_objects, before_data = _objects(booted), _data(booted)
    recs = booted.execute("SELECT * FROM rec_recommend(3, 10)").fetchall()
    target.write_text(script)
    try:
        booted.execute(f"ALTER EXTENSION recvector UPDATE TO '{NEXT}'")
    finally:
        target.unlink()
    assert one(booted, "SELECT extversion FROM pg_extension WHERE extname = 'recvector'") == NEXT
    assert _objects(booted) == before_objects
    assert _data(booted) == before_data
    assert booted.execute("SELECT * FROM rec_recommend(3, 10)").fetchall() == recs
    booted.execute("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) VALUES ('2030-01-01', 1, 3, 1)")
    assert one(booted, "SELECT interaction_count_since_update FROM recvector.rec_user_profiles WHERE user_id = '3'") == 2
    assert one(booted, "SELECT recvector.bootstrap()")["embedded"] == 0


def test_build_makes_upgrade_scripts_from_new_incremental_files(tmp_path, monkeypatch):
    build = _build_module()
    sql = tmp_path / "sql"
    (sql / "incremental").mkdir(parents=True)
    (sql / "idempotent").mkdir()
    (sql / "incremental" / "0.1.0-001-schema.sql").write_text("CREATE TABLE a ();\n")
    (sql / "incremental" / "0.2.0-001-more.sql").write_text("CREATE TABLE b ();\n")
    (sql / "idempotent" / "010-f.sql").write_text("CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';\n")
    (sql / "versions.txt").write_text("0.1.0\n0.2.0\n")
    monkeypatch.setattr(build, "SQL", sql)
    monkeypatch.setattr(build, "ROOT", tmp_path)
    full = build.render(build.incremental(None, "0.2.0") + sorted(sql.glob("idempotent/*.sql")), "0.2.0", "")
    upgrade = build.render(build.incremental("0.1.0", "0.2.0") + sorted(sql.glob("idempotent/*.sql")), "0.2.0", "")
    assert "CREATE TABLE a" in full and "CREATE TABLE b" in full
    assert "CREATE TABLE a" not in upgrade and "CREATE TABLE b" in upgrade and "FUNCTION f()" in upgrade


# ---------------------------------------------------------------- released version -> current

def _relations(conn):
    """Every relation, column, index, constraint and trigger of the schema, with comments."""
    return conn.execute("""
        SELECT c.relname::text, c.relkind::text, obj_description(c.oid, 'pg_class'),
               (SELECT string_agg(format('%s %s %s %s %s', a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                                         pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum)), ', ' ORDER BY a.attnum)
                FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
               (SELECT string_agg(pg_get_indexdef(i.indexrelid), '; ' ORDER BY 1) FROM pg_index i WHERE i.indrelid = c.oid),
               (SELECT string_agg(pg_get_constraintdef(k.oid), '; ' ORDER BY 1) FROM pg_constraint k WHERE k.conrelid = c.oid),
               (SELECT string_agg(pg_get_triggerdef(t.oid), '; ' ORDER BY 1) FROM pg_trigger t WHERE t.tgrelid = c.oid)
        FROM pg_class c WHERE c.relnamespace = 'recvector'::regnamespace ORDER BY 1""").fetchall()


def _extension_state(conn):
    return conn.execute("""
        SELECT (SELECT array_agg(x::regclass::text ORDER BY x::regclass::text) FROM unnest(extconfig) AS x),
               (SELECT array_agg(t.typname::text ORDER BY 1) FROM pg_type t JOIN pg_depend d ON d.objid = t.oid
                 AND d.classid = 'pg_type'::regclass AND d.deptype = 'e' AND d.refobjid = e.oid)
        FROM pg_extension e WHERE e.extname = 'recvector'""").fetchone()


def _tiny_history(conn):
    import tiny

    tiny.setup(conn, "full")
    conn.execute("SELECT recvector.enable_auto_logging()")
    conn.execute(f"INSERT INTO event (user_id, item_id, kind, at) VALUES (1, 1, 'like', '{tiny.T0}'), "
                 f"(1, 4, 'view', '{tiny.T0}'), (2, 2, 'like', '{tiny.T0}'), (3, 3, 'dislike', '{tiny.T30}')")
    conn.execute("SELECT recvector.process_queue()")
    conn.execute(f"INSERT INTO event (user_id, item_id, kind, at) VALUES (2, 5, 'like', '{tiny.T30}')")  # stays queued
    conn.execute("SELECT recvector.log_interaction('4', '2', 'like')")
    conn.execute("SELECT recvector.set_filter('not_three', 'id <> 3')")


def test_upgrade_from_the_previous_release_keeps_everything(empty_db):
    """0.1.0 installed and used with 0.1.0's own Python library, then ALTER EXTENSION UPDATE: every
    row, setting and trigger is kept, the result equals a fresh install of the current version, and
    the same session switches to the current library."""
    build = _build_module()
    prev, cur = build.versions()[-2], build.versions()[-1]
    conn = empty_db
    conn.execute(f"CREATE EXTENSION recvector VERSION '{prev}' CASCADE")
    assert one(conn, "SELECT recvector._py_library_dir()").endswith(f"/{prev}")
    _tiny_history(conn)  # set_schema, set_filter: PL/Python running the previous release's library
    assert one(conn, "SELECT count(*) FROM recvector.validate_schema('{}'::jsonb)") > 0
    before = _data(conn)
    recs = [conn.execute("SELECT entity_id, score FROM rec_recommend(%s, 3)", (u,)).fetchall() for u in range(1, 6)]
    filtered = conn.execute("SELECT entity_id FROM rec_recommend(1, 5, filter => 'not_three')").fetchall()

    conn.execute(f"ALTER EXTENSION recvector UPDATE TO '{cur}'")
    assert one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'recvector'") == cur
    assert _data(conn) == before
    assert [conn.execute("SELECT entity_id, score FROM rec_recommend(%s, 3)", (u,)).fetchall() for u in range(1, 6)] == recs
    assert conn.execute("SELECT entity_id FROM rec_recommend(1, 5, filter => 'not_three')").fetchall() == filtered
    # The same session now runs the current library (a function that did not exist before).
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not a valid Chroma name"):
        conn.execute("SELECT recvector.chroma_verify('http://127.0.0.1:9', 'x')")
    assert one(conn, "SELECT count(*) FROM recvector.validate_schema('{}'::jsonb)") > 0
    # Work queued before the update is done after it; the trigger keeps logging.
    assert one(conn, "SELECT recvector.process_queue()") >= 1
    conn.execute("INSERT INTO event (user_id, item_id, kind, at) VALUES (5, 1, 'like', now())")
    assert one(conn, "SELECT interaction_count_since_update FROM recvector.rec_user_profiles WHERE user_id = '5'") == 1

    # Exactly the objects of a fresh install of the current version.
    dbname = f"rv_test_fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
    try:
        with psycopg.connect(dsn(dbname), autocommit=True) as fresh:
            _tiny_history(fresh)
            assert _objects(conn) == _objects(fresh)
            # The HNSW index built by the old version is kept as it was (rebuilding it is the
            # admin's call: DROP INDEX + recvector.repair()); new builds use the new parameters.
            hnsw = "WITH (m='16', ef_construction='64')"
            assert hnsw in str(_relations(conn)) and "WITH (m='32', ef_construction='200')" in str(_relations(fresh))
            assert str(_relations(conn)).replace(hnsw, "WITH (m='32', ef_construction='200')") == str(_relations(fresh))
            assert _extension_state(conn) == _extension_state(fresh)
    finally:
        with psycopg.connect(dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
