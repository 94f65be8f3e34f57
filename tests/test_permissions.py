"""The role model (docs/security.md): an app role granted recvector_app recommends, explains and
logs; its inserts and updates of mapped tables are recorded; it cannot read or change RecVector's
data or configuration."""
from __future__ import annotations

import uuid
from typing import Iterator

import psycopg
import psycopg.types.json
import pytest

from conftest import HOST, PORT, one


@pytest.fixture
def app_role(booted) -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    role = f"rv_app_{uuid.uuid4().hex[:8]}"
    booted.execute(f'CREATE ROLE "{role}" LOGIN')
    booted.execute(f'GRANT recvector_app TO "{role}"')
    booted.execute(f'GRANT SELECT, INSERT ON rental, inventory TO "{role}"')
    booted.execute(f'GRANT SELECT, UPDATE ON film TO "{role}"')
    booted.execute(f'GRANT USAGE ON SEQUENCE rental_rental_id_seq TO "{role}"')
    db = one(booted, "SELECT current_database()")
    conn = psycopg.connect(f"host={HOST} port={PORT} user={role} dbname={db}", autocommit=True)
    try:
        yield booted, conn
    finally:
        conn.close()
        booted.execute(f'DROP OWNED BY "{role}"')
        booted.execute(f'DROP ROLE "{role}"')


def test_app_role_recommends_logs_and_inserts(app_role):
    admin, app = app_role
    assert len(app.execute("SELECT * FROM rec_recommend(1, 5)").fetchall()) == 5
    assert len(app.execute("SELECT * FROM rec_similar(1, 5)").fetchall()) == 5
    assert len(app.execute("SELECT * FROM recvector.explain('1', 3)").fetchall()) == 3
    app.execute("SELECT recvector.log_interaction(1, 2, 'like')")
    top = one(app, "SELECT entity_id FROM rec_recommend(1, 1)")
    app.execute("SELECT recvector.hide('1', %s)", (top,))
    assert top not in {r[0] for r in app.execute("SELECT entity_id FROM rec_recommend(1, 5, page => 2)")}
    assert one(app, "SELECT recvector.unhide('1', %s)", (top,)) is True
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT * FROM recvector.hidden")
    admin.execute("SELECT recvector.enable_auto_logging()")
    app.execute("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) VALUES ('2030-01-01', 1, 3, 1)")
    assert one(admin, "SELECT interaction_count_since_update FROM recvector.rec_user_profiles WHERE user_id = '3'") == 1
    assert one(admin, "SELECT count(*) FROM recvector.events WHERE user_id = '1'") == 1


def test_app_role_inserts_with_deferred_capture(app_role):
    admin, app = app_role
    doc = one(admin, "SELECT document FROM recvector.mapping")
    doc["aggregation"]["capture"] = "deferred"
    admin.execute("SELECT recvector.set_schema(%s::jsonb)", (psycopg.types.json.Jsonb(doc),))
    admin.execute("SELECT recvector.enable_auto_logging()")
    app.execute("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) VALUES ('2030-01-01', 1, 3, 1)")
    app.execute("SELECT recvector.log_interaction(4, 2, 'like')")
    assert one(admin, "SELECT count(*) FROM recvector.pending_interactions") == 2
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT * FROM recvector.pending_interactions")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT recvector.fold_pending()")
    assert one(admin, "SELECT recvector.fold_pending()") == 2
    assert one(admin, "SELECT interaction_count_since_update FROM recvector.rec_user_profiles WHERE user_id = '3'") == 1


@pytest.mark.parametrize("statement", [
    "SELECT * FROM recvector.mapping",
    "SELECT * FROM recvector.rec_user_profiles",
    "UPDATE recvector.rec_entity_stats SET popularity = 1e9",
    "DELETE FROM recvector.queue",
    "SELECT recvector.set_schema('{}')",
    "SELECT recvector.bootstrap()",
    "SELECT recvector.enable_auto_logging()",
    "SELECT recvector.process_queue()",
    "SELECT recvector.update_user_profile('1')",
    "SELECT recvector.reembed()",
    "SELECT recvector.embed(ARRAY['x'])",
    "SELECT recvector._ingest(ARRAY[]::recvector.interaction[])",
    "SELECT recvector.status()",
    "SELECT recvector.fold_pending()",
    "SELECT recvector.retry_failed()",
    "SELECT recvector.rebuild_profiles()",
    "SELECT * FROM recvector.evaluate(10)",
    "SELECT recvector._capture_interactions()",
    "SELECT * FROM recvector.quarantined_events",
])
def test_app_role_cannot_read_or_change_configuration(app_role, statement):
    _, app = app_role
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(statement)


def test_entity_sync_records_the_app_roles_updates(app_role):
    """The entity-sync trigger runs as RecVector's role: an app role's UPDATE queues the entity
    (0.2.0 queued nothing, and failed the UPDATE in strict mode)."""
    admin, app = app_role
    admin.execute("SELECT recvector.enable_entity_sync()")
    app.execute("SET recvector.strict = on")
    app.execute("UPDATE film SET description = 'A new cut' WHERE film_id = 17")
    assert admin.execute("SELECT key FROM recvector.queue WHERE kind = 'entity'").fetchall() == [("17",)]
    assert one(admin, "SELECT recvector.process_queue()") == 1
    assert one(admin, "SELECT count(*) FROM recvector.queue") == 0


def test_serving_functions_are_definer_with_fixed_search_path(booted):
    rows = booted.execute("""
        SELECT p.oid::regprocedure::text, p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner) FROM pg_proc p
        WHERE p.proname IN ('rec_recommend', 'rec_similar', 'log_interaction', '_capture_interactions', 'explain',
                            'process_queue', 'fold_pending', 'status', '_capture_entities', 'hide', 'unhide')
          AND p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'sql')""").fetchall()
    assert len(rows) == 11
    for fn, definer, config, owner in rows:
        assert definer, fn
        assert owner == "recvector_definer", fn
        assert config == ["search_path=pg_catalog, recvector, pg_temp"], fn
