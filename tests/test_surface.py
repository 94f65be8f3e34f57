"""The extension's surface, compared with a committed listing (tests/surface/recvector--<version>.expected).

Every routine (signature, kind, language, SECURITY DEFINER, search_path, owner, who may execute it,
comment), every table (columns, constraints, indexes, whether pg_dump carries its rows, comment),
type and trigger of a fresh install. A change to the API, a grant or a search_path is a visible
diff in review. After an intended change:

    RECVECTOR_UPDATE_SURFACE=1 .venv/bin/python -m pytest tests/test_surface.py
"""
from __future__ import annotations

import difflib
import os

import psycopg

from conftest import ROOT

EXPECTED = ROOT / "tests" / "surface"


def _version() -> str:
    return (ROOT / "sql" / "versions.txt").read_text().split()[-1]


ROUTINES = """
SELECT p.oid::regprocedure::text,
       p.prokind, l.lanname, p.prosecdef, coalesce(array_to_string(p.proconfig, ' '), ''),
       CASE WHEN r.rolsuper THEN '<installer>' ELSE r.rolname END,
       coalesce((SELECT string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, ','
                                   ORDER BY 1)
                 FROM aclexplode(p.proacl) AS a WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner), ''),
       coalesce(obj_description(p.oid, 'pg_proc'), '')
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'recvector'
JOIN pg_language l ON l.oid = p.prolang
JOIN pg_roles r ON r.oid = p.proowner
ORDER BY 1
"""

TABLES = """
SELECT c.oid, c.oid::regclass::text, c.relkind,
       coalesce(obj_description(c.oid, 'pg_class'), ''),
       c.oid = ANY (coalesce((SELECT extconfig FROM pg_extension WHERE extname = 'recvector'), '{}')),
       coalesce((SELECT string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
                                   || ':' || a.privilege_type, ',' ORDER BY 1)
                 FROM aclexplode(c.relacl) AS a WHERE a.grantee <> c.relowner), '')
FROM pg_class c
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'recvector'
WHERE c.relkind IN ('r', 'p', 'v')
ORDER BY 2
"""


def surface(conn: psycopg.Connection) -> str:
    out: list[str] = [f"-- RecVector {_version()}: the extension's surface (tests/test_surface.py)", ""]
    for sig, kind, lang, definer, config, owner, grants, comment in conn.execute(ROUTINES):
        out.append(f"routine {sig}")
        out.append(f"    {({'f': 'function', 'p': 'procedure', 'a': 'aggregate'}).get(kind, kind)} {lang}"
                   f"{' SECURITY DEFINER' if definer else ''}{(' SET ' + config) if config else ''}"
                   f" owner={owner} execute={grants or '-'}")
        out.append(f"    -- {comment}")
    out.append("")
    for oid, name, kind, comment, dumped, grants in conn.execute(TABLES):
        out.append(f"table {name} ({'partitioned' if kind == 'p' else 'view' if kind == 'v' else 'table'})"
                   f"{' dumped' if dumped else ''} grants={grants or '-'}")
        out.append(f"    -- {comment}")
        for col, typ, notnull, default in conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
                "pg_get_expr(ad.adbin, ad.adrelid) FROM pg_attribute a "
                "LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum "
                "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (oid,)):
            out.append(f"    {col} {typ}{' NOT NULL' if notnull else ''}{(' DEFAULT ' + default) if default else ''}")
        for (con,) in conn.execute("SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
                                   "WHERE conrelid = %s ORDER BY conname", (oid,)):
            out.append(f"    constraint {con}")
        for (idx,) in conn.execute("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s "
                                   "AND NOT indisprimary ORDER BY 1", (oid,)):
            out.append(f"    {idx}")
        for (trg,) in conn.execute("SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = %s "
                                   "AND NOT tgisinternal ORDER BY tgname", (oid,)):
            out.append(f"    {trg}")
    out.append("")
    for (typ,) in conn.execute(
            "SELECT format_type(t.oid, NULL) FROM pg_type t JOIN pg_depend d ON d.classid = 'pg_type'::regclass "
            "AND d.objid = t.oid AND d.deptype = 'e' JOIN pg_extension x ON x.oid = d.refobjid "
            "AND x.extname = 'recvector' ORDER BY 1"):
        out.append(f"type {typ}")
    return "\n".join(out) + "\n"


def test_surface_matches_the_committed_listing(empty_db):
    empty_db.execute("CREATE EXTENSION recvector CASCADE")
    got = surface(empty_db)
    path = EXPECTED / f"recvector--{_version()}.expected"
    if os.environ.get("RECVECTOR_UPDATE_SURFACE") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(got)
    assert path.exists(), f"{path} is missing: write it with RECVECTOR_UPDATE_SURFACE=1 and review it"
    expected = path.read_text()
    assert got == expected, "".join(difflib.unified_diff(expected.splitlines(True), got.splitlines(True),
                                                         str(path), "this build"))


def test_every_routine_has_a_comment_and_no_public_execute(empty_db):
    empty_db.execute("CREATE EXTENSION recvector CASCADE")
    rows = empty_db.execute(ROUTINES).fetchall()
    assert rows
    assert [r[0] for r in rows if not r[7]] == []
    assert [r[0] for r in rows if "PUBLIC" in r[6].split(",")] == []
