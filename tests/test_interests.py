"""Multi-interest profiles (aggregation.interests), by hand on tiny's 3-d vectors: how a history is
split into interests, how the content term uses the nearest one, the incremental nudge, and that
K = 1 is the single weighted mean of 0.2.0."""
from __future__ import annotations

import json
import math

import pytest

import tiny
from conftest import one, vec

R2 = 1 / math.sqrt(2)


def _setup(conn, strategy: str = "full", interests: int = 3) -> None:
    tiny.setup(conn, strategy)
    doc = tiny.mapping(strategy)
    doc["aggregation"]["interests"] = interests
    doc["neighbors"] = {"method": "cosine"}
    conn.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))


def _like(conn, user: int, items: list[int], at: str = tiny.T0) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO event (user_id, item_id, kind, at) VALUES (%s, %s, 'like', %s)",
                        [(user, i, at) for i in items])


def _interests(conn, user: str) -> tuple[list[list[float]] | None, list[float] | None]:
    """The user's interests and shares, strongest first (equal shares: the larger vector first)."""
    row = conn.execute("SELECT interests::text[], interest_weights FROM recvector.rec_user_profiles "
                       "WHERE user_id = %s", (user,)).fetchone()
    if row[0] is None:
        return None, row[1]
    pairs = sorted(zip([vec(v) for v in row[0]], row[1]), key=lambda p: (-round(p[1], 6), [-x for x in p[0]]))
    return [v for v, _ in pairs], [s for _, s in pairs]


def _content_only(conn, user: int) -> dict[str, float]:
    return dict(conn.execute("SELECT * FROM rec_recommend(%s, 3, 1.0, alpha => 1, beta => 0, gamma => 0)",
                             (user,)).fetchall())


def test_two_tastes_become_two_interests_and_both_are_recommended(empty_db):
    """User 1 likes 1 = [1,0,0] and 3 = [0,0,1]: two interests of half the weight each. The content
    term of a candidate is its cosine to the nearest interest: 4 = [.71,.71,0] scores 0.71 (not the
    0.5 of the mean [.5,0,.5]), 5 = [.6,.8,0] scores 0.6, 2 = [0,1,0] scores 0."""
    _setup(empty_db)
    _like(empty_db, 1, [1, 3])
    empty_db.execute("SELECT recvector.rebuild_profiles()")
    interests, shares = _interests(empty_db, "1")
    assert interests == [pytest.approx([1, 0, 0], abs=1e-6), pytest.approx([0, 0, 1], abs=1e-6)]
    assert shares == [pytest.approx(0.5), pytest.approx(0.5)]
    assert _content_only(empty_db, 1) == {"4": pytest.approx(R2, abs=1e-6), "5": pytest.approx(0.6, abs=1e-6),
                                          "2": pytest.approx(0.0, abs=1e-6)}


def test_one_interest_is_the_weighted_mean_of_0_2_0(empty_db):
    """interests = 1: the content term is the cosine to the decayed weighted mean."""
    _setup(empty_db, interests=1)
    _like(empty_db, 1, [1, 3])
    empty_db.execute("SELECT recvector.rebuild_profiles()")
    assert _interests(empty_db, "1") == (None, None)
    mean = [0.5, 0.0, 0.5]
    assert vec(one(empty_db, "SELECT embedding::text FROM recvector.rec_user_profiles WHERE user_id = '1'")) == \
        pytest.approx(mean, abs=1e-6)
    expected = {e: tiny.cos(mean, tiny.VECTORS[e]) for e in ("2", "4", "5")}
    assert _content_only(empty_db, 1) == {e: pytest.approx(s, abs=1e-6) for e, s in expected.items()}


def test_a_user_of_one_taste_keeps_one_interest(empty_db):
    """4 and 5 are 0.01 apart in cosine distance, under the 0.55 that starts a new interest."""
    _setup(empty_db)
    _like(empty_db, 2, [4, 5])
    empty_db.execute("SELECT recvector.rebuild_profiles()")
    assert _interests(empty_db, "2") == (None, None)


def test_interest_splitting_by_hand(empty_db):
    _setup(empty_db)
    # Two interests at most although three directions: K = 2.
    two = empty_db.execute(
        "SELECT interests::text[], shares FROM recvector._interests("
        "ARRAY['[1,0,0]', '[0,1,0]', '[0,0,1]']::vector[], ARRAY[3, 2, 1]::float8[], 2)").fetchone()
    # Seeds 1 (heaviest) and 2 (farthest by weight x distance); 3 joins the first of its equally
    # near interests: means (3 [1,0,0] + 1 [0,0,1]) / 4 and [0,1,0]; shares 4/6 and 2/6.
    assert [vec(v) for v in two[0]] == [pytest.approx([0.75, 0, 0.25], abs=1e-6), pytest.approx([0, 1, 0], abs=1e-6)]
    assert two[1] == [pytest.approx(4 / 6, abs=1e-6), pytest.approx(2 / 6, abs=1e-6)]
    # A taste under min_share (10 %) of the weight is dropped: one interest left, NULLs.
    minor = empty_db.execute(
        "SELECT interests, shares FROM recvector._interests("
        "ARRAY['[1,0,0]', '[0,0,1]']::vector[], ARRAY[1, 0.05]::float8[], 3)").fetchone()
    assert minor == (None, None)
    # Dislikes are never seeds: a disliked direction does not become an interest.
    disliked = empty_db.execute(
        "SELECT interests FROM recvector._interests("
        "ARRAY['[1,0,0]', '[0,0,1]', '[0.9,0.1,0]']::vector[], ARRAY[1, -1, 1]::float8[], 3)").fetchone()
    assert disliked == (None,)


def test_incremental_nudge_moves_the_nearest_interest(empty_db):
    """Incremental strategy: a new like of 5 = [.6,.8,0] joins the nearest interest ([1,0,0]), whose
    mean becomes ([1,0,0] + [.6,.8,0]) / 2 with 2 of the 3 units of weight; the other is unchanged."""
    _setup(empty_db, "incremental")
    empty_db.execute("SELECT recvector.enable_auto_logging()")
    _like(empty_db, 1, [1, 3])
    empty_db.execute("SELECT recvector.rebuild_profiles()")
    _like(empty_db, 1, [5])
    interests, shares = _interests(empty_db, "1")
    assert interests == [pytest.approx([0.8, 0.4, 0], abs=1e-6), pytest.approx([0, 0, 1], abs=1e-6)]
    assert shares == [pytest.approx(2 / 3, abs=1e-6), pytest.approx(1 / 3, abs=1e-6)]
    # A full recompute of the same history agrees (same time, no decay between the likes).
    empty_db.execute("SELECT recvector.update_user_profile('1')")
    full, full_shares = _interests(empty_db, "1")
    assert full == [pytest.approx(v, abs=1e-6) for v in interests]
    assert full_shares == [pytest.approx(s, abs=1e-6) for s in shares]
