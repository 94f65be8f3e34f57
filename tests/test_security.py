"""Attacks on RecVector as an ordinary role and as a non-superuser database owner (docs/security.md).

Every test here is an attack that worked against 0.2.0 or a rule of the security model: no role
gains a privilege through RecVector's SECURITY DEFINER functions, whatever it creates in a schema it
can write to (functions, operators, casts, types, temp tables and triggers).

The database these tests attack grants CREATE on `public` to PUBLIC (as the shipped Pagila dump
does) and its owner is an ordinary role.
"""
from __future__ import annotations

import re
import threading
import time
import uuid
from typing import Iterator

import psycopg
import pytest

from conftest import HOST, PORT, one

PWNED = "CREATE TABLE IF NOT EXISTS public.pwned (who text, fn text, at timestamptz DEFAULT now())"


def _connect(role: str, db: str) -> psycopg.Connection:
    return psycopg.connect(f"host={HOST} port={PORT} user={role} dbname={db}", autocommit=True)


class Roles:
    def __init__(self, admin: psycopg.Connection) -> None:
        self.admin = admin
        self.db = one(admin, "SELECT current_database()")
        tag = uuid.uuid4().hex[:8]
        self.app = f"rv_app_{tag}"          # an application role: recvector_app, INSERT on rental
        self.owner = f"rv_dbowner_{tag}"    # owns the database (and so, on PostgreSQL 15, schema public)
        self.nobody = f"rv_nobody_{tag}"    # no grant at all
        for r in (self.app, self.owner, self.nobody):
            admin.execute(f'CREATE ROLE "{r}" LOGIN')
        admin.execute(f'GRANT recvector_app TO "{self.app}", "{self.owner}"')
        admin.execute(f'GRANT SELECT, INSERT ON rental, inventory TO "{self.app}"')
        admin.execute(f'GRANT USAGE ON SEQUENCE rental_rental_id_seq TO "{self.app}"')
        admin.execute(f'ALTER DATABASE "{self.db}" OWNER TO "{self.owner}"')
        admin.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        admin.execute(PWNED)
        admin.execute("GRANT INSERT, SELECT ON public.pwned TO PUBLIC")
        self.conns: list[psycopg.Connection] = []

    def connect(self, role: str) -> psycopg.Connection:
        c = _connect(role, self.db)
        self.conns.append(c)
        return c

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.admin.execute(f'ALTER DATABASE "{self.db}" OWNER TO postgres')
        for r in (self.app, self.owner, self.nobody):
            self.admin.execute(f'DROP OWNED BY "{r}" CASCADE')
            self.admin.execute(f'DROP ROLE "{r}"')


@pytest.fixture
def roles(booted) -> Iterator[Roles]:
    r = Roles(booted)
    try:
        yield r
    finally:
        r.close()


