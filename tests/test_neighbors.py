"""Item-to-item neighbours (the collaborative source): EASE and cosine by hand, the resumable build,
the worker's upkeep, the method choice and its limits, and how the profile's collaborative
candidates follow from them."""
from __future__ import annotations

import json
import math

import numpy as np
import psycopg
import pytest

import tiny
from conftest import one

# Positive interactions (all 'like'): users 1-6 over items 1-5. User 7 dislikes item 5 only.
LIKES = {1: [1, 2], 2: [1, 2, 3], 3: [2, 3], 4: [1, 4], 5: [4, 5], 6: [1, 2, 5]}
ITEMS = ["1", "2", "3", "4", "5"]


def _setup(conn: psycopg.Connection, **neighbors) -> None:
    tiny.setup(conn, "full")
    doc = tiny.mapping("full")
    doc["neighbors"] = neighbors
    conn.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    rows = [(u, i, "like", tiny.T0) for u, items in LIKES.items() for i in items] + [(7, 5, "dislike", tiny.T0)]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO event (user_id, item_id, kind, at) VALUES (%s, %s, %s, %s)", rows)


def _matrix() -> np.ndarray:
    x = np.zeros((len(LIKES), len(ITEMS)))
    for r, items in enumerate(LIKES.values()):
        for i in items:
            x[r, i - 1] = 1
    return x


def _stored(conn: psycopg.Connection) -> dict[str, dict[str, float]]:
    return {e: dict(zip(ids, ws)) for e, ids, ws in
            conn.execute("SELECT entity_id, neighbor_ids, weights FROM recvector.item_neighbors").fetchall()}


def test_ease_weights_by_hand(empty_db):
    """B = I - P diag(P)^-1 with P = (X'X + lambda I)^-1: entity i's neighbour j has weight B_ij
    (a user's score for j sums B_ij over the entities i they liked), negative weights kept."""
    _setup(empty_db, method="ease", ease_lambda=2.0, k=10)
    built = empty_db.execute("SELECT recvector.rebuild_neighbors()").fetchone()[0]
    assert built["method"] == "ease" and built["entities"] == 5 and built["source_rows"] == 14
    x = _matrix()
    p = np.linalg.inv(x.T @ x + 2.0 * np.eye(5))
    b = np.eye(5) - p / np.diag(p)[np.newaxis, :]
    stored = _stored(empty_db)
    assert set(stored) == set(ITEMS)
    for i in range(5):
        expected = {ITEMS[j]: b[i, j] for j in range(5) if j != i}
        assert stored[ITEMS[i]] == pytest.approx(expected, abs=1e-6)
        # strongest first
        assert list(stored[ITEMS[i]].values()) == sorted(stored[ITEMS[i]].values(), reverse=True)
    assert any(w < 0 for row in stored.values() for w in row.values())
    assert one(empty_db, "SELECT method FROM recvector.neighbor_builds") == "ease"


def test_ease_keeps_the_k_largest_by_absolute_value(empty_db):
    _setup(empty_db, method="ease", ease_lambda=2.0, k=2)
    empty_db.execute("SELECT recvector.rebuild_neighbors()")
    x = _matrix()
    p = np.linalg.inv(x.T @ x + 2.0 * np.eye(5))
    b = np.eye(5) - p / np.diag(p)[np.newaxis, :]
    np.fill_diagonal(b, 0)
    for e, row in _stored(empty_db).items():
        i = int(e) - 1
        strongest = sorted(range(5), key=lambda j: -abs(b[i, j]))[:2]
        assert set(row) == {ITEMS[j] for j in strongest}


