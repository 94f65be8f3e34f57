"""Pagila end to end: a real sample database nobody here designed, the real local model."""
from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest

from conftest import PAGILA_MAPPING, dsn, one, pagila_mapping

USER_SCHEMAS = "('pg_catalog', 'information_schema', 'recvector', 'pg_toast')"


def table_checksums(conn: psycopg.Connection) -> dict[str, str]:
    """md5 over every row of every table outside RecVector's schema."""
    tables = [r[0] for r in conn.execute(
        f"SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname NOT IN {USER_SCHEMAS} "
        "ORDER BY 1")]
    out = {}
    for t in tables:
        out[t] = one(conn, f"SELECT md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) FROM {t} AS x")
    return out


def catalog_shape(conn: psycopg.Connection) -> dict[str, list]:
    """Relations outside RecVector's schema and the triggers on them."""
    rels = conn.execute(
        f"SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname NOT IN {USER_SCHEMAS} AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1, 2").fetchall()
    trigs = conn.execute(
        "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2").fetchall()
    return {"relations": rels, "triggers": trigs}


def test_end_to_end_recommendations(booted):
    c = booted
    assert one(c, "SELECT count(*) FROM recvector.entity_vectors") == 1000
    assert one(c, "SELECT count(*) FROM recvector.rec_user_profiles WHERE embedding IS NOT NULL") == 599
    assert one(c, "SELECT vector_dims(embedding) FROM recvector.entity_vectors LIMIT 1") == 384
    # Rentals per film reconcile exactly with rec_entity_stats.
    mismatches = one(c, """
        SELECT count(*) FROM (SELECT i.film_id::text AS id, count(*) AS n FROM rental r
                              JOIN inventory i USING (inventory_id) GROUP BY i.film_id) t
        FULL JOIN recvector.rec_entity_stats s ON s.entity_id = t.id
        WHERE (s.feedback_counts ->> 'rental')::int IS DISTINCT FROM t.n OR s.popularity IS DISTINCT FROM t.n""")
    assert mismatches == 0

    recs = c.execute("SELECT entity_id, score FROM rec_recommend(1, 10)").fetchall()
    assert len(recs) == 10 and len({r[0] for r in recs}) == 10
    seen = {r[0] for r in c.execute("SELECT DISTINCT i.film_id::text FROM rental r JOIN inventory i "
                                    "USING (inventory_id) WHERE r.customer_id = 1")}
    assert seen.isdisjoint(r[0] for r in recs)
    # Relevance-only ranking is sorted by score; by content alone it beats the catalogue's average similarity.
    ranked = c.execute("SELECT entity_id, score FROM rec_recommend(1, 10, 1.0, beta => 0, gamma => 0)").fetchall()
    assert [r[1] for r in ranked] == sorted((r[1] for r in ranked), reverse=True)
    sims = c.execute("""
        SELECT avg(1 - (v.embedding <=> p.embedding)) FILTER (WHERE v.entity_id = ANY(%s)),
               avg(1 - (v.embedding <=> p.embedding))
        FROM recvector.entity_vectors v, recvector.rec_user_profiles p WHERE p.user_id = '1'""",
                     ([r[0] for r in ranked],)).fetchone()
    assert sims[0] > sims[1] + 0.1
    # Integer and text ids are the same user.
    assert c.execute("SELECT * FROM rec_recommend('1', 10)").fetchall() == recs
    similar = c.execute("SELECT entity_id, score FROM rec_similar(1, 5)").fetchall()
    assert len(similar) == 5 and "1" not in {r[0] for r in similar}
    assert all(0 < s <= 1 for _, s in similar)


def test_user_tables_untouched_and_nothing_added_outside_recvector(pagila):
    before_rows, before_shape = table_checksums(pagila), catalog_shape(pagila)
    pagila.execute("SELECT recvector.set_schema(%s::jsonb)", (PAGILA_MAPPING.read_text(),))
    pagila.execute("SELECT recvector.bootstrap(max_entities => 64)")
    pagila.execute("SELECT recvector.bootstrap()")
    pagila.execute("SELECT * FROM rec_recommend(1, 10)").fetchall()
    pagila.execute("SELECT * FROM rec_recommend(1, 10, 0.3, exploration => 0.2)").fetchall()
    pagila.execute("SELECT * FROM rec_similar(5, 10)").fetchall()
    pagila.execute("SELECT recvector.log_interaction(1, 2, 'like')")
    pagila.execute("SELECT recvector.process_queue()")
    pagila.execute("SELECT recvector.refresh_entities(ARRAY['1', '2', '99999'])")
    assert table_checksums(pagila) == before_rows
    assert catalog_shape(pagila) == before_shape
    # The opt-in trigger is the only thing ever attached to a user table, and it comes off cleanly.
    pagila.execute("SELECT recvector.enable_auto_logging()")
    shape = catalog_shape(pagila)
    assert [t for t in shape["triggers"] if t not in before_shape["triggers"]] == [("rental", "recvector_rental")]
    pagila.execute("SELECT recvector.disable_auto_logging()")
    assert catalog_shape(pagila) == before_shape
    assert table_checksums(pagila) == before_rows


