"""Reliability inside someone else's database: the app's writes come first, concurrency is exact,
nothing is half-written, dump/restore and DROP/CREATE keep working."""
from __future__ import annotations

import json
import random
import subprocess
import threading
import uuid

import psycopg
import pytest

from conftest import dsn, one, vec

NEW_RENTAL = ("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) "
              "SELECT %s::timestamptz, min(inventory_id), %s, 1 FROM inventory WHERE film_id = %s")


def _db(conn) -> str:
    return one(conn, "SELECT current_database()")


def _state(conn):
    return (conn.execute("SELECT * FROM recvector.rec_user_profiles ORDER BY user_id").fetchall(),
            conn.execute("SELECT * FROM recvector.rec_entity_stats ORDER BY entity_id").fetchall(),
            conn.execute("SELECT kind, key FROM recvector.queue ORDER BY 1, 2").fetchall())


# ---------------------------------------------------------------- the app's writes come first

def test_a_recording_failure_does_not_fail_the_apps_insert(booted):
    booted.execute("SELECT recvector.enable_auto_logging()")
    before = _state(booted)
    # Simulate a bug deep in the write path: entity stats refuse every write.
    booted.execute("ALTER TABLE recvector.rec_entity_stats ADD CONSTRAINT broken CHECK (popularity < 0) NOT VALID")
    warnings: list[str] = []
    booted.add_notice_handler(lambda d: warnings.append(d.message_primary))
    booted.execute(NEW_RENTAL, ("2030-01-01", 1, 10))           # succeeds
    booted.execute(NEW_RENTAL, ("2030-01-02", 2, 11))
    assert one(booted, "SELECT count(*) FROM rental WHERE rental_date >= '2030-01-01'") == 2
    assert any("could not record the rows inserted into rental" in w for w in warnings)
    # Nothing half-written: the counter update that ran before the failure was rolled back too.
    assert _state(booted) == before
    failed = booted.execute("SELECT source, jsonb_array_length(rows), error_code FROM recvector.failed_interactions "
                            "ORDER BY id").fetchall()
    assert failed == [("rental", 1, "23514"), ("rental", 1, "23514")]
    # Still broken: a retry keeps them, counting the attempt.
    assert one(booted, "SELECT recvector.retry_failed()") == 0
    assert one(booted, "SELECT min(attempts) FROM recvector.failed_interactions") == 1
    # Fixed: the retry records them exactly once.
    booted.execute("ALTER TABLE recvector.rec_entity_stats DROP CONSTRAINT broken")
    assert one(booted, "SELECT recvector.retry_failed()") == 2
    assert one(booted, "SELECT count(*) FROM recvector.failed_interactions") == 0
    assert one(booted, "SELECT interaction_count_since_update FROM recvector.rec_user_profiles WHERE user_id = '1'") == 1
    assert one(booted, "SELECT interaction_count_since_update FROM recvector.rec_user_profiles WHERE user_id = '2'") == 1
    assert one(booted, "SELECT recvector.retry_failed()") == 0


def test_missing_mapping_does_not_fail_the_apps_insert(booted):
    booted.execute("SELECT recvector.enable_auto_logging()")
    mapping = booted.execute("SELECT document::text FROM recvector.mapping").fetchone()[0]
    booted.execute("DELETE FROM recvector.mapping")
    booted.execute(NEW_RENTAL, ("2030-01-01", 3, 12))
    assert one(booted, "SELECT error FROM recvector.failed_interactions") == "RecVector has no mapping loaded"
    booted.execute("SELECT recvector.set_schema(%s::jsonb)", (mapping,))
    assert one(booted, "SELECT recvector.retry_failed()") == 1
    assert one(booted, "SELECT interaction_count_since_update FROM recvector.rec_user_profiles WHERE user_id = '3'") == 1


def test_strict_mode_fails_the_insert_instead(booted):
    booted.execute("SELECT recvector.enable_auto_logging()")
    booted.execute("DELETE FROM recvector.mapping")
    booted.execute("SET recvector.strict = on")
    with pytest.raises(psycopg.Error) as err:
        booted.execute(NEW_RENTAL, ("2030-01-01", 3, 12))
    assert err.value.diag.message_primary == "RecVector has no mapping loaded"
    booted.execute("RESET recvector.strict")
    assert one(booted, "SELECT count(*) FROM rental WHERE rental_date >= '2030-01-01'") == 0
    assert one(booted, "SELECT count(*) FROM recvector.failed_interactions") == 0


