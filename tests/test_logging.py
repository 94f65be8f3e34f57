"""Auto-logging triggers and recvector.log_interaction on Pagila: counts exact, rollback leaves no
trace, heavy work queued and done by the worker, and the triggers come off cleanly."""
from __future__ import annotations

import psycopg
import pytest

from conftest import one, vec

NEW_RENTAL = ("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) "
              "SELECT %s::timestamptz, min(inventory_id), %s, 1 FROM inventory WHERE film_id = %s")


def _counter(conn, customer) -> int:
    return one(conn, "SELECT interaction_count_since_update FROM recvector.rec_user_profiles WHERE user_id = %s",
               (str(customer),))


def _rentals(conn, film) -> int:
    return int(one(conn, "SELECT (feedback_counts ->> 'rental')::int FROM recvector.rec_entity_stats "
                         "WHERE entity_id = %s", (str(film),)) or 0)


def test_insert_updates_counters_and_stats(booted):
    booted.execute("SELECT recvector.enable_auto_logging()")
    assert _counter(booted, 1) == 0
    before = _rentals(booted, 10)
    booted.execute(NEW_RENTAL, ("2030-01-01", 1, 10))
    assert _counter(booted, 1) == 1
    assert _rentals(booted, 10) == before + 1
    assert one(booted, "SELECT popularity FROM recvector.rec_entity_stats WHERE entity_id = '10'") == before + 1


def test_multi_row_insert_is_counted_in_one_pass(booted):
    booted.execute("SELECT recvector.enable_auto_logging()")
    b10, b11 = _rentals(booted, 10), _rentals(booted, 11)
    booted.execute("""
        INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id)
        SELECT '2030-01-01'::timestamptz + g * interval '1 minute', i.inv, c, 1
        FROM (SELECT min(inventory_id) AS inv, film_id FROM inventory WHERE film_id IN (10, 11) GROUP BY film_id) i,
             (VALUES (2), (3)) AS u(c), generate_series(1, 2) g""")
    assert (_counter(booted, 2), _counter(booted, 3)) == (4, 4)
    assert (_rentals(booted, 10), _rentals(booted, 11)) == (b10 + 4, b11 + 4)


def test_rolled_back_insert_leaves_no_trace(booted):
    booted.execute("SELECT recvector.enable_auto_logging()")
    state = lambda: (booted.execute("SELECT * FROM recvector.rec_user_profiles ORDER BY user_id").fetchall(),  # noqa: E731
                     booted.execute("SELECT * FROM recvector.rec_entity_stats ORDER BY entity_id").fetchall(),
                     booted.execute("SELECT * FROM recvector.queue ORDER BY id").fetchall())
    before = state()
    with pytest.raises(RuntimeError):
        with booted.transaction():
            for i in range(6):
                booted.execute(NEW_RENTAL, (f"2030-01-01 00:0{i}:00", 5, 20))
            assert _counter(booted, 5) == 6
            raise RuntimeError("the app rolls back")
    assert state() == before


def test_threshold_queues_and_worker_updates_profile(booted):
    booted.execute("SELECT recvector.enable_auto_logging()")
    old = booted.execute("SELECT embedding::text, version FROM recvector.rec_user_profiles WHERE user_id = '7'").fetchone()
    # Rent the five films most similar to film 500: the profile must move towards film 500.
    films = [r[0] for r in booted.execute("SELECT entity_id::int FROM rec_similar(500, 5)")]
    for i, f in enumerate(films):
        booted.execute(NEW_RENTAL, (f"2030-01-01 00:0{i}:00", 7, f))
    assert _counter(booted, 7) == 5
    assert one(booted, "SELECT count(*) FROM recvector.queue WHERE kind = 'profile' AND key = '7'") == 1
    # Nothing heavy happened on the insert path: the profile is unchanged until the worker runs.
    assert booted.execute("SELECT embedding::text, version FROM recvector.rec_user_profiles "
                          "WHERE user_id = '7'").fetchone() == old
    assert one(booted, "SELECT recvector.process_queue()") == 1
    new = booted.execute("SELECT embedding::text, version, interaction_count_since_update FROM "
                         "recvector.rec_user_profiles WHERE user_id = '7'").fetchone()
    assert new[1] == old[1] + 1 and new[2] == 0
    sim = lambda e: one(booted, "SELECT 1 - (%s::vector <=> embedding) FROM recvector.entity_vectors "  # noqa: E731
                                "WHERE entity_id = '500'", (e,))
    assert sim(new[0]) > sim(old[0])
    assert not {str(f) for f in films} & {r[0] for r in booted.execute("SELECT entity_id FROM rec_recommend(7, 20)")}


