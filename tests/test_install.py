"""The extension as installed: objects, comments, search paths, build, versions, DROP/CREATE."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from conftest import ROOT, dsn, one

EXT_OBJECTS = """
    SELECT p.oid::regprocedure::text AS fn, n.nspname, p.prokind, p.proconfig,
           obj_description(p.oid, 'pg_proc') AS comment
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'recvector'
"""


def test_sql_scripts_are_built_from_sql_sources():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_sql.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_python_package_and_extension_versions_match(empty_db):
    import recvector

    control = (ROOT / "extension" / "recvector.control").read_text()
    assert f"default_version = '{recvector.__version__}'" in control
    empty_db.execute("CREATE EXTENSION recvector CASCADE")
    assert one(empty_db, "SELECT extversion FROM pg_extension WHERE extname = 'recvector'") == recvector.__version__
    assert Path(one(empty_db, "SELECT recvector._py_library_dir()")).name == recvector.__version__


def test_objects_naming_comments_and_search_path(empty_db):
    empty_db.execute("CREATE EXTENSION recvector CASCADE")
    rows = empty_db.execute(EXT_OBJECTS).fetchall()
    assert len(rows) > 25
    public = sorted({fn.split("(")[0] for fn, schema, *_ in rows if schema != "recvector"})
    assert public == ["rec_recommend", "rec_similar"]
    assert all(schema == "public" for fn, schema, *_ in rows if schema != "recvector")
    inlinable = {"recvector._decay(timestamp with time zone,timestamp with time zone,double precision)",
                 "recvector._scale(vector,double precision)", "recvector._add_counts(jsonb,jsonb)",
                 "recvector._noise(bigint,text)", "recvector._candidate_sql(text,text)"}
    for fn, schema, kind, config, comment in rows:
        assert comment, f"{fn} has no COMMENT"
        if fn in inlinable:
            assert config is None, fn
        elif kind != "p":
            assert config == ["search_path=pg_catalog, recvector, pg_temp"], fn
    tables = empty_db.execute("SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
                              "JOIN pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE n.nspname = 'recvector' AND c.relkind = 'r'").fetchall()
    assert {t for t, _ in tables} == {"mapping", "entity_vectors", "rec_user_profiles", "rec_entity_stats",
                                      "events", "queue", "triggers", "failed_interactions", "filters",
                                      "chroma_targets", "entity_tombstones", "pending_interactions",
                                      "quarantined_events", "item_neighbors", "neighbor_builds", "neighbor_source", "hidden"}
    assert all(c for _, c in tables)
    dumped = one(empty_db, "SELECT array_length(extconfig, 1) FROM pg_extension WHERE extname = 'recvector'")
    assert dumped == 19  # 16 tables (not the neighbour builds' working table) + 3 identity sequences


def test_install_into_another_schema(empty_db):
    empty_db.execute("CREATE SCHEMA app")
    empty_db.execute("CREATE EXTENSION recvector SCHEMA app CASCADE")
    assert one(empty_db, "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector'") == "app"
    assert one(empty_db, "SELECT count(*) FROM pg_proc WHERE proname = 'rec_recommend' "
                         "AND pronamespace = 'app'::regnamespace") == 2
    cfg = one(empty_db, "SELECT proconfig FROM pg_proc WHERE proname = '_ingest'")
    assert cfg == ["search_path=pg_catalog, recvector, pg_temp"]


def test_serving_works_whatever_the_callers_search_path(booted):
    expected = booted.execute("SELECT * FROM rec_recommend(3, 5)").fetchall()
    booted.execute("SET search_path = pg_catalog")
    assert booted.execute("SELECT * FROM public.rec_recommend(3, 5)").fetchall() == expected
    assert len(booted.execute("SELECT * FROM public.rec_similar(3, 5)").fetchall()) == 5


def test_drop_extension_keeps_user_tables_and_removes_everything_of_ours(booted):
    booted.execute("SELECT recvector.enable_auto_logging()")
    rentals = one(booted, "SELECT count(*) FROM rental")
    with pytest.raises(psycopg.Error) as err:
        booted.execute("DROP EXTENSION recvector")
    assert "trigger recvector_rental on table rental depends on" in err.value.diag.message_detail
    booted.execute("SELECT recvector.disable_auto_logging()")
    booted.execute("DROP EXTENSION recvector")
    assert one(booted, "SELECT count(*) FROM pg_namespace WHERE nspname = 'recvector'") == 0
    assert one(booted, "SELECT count(*) FROM pg_proc WHERE proname LIKE 'rec\\_%%'") == 0
    assert one(booted, "SELECT count(*) FROM rental") == rentals
    assert one(booted, "SELECT count(*) FROM film") == 1000
    booted.execute("CREATE EXTENSION recvector")
    assert one(booted, "SELECT count(*) FROM recvector.mapping") == 0


def test_drop_extension_cascade_removes_only_the_trigger(booted):
    booted.execute("SELECT recvector.enable_auto_logging()")
    booted.execute("DROP EXTENSION recvector CASCADE")
    assert one(booted, "SELECT count(*) FROM pg_trigger WHERE tgname = 'recvector_rental'") == 0
    assert one(booted, "SELECT count(*) FROM rental") == 16044
    assert one(booted, "SELECT extname FROM pg_extension WHERE extname = 'vector'") == "vector"


def _fresh_session_error(db: psycopg.Connection, lib_dir: str) -> psycopg.Error:
    """Call a PL/Python function in a new session (nothing cached in GD) with another library dir."""
    with psycopg.connect(dsn(one(db, "SELECT current_database()")), autocommit=True) as fresh:
        fresh.execute("SELECT set_config('recvector.python_lib_dir', %s, false)", (lib_dir,))
        with pytest.raises(psycopg.Error) as err:
            fresh.execute("SELECT recvector.validate_schema('{}')")
    return err.value


def test_python_library_version_and_presence_are_checked(empty_db):
    empty_db.execute("CREATE EXTENSION recvector CASCADE")
    root = Path(tempfile.mkdtemp(prefix="rv-lib-"))
    try:
        (root / "recvector").mkdir()
        (root / "recvector" / "__init__.py").write_text("")
        (root / "recvector" / "plpython.py").write_text('__version__ = "9.9.9"\n')
        for p in (root, root / "recvector"):
            p.chmod(0o755)
        err = _fresh_session_error(empty_db, str(root))
        assert "recvector Python library 9.9.9 does not match extension version" in err.diag.message_primary
        err = _fresh_session_error(empty_db, str(root / "missing"))
        assert "recvector Python library not found" in err.diag.message_primary
        assert "make install" in err.diag.message_hint
    finally:
        shutil.rmtree(root)