def _is_superuser(admin: psycopg.Connection, role: str) -> bool:
    return bool(one(admin, "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)))


def _pwned(admin: psycopg.Connection) -> list[tuple]:
    return admin.execute("SELECT who, fn FROM public.pwned WHERE who NOT IN (SELECT rolname FROM pg_roles WHERE NOT rolsuper AND rolname LIKE 'rv\\_%%')").fetchall()


def _evil_body(role: str, fn: str) -> str:
    """PL/pgSQL that records who runs it and tries to make `role` a superuser."""
    return (f"BEGIN INSERT INTO public.pwned (who, fn) VALUES (current_user, {fn!r}); "
            f"BEGIN EXECUTE 'ALTER ROLE \"{role}\" SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END; ")


# --------------------------------------------------------------------------------------------
# 1. The trigger function attached to a table of the attacker's, with a type and cast of theirs.
# --------------------------------------------------------------------------------------------

def _evil_type_and_table(conn: psycopg.Connection, role: str) -> None:
    conn.execute("CREATE TYPE pg_temp.evil AS ENUM ('1', '2', '3')")
    conn.execute("CREATE FUNCTION pg_temp.evil_text(pg_temp.evil) RETURNS text LANGUAGE plpgsql AS $$ "
                 + _evil_body(role, "cast") + " RETURN $1::text; END $$")
    conn.execute("CREATE CAST (pg_temp.evil AS text) WITH FUNCTION pg_temp.evil_text(pg_temp.evil)")
    conn.execute("CREATE TEMP TABLE bait (rental_id int, rental_date timestamptz, inventory_id int, "
                 "customer_id pg_temp.evil, staff_id int)")


@pytest.mark.parametrize("who", ["app", "owner", "nobody"])
def test_trigger_function_cannot_be_attached_to_a_table_of_the_callers(roles, who):
    role = getattr(roles, who)
    conn = roles.connect(role)
    _evil_type_and_table(conn, role)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("CREATE TRIGGER t AFTER INSERT ON bait REFERENCING NEW TABLE AS new_rows "
                     "FOR EACH STATEMENT EXECUTE FUNCTION recvector._capture_interactions('rental')")
    assert _pwned(roles.admin) == [] and not _is_superuser(roles.admin, role)


def test_trigger_function_refuses_a_table_it_was_not_attached_to(roles):
    """Even attached by someone who may (EXECUTE is not checked when a trigger fires), the function
    checks where it fires before it reads a row: the cast of the attacker's type never runs."""
    roles.admin.execute("SELECT recvector.enable_auto_logging()")
    conn = roles.connect(roles.owner)
    _evil_type_and_table(conn, roles.owner)
    roles.admin.execute(f'GRANT EXECUTE ON FUNCTION recvector._capture_interactions() TO "{roles.owner}"')
    try:
        conn.execute("CREATE TRIGGER t AFTER INSERT ON bait REFERENCING NEW TABLE AS new_rows "
                     "FOR EACH STATEMENT EXECUTE FUNCTION recvector._capture_interactions('rental')")
    finally:
        roles.admin.execute(f'REVOKE EXECUTE ON FUNCTION recvector._capture_interactions() FROM "{roles.owner}"')
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not an auto-logging trigger"):
        conn.execute("INSERT INTO bait VALUES (1, now(), 1, '1', 1)")
    assert _pwned(roles.admin) == [] and not _is_superuser(roles.admin, roles.owner)


def test_a_mapped_column_changed_to_a_type_of_the_owners_is_refused(roles):
    """The owner of a mapped table changes a column to a type with a cast of theirs: neither the
    trigger nor the serving path runs that cast."""
    roles.admin.execute("SELECT recvector.enable_auto_logging()")
    roles.admin.execute("ALTER TABLE rental DROP CONSTRAINT rental_customer_id_fkey")
    roles.admin.execute(f'ALTER TABLE rental OWNER TO "{roles.owner}"')
    conn = roles.connect(roles.owner)
    conn.execute("CREATE TYPE public.cust AS (id integer)")
    conn.execute("CREATE FUNCTION public.cust_text(public.cust) RETURNS text LANGUAGE plpgsql AS $$ "
                 + _evil_body(roles.owner, "cast") + " RETURN ($1).id::text; END $$")
    conn.execute("CREATE CAST (public.cust AS text) WITH FUNCTION public.cust_text(public.cust)")
    conn.execute("CREATE FUNCTION public.int_cust(integer) RETURNS public.cust LANGUAGE sql AS $$ SELECT ROW($1)::public.cust $$")
    conn.execute("CREATE CAST (integer AS public.cust) WITH FUNCTION public.int_cust(integer)")
    conn.execute("CREATE FUNCTION public.text_cust(text) RETURNS public.cust LANGUAGE plpgsql AS $$ "
                 + _evil_body(roles.owner, "cast in") + " RETURN ROW($1::int)::public.cust; END $$")
    conn.execute("CREATE CAST (text AS public.cust) WITH FUNCTION public.text_cust(text)")
    conn.execute("ALTER TABLE rental DISABLE TRIGGER USER")
    conn.execute("ALTER TABLE rental ALTER COLUMN customer_id TYPE public.cust USING customer_id::public.cust")
    conn.execute("ALTER TABLE rental ENABLE TRIGGER USER")
    with pytest.raises(psycopg.Error, match="is no longer of type"):
        conn.execute("SELECT * FROM rec_recommend(1, 5)")
    roles.admin.execute("SET recvector.strict = on")
    with pytest.raises(psycopg.Error, match="is no longer of type"):
        roles.admin.execute("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) "
                            "VALUES (now(), 1, ROW(1)::public.cust, 1)")
    roles.admin.execute("RESET recvector.strict")
    with pytest.raises(psycopg.Error, match="is no longer of type"):
        roles.admin.execute("SELECT recvector.rebuild_profiles()")
    assert _pwned(roles.admin) == [] and not _is_superuser(roles.admin, roles.owner)


def test_set_schema_refuses_id_columns_of_a_type_an_ordinary_role_owns(pagila):
    role = f"rv_typeowner_{uuid.uuid4().hex[:6]}"
    pagila.execute(f'CREATE ROLE "{role}"')
    try:
        pagila.execute("CREATE DOMAIN public.cust_id AS integer")
        pagila.execute(f'ALTER DOMAIN public.cust_id OWNER TO "{role}"')
        pagila.execute("ALTER TABLE rental ALTER COLUMN customer_id TYPE public.cust_id")
        from conftest import pagila_mapping
        import json
        problems = pagila.execute("SELECT * FROM recvector.validate_schema(%s::jsonb)",
                                  (json.dumps(pagila_mapping()),)).fetchall()
        assert any(p == "$.interactions[0].user_column" and "owned by a role that is not a superuser" in m
                   for p, m in problems), problems
    finally:
        pagila.execute("ALTER TABLE rental ALTER COLUMN customer_id TYPE integer")
        pagila.execute("DROP DOMAIN public.cust_id")
        pagila.execute(f'DROP ROLE "{role}"')


# --------------------------------------------------------------------------------------------
# 2. Shadowing: every function and operator name the definer functions use, created in public.
# --------------------------------------------------------------------------------------------

_NOT_FUNCTIONS = {
    "if", "in", "and", "or", "not", "exists", "array", "values", "select", "from", "where", "any", "all", "row",
    "coalesce", "nullif", "greatest", "least", "case", "when", "then", "else", "cast", "over", "filter", "into",
    "returns", "table", "using", "on", "as", "by", "with", "format_type", "extract", "exception", "raise", "perform",
    "return", "query", "execute", "elsif", "loop", "foreach", "for", "while", "begin", "end", "declare", "set",
    "update", "insert", "delete", "join", "lateral", "limit", "order", "group", "having", "union", "except",
    "distinct", "is", "null", "true", "false", "interval", "timestamptz", "text", "integer", "bigint", "numeric",
    "double", "precision", "boolean", "jsonb", "json", "oid", "tid", "real", "vector", "bit", "name", "regclass",
    "regprocedure", "trigger", "void", "record", "now", "position", "substring", "trim", "overlay", "collate",
    "current_setting", "default", "conflict", "do", "nothing", "only", "share", "nowait", "skip", "locked",
}


def _called_names(admin: psycopg.Connection) -> list[str]:
    """Every name followed by "(" in the code of RecVector's SECURITY DEFINER functions and of the
    functions they call (derived from pg_proc, not hand-picked)."""
    srcs = [r[0] for r in admin.execute(
        "SELECT p.prosrc FROM pg_proc p WHERE p.pronamespace = 'recvector'::regnamespace "
        "   OR (p.pronamespace = 'public'::regnamespace AND p.proname IN ('rec_recommend', 'rec_similar'))")]
    names: set[str] = set()
    for src in srcs:
        for m in re.finditer(r"(?<![.\w$])([a-z_][a-z0-9_]*)\s*\(", src):
            names.add(m.group(1))
    return sorted(n for n in names - _NOT_FUNCTIONS if not n.startswith(("_rv", "recvector")))


_SHADOW_SIGNATURES = [
    ("text", "text"), ("text, text", "text"), ("text, text, boolean", "text"), ("text, integer, integer", "text"),
    ("double precision", "double precision"), ("double precision, double precision", "double precision"),
    ("integer", "integer"), ("bigint", "bigint"), ("jsonb", "jsonb"), ("jsonb, text", "jsonb"),
    ("anyelement", "anyelement"), ("anyelement, anyelement", "anyelement"), ("anyarray", "anyarray"),
    ("anyarray, anyelement", "anyarray"), ("timestamptz, timestamptz", "interval"), ("interval", "double precision"),
]


def _shadow_everything(conn: psycopg.Connection, role: str, names: list[str]) -> int:
    made = 0
    for name in names:
        for args, ret in _SHADOW_SIGNATURES:
            try:
                conn.execute(f'CREATE FUNCTION public."{name}"({args}) RETURNS {ret} LANGUAGE plpgsql AS $$ '
                             + _evil_body(role, name) + " RETURN NULL; END $$")
                made += 1
            except psycopg.Error:
                pass
    # Operators on the types RecVector compares, computes and concatenates.
    conn.execute("CREATE FUNCTION public.evil_op(anyelement, anyelement) RETURNS boolean LANGUAGE plpgsql AS $$ "
                 + _evil_body(role, "operator") + " RETURN false; END $$")
    conn.execute("CREATE FUNCTION public.evil_num(double precision, double precision) RETURNS double precision "
                 "LANGUAGE plpgsql AS $$ " + _evil_body(role, "operator") + " RETURN 0; END $$")
    for op in ("=", "<>", "<", ">", "<=", ">="):
        for t in ("text", "integer", "bigint", "oid", "timestamptz", "jsonb", "boolean", "double precision"):
            try:
                conn.execute(f"CREATE OPERATOR public.{op} (LEFTARG = {t}, RIGHTARG = {t}, FUNCTION = public.evil_op)")
                made += 1
            except psycopg.Error:
                pass
    for op in ("+", "-", "*", "/"):
        try:
            conn.execute(f"CREATE OPERATOR public.{op} (LEFTARG = double precision, RIGHTARG = double precision, "
                         "FUNCTION = public.evil_num)")
            made += 1
        except psycopg.Error:
            pass
    return made


@pytest.mark.parametrize("who", ["app", "owner"])
def test_shadowing_every_called_name_in_public_gains_nothing(roles, who):
    role = getattr(roles, who)
    names = _called_names(roles.admin)
    assert {"set_config", "format", "lower", "unnest", "array_agg", "jsonb_each", "current_setting"} & set(names)
    conn = roles.connect(role)
    assert _shadow_everything(conn, role, names) > 100
    roles.admin.execute("SELECT recvector.enable_auto_logging()")
    roles.admin.execute("SELECT recvector.enable_entity_sync()")
    roles.admin.execute("SELECT recvector.set_filter('cheap', 'rental_rate < 3 AND lower(rating::text) <> ''nc-17''')")
    # The app-facing functions, with every option, and the triggers.
    conn.execute("SELECT * FROM rec_recommend(1, 5)").fetchall()
    conn.execute("SELECT * FROM rec_recommend('2', 5, 0.5, exploration => 0.1, seed => 3, filter => 'cheap', "
                 "exclude => ARRAY['1'])").fetchall()
    conn.execute("SELECT * FROM rec_recommend(999999, 5)").fetchall()
    conn.execute("SELECT * FROM rec_similar(1, 5)").fetchall()
    conn.execute("SELECT * FROM recvector.explain('1', 3)").fetchall()
    conn.execute("SELECT recvector.log_interaction(1, 2, 'like')")
    if who == "app":
        conn.execute("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) VALUES (now(), 1, 3, 1)")
    roles.admin.execute(f'GRANT recvector_worker TO "{role}"')
    conn.execute("SELECT recvector.process_queue()")
    conn.execute("SELECT * FROM recvector.status()")
    assert _pwned(roles.admin) == [], _pwned(roles.admin)
    assert not _is_superuser(roles.admin, role)


def test_definer_functions_have_a_safe_search_path_and_owner(booted):
    rows = booted.execute("""
        SELECT p.oid::regprocedure::text, p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner)
        FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
        JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'recvector'""").fetchall()
    definers = [r for r in rows if r[1]]
    assert {r[0].split("(")[0] for r in definers} >= {"rec_recommend", "rec_similar", "recvector.explain",
                                                       "recvector.log_interaction", "recvector._capture_interactions",
                                                       "recvector._capture_entities", "recvector.process_queue"}
    for fn, _definer, config, owner in definers:
        assert config == ["search_path=pg_catalog, recvector, pg_temp"], fn
        assert owner == "recvector_definer", fn
    assert not one(booted, "SELECT rolsuper OR rolcanlogin FROM pg_roles WHERE rolname = 'recvector_definer'")
    assert one(booted, "SELECT count(*) FROM pg_auth_members WHERE roleid = 'recvector_definer'::regrole") == 0
    for fn, _definer, config, _owner in rows:
        if config is not None:
            path = [s.strip() for s in config[0].split("=", 1)[1].split(",")]
            assert path[0] == "pg_catalog" and "public" not in path and path[-1] == "pg_temp", fn


def test_the_python_library_directory_cannot_be_set_by_an_ordinary_session(roles):
    conn = roles.connect(roles.owner)
    conn.execute("SET recvector.python_lib_dir = '/tmp/not-recvector'")
    assert one(conn, "SELECT count(*) FROM pg_proc WHERE proname = '_py_library_dir'") == 1
    roles.admin.execute(f'GRANT EXECUTE ON FUNCTION recvector._py_library_dir() TO "{roles.owner}"')
    assert one(conn, "SELECT recvector._py_library_dir()").startswith("/usr/local/lib/recvector/")


# --------------------------------------------------------------------------------------------
# 3. Role model: what app roles and PUBLIC can and cannot call; the documented GRANTs.
# --------------------------------------------------------------------------------------------

def test_public_can_call_nothing(roles):
    conn = roles.connect(roles.nobody)
    for stmt in ("SELECT * FROM rec_recommend(1, 5)", "SELECT * FROM rec_similar(1, 5)",
                 "SELECT recvector.log_interaction(1, 2, 'like')", "SELECT * FROM recvector.explain('1')",
                 "SELECT recvector.process_queue()", "SELECT * FROM recvector.status()"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(stmt)


def _documented_grants() -> list[str]:
    """The GRANT statements docs/security.md tells an admin to run (between the markers)."""
    from conftest import ROOT

    text = (ROOT / "docs" / "security.md").read_text()
    block = text.split("<!-- grants -->", 1)[1].split("<!-- /grants -->", 1)[0]
    sql = block.split("```sql", 1)[1].split("```", 1)[0]
    code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    return [s.strip() for s in code.split(";") if s.strip()]


def test_the_documented_grants_work_when_followed_literally(booted):
    tag = uuid.uuid4().hex[:6]
    app, worker = f"myapp_{tag}", f"myworker_{tag}"
    booted.execute(f"CREATE ROLE {app} LOGIN")
    booted.execute(f"CREATE ROLE {worker} LOGIN")
    booted.execute(f"GRANT SELECT, INSERT ON rental TO {app}")
    booted.execute("SELECT recvector.enable_auto_logging()")
    try:
        statements = _documented_grants()
        assert len(statements) == 2
        for stmt in statements:
            booted.execute(stmt.replace("my_app", app).replace("my_worker", worker))
        with _connect(app, one(booted, "SELECT current_database()")) as a:
            assert len(a.execute("SELECT * FROM rec_recommend(1, 5)").fetchall()) == 5
            assert len(a.execute("SELECT * FROM rec_similar(1, 5)").fetchall()) == 5
            assert len(a.execute("SELECT * FROM recvector.explain('1', 3)").fetchall()) == 3
            a.execute("SELECT recvector.log_interaction(1, 2, 'like')")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                a.execute("SELECT recvector.process_queue()")
        with _connect(worker, one(booted, "SELECT current_database()")) as w:
            assert w.execute("SELECT recvector.process_queue()").fetchone()[0] >= 0
            assert w.execute("SELECT * FROM recvector.status()").fetchone() is not None
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                w.execute("SELECT recvector.set_schema('{}')")
    finally:
        for r in (app, worker):
            booted.execute(f"DROP OWNED BY {r}")
            booted.execute(f"DROP ROLE {r}")


# --------------------------------------------------------------------------------------------
# 4. Input that must be refused at the door, and bad rows that must not stop anyone else.
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    ("1, 2, 'like', 'infinity'", "occurred_at must be a real time"),
    ("1, 2, 'like', '-infinity'", "occurred_at must be a real time"),
    ("1, 2, 'like', now() + interval '1 year'", "occurred_at must be a real time"),
    ("1, 2, 'like', now(), 1e39", "weight must be a number from -100 to 100"),
    ("1, 2, 'like', now(), 'NaN'", "weight must be a number from -100 to 100"),
    ("1, 2, 'like', now(), -101", "weight must be a number from -100 to 100"),
    ("repeat('x', 2000), '2'", "ids and kind are at most 1024 bytes"),
])
def test_log_interaction_refuses_poison(roles, args, message):
    conn = roles.connect(roles.app)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        conn.execute(f"SELECT recvector.log_interaction({args})")
    assert one(roles.admin, "SELECT count(*) FROM recvector.events") == 0
    assert one(roles.admin, "SELECT recvector.rebuild_profiles()") == 599


def test_bad_rows_in_the_apps_tables_do_not_break_rebuilds(booted):
    booted.execute("ALTER TABLE rental DISABLE TRIGGER ALL")
    booted.execute("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) VALUES ('infinity', 1, 5, 1)")
    booted.execute("ALTER TABLE rental ENABLE TRIGGER ALL")
    assert one(booted, "SELECT recvector.rebuild_profiles()") == 599
    assert one(booted, "SELECT recvector.rebuild_entity_stats()") > 0
    assert len(booted.execute("SELECT * FROM rec_recommend(5, 5)").fetchall()) == 5


def test_null_in_exclude_is_ignored(booted):
    plain = booted.execute("SELECT entity_id FROM rec_recommend(1, 5)").fetchall()
    assert booted.execute("SELECT entity_id FROM rec_recommend(1, 5, exclude => ARRAY[NULL]::text[])").fetchall() == plain
    first = plain[0][0]
    rows = booted.execute("SELECT entity_id FROM rec_recommend(1, 5, exclude => ARRAY[NULL, %s])", (first,)).fetchall()
    assert len(rows) == 5 and (first,) not in rows


# --------------------------------------------------------------------------------------------
# 5. The worker never waits for the application in a cycle.
# --------------------------------------------------------------------------------------------

def test_worker_and_a_multi_row_insert_never_deadlock(booted):
    """The 0.2.0 deadlock: the worker holds user 2's profile, the app's one-statement INSERT for
    users 1 and 2 takes 1 and waits for 2, the worker asks for 1. Now the worker's lock on 1 is
    refused at once (it never waits for the application), and the app's INSERT goes through."""
    booted.execute("SELECT recvector.enable_auto_logging()")
    db = one(booted, "SELECT current_database()")
    worker = _connect("postgres", db)
    app = _connect("postgres", db)
    worker.autocommit = False
    worker.execute("SELECT recvector.update_user_profile('2')")
    outcome: dict[str, object] = {}

    def insert() -> None:
        try:
            app.execute("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) "
                        "VALUES ('2030-01-01', 1, 1, 1), ('2030-01-01', 2, 2, 1)")
            outcome["ok"] = True
        except psycopg.Error as e:  # pragma: no cover - the failure this test guards against
            outcome["error"] = e

    t = threading.Thread(target=insert)
    t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not one(
            booted, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO rental%%'"):
        time.sleep(0.05)
    with pytest.raises(psycopg.errors.LockNotAvailable, match="being written by another transaction"):
        worker.execute("SELECT recvector.update_user_profile('1')")
    worker.rollback()
    t.join(10)
    worker.close()
    app.close()
    assert outcome.get("ok") is True, outcome
    assert one(booted, "SELECT count(*) FROM recvector.failed_interactions") == 0