def test_cosine_weights_by_hand(empty_db):
    """w_ij = c_ij / (n_i^a n_j^(1-a) + shrink), the k strongest per entity, ties by id."""
    _setup(empty_db, method="cosine", shrink=1.0, alpha=0.5, k=2)
    assert empty_db.execute("SELECT recvector.rebuild_neighbors()").fetchone()[0]["method"] == "cosine"
    x = _matrix()
    c = x.T @ x
    n = np.diag(c)
    stored = _stored(empty_db)
    for i in range(5):
        w = {ITEMS[j]: c[i, j] / (math.sqrt(n[i] * n[j]) + 1.0) for j in range(5) if j != i and c[i, j] > 0}
        top = sorted(w.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
        assert list(stored[ITEMS[i]].items()) == [(k, pytest.approx(v, abs=1e-6)) for k, v in top]


def test_asymmetric_cosine_and_history_limit(empty_db):
    """alpha 0.9 divides by n_i^0.9 n_j^0.1; history 1 keeps each user's most recent like only."""
    _setup(empty_db, method="cosine", shrink=0.0, alpha=0.9, k=5)
    empty_db.execute("SELECT recvector.rebuild_neighbors()")
    x = _matrix()
    c = x.T @ x
    n = np.diag(c)
    assert _stored(empty_db)["1"]["2"] == pytest.approx(c[0, 1] / (n[0] ** 0.9 * n[1] ** 0.1), abs=1e-6)
    assert _stored(empty_db)["2"]["1"] == pytest.approx(c[1, 0] / (n[1] ** 0.9 * n[0] ** 0.1), abs=1e-6)

    doc = one(empty_db, "SELECT document FROM recvector.mapping")
    doc["neighbors"]["history"] = 1
    empty_db.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    # One like per user: nothing co-occurs, and neighbours of the previous build are removed.
    assert empty_db.execute("SELECT recvector.rebuild_neighbors()").fetchone()[0]["source_rows"] == 6
    assert one(empty_db, "SELECT count(*) FROM recvector.item_neighbors") == 0


def test_history_cut_of_undated_likes_keeps_every_entity_somewhere(empty_db):
    """With equal times (undated interactions), the history cut is not by id: each user keeps a
    different part, so an entity is not cut from every long history (ids 3-9 would be, by text)."""
    _setup(empty_db, method="cosine", history=10, k=30)
    empty_db.execute("DELETE FROM event")
    empty_db.execute("INSERT INTO app_user (id) SELECT g FROM generate_series(100, 139) g")
    empty_db.execute("INSERT INTO item (id, title) SELECT g, 'item ' || g FROM generate_series(6, 20) g")
    rows = [(u, i, "like", tiny.T0) for u in range(100, 140) for i in range(1, 21)]
    with empty_db.cursor() as cur:
        cur.executemany("INSERT INTO event (user_id, item_id, kind, at) VALUES (%s, %s, %s, %s)", rows)
    assert empty_db.execute("SELECT recvector.rebuild_neighbors()").fetchone()[0]["source_rows"] == 40 * 10
    stored = _stored(empty_db)
    assert set(stored) == {str(i) for i in range(1, 21)}
    # the same cut on a second build (deterministic)
    empty_db.execute("SELECT recvector.rebuild_neighbors()")
    assert _stored(empty_db) == stored


def test_auto_chooses_by_catalogue_size_and_ease_refuses_a_large_one(empty_db):
    _setup(empty_db)
    assert empty_db.execute("SELECT recvector.rebuild_neighbors()").fetchone()[0]["method"] == "ease"
    _setup_doc = one(empty_db, "SELECT document FROM recvector.mapping")
    _setup_doc["neighbors"] = {"ease_max_items": 4}
    empty_db.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(_setup_doc),))
    assert empty_db.execute("SELECT recvector.rebuild_neighbors()").fetchone()[0]["method"] == "cosine"
    before = _stored(empty_db)
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="EASE is offered up to 4 entities") as err:
        empty_db.execute("SELECT recvector.rebuild_neighbors('ease')")
    assert "ease_max_items" in err.value.diag.message_hint
    assert _stored(empty_db) == before  # the failed call left the last build in place
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="auto, cosine or ease, got 'svd'"):
        empty_db.execute("SELECT recvector.rebuild_neighbors('svd')")


def test_resumable_build_commits_per_chunk_and_equals_one_call(empty_db):
    _setup(empty_db, method="cosine", chunk=2, k=3)
    empty_db.execute("SELECT recvector.rebuild_neighbors()")
    whole = _stored(empty_db)
    notices: list[str] = []
    empty_db.add_notice_handler(lambda d: notices.append(d.message_primary))
    empty_db.execute("TRUNCATE recvector.item_neighbors")
    empty_db.execute("CALL recvector.rebuild_neighbors_resumable()")
    assert _stored(empty_db) == whole
    assert [m for m in notices if "neighbours:" in m] == ["recvector: neighbours: 2 of 5 entities",
                                                          "recvector: neighbours: 4 of 5 entities"]
    assert one(empty_db, "SELECT finished_at IS NOT NULL AND done = entities FROM recvector.neighbor_builds")
    assert one(empty_db, "SELECT count(*) FROM recvector.neighbor_source") == 0


