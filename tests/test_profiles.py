"""Profiles, both strategies, against values computed by hand (tests/tiny.py)."""
from __future__ import annotations

import json

import pytest

import tiny
from conftest import one, vec

# user 1: like item 1 at T0, view item 2 and dislike item 3 one half-life later.
#   t_ref = T30; decays 0.5, 1, 1
#   S = 1*0.5*[1,0,0] + 0.5*1*[0,1,0] - 1*1*[0,0,1] = [0.5, 0.5, -1];  A = 0.5 + 0.5 + 1 = 2
EXPECTED = [0.25, 0.25, -0.5]
EXPECTED_WEIGHT = 2.0
EVENTS = [(1, 1, "like", tiny.T0), (1, 2, "view", tiny.T30), (1, 3, "dislike", tiny.T30)]


def _profile(conn, user="1"):
    row = conn.execute("SELECT embedding::text, accumulated_weight, last_interaction_at, "
                       "interaction_count_since_update, version FROM recvector.rec_user_profiles "
                       "WHERE user_id = %s", (user,)).fetchone()
    return None if row is None else (vec(row[0]), row[1], row[2], row[3], row[4])


def _insert(conn, events):
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO event (user_id, item_id, kind, at) VALUES (%s, %s, %s, %s)", events)


def test_full_strategy_matches_hand_computed(empty_db):
    tiny.setup(empty_db, "full")
    _insert(empty_db, EVENTS)  # no triggers: the app's table only
    empty_db.execute("SELECT recvector.update_user_profile('1')")
    emb, weight, last_at, counter, version = _profile(empty_db)
    assert emb == pytest.approx(EXPECTED, abs=1e-6)
    assert weight == pytest.approx(EXPECTED_WEIGHT)
    assert last_at.isoformat().startswith("2024-01-31")
    assert counter == 0 and version == 1


def test_full_strategy_queues_at_threshold_and_worker_recomputes(empty_db):
    tiny.setup(empty_db, "full")
    empty_db.execute("SELECT recvector.enable_auto_logging()")
    _insert(empty_db, EVENTS[:1])
    # A user without a profile is queued at once; the profile is built off the insert path.
    assert one(empty_db, "SELECT count(*) FROM recvector.queue WHERE key = '1'") == 1
    assert _profile(empty_db)[0] is None
    assert one(empty_db, "SELECT recvector.process_queue()") == 1
    assert _profile(empty_db)[0] == pytest.approx([1, 0, 0], abs=1e-6)
    # Below the batch threshold (3) nothing is queued; at the threshold it is.
    _insert(empty_db, EVENTS[1:2])
    assert one(empty_db, "SELECT count(*) FROM recvector.queue") == 0
    assert _profile(empty_db)[3] == 1
    _insert(empty_db, EVENTS[2:] + [(1, 1, "like", tiny.T0)])
    assert _profile(empty_db)[3] == 3
    assert one(empty_db, "SELECT count(*) FROM recvector.queue WHERE key = '1'") == 1
    assert one(empty_db, "SELECT recvector.process_queue()") == 1
    emb, weight, _, counter, _ = _profile(empty_db)
    # Two likes of item 1 at T0 now: S = [1, 0.5, -1], A = 2.5
    assert emb == pytest.approx([1 / 2.5, 0.5 / 2.5, -1 / 2.5], abs=1e-6)
    assert weight == pytest.approx(2.5)
    assert counter == 0


def test_time_fallback_queues_pending_users(empty_db):
    tiny.setup(empty_db, "full")
    empty_db.execute("SELECT recvector.enable_auto_logging()")
    _insert(empty_db, EVENTS[:1])
    empty_db.execute("SELECT recvector.process_queue()")
    _insert(empty_db, EVENTS[1:2])  # counter 1, below the threshold
    assert one(empty_db, "SELECT recvector.process_queue()") == 0
    empty_db.execute("UPDATE recvector.rec_user_profiles SET last_updated = now() - interval '2 hours'")
    assert one(empty_db, "SELECT recvector.process_queue()") == 1
    assert _profile(empty_db)[3] == 0


@pytest.mark.parametrize("one_statement", [False, True])
def test_incremental_matches_hand_computed_and_full(empty_db, one_statement):
    tiny.setup(empty_db, "incremental")
    empty_db.execute("SELECT recvector.enable_auto_logging()")
    if one_statement:
        empty_db.execute("INSERT INTO event (user_id, item_id, kind, at) VALUES "
                         + ", ".join(["(%s, %s, %s, %s)"] * len(EVENTS)), [x for e in EVENTS for x in e])
    else:
        for e in EVENTS:
            _insert(empty_db, [e])
    emb, weight, last_at, counter, version = _profile(empty_db)
    assert emb == pytest.approx(EXPECTED, abs=1e-6)
    assert weight == pytest.approx(EXPECTED_WEIGHT)
    assert last_at.isoformat().startswith("2024-01-31")
    assert counter == 3
    assert version == (1 if one_statement else 3)
    # Nothing was queued (full refresh every 1000) and the full recompute agrees.
    assert one(empty_db, "SELECT count(*) FROM recvector.queue") == 0
    empty_db.execute("SELECT recvector.update_user_profile('1')")
    assert _profile(empty_db)[0] == pytest.approx(emb, abs=1e-6)


