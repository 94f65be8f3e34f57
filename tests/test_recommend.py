"""rec_recommend / rec_similar: scoring, MMR, exploration, cold start, arguments — by hand.

The relevance of 0.3.0: alpha * cosine + beta * ln(1 + popularity) / ln(1 + max popularity)
+ gamma * cf / max cf (+ exploration * noise)."""
from __future__ import annotations

import hashlib
import math

import psycopg
import pytest

import tiny
from conftest import one

# Events: user 1 likes 1, views 2, dislikes 3 (popularity 1:1, 2:1, 3:0); user 2 likes 1.
# => popularity: item 1 = 2, item 2 = 1, others 0.  User 2's profile = [1, 0, 0]; seen = {1}.
EVENTS = [(1, 1, "like", tiny.T0), (1, 2, "view", tiny.T30), (1, 3, "dislike", tiny.T30), (2, 1, "like", tiny.T0)]
BETA = 0.1


def _setup(conn, **scoring):
    tiny.setup(conn, "full", **scoring)
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO event (user_id, item_id, kind, at) VALUES (%s, %s, %s, %s)", EVENTS)
    conn.execute("SELECT recvector.rebuild_entity_stats()")
    conn.execute("SELECT recvector.rebuild_profiles()")


def _relevance(item: str, profile=(1.0, 0.0, 0.0), pops=None) -> float:
    pops = pops or {"1": 2, "2": 1}
    return tiny.cos(list(profile), tiny.VECTORS[item]) + BETA * math.log(1 + pops.get(item, 0)) / math.log(1 + max(pops.values()))


def test_relevance_scores_by_hand(empty_db):
    _setup(empty_db)
    rows = empty_db.execute("SELECT entity_id, score FROM rec_recommend(2, 10, 1.0)").fetchall()
    expected = sorted(((i, _relevance(i)) for i in ("2", "3", "4", "5")), key=lambda t: -t[1])
    assert [r[0] for r in rows] == [e[0] for e in expected] == ["4", "5", "2", "3"]
    assert [r[1] for r in rows] == pytest.approx([e[1] for e in expected], abs=1e-6)


def test_alpha_beta_arguments_override_defaults(empty_db):
    _setup(empty_db)
    rows = dict(empty_db.execute("SELECT * FROM rec_recommend(2, 10, 1.0, alpha => 0, beta => 1)").fetchall())
    assert rows["2"] == pytest.approx(math.log(2) / math.log(3))
    assert rows["4"] == pytest.approx(0.0, abs=1e-9)


def test_mmr_by_hand(empty_db):
    _setup(empty_db)
    lam = 0.5
    rel = {i: _relevance(i) for i in ("2", "3", "4", "5")}
    chosen: list[str] = []
    while len(chosen) < 4:
        def mmr(i: str) -> float:
            penalty = max((tiny.cos(tiny.VECTORS[i], tiny.VECTORS[j]) for j in chosen), default=0.0)
            return lam * rel[i] - (1 - lam) * penalty
        chosen.append(max((i for i in rel if i not in chosen), key=mmr))
    assert chosen == ["4", "3", "5", "2"]  # item 5 is nearly item 4: pushed down
    rows = empty_db.execute("SELECT entity_id, score FROM rec_recommend(2, 4, %s)", (lam,)).fetchall()
    assert [r[0] for r in rows] == chosen
    assert [r[1] for r in rows] == pytest.approx([rel[i] for i in chosen], abs=1e-6)


def test_mapping_lambda_is_the_default(empty_db):
    _setup(empty_db, **{"lambda": 0.5})
    assert [r[0] for r in empty_db.execute("SELECT * FROM rec_recommend(2, 4)")] == ["4", "3", "5", "2"]


def _noise(seed: int, item: str) -> float:
    return int(hashlib.md5(f"{seed}:{item}".encode()).hexdigest()[:8], 16) / 2**32


