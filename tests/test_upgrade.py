"""Upgrades. An upgrade script is the incremental SQL added since the installed version plus every
idempotent file, re-run; released scripts are frozen (sql/frozen.txt). Tested here: the path from
the first release through every release to the current version (0.1.0 -> 0.2.0 -> 0.3.0), each
step run with the installed version's own Python library, keeping every row, setting, trigger and
recommendation, and ending equal to a fresh install; and an idempotent re-run (a next patch version
with no incremental files) on a bootstrapped install."""
from __future__ import annotations

import importlib.util
import math
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
               -- (generated functions hold the mapped tables' oids, which differ between databases)
               md5(regexp_replace(p.prosrc, '(rel_oid": |TG_RELID <> )[0-9]+', '\1N', 'g')),
               has_function_privilege('public', p.oid, 'EXECUTE'), pg_get_userbyid(p.proowner),
               (SELECT array_agg(a.grantee::regrole::text ORDER BY 1) FROM aclexplode(p.proacl) a WHERE a.grantee <> 0)
        FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
        JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'recvector' ORDER BY 1""").fetchall()


TABLES = ("mapping", "entity_vectors", "rec_user_profiles", "rec_entity_stats", "events", "queue",
          "triggers", "failed_interactions", "filters")


def _data(conn, columns: dict[str, list[str]] | None = None):
    """An md5 of every table's rows, over the given columns (those a table had before an upgrade:
    an upgrade may add columns, never change the old ones)."""
    columns = columns or _columns(conn)
    out = {}
    for t in TABLES:
        cols = ", ".join(f"x.{c}" for c in columns[t])
        out[t] = conn.execute(f"SELECT md5(coalesce(string_agg(row({cols})::text, '|' ORDER BY row({cols})::text), '')) "
                              f"FROM recvector.{t} x").fetchone()[0]
    return out


def _columns(conn) -> dict[str, list[str]]:
    return {t: [r[0] for r in conn.execute(
        "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum", (f"recvector.{t}",))] for t in TABLES}


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


def test_upgrade_through_every_release_keeps_everything(empty_db):
    """The first release installed and used with its own Python library, then ALTER EXTENSION
    UPDATE to each later release in turn, used again at each step: every row, setting and trigger
    is kept, recommendations do not change, queued work is done after the update, events that
    0.2.0 let in and no computation can use are quarantined; the result equals a fresh install of
    the current version, and the same session switches to each version's library."""
    build = _build_module()
    versions = build.versions()
    conn = empty_db
    conn.execute(f"CREATE EXTENSION recvector VERSION '{versions[0]}' CASCADE")
    assert one(conn, "SELECT recvector._py_library_dir()").endswith(f"/{versions[0]}")
    _tiny_history(conn)  # set_schema, set_filter: PL/Python running the first release's library
    assert one(conn, "SELECT count(*) FROM recvector.validate_schema('{}'::jsonb)") > 0
    for step, version in enumerate(versions[1:], start=1):
        if version == "0.3.0":
            # 0.2.0 stored any weight and time: a poison event (1e39, 'infinity') made every rebuild fail.
            conn.execute("SELECT recvector.log_interaction('6', '1', 'like', 'infinity')")
            conn.execute("SELECT recvector.log_interaction('7', '2', 'like', now(), 1e39)")
            with pytest.raises(psycopg.Error):
                conn.execute("SELECT recvector.rebuild_profiles()")
        columns, before = _columns(conn), _data(conn)
        document = one(conn, "SELECT document FROM recvector.mapping")
        recs = [conn.execute("SELECT entity_id, score FROM rec_recommend(%s, 3)", (u,)).fetchall() for u in range(1, 6)]
        filtered = conn.execute("SELECT entity_id FROM rec_recommend(1, 5, filter => 'not_three')").fetchall()
        conn.execute(f"ALTER EXTENSION recvector UPDATE TO '{version}'")
        assert one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'recvector'") == version
        after_recs = [conn.execute("SELECT entity_id, score FROM rec_recommend(%s, 3)", (u,)).fetchall()
                      for u in range(1, 6)]
        assert [[e for e, _ in r] for r in after_recs] == [[e for e, _ in r] for r in recs]
        if version == "0.3.0":
            # A user without a profile (cold start) is now scored on the popularity term's 0..1 scale:
            # ln(1 + popularity) / ln(1 + the largest popularity); the order is the same.
            top = math.log(1 + one(conn, "SELECT max(popularity) FROM recvector.rec_entity_stats"))
            cold = {u for u in range(1, 6) if not one(conn, "SELECT count(*) FROM recvector.rec_user_profiles "
                                                            "WHERE user_id = %s AND embedding IS NOT NULL", (str(u),))}
            recs = [[(e, sc / top if u in cold else sc) for e, sc in r] for u, r in zip(range(1, 6), recs)]
        assert [[s for _, s in r] for r in after_recs] == [pytest.approx([s for _, s in r], abs=1e-9) for r in recs]
        assert conn.execute("SELECT entity_id FROM rec_recommend(1, 5, filter => 'not_three')").fetchall() == filtered
        after = _data(conn, columns)
        if version == "0.3.0":
            assert conn.execute("SELECT user_id, reason FROM recvector.quarantined_events ORDER BY user_id").fetchall() == [
                ("6", "time is not finite"), ("7", "weight outside [-100, 100]")]
            assert after.pop("events") != before.pop("events")  # the two poison events left ...
            assert one(conn, "SELECT count(*) FROM recvector.events WHERE user_id IN ('6', '7')") == 0
            # The mapping was compiled again by the new version (checks, grants); the document is kept.
            after.pop("mapping"), before.pop("mapping")
            # (beta now weighs popularity on a 0..1 scale: converted with today's maximum, same rankings)
            max_pop = one(conn, "SELECT max(popularity) FROM recvector.rec_entity_stats")
            converted = dict(document, scoring=dict(document["scoring"], beta=document["scoring"]["beta"] * math.log(1 + max_pop)))
            assert one(conn, "SELECT document FROM recvector.mapping") == converted
            assert one(conn, "SELECT compiled ? 'columns' FROM recvector.mapping")
            assert after == before
            assert one(conn, "SELECT recvector.rebuild_profiles()") > 0  # ... and rebuilds work again
        else:
            assert after == before
        # The same session now runs this version's library.
        assert one(conn, "SELECT recvector._py_library_dir()").endswith(f"/{version}")
        assert one(conn, "SELECT count(*) FROM recvector.validate_schema('{}'::jsonb)") > 0
        if step == 1:
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="not a valid Chroma name"):
                conn.execute("SELECT recvector.chroma_verify('http://127.0.0.1:9', 'x')")
    # Work queued before the updates is done after them; the trigger keeps logging.
    conn.execute("SELECT recvector.process_queue()")
    conn.execute("INSERT INTO event (user_id, item_id, kind, at) VALUES (5, 1, 'like', now())")
    assert one(conn, "SELECT interaction_count_since_update FROM recvector.rec_user_profiles WHERE user_id = '5'") >= 1

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
