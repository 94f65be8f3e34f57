"""Deferred capture (aggregation.capture = 'deferred'): the auto-logging trigger only appends the
mapped interaction to recvector.pending_interactions; recvector.fold_pending() (run by
process_queue) records it later, with exactly the result an immediate capture would have had."""
from __future__ import annotations

import json
import subprocess
import sys
import threading

import psycopg
import pytest

from conftest import dsn, one
from test_reliability import (NEW_RENTAL, _check_profiles_equal_full_recompute, _check_stats_exact, _db,
                              _run_concurrently)


def _set(conn, **aggregation) -> None:
    doc = one(conn, "SELECT document FROM recvector.mapping")
    doc["aggregation"].update(aggregation)
    conn.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))


def _stats(conn, films):
    return dict(conn.execute("SELECT entity_id, (feedback_counts ->> 'rental')::int FROM recvector.rec_entity_stats "
                             "WHERE entity_id = ANY(%s)", ([str(f) for f in films],)).fetchall())


def _counters(conn, users):
    return dict(conn.execute("SELECT user_id, interaction_count_since_update FROM recvector.rec_user_profiles "
                             "WHERE user_id = ANY(%s)", ([str(u) for u in users],)).fetchall())


def test_deferred_capture_appends_and_the_worker_folds_it(booted):
    notices: list[str] = []
    booted.add_notice_handler(lambda d: notices.append(d.message_primary))
    doc = one(booted, "SELECT document FROM recvector.mapping")
    doc["aggregation"].update(capture="deferred", batch_threshold=1000)
    summary = one(booted, "SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    assert summary["capture"] == "deferred"
    assert any("capture is deferred" in n for n in notices)   # reminds to run the worker
    booted.execute("SELECT recvector.enable_auto_logging()")
    stats, counters = _stats(booted, [1, 2]), _counters(booted, [10, 11])
    booted.execute(NEW_RENTAL, ("2030-01-01", 10, 1))
    booted.execute(NEW_RENTAL, ("2030-01-02", 11, 2))
    booted.execute(NEW_RENTAL, ("2030-01-03", 10, 2))
    # Captured, mapped through the join path (inventory -> film), not recorded yet.
    assert booted.execute("SELECT user_id, entity_id, kind, weight, occurred_at::date::text "
                          "FROM recvector.pending_interactions ORDER BY occurred_at").fetchall() == [
        ("10", "1", "rental", 1.0, "2030-01-01"), ("11", "2", "rental", 1.0, "2030-01-02"),
        ("10", "2", "rental", 1.0, "2030-01-03")]
    assert _stats(booted, [1, 2]) == stats and _counters(booted, [10, 11]) == counters
    assert one(booted, "SELECT count(*) FROM recvector.failed_interactions") == 0
    # The worker's call folds them (and counts them among the items done).
    assert one(booted, "SELECT recvector.process_queue()") == 3
    assert one(booted, "SELECT count(*) FROM recvector.pending_interactions") == 0
    assert _stats(booted, [1, 2]) == {"1": stats["1"] + 1, "2": stats["2"] + 2}
    assert _counters(booted, [10, 11]) == {"10": counters["10"] + 2, "11": counters["11"] + 1}
    assert one(booted, "SELECT recvector.process_queue()") == 0


def test_a_rolled_back_insert_leaves_nothing_pending(booted):
    _set(booted, capture="deferred")
    booted.execute("SELECT recvector.enable_auto_logging()")
    with pytest.raises(psycopg.errors.RaiseException):
        with booted.transaction():
            booted.execute(NEW_RENTAL, ("2030-01-01", 10, 1))
            assert one(booted, "SELECT count(*) FROM recvector.pending_interactions") == 1
            booted.execute("DO $$ BEGIN RAISE EXCEPTION 'the app changes its mind'; END $$")
    assert one(booted, "SELECT count(*) FROM recvector.pending_interactions") == 0


def test_log_interaction_is_deferred_too(booted):
    _set(booted, capture="deferred")
    before = _counters(booted, [5])["5"]
    booted.execute("SELECT recvector.log_interaction('5', '7', 'like', '2025-02-01', 2.5)")
    assert booted.execute("SELECT user_id, entity_id, kind, weight FROM recvector.pending_interactions").fetchall() == [
        ("5", "7", "like", 2.5)]
    assert _counters(booted, [5])["5"] == before
    assert one(booted, "SELECT recvector.fold_pending()") == 1
    assert _counters(booted, [5])["5"] == before + 1
    assert one(booted, "SELECT (feedback_counts ->> 'like')::int FROM recvector.rec_entity_stats WHERE entity_id = '7'") == 1


def test_a_failed_fold_keeps_the_rows_for_the_next_call(booted):
    _set(booted, capture="deferred")
    booted.execute("SELECT recvector.enable_auto_logging()")
    stats = _stats(booted, [3])
    booted.execute(NEW_RENTAL, ("2030-01-01", 12, 3))
    booted.execute("ALTER TABLE recvector.rec_entity_stats ADD CONSTRAINT broken CHECK (popularity < 0) NOT VALID")
    warnings: list[str] = []
    booted.add_notice_handler(lambda d: warnings.append(d.message_primary))
    booted.execute("SELECT recvector.process_queue()")                 # warns, does not fail
    assert any("folding deferred interactions failed" in w for w in warnings)
    with pytest.raises(psycopg.errors.CheckViolation):
        booted.execute("SELECT recvector.fold_pending()")              # the error, when called directly
    assert one(booted, "SELECT count(*) FROM recvector.pending_interactions") == 1
    assert _stats(booted, [3]) == stats                                # nothing half-written
    booted.execute("ALTER TABLE recvector.rec_entity_stats DROP CONSTRAINT broken")
    assert one(booted, "SELECT recvector.fold_pending()") == 1
    assert _stats(booted, [3]) == {"3": stats["3"] + 1}


@pytest.mark.parametrize("bad", [0, -1, None])
def test_fold_pending_rejects_a_bad_batch_size(booted, bad):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        booted.execute("SELECT recvector.fold_pending(%s)", (bad,))
    assert "max_rows must be a positive integer" in err.value.diag.message_primary


def test_rebuilding_stats_takes_the_pending_rows_it_counted(booted):
    """rebuild_entity_stats() counts every mapped interaction, pending ones included: it drops those
    from the pending table in the same snapshot, so nothing is counted twice, and queues their users."""
    _set(booted, capture="deferred")
    booted.execute("SELECT recvector.enable_auto_logging()")
    booted.execute("DELETE FROM recvector.queue")
    booted.execute(NEW_RENTAL, ("2030-01-01", 13, 4))
    booted.execute(NEW_RENTAL, ("2030-01-02", 14, 4))
    booted.execute("SELECT recvector.rebuild_entity_stats()")
    assert one(booted, "SELECT count(*) FROM recvector.pending_interactions") == 0
    assert booted.execute("SELECT key FROM recvector.queue WHERE kind = 'profile' ORDER BY key").fetchall() == [
        ("13",), ("14",)]
    expected = one(booted, "SELECT count(*) FROM rental r JOIN inventory i USING (inventory_id) WHERE i.film_id = 4")
    booted.execute("SELECT recvector.process_queue()")
    assert _stats(booted, [4]) == {"4": expected}


def test_concurrent_deferred_inserts_with_folding_workers_end_exact(booted):
    """8 x 500 inserts with incremental + deferred while two workers fold: every count is exact and
    every profile equals a full recompute (the fold is order- and batch-independent)."""
    db = _db(booted)
    _set(booted, strategy="incremental", capture="deferred", full_refresh_every=100000, history_limit=100000)
    booted.execute("SELECT recvector.rebuild_profiles()")
    booted.execute("SELECT recvector.enable_auto_logging()")
    stop = threading.Event()
    problems: list[BaseException] = []
    folded = [0]

    def worker() -> None:
        try:
            with psycopg.connect(dsn(db), autocommit=True) as c:
                while not stop.is_set():
                    folded[0] += c.execute("SELECT recvector.fold_pending(50)").fetchone()[0]
        except BaseException as e:  # noqa: BLE001 - reported by the test
            problems.append(e)

    extra = [threading.Thread(target=worker), threading.Thread(target=worker)]
    inserted = _run_concurrently(db, extra)
    stop.set()
    for t in extra:
        t.join(120)
    assert not problems, problems[:3]
    assert folded[0] > 0
    assert one(booted, "SELECT count(*) FROM recvector.failed_interactions") == 0
    while one(booted, "SELECT recvector.fold_pending(1000)") > 0:
        pass
    _check_stats_exact(booted, inserted)
    _check_profiles_equal_full_recompute(booted, sorted({str(u) for u, _ in inserted}))


def test_switching_back_to_immediate_still_folds_what_is_pending(booted):
    _set(booted, capture="deferred", batch_threshold=1000)
    booted.execute("SELECT recvector.enable_auto_logging()")
    before = _counters(booted, [15])["15"]
    booted.execute(NEW_RENTAL, ("2030-01-01", 15, 5))
    _set(booted, capture="immediate", batch_threshold=1000)
    booted.execute(NEW_RENTAL, ("2030-01-02", 15, 5))                  # recorded at once
    assert _counters(booted, [15])["15"] == before + 1
    assert one(booted, "SELECT count(*) FROM recvector.pending_interactions") == 1
    booted.execute("SELECT recvector.process_queue()")
    assert _counters(booted, [15])["15"] == before + 2
    assert one(booted, "SELECT count(*) FROM recvector.pending_interactions") == 0


def test_pending_rows_are_in_the_dump(booted):
    assert one(booted, "SELECT 'recvector.pending_interactions'::regclass = ANY (extconfig) "
                       "FROM pg_extension WHERE extname = 'recvector'") is True


def test_status_shows_what_waits_for_the_worker(booted):
    _set(booted, capture="deferred", strategy="incremental")
    booted.execute("SELECT recvector.enable_auto_logging()")
    booted.execute("DELETE FROM recvector.queue")
    booted.execute(NEW_RENTAL, ("2030-01-01", 16, 6))
    booted.execute(NEW_RENTAL, ("2030-01-02", 17, 6))
    cur = booted.execute("SELECT * FROM recvector.status()")
    cols = [d.name for d in cur.description]
    st = dict(zip(cols, cur.fetchone()))
    assert (st["strategy"], st["capture"], st["model"]) == ("incremental", "deferred", "local/all-MiniLM-L6-v2/384")
    assert (st["entity_vectors"], st["profiles"]) == (1000, 599)
    assert (st["pending_interactions"], st["queued_profiles"], st["failed_interactions"]) == (2, 0, 0)
    assert st["oldest_pending"].total_seconds() >= 0
    assert st["auto_logging"] == ["rental on public.rental"]
    booted.execute("SELECT recvector.process_queue()")
    after = dict(zip(cols, booted.execute("SELECT * FROM recvector.status()").fetchone()))
    assert (after["pending_interactions"], after["oldest_pending"]) == (0, None)
    # The CLI shows the same.
    out = subprocess.run([sys.executable, "-m", "recvector.cli", "status", "--json", "--dsn",
                          dsn(_db(booted))], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert (shown["capture"], shown["pending_interactions"], shown["entity_vectors"]) == ("deferred", 0, 1000)