def test_exploration_is_seedable_and_by_hand(empty_db):
    _setup(empty_db)
    q = "SELECT entity_id, score FROM rec_recommend(2, 4, 1.0, exploration => 0.5, seed => 42)"
    first = empty_db.execute(q).fetchall()
    assert empty_db.execute(q).fetchall() == first
    expected = sorted(((i, _relevance(i) + 0.5 * _noise(42, i)) for i in ("2", "3", "4", "5")), key=lambda t: -t[1])
    assert [r[0] for r in first] == [e[0] for e in expected]
    assert [r[1] for r in first] == pytest.approx([e[1] for e in expected], abs=1e-6)
    other = empty_db.execute(q.replace("42", "7")).fetchall()
    assert [r[1] for r in other] != [r[1] for r in first]


def test_cold_start_gets_popularity_minus_seen(empty_db):
    _setup(empty_db)
    rows = empty_db.execute("SELECT * FROM rec_recommend(9, 5)").fetchall()  # user 9: no interactions
    assert [r[0] for r in rows] == ["1", "2"]
    # On the popularity term's 0..1 scale: ln(1 + popularity) / ln(1 + the largest popularity).
    assert [r[1] for r in rows] == pytest.approx([1.0, math.log(2) / math.log(3)])
    # A user unknown to the app is treated the same way (documented), as text or integer.
    assert [r[0] for r in empty_db.execute("SELECT * FROM rec_recommend('no-such-user', 5)")] == ["1", "2"]


def test_seen_items_are_excluded_unless_asked(empty_db):
    _setup(empty_db)
    seen = {r[0] for r in empty_db.execute("SELECT * FROM rec_recommend(1, 10)")}
    assert seen.isdisjoint({"1", "2", "3"}) and seen == {"4", "5"}
    every = {r[0] for r in empty_db.execute("SELECT * FROM rec_recommend(1, 10, exclude_seen => false)")}
    assert every == {"1", "2", "3", "4", "5"}


def test_similar_by_hand(empty_db):
    _setup(empty_db)
    rows = empty_db.execute("SELECT * FROM rec_similar(4, 2)").fetchall()
    assert [r[0] for r in rows] == ["5", "1"] or [r[0] for r in rows] == ["5", "2"]
    assert rows[0][1] == pytest.approx(tiny.cos(tiny.VECTORS["4"], tiny.VECTORS["5"]), abs=1e-6)
    assert rows[1][1] == pytest.approx(tiny.cos(tiny.VECTORS["4"], tiny.VECTORS["1"]), abs=1e-6)


@pytest.mark.parametrize("call, message", [
    ("rec_recommend(2, 0)", "k must be between 1 and 10000"),
    ("rec_recommend(2, -5)", "k must be between 1 and 10000"),
    ("rec_recommend(2, 1000000)", "k must be between 1 and 10000"),
    ("rec_recommend(2, NULL)", "k must be between 1 and 10000"),
    ("rec_recommend(2, 5, 1.5)", "lambda must be between 0 and 1"),
    ("rec_recommend(2, 5, -0.1)", "lambda must be between 0 and 1"),
    ("rec_recommend(2, 5, exploration => 2)", "exploration must be between 0 and 1"),
    ("rec_recommend(2, 5, candidate_pool => 0)", "candidate_pool must be between 1 and 10000"),
    ("rec_recommend(2, 5, gamma => -1)", "alpha, beta and gamma must not be negative"),
    ("rec_recommend(2, 5, alpha => 'NaN')", "alpha must be a finite number"),
    ("rec_similar(1, 5, 'both')", "mode must be content, cf or hybrid"),
    ("rec_recommend(NULL::text, 5)", "user_id must not be NULL"),
    ("rec_similar(NULL::text, 5)", "entity_id must not be NULL"),
    ("rec_similar('nope', 5)", "entity 'nope' has no vector"),
    ("rec_similar(1, 0)", "k must be between 1 and 10000"),
])
def test_bad_arguments_are_clear_errors(empty_db, call, message):
    _setup(empty_db)
    with pytest.raises(psycopg.Error) as err:
        empty_db.execute(f"SELECT * FROM {call}")
    assert message in err.value.diag.message_primary
    assert err.value.diag.sqlstate in {"22023", "22004", "P0002"}
    assert err.value.diag.message_hint or "between" in message or "NULL" in message