def test_an_interrupted_resumable_build_continues_where_it_stopped(empty_db):
    _setup(empty_db, method="cosine", chunk=2, k=3)
    empty_db.execute("SELECT recvector.rebuild_neighbors()")
    whole = _stored(empty_db)
    # Start a build and do one chunk, as a CALL cancelled after its first COMMIT would have.
    empty_db.execute("SELECT recvector._start_neighbor_build()")
    assert empty_db.execute("SELECT recvector._neighbor_build_step()").fetchone()[0] is False
    assert one(empty_db, "SELECT resume_after FROM recvector.neighbor_builds") == "2"
    empty_db.execute("CALL recvector.rebuild_neighbors_resumable()")
    assert _stored(empty_db) == whole
    assert one(empty_db, "SELECT done FROM recvector.neighbor_builds") == 5


def test_worker_rebuilds_when_due_one_step_per_round(empty_db):
    _setup(empty_db, method="cosine", chunk=2, k=3, rebuild_every="1 hour")
    assert one(empty_db, "SELECT recvector._neighbor_worker_step()") is False  # never built: bootstrap's job
    empty_db.execute("SELECT recvector.rebuild_neighbors()")
    first = one(empty_db, "SELECT finished_at FROM recvector.neighbor_builds")
    assert one(empty_db, "SELECT recvector._neighbor_worker_step()") is False  # not due
    # Items 3 and 5 now co-occur for new users; the build is made a day old.
    with empty_db.cursor() as cur:
        cur.executemany("INSERT INTO event (user_id, item_id, kind, at) VALUES (%s, %s, 'like', %s)",
                        [(8, 3, tiny.T30), (8, 5, tiny.T30), (9, 3, tiny.T30), (9, 5, tiny.T30)])
    empty_db.execute("UPDATE recvector.neighbor_builds SET finished_at = finished_at - interval '1 day'")
    rounds = 0
    while one(empty_db, "SELECT finished_at IS NULL OR finished_at < now() - interval '1 hour' "
                        "FROM recvector.neighbor_builds"):
        assert one(empty_db, "SELECT recvector._neighbor_worker_step()") is True
        rounds += 1
        assert rounds < 10
    assert rounds == 3  # start + chunk of 2, chunk of 2, last chunk of 1 and finish
    assert one(empty_db, "SELECT finished_at FROM recvector.neighbor_builds") > first
    assert "5" in _stored(empty_db)["3"]


def test_collaborative_candidates_follow_the_neighbours(empty_db):
    """A user's candidates: the sum over their positive entities (weight x decay) of the neighbour
    weights, their own entities left out; the strongest cf_candidates kept."""
    _setup(empty_db, method="ease", ease_lambda=2.0, k=10)
    empty_db.execute("SELECT recvector.rebuild_neighbors()")
    empty_db.execute("SELECT recvector.rebuild_profiles()")
    x = _matrix()
    p = np.linalg.inv(x.T @ x + 2.0 * np.eye(5))
    b = np.eye(5) - p / np.diag(p)[np.newaxis, :]
    # User 3 liked 2 and 3 (same time: no decay between them).
    scores = {ITEMS[j]: b[1, j] + b[2, j] for j in (0, 3, 4)}
    expected = [(e, s) for e, s in sorted(scores.items(), key=lambda kv: -kv[1]) if s > 0]
    ids, ws = empty_db.execute("SELECT cf_candidates, cf_scores FROM recvector.rec_user_profiles WHERE user_id = '3'").fetchone()
    assert list(zip(ids, ws)) == [(e, pytest.approx(s, abs=1e-5)) for e, s in expected]
    # A user who only disliked has no candidates.
    assert one(empty_db, "SELECT cf_candidates FROM recvector.rec_user_profiles WHERE user_id = '7'") in (None, [])


def test_explain_names_the_liked_entities_behind_the_collaborative_term(empty_db):
    """"Because" lists, via collaborative, the liked entities whose neighbour lists hold the result,
    as parts of the collaborative term; with gamma 0 the term is 0 and none are listed."""
    _setup(empty_db, method="ease", ease_lambda=2.0, k=10)
    empty_db.execute("SELECT recvector.rebuild_neighbors()")
    empty_db.execute("SELECT recvector.rebuild_profiles()")
    rows = empty_db.execute("SELECT entity_id, collaborative_term, because FROM recvector.explain('3', 3, reasons => 10)").fetchall()
    with_cf = [r for r in rows if r[1] > 0]
    assert with_cf
    for _, term, because in with_cf:
        cf = [b for b in because if b["via"] == "collaborative"]
        assert {b["entity_id"] for b in cf} <= {"2", "3"}
        assert sum(b["contribution"] for b in cf) == pytest.approx(term, abs=1e-6)
    for _, term, because in empty_db.execute("SELECT entity_id, collaborative_term, because "
                                             "FROM recvector.explain('3', 3, gamma => 0, reasons => 10)").fetchall():
        assert term == 0 and all(b["via"] == "content" for b in because)
