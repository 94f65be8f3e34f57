"""The per-mapping queries (a user's seen entities and history) are generated as static SQL when a
mapping is loaded, so PostgreSQL caches their plans; they must return exactly what the compiled SQL
returns when run dynamically, and follow the mapping when it changes."""
from __future__ import annotations

import json

from conftest import one, pagila_mapping


def compiled(conn):
    return one(conn, "SELECT compiled FROM recvector.mapping")


def dynamic_seen(conn, user):
    c = compiled(conn)
    return sorted(r[0] for r in conn.execute(
        c["seen"].replace("$1", "%(p)s::jsonb").replace("$2", "%(u)s::text").replace("$4", "%(u)s::text")
        .replace("$3", "NULL::integer"), {"p": json.dumps(c["params"]), "u": user}))


def dynamic_history(conn, user, limit=100):
    c = compiled(conn)
    sql = (c["history"].replace("$1", "%(p)s::jsonb").replace("$2", "%(u)s::text").replace("$3", "%(l)s::integer")
           .replace("$4", "%(u)s::text").replace("$5", "NULL"))
    return conn.execute(sql, {"p": json.dumps(c["params"]), "u": user, "l": limit}).fetchall()


def test_generated_queries_are_static_and_equal_the_compiled_sql(booted):
    src = one(booted, "SELECT prosrc FROM pg_proc WHERE proname = '_mapped_seen'")
    assert '"public"."rental"' in src and "EXECUTE" not in src
    src = one(booted, "SELECT prosrc FROM pg_proc WHERE proname = '_mapped_history'")
    assert '"public"."rental"' in src and "EXECUTE" not in src
    assert one(booted, "SELECT proconfig FROM pg_proc WHERE proname = '_mapped_seen'") == \
        ["search_path=pg_catalog, recvector, pg_temp"]
    # The auto-logging trigger has one static branch per source, keeps SECURITY DEFINER, and the
    # dynamic path only for sources it has no branch for.
    src, definer = booted.execute("SELECT prosrc, prosecdef FROM pg_proc WHERE proname = '_capture_interactions'").fetchone()
    assert "IF TG_ARGV[0] = 'rental' THEN" in src and "FROM new_rows AS s" in src and definer is True
    booted.execute("SELECT recvector.log_interaction(7, 999, 'like')")
    for user in ("1", "7", "599", "nobody", "1; DROP TABLE film"):
        got = one(booted, "SELECT recvector._mapped_seen((SELECT compiled->'params' FROM recvector.mapping), %s, NULL, "
                          "recvector._id_or_null(%s, 'integer'))", (user, user))
        assert sorted(got) == (dynamic_seen(booted, user) if user.isdigit() else sorted(
            r[0] for r in booted.execute("SELECT entity_id FROM recvector.events WHERE user_id = %s", (user,))))
    for user in ("1", "7"):
        got = booted.execute("SELECT * FROM recvector._mapped_history((SELECT compiled->'params' FROM recvector.mapping), "
                             "%s, 100, %s, NULL)", (user, user)).fetchall()
        assert got == dynamic_history(booted, user) and len(got) > 10


def test_generated_queries_follow_a_changed_mapping(booted):
    before = booted.execute("SELECT weight FROM recvector._mapped_history((SELECT compiled->'params' FROM recvector.mapping), "
                            "'1', 5, '1', NULL)").fetchall()
    doc = pagila_mapping()
    doc["interactions"][0]["weight"] = {"fixed": 2.5}
    booted.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    after = booted.execute("SELECT weight FROM recvector._mapped_history((SELECT compiled->'params' FROM recvector.mapping), "
                           "'1', 5, '1', NULL)").fetchall()
    assert len(after) == len(before) == 5 and {w for w, in after} == {2.5}
    # The profile recompute reads the generated history: same result as before up to the weights'
    # common factor (a fixed weight scales every term alike).
    assert one(booted, "SELECT (recvector.update_user_profile('1')).accumulated_weight") > 0


def test_the_params_placeholder_is_replaced_only_outside_quotes(booted):
    q = """SELECT $1 -> 0, "a$1""x" AS "$1", '$1''' AS s, $10 FROM t WHERE x = $1"""
    assert one(booted, "SELECT recvector._replace_param(%s, '$1', '_rv_params')", (q,)) == \
        """SELECT _rv_params -> 0, "a$1""x" AS "$1", '$1''' AS s, $10 FROM t WHERE x = _rv_params"""