def test_without_mapping_the_error_says_how_to_load_one(empty_db):
    empty_db.execute("CREATE EXTENSION recvector CASCADE")
    with pytest.raises(psycopg.Error) as err:
        empty_db.execute("SELECT * FROM rec_recommend(1, 5)")
    assert err.value.diag.message_primary == "RecVector has no mapping loaded"
    assert "recvector.set_schema" in err.value.diag.message_hint


def test_recommend_restores_hnsw_settings(empty_db):
    _setup(empty_db)
    with empty_db.transaction():
        empty_db.execute("SET LOCAL hnsw.ef_search = 77")
        empty_db.execute("SELECT * FROM rec_recommend(2, 3)").fetchall()
        assert one(empty_db, "SHOW hnsw.ef_search") == "77"
        assert one(empty_db, "SHOW hnsw.iterative_scan") == "off"


# ---- the collaborative source, by hand ------------------------------------------------------

def _neighbours(conn, rows: dict[str, list[tuple[str, float]]]) -> None:
    for e, nbrs in rows.items():
        conn.execute("INSERT INTO recvector.item_neighbors (entity_id, neighbor_ids, weights, method) "
                     "VALUES (%s, %s, %s, 'hand')", (e, [n for n, _ in nbrs], [w for _, w in nbrs]))


def test_collaborative_term_by_hand(empty_db):
    """User 2 liked 1 (seed weight 1). Neighbours of 1: 3 (0.8), 5 (0.2). cf is normalised by the
    strongest candidate's: 3 gets gamma * 1, 5 gamma * 0.25; 3 is far in content yet comes first."""
    _setup(empty_db)
    _neighbours(empty_db, {"1": [("3", 0.8), ("5", 0.2)]})
    empty_db.execute("SELECT recvector.update_user_profile('2')")
    rows = dict(empty_db.execute("SELECT * FROM rec_recommend(2, 4, 1.0, gamma => 2)").fetchall())
    assert rows["3"] == pytest.approx(_relevance("3") + 2 * 1.0, abs=1e-6)
    assert rows["5"] == pytest.approx(_relevance("5") + 2 * 0.25, abs=1e-6)
    assert rows["4"] == pytest.approx(_relevance("4"), abs=1e-6)
    assert next(iter(rows)) == "3"
    parts = empty_db.execute("SELECT entity_id, collaborative_term, sources FROM recvector.explain('2', 4, 1.0, gamma => 2) "
                             "ORDER BY rank").fetchall()
    assert parts[0] == ("3", pytest.approx(2.0), "content,collaborative")


def test_a_popular_item_outside_the_content_pool_can_be_recommended(empty_db):
    """With a content pool of 1 only the nearest item is a content candidate; the popular source
    still brings item 2 (popularity 1), which a heavy beta then ranks first."""
    _setup(empty_db, candidate_pool=1)
    rows = empty_db.execute("SELECT entity_id FROM rec_recommend(2, 2, 1.0, beta => 5)").fetchall()
    assert ("2",) in rows
    srcs = dict(empty_db.execute("SELECT entity_id, sources FROM recvector.explain('2', 2, 1.0, beta => 5)").fetchall())
    assert srcs["2"] == "popular"


def test_similar_cf_and_hybrid_modes(empty_db):
    _setup(empty_db)
    _neighbours(empty_db, {"4": [("3", 0.9), ("1", 0.3)]})
    assert empty_db.execute("SELECT * FROM rec_similar(4, 5, 'cf')").fetchall() == [("3", pytest.approx(0.9)),
                                                                                      ("1", pytest.approx(0.3))]
    hybrid = dict(empty_db.execute("SELECT * FROM rec_similar(4, 4, 'hybrid')").fetchall())
    assert hybrid["3"] == pytest.approx(0.5 * tiny.cos(tiny.VECTORS["4"], tiny.VECTORS["3"]) + 0.5, abs=1e-6)
    assert hybrid["5"] == pytest.approx(0.5 * tiny.cos(tiny.VECTORS["4"], tiny.VECTORS["5"]), abs=1e-6)
    assert hybrid["1"] == pytest.approx(0.5 * tiny.cos(tiny.VECTORS["4"], tiny.VECTORS["1"]) + 0.5 * 0.3 / 0.9, abs=1e-6)