def snapshot(conn: psycopg.Connection) -> dict[str, list]:
    return {
        "vectors": conn.execute("SELECT entity_id, embedding::text, fingerprint, model, embedded_at "
                                "FROM recvector.entity_vectors ORDER BY entity_id").fetchall(),
        # (last_updated says when a profile was last recomputed: not part of the state)
        "profiles": conn.execute("SELECT user_id, embedding::text, version, interaction_count_since_update, "
                                 "accumulated_weight, last_interaction_at, interests::text, interest_weights, "
                                 "cf_candidates, cf_scores FROM recvector.rec_user_profiles ORDER BY user_id").fetchall(),
        "stats": conn.execute("SELECT * FROM recvector.rec_entity_stats ORDER BY entity_id").fetchall(),
        "queue": conn.execute("SELECT kind, key FROM recvector.queue ORDER BY kind, key").fetchall(),
    }


def test_bootstrap_twice_is_the_same_state(booted):
    before = snapshot(booted)
    summary = one(booted, "SELECT recvector.bootstrap()")
    assert summary["embedded"] == 0 and summary["up_to_date"] == 1000 and summary["removed"] == 0
    assert snapshot(booted) == before


def test_profiles_come_from_stored_vectors_not_the_embedder(booted):
    before = booted.execute("SELECT user_id, embedding::text FROM recvector.rec_user_profiles ORDER BY 1").fetchall()
    broken = pagila_mapping()
    broken["embedding"]["model_path"] = "/nonexistent/model"
    booted.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(broken),))
    # The embedder really is unusable now ...
    with pytest.raises(psycopg.Error) as err:
        booted.execute("SELECT recvector.embed(ARRAY['x'])")
    assert "local model file /nonexistent/model/onnx/model.onnx is missing" in err.value.diag.message_primary
    # ... and every profile recomputes to exactly the same vector.
    booted.execute("UPDATE recvector.rec_user_profiles SET embedding = NULL")
    assert one(booted, "SELECT recvector.rebuild_profiles()") == 599
    after = booted.execute("SELECT user_id, embedding::text FROM recvector.rec_user_profiles ORDER BY 1").fetchall()
    assert after == before


def test_interrupted_bootstrap_resumes_without_duplicates(pagila):
    pagila.execute("SELECT recvector.set_schema(%s::jsonb)", (PAGILA_MAPPING.read_text(),))
    worker = psycopg.connect(dsn(one(pagila, "SELECT current_database()")), autocommit=True)
    pid = worker.info.backend_pid
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.execute("CALL recvector.bootstrap_resumable(8)")
        except psycopg.Error as e:
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 120
    while one(pagila, "SELECT count(*) FROM recvector.entity_vectors") < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    pagila.execute("SELECT pg_cancel_backend(%s)", (pid,))
    t.join(60)
    worker.close()
    assert errors and isinstance(errors[0], psycopg.errors.QueryCanceled)
    partial = dict(pagila.execute("SELECT entity_id, embedded_at FROM recvector.entity_vectors").fetchall())
    assert 40 <= len(partial) < 1000
    assert one(pagila, "SELECT count(*) FROM recvector.rec_user_profiles") == 0  # profiles come last

    notices: list[str] = []
    pagila.add_notice_handler(lambda d: notices.append(d.message_primary))
    pagila.execute("CALL recvector.bootstrap_resumable(64)")
    assert f"recvector: 1000 entities: {len(partial)} up to date, {1000 - len(partial)} to embed, 0 removed " \
           "(model local/all-MiniLM-L6-v2/384)" in notices
    assert one(pagila, "SELECT count(*) FROM recvector.entity_vectors") == 1000
    resumed = dict(pagila.execute("SELECT entity_id, embedded_at FROM recvector.entity_vectors").fetchall())
    assert all(resumed[k] == v for k, v in partial.items())  # the first run's vectors were kept
    assert one(pagila, "SELECT count(*) FROM recvector.rec_user_profiles WHERE embedding IS NOT NULL") == 599


def test_capped_bootstrap_then_rerun_finishes(pagila):
    pagila.execute("SELECT recvector.set_schema(%s::jsonb)", (PAGILA_MAPPING.read_text(),))
    first = one(pagila, "SELECT recvector.bootstrap(max_entities => 100)")
    assert first["embedded"] == 100 and first["remaining"] == 900 and first["profiles"] is None
    second = one(pagila, "SELECT recvector.bootstrap()")
    assert second["embedded"] == 900 and second["up_to_date"] == 100 and second["profiles"] == 599


def test_cancelled_function_bootstrap_leaves_nothing(pagila):
    pagila.execute("SELECT recvector.set_schema(%s::jsonb)", (PAGILA_MAPPING.read_text(),))
    pagila.execute("SET statement_timeout = '1500ms'")
    with pytest.raises(psycopg.errors.QueryCanceled):
        pagila.execute("SELECT recvector.bootstrap(batch_size => 4)")
    pagila.execute("SET statement_timeout = 0")
    assert one(pagila, "SELECT count(*) FROM recvector.entity_vectors") == 0


def test_entity_changes_are_reembedded_once(booted):
    old = one(booted, "SELECT fingerprint FROM recvector.entity_vectors WHERE entity_id = '7'")
    booted.execute("UPDATE film SET description = 'A quiet documentary about lighthouses' WHERE film_id = 7")
    r = one(booted, "SELECT recvector.refresh_entities(ARRAY['7', '8', '424242'])")
    assert r == {"requested": 3, "embedded": 1, "up_to_date": 1, "removed": 1, "missing": ["424242"]}
    assert one(booted, "SELECT fingerprint FROM recvector.entity_vectors WHERE entity_id = '7'") != old
    r = one(booted, "SELECT recvector.refresh_entities(ARRAY['7'])")
    assert r["embedded"] == 0 and r["up_to_date"] == 1
    assert one(booted, "SELECT recvector.bootstrap()")["embedded"] == 0