def test_log_interaction_for_events_the_app_does_not_store(booted):
    doc = one(booted, "SELECT document FROM recvector.mapping")
    doc["events"] = {"weights": {"like": 1, "dislike": -1, "view": 0.3}, "default_weight": 0.5}
    import json
    booted.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    booted.execute("SELECT recvector.log_interaction(9, 33, 'dislike')")
    booted.execute("SELECT recvector.log_interaction('9', '34', 'wishlist', '2025-01-01')")
    booted.execute("SELECT recvector.log_interaction('9', '35', 'like', weight => 2)")
    rows = booted.execute("SELECT entity_id, kind, weight FROM recvector.events ORDER BY id").fetchall()
    assert rows == [("33", "dislike", -1.0), ("34", "wishlist", 0.5), ("35", "like", 2.0)]
    assert one(booted, "SELECT feedback_counts FROM recvector.rec_entity_stats WHERE entity_id = '33'")["dislike"] == 1
    assert _counter(booted, 9) == 3
    # Logged events are part of the history: seen, and in the recomputed profile.
    booted.execute("SELECT recvector.update_user_profile('9')")
    assert not {"33", "34", "35"} & {r[0] for r in booted.execute("SELECT entity_id FROM rec_recommend(9, 50)")}
    with pytest.raises(psycopg.Error) as err:
        booted.execute("SELECT recvector.log_interaction(NULL::text, '1')")
    assert "must not be NULL" in err.value.diag.message_primary
    with pytest.raises(psycopg.Error) as err:
        booted.execute("SELECT recvector.log_interaction('1', '1', weight => 'NaN')")
    assert "weight must be a number from -100 to 100" in err.value.diag.message_primary


def test_disable_removes_triggers_and_stops_logging(booted):
    added = [r[0] for r in booted.execute("SELECT recvector.enable_auto_logging()")]
    assert added == ["recvector_rental on public.rental"]
    assert [r[0] for r in booted.execute("SELECT recvector.enable_auto_logging()")] == added  # idempotent
    removed = [r[0] for r in booted.execute("SELECT recvector.disable_auto_logging()")]
    assert removed == added
    booted.execute(NEW_RENTAL, ("2030-01-01", 1, 10))
    assert _counter(booted, 1) == 0
    assert one(booted, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'recvector%'") == 0
    with pytest.raises(psycopg.Error) as err:
        booted.execute("SELECT recvector.enable_auto_logging('payments')")
    assert 'interaction source "payments" is not in the loaded mapping' in err.value.diag.message_primary


def test_incremental_strategy_on_pagila_moves_profile_in_the_insert(booted):
    import json
    doc = one(booted, "SELECT document FROM recvector.mapping")
    doc["aggregation"]["strategy"] = "incremental"
    booted.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    booted.execute("SELECT recvector.enable_auto_logging()")
    old = booted.execute("SELECT embedding::text, accumulated_weight, last_interaction_at FROM "
                         "recvector.rec_user_profiles WHERE user_id = '4'").fetchone()
    booted.execute(NEW_RENTAL, ("2030-01-01", 4, 500))
    new = booted.execute("SELECT embedding::text, accumulated_weight FROM recvector.rec_user_profiles "
                         "WHERE user_id = '4'").fetchone()
    film = vec(one(booted, "SELECT embedding::text FROM recvector.entity_vectors WHERE entity_id = '500'"))
    # Hand-computed nudge: old weight decays from its last interaction to 2030 (~0), so the new
    # profile is (A*d*p + v) / (A*d + 1).
    d = one(booted, "SELECT recvector._decay(%s, '2030-01-01'::timestamptz, 30 * 86400)", (old[2],))
    p = vec(old[0])
    expected = [(old[1] * d * a + b) / (old[1] * d + 1) for a, b in zip(p, film)]
    assert vec(new[0]) == pytest.approx(expected, abs=1e-5)
    assert new[1] == pytest.approx(old[1] * d + 1)
    assert one(booted, "SELECT count(*) FROM recvector.queue") == 0