def test_pages_are_stable_and_never_overlap(empty_db):
    _setup(empty_db)
    whole = [r[0] for r in empty_db.execute("SELECT entity_id FROM rec_recommend(2, 10, 1.0)")]
    pages = [[r[0] for r in empty_db.execute("SELECT entity_id FROM rec_recommend(2, 2, 1.0, page => %s)", (n,))]
             for n in (1, 2, 3)]
    # Without MMR the pages are the slices of the whole list; the last page is short, then empty.
    assert pages == [whole[0:2], whole[2:4], []]
    # With MMR, page 2 is ranked as page 1 would be once page 1's entities are excluded.
    p1 = [r[0] for r in empty_db.execute("SELECT entity_id FROM rec_recommend(2, 2, 0.5)")]
    p2 = [r[0] for r in empty_db.execute("SELECT entity_id FROM rec_recommend(2, 2, 0.5, page => 2)")]
    assert p2 == [r[0] for r in empty_db.execute("SELECT entity_id FROM rec_recommend(2, 2, 0.5, exclude => %s)", (p1,))]
    assert not set(p1) & set(p2) and len(p1) == len(p2) == 2
    assert p2 == [r[0] for r in empty_db.execute("SELECT entity_id FROM rec_recommend(2, 2, 0.5, page => 2)")]
    # Cold start pages through the popular entities.
    assert [r[0] for r in empty_db.execute("SELECT entity_id FROM rec_recommend(9, 1, page => 2)")] == ["2"]
    for page, k in ((0, 10), (None, 10), (1001, 10)):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="page must be 1 or more"):
            empty_db.execute("SELECT * FROM rec_recommend(2, %s, page => %s)", (k, page))


def test_hidden_entities_are_never_recommended_to_that_user(empty_db):
    _setup(empty_db)
    top = one(empty_db, "SELECT entity_id FROM rec_recommend(2, 1, 1.0)")
    empty_db.execute("SELECT recvector.hide('2', %s)", (top,))
    assert top not in {r[0] for r in empty_db.execute("SELECT entity_id FROM rec_recommend(2, 10)")}
    assert top not in {r[0] for r in empty_db.execute("SELECT entity_id FROM recvector.explain('2', 10)")}
    # Only for that user: user 1 (who has not seen it) still gets it.
    assert top in {r[0] for r in empty_db.execute("SELECT entity_id FROM rec_recommend(1, 10, 1.0)")}
    # Also when seen entities are not excluded, and in the cold start of a user without a profile.
    assert top not in {r[0] for r in empty_db.execute("SELECT entity_id FROM rec_recommend(2, 10, exclude_seen => false)")}
    empty_db.execute("SELECT recvector.hide('9', '1')")
    assert [r[0] for r in empty_db.execute("SELECT entity_id FROM rec_recommend(9, 10)")] == ["2"]
    assert one(empty_db, "SELECT recvector.unhide('2', %s)", (top,)) is True
    assert one(empty_db, "SELECT recvector.unhide('2', %s)", (top,)) is False
    assert one(empty_db, "SELECT entity_id FROM rec_recommend(2, 1, 1.0)") == top
    # Until a time: hidden while it lasts, back afterwards (an expired row is ignored).
    empty_db.execute("SELECT recvector.hide('2', %s, now() + interval '1 hour')", (top,))
    assert top not in {r[0] for r in empty_db.execute("SELECT entity_id FROM rec_recommend(2, 10)")}
    empty_db.execute("UPDATE recvector.hidden SET hidden_at = now() - interval '2 hours', until = now() - interval '1 hour'")
    assert one(empty_db, "SELECT entity_id FROM rec_recommend(2, 1, 1.0)") == top
    for args, message in ((("2", None, None), "must not be NULL"), (("2", "4", "yesterday"), "finite time in the future"),
                          (("2", "4", "infinity"), "finite time in the future")):
        with pytest.raises(psycopg.Error, match=message):
            empty_db.execute("SELECT recvector.hide(%s, %s, %s::timestamptz)", args)
