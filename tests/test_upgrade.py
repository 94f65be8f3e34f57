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
from pathlib import Path

import pytest

from conftest import ROOT, one

NEXT = "0.1.0.1"


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


def test_idempotent_upgrade_keeps_everything(booted):
    build = _build_module()
    pg_config = next((p for p in ("/usr/lib/postgresql/15/bin/pg_config",) if os.path.exists(p)), "pg_config")
    sharedir = subprocess.run([pg_config, "--sharedir"], capture_output=True, text=True).stdout.strip()
    target = Path(sharedir) / "extension" / f"recvector--0.1.0--{NEXT}.sql"
    if not os.access(target.parent, os.W_OK):
        pytest.skip("the extension directory is not writable")
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