# ---------------------------------------------------------------- concurrency

WORKERS, PER_WORKER = 8, 500


def _hammer(db: str, seed: int, errors: list[BaseException], plan: list[tuple[int, int]], films: list[int]) -> None:
    rnd = random.Random(seed)
    try:
        with psycopg.connect(dsn(db), autocommit=True) as c:
            for i in range(PER_WORKER):
                user, film = rnd.randint(1, 20), rnd.choice(films)   # heavy overlap on purpose
                c.execute("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) "
                          "SELECT '2030-01-01'::timestamptz + make_interval(secs => %s), min(inventory_id), %s, 1 "
                          "FROM inventory WHERE film_id = %s", (seed * PER_WORKER + i, user, film))
                plan.append((user, film))
    except BaseException as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


def _run_concurrently(db: str, extra: list[threading.Thread] | None = None) -> list[tuple[int, int]]:
    errors: list[BaseException] = []
    plans: list[list[tuple[int, int]]] = [[] for _ in range(WORKERS)]
    with psycopg.connect(dsn(db)) as c:
        films = [r[0] for r in c.execute("SELECT DISTINCT film_id FROM inventory ORDER BY 1 LIMIT 30")]
    threads = [threading.Thread(target=_hammer, args=(db, s, errors, plans[s], films)) for s in range(WORKERS)]
    for t in threads + (extra or []):
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors[:3]
    return [x for p in plans for x in p]


def _check_stats_exact(conn, inserted: list[tuple[int, int]]) -> None:
    per_film: dict[str, int] = {}
    for _, film in inserted:
        per_film[str(film)] = per_film.get(str(film), 0) + 1
    expected = {f: n + one(conn, "SELECT count(*) FROM rental r JOIN inventory i USING (inventory_id) "
                                 "WHERE i.film_id = %s AND r.rental_date < '2030-01-01'", (int(f),))
                for f, n in per_film.items()}
    got = dict(conn.execute("SELECT entity_id, (feedback_counts ->> 'rental')::int FROM recvector.rec_entity_stats "
                            "WHERE entity_id = ANY(%s)", (list(expected),)).fetchall())
    assert got == expected
    pops = dict(conn.execute("SELECT entity_id, popularity::int FROM recvector.rec_entity_stats "
                             "WHERE entity_id = ANY(%s)", (list(expected),)).fetchall())
    assert pops == expected


def test_concurrent_inserts_full_strategy_counts_exact(booted):
    db = _db(booted)
    booted.execute("SELECT recvector.enable_auto_logging()")
    inserted = _run_concurrently(db)
    assert len(inserted) == WORKERS * PER_WORKER
    _check_stats_exact(booted, inserted)
    per_user: dict[str, int] = {}
    for user, _ in inserted:
        per_user[str(user)] = per_user.get(str(user), 0) + 1
    got = dict(booted.execute("SELECT user_id, interaction_count_since_update FROM recvector.rec_user_profiles "
                              "WHERE user_id = ANY(%s)", (list(per_user),)).fetchall())
    assert got == per_user
    assert one(booted, "SELECT count(*) FROM recvector.failed_interactions") == 0


def test_concurrent_inserts_with_a_running_worker_and_readers(booted):
    """Every interaction queues a recompute (threshold 1) while two workers drain and a reader
    recommends. A recompute that missed a concurrent interaction leaves that user queued again, so
    after a final drain every profile equals a fresh recompute and every counter is 0."""
    db = _db(booted)
    doc = one(booted, "SELECT document FROM recvector.mapping")
    doc["aggregation"]["batch_threshold"] = 1
    booted.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    booted.execute("SELECT recvector.enable_auto_logging()")
    stop = threading.Event()
    problems: list[BaseException] = []
    processed = [0]

    def worker() -> None:
        try:
            with psycopg.connect(dsn(db), autocommit=True) as c:
                while not stop.is_set():
                    processed[0] += c.execute("SELECT recvector.process_queue(20)").fetchone()[0]
        except BaseException as e:  # noqa: BLE001
            problems.append(e)

    def reader() -> None:
        try:
            with psycopg.connect(dsn(db), autocommit=True) as c:
                while not stop.is_set():
                    rows = c.execute("SELECT * FROM rec_recommend(%s, 10)", (random.randint(1, 20),)).fetchall()
                    assert len(rows) == 10
        except BaseException as e:  # noqa: BLE001
            problems.append(e)

    extra = [threading.Thread(target=worker), threading.Thread(target=worker), threading.Thread(target=reader)]
    inserted = _run_concurrently(db, extra)
    stop.set()
    for t in extra:
        t.join(120)
    assert not problems, problems[:3]
    assert processed[0] > 0
    _check_stats_exact(booted, inserted)
    while one(booted, "SELECT recvector.process_queue(1000)") > 0:
        pass
    users = [str(u) for u in range(1, 21)]
    assert dict(booted.execute("SELECT user_id, interaction_count_since_update FROM recvector.rec_user_profiles "
                               "WHERE user_id = ANY(%s)", (users,)).fetchall()) == {u: 0 for u in users}
    before = dict(booted.execute("SELECT user_id, embedding::text FROM recvector.rec_user_profiles "
                                 "WHERE user_id = ANY(%s)", (users,)).fetchall())
    for u in users:
        booted.execute("SELECT recvector.update_user_profile(%s)", (u,))
    after = dict(booted.execute("SELECT user_id, embedding::text FROM recvector.rec_user_profiles "
                                "WHERE user_id = ANY(%s)", (users,)).fetchall())
    for u in users:
        assert vec(before[u]) == pytest.approx(vec(after[u]), abs=1e-6), u


