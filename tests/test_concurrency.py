"""The worker never waits for the application in a cycle (docs/reliability.md#concurrency).

A randomized mix, in both capture modes: application threads insert several rentals per statement
for users in a random order (the order that deadlocked 0.2.0's worker), an admin thread recomputes
random profiles in two-statement transactions, and two workers drain the queue, all at once. No
application statement may fail or lose a row to failed_interactions; the counts end exact and the
profiles equal a fresh recompute.
"""
from __future__ import annotations

import json
import random
import threading

import psycopg
import pytest

from conftest import dsn, one
from test_reliability import _check_profiles_equal_full_recompute

ROUNDS = 60
APPS = 4
USERS = 12


def _app(db: str, seed: int, films: list[int], done: list[tuple[int, int]], errors: list[BaseException]) -> None:
    rnd = random.Random(seed)
    try:
        with psycopg.connect(dsn(db), autocommit=True) as c:
            for i in range(ROUNDS):
                rows = [(rnd.randint(1, USERS), rnd.choice(films)) for _ in range(rnd.randint(2, 4))]
                rows.sort(key=lambda r: -r[0])  # users in descending order: the worker takes them ascending
                values = ", ".join("(%s::timestamptz + make_interval(secs => %s), "
                                   "(SELECT min(inventory_id) FROM inventory WHERE film_id = %s), %s, 1)" for _ in rows)
                params: list[object] = []
                for j, (user, film) in enumerate(rows):
                    params += ["2030-01-01", seed * 10000 + i * 10 + j, film, user]
                c.execute(f"INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) VALUES {values}", params)
                done.extend(rows)
    except BaseException as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


def _loop(db: str, stop: threading.Event, errors: list[BaseException], body) -> None:
    try:
        with psycopg.connect(dsn(db), autocommit=True) as c:
            while not stop.is_set():
                body(c)
    except BaseException as e:  # noqa: BLE001
        errors.append(e)


def _worker(c: psycopg.Connection) -> None:
    c.execute("SELECT recvector.process_queue(5)")


def _admin(c: psycopg.Connection) -> None:
    """Two recomputes in one transaction, in a random order: the admin may be refused a busy
    profile (lock_not_available), never deadlocked."""
    a, b = random.sample(range(1, USERS + 1), 2)
    try:
        with c.transaction():
            c.execute("SELECT recvector.update_user_profile(%s)", (str(a),))
            c.execute("SELECT recvector.update_user_profile(%s)", (str(b),))
    except psycopg.errors.LockNotAvailable:
        pass


@pytest.mark.parametrize("capture", ["immediate", "deferred"])
def test_apps_workers_and_admin_at_once_never_deadlock(booted, capture):
    db = one(booted, "SELECT current_database()")
    doc = one(booted, "SELECT document FROM recvector.mapping")
    doc["aggregation"].update(capture=capture, batch_threshold=1, strategy="full")
    booted.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    booted.execute("SELECT recvector.enable_auto_logging()")
    films = [r[0] for r in booted.execute("SELECT DISTINCT film_id FROM inventory ORDER BY 1 LIMIT 15")]
    before = dict(booted.execute("SELECT entity_id, popularity FROM recvector.rec_entity_stats "
                                 "WHERE entity_id = ANY(%s)", ([str(f) for f in films],)).fetchall())
    stop = threading.Event()
    errors: list[BaseException] = []
    app_errors: list[BaseException] = []
    inserted: list[tuple[int, int]] = []
    background = [threading.Thread(target=_loop, args=(db, stop, errors, _worker)) for _ in range(2)]
    background.append(threading.Thread(target=_loop, args=(db, stop, errors, _admin)))
    apps = [threading.Thread(target=_app, args=(db, s, films, inserted, app_errors)) for s in range(APPS)]
    for t in background + apps:
        t.start()
    for t in apps:
        t.join(600)
    stop.set()
    for t in background:
        t.join(120)
    assert not app_errors, app_errors[:3]          # the application never failed ...
    assert not errors, errors[:3]                  # ... nor did the workers or the admin (except refusals)
    assert one(booted, "SELECT count(*) FROM recvector.failed_interactions") == 0
    assert len(inserted) >= APPS * ROUNDS * 2
    while one(booted, "SELECT recvector.process_queue(1000)") > 0:
        pass
    assert one(booted, "SELECT count(*) FROM recvector.pending_interactions") == 0
    per_film: dict[str, int] = {}
    for _user, film in inserted:
        per_film[str(film)] = per_film.get(str(film), 0) + 1
    got = dict(booted.execute("SELECT entity_id, popularity FROM recvector.rec_entity_stats "
                              "WHERE entity_id = ANY(%s)", (list(per_film),)).fetchall())
    assert got == {f: before.get(f, 0) + n for f, n in per_film.items()}
    users = [str(u) for u in range(1, USERS + 1)]
    assert dict(booted.execute("SELECT user_id, interaction_count_since_update FROM recvector.rec_user_profiles "
                               "WHERE user_id = ANY(%s)", (users,)).fetchall()) == {u: 0 for u in users}
    _check_profiles_equal_full_recompute(booted, users)