def test_incremental_out_of_order_event_is_decayed(empty_db):
    tiny.setup(empty_db, "incremental")
    empty_db.execute("SELECT recvector.enable_auto_logging()")
    _insert(empty_db, [(2, 2, "like", tiny.T30)])
    _insert(empty_db, [(2, 1, "like", tiny.T0)])  # older than the profile: weight 1 * 0.5
    emb, weight, last_at, _, _ = _profile(empty_db, "2")
    assert emb == pytest.approx([0.5 / 1.5, 1 / 1.5, 0], abs=1e-6)
    assert weight == pytest.approx(1.5)
    assert last_at.isoformat().startswith("2024-01-31")


def test_incremental_periodic_full_refresh_is_queued(empty_db):
    tiny.setup(empty_db, "incremental")
    m = tiny.mapping("incremental")
    m["aggregation"]["full_refresh_every"] = 2
    empty_db.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(m),))
    empty_db.execute("SELECT recvector.enable_auto_logging()")
    _insert(empty_db, EVENTS[:1])
    assert one(empty_db, "SELECT count(*) FROM recvector.queue") == 0
    _insert(empty_db, EVENTS[1:2])
    assert one(empty_db, "SELECT count(*) FROM recvector.queue WHERE key = '1'") == 1
    empty_db.execute("SELECT recvector.process_queue()")
    assert _profile(empty_db)[3] == 0


def test_negative_feedback_pushes_profile_away(empty_db):
    tiny.setup(empty_db, "incremental")
    empty_db.execute("SELECT recvector.enable_auto_logging()")
    _insert(empty_db, [(3, 1, "like", tiny.T0)])
    before = _profile(empty_db, "3")[0]
    _insert(empty_db, [(3, 5, "dislike", tiny.T0)])
    after = _profile(empty_db, "3")[0]
    # (1*[1,0,0] - 1*[0.6,0.8,0]) / 2
    assert after == pytest.approx([0.2, -0.4, 0], abs=1e-6)
    assert tiny.cos(after, tiny.VECTORS["5"]) < tiny.cos(before, tiny.VECTORS["5"])
    assert tiny.cos(after, tiny.VECTORS["5"]) < 0
    # The disliked item counts as feedback but not as popularity.
    fc, pop = empty_db.execute("SELECT feedback_counts, popularity FROM recvector.rec_entity_stats "
                               "WHERE entity_id = '5'").fetchone()
    assert fc == {"dislike": 1} and pop == 0


def test_rating_values_become_signed_weights(empty_db):
    tiny.setup(empty_db, "full")
    m = tiny.mapping("full")
    m["interactions"].append({"name": "rating", "table": "rating", "user_column": "user_id",
                              "entity_column": "item_id", "timestamp_column": "rated_at",
                              "weight": {"from_value": {"column": "stars", "center": 3, "scale": 2}}})
    empty_db.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(m),))
    empty_db.execute("INSERT INTO rating VALUES (4, 1, 5, %s), (4, 2, 1, %s), (4, 3, 3, %s)",
                     (tiny.T0, tiny.T0, tiny.T0))
    empty_db.execute("SELECT recvector.update_user_profile('4')")
    emb, weight, *_ = _profile(empty_db, "4")
    # weights +1 (5 stars), -1 (1 star), 0 (3 stars: ignored); A = 2
    assert emb == pytest.approx([0.5, -0.5, 0], abs=1e-6)
    assert weight == pytest.approx(2.0)
    assert one(empty_db, "SELECT recvector.rebuild_entity_stats()") == 3
    pops = dict(empty_db.execute("SELECT entity_id, popularity FROM recvector.rec_entity_stats").fetchall())
    assert pops == {"1": 1.0, "2": 0.0, "3": 0.0}


def test_history_limit_keeps_only_recent(empty_db):
    tiny.setup(empty_db, "full")
    m = tiny.mapping("full")
    m["aggregation"]["history_limit"] = 1
    empty_db.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(m),))
    _insert(empty_db, EVENTS)
    empty_db.execute("SELECT recvector.update_user_profile('1')")
    # Newest two are at T30 (view 2, dislike 3); ties break by entity_id then kind: entity '2' first.
    assert _profile(empty_db)[0] == pytest.approx([0, 1, 0], abs=1e-6)


def test_user_without_vectors_has_no_profile_vector(empty_db):
    tiny.setup(empty_db, "full")
    empty_db.execute("INSERT INTO item VALUES (6, 'six', 'q')")  # never embedded
    _insert(empty_db, [(5, 6, "like", tiny.T0)])
    empty_db.execute("SELECT recvector.update_user_profile('5')")
    emb, weight, *_ = _profile(empty_db, "5")
    assert emb is None and weight == 0