def test_concurrent_inserts_incremental_equals_full_recompute(booted):
    db = _db(booted)
    doc = one(booted, "SELECT document FROM recvector.mapping")
    doc["aggregation"].update(strategy="incremental", full_refresh_every=100000, history_limit=100000)
    booted.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    booted.execute("SELECT recvector.rebuild_profiles()")
    booted.execute("SELECT recvector.enable_auto_logging()")
    inserted = _run_concurrently(db)
    _check_stats_exact(booted, inserted)
    _check_profiles_equal_full_recompute(booted, sorted({str(u) for u, _ in inserted}))


def _check_profiles_equal_full_recompute(conn, users: list[str]) -> None:
    """Every given user's stored profile equals what a full recompute from history gives."""
    stored = dict(conn.execute("SELECT user_id, embedding::text FROM recvector.rec_user_profiles "
                               "WHERE user_id = ANY(%s)", (users,)).fetchall())
    for u in users:
        conn.execute("SELECT recvector.update_user_profile(%s)", (u,))
    full = dict(conn.execute("SELECT user_id, embedding::text FROM recvector.rec_user_profiles "
                             "WHERE user_id = ANY(%s)", (users,)).fetchall())
    for u in users:
        assert vec(stored[u]) == pytest.approx(vec(full[u]), abs=1e-4), u


# ---------------------------------------------------------------- life cycle

def test_dump_and_restore_gives_a_working_recvector(booted):
    booted.execute("SELECT recvector.enable_auto_logging()")
    booted.execute("SELECT recvector.log_interaction(5, 6, 'like')")
    expected = booted.execute("SELECT * FROM rec_recommend(5, 10)").fetchall()
    counts = {t: one(booted, f"SELECT count(*) FROM recvector.{t}")
              for t in ("entity_vectors", "rec_user_profiles", "rec_entity_stats", "events", "queue", "mapping", "triggers")}
    target = f"rv_test_restore_{uuid.uuid4().hex[:8]}"
    dump = subprocess.run(["pg_dump", "-Fc", "-d", dsn(_db(booted))], check=True, capture_output=True).stdout
    with psycopg.connect(dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{target}"')
    try:
        r = subprocess.run(["pg_restore", "--exit-on-error", "-d", dsn(target)], input=dump, capture_output=True)
        assert r.returncode == 0, r.stderr.decode()
        with psycopg.connect(dsn(target), autocommit=True) as c:
            for t, n in counts.items():
                assert one(c, f"SELECT count(*) FROM recvector.{t}") == n, t
            assert c.execute("SELECT * FROM rec_recommend(5, 10)").fetchall() == expected
            # The vector column type and the HNSW index are restored by recvector.repair().
            fixed = one(c, "SELECT recvector.repair()")
            assert fixed["hnsw_index"] == "created"
            assert one(c, "SELECT count(*) FROM pg_indexes WHERE indexname = 'entity_vectors_embedding_hnsw'") == 1
            assert c.execute("SELECT * FROM rec_recommend(5, 10)").fetchall() == expected
            # The restored trigger keeps logging.
            c.execute(NEW_RENTAL, ("2030-01-01", 5, 7))
            assert one(c, "SELECT interaction_count_since_update FROM recvector.rec_user_profiles "
                          "WHERE user_id = '5'") == 2
    finally:
        with psycopg.connect(dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
