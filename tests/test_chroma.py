"""recvector.chroma_sync / chroma_verify against a real Chroma server (`chroma run`, started here).

Full sync, incremental sync after updates and deletes, a server killed mid-sync (the watermark stays
and the next call repairs), a server restarted within the retries, drift found by chroma_verify, the
errors a user can meet, and how Chroma's top-10 for profile vectors overlaps pgvector's."""
from __future__ import annotations

import json
import threading

import psycopg
import pytest

from chroma_server import ChromaServer, KillingRelay, chroma_binary, wait_for
from conftest import one, vec

pytestmark = pytest.mark.skipif(chroma_binary() is None, reason="chromadb is not installed (make client)")


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    server = ChromaServer(tmp_path_factory.mktemp("chroma") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_chroma(tmp_path):
    server = ChromaServer(tmp_path / "data")
    server.start()
    yield server
    server.stop()


def sync(conn, url, collection, **kw):
    args = ", ".join(f"{k} => %({k})s" for k in kw)
    return one(conn, f"SELECT recvector.chroma_sync(%(url)s, %(collection)s{', ' + args if args else ''})",
               {"url": url, "collection": collection, **kw})


def verify(conn, url, collection, sample=100):
    return one(conn, "SELECT recvector.chroma_verify(%s, %s, %s)", (url, collection, sample))


def new_film(conn, title):
    return one(conn, "INSERT INTO film (title, description, language_id, rating) "
                     "VALUES (%s, 'A chroma test film', 1, 'PG') RETURNING film_id::text", (title,))


def test_full_then_incremental_sync_with_updates_and_deletes(booted, chroma):
    n = one(booted, "SELECT count(*) FROM recvector.entity_vectors")
    first = sync(booted, chroma.url, "films-a")
    assert (first["mode"], first["upserted"], first["deleted"]) == ("full", n, 0)
    assert first["batch_size"] == 1000 and first["batches"] == -(-n // 1000)
    assert chroma.collection("films-a")["configuration_json"]["hnsw"]["space"] == "cosine"
    v = verify(booted, chroma.url, "films-a", sample=n)
    assert v["in_step"] and v["postgres_count"] == v["chroma_count"] == n and v["sampled"] == n
    assert v["max_abs_difference"] < 1e-6  # float32 both sides; only decimal printing differs

    # Documents are the composed entity text, metadata the feature values and the vector's provenance.
    got = chroma.records("films-a", "get", {"ids": ["1"], "include": ["documents", "metadatas"]})
    title = one(booted, "SELECT title FROM film WHERE film_id = 1")
    assert title.lower() in got["documents"][0].lower()
    meta = got["metadatas"][0]
    assert meta["title"] == title and meta["rating"] == "PG" and "Deleted Scenes" in meta["special_features"]
    assert meta["model"] == one(booted, "SELECT model FROM recvector.entity_vectors WHERE entity_id = '1'")

    again = sync(booted, chroma.url, "films-a")
    assert (again["mode"], again["upserted"], again["deleted"]) == ("incremental", 0, 0)
    assert again["previous_watermark"] == first["watermark"]

    # A new film, a changed film, then the new film deleted again.
    fid = new_film(booted, "CHROMA SYNC TEST")
    booted.execute("SELECT recvector.refresh_entities(ARRAY[%s])", (fid,))
    assert sync(booted, chroma.url, "films-a")["upserted"] == 1
    booted.execute("UPDATE film SET description = 'A film about vector databases' WHERE film_id = 1")
    assert one(booted, "SELECT recvector.refresh_entities(ARRAY['1'])")["embedded"] == 1
    booted.execute("DELETE FROM film WHERE film_id = %s", (int(fid),))
    assert one(booted, "SELECT recvector.refresh_entities(ARRAY[%s])", (fid,))["removed"] == 1
    assert one(booted, "SELECT count(*) FROM recvector.entity_tombstones") == 1
    step = sync(booted, chroma.url, "films-a")
    assert (step["mode"], step["upserted"], step["deleted"]) == ("incremental", 1, 1)
    assert one(booted, "SELECT count(*) FROM recvector.entity_tombstones") == 0  # every target has seen it
    v = verify(booted, chroma.url, "films-a", sample=n)
    assert v["in_step"] and v["chroma_count"] == n
    stored = vec(one(booted, "SELECT embedding::text FROM recvector.entity_vectors WHERE entity_id = '1'"))
    got = chroma.records("films-a", "get", {"ids": ["1", fid], "include": ["embeddings", "documents"]})
    assert got["ids"] == ["1"] and got["embeddings"][0] == pytest.approx(stored, abs=1e-7)
    assert "vector databases" in got["documents"][0]
    target = booted.execute("SELECT collection_id, watermark::text, last_result->>'mode' FROM recvector.chroma_targets "
                            "WHERE collection = 'films-a'").fetchone()
    assert target == (chroma.collection("films-a")["id"], step["watermark"], "incremental")


def test_verify_finds_drift_and_full_sync_repairs_it(booted, chroma):
    sync(booted, chroma.url, "films-drift", documents=False)
    chroma.records("films-drift", "delete", {"ids": ["5"]})
    chroma.records("films-drift", "upsert", {"ids": ["6"], "embeddings": [[0.5] * 384]})
    chroma.records("films-drift", "upsert", {"ids": ["not-a-film"], "embeddings": [[0.1] * 384]})
    v = verify(booted, chroma.url, "films-drift", sample=2000)
    assert not v["in_step"] and v["missing"] == ["5"] and v["mismatched"] == ["6"]
    assert v["chroma_count"] == v["postgres_count"]  # one missing, one extra: counts alone would not tell
    # An incremental sync trusts the watermark; a full one compares every id.
    assert sync(booted, chroma.url, "films-drift")["upserted"] == 0
    repaired = sync(booted, chroma.url, "films-drift", full_sync=True)
    assert repaired["mode"] == "full" and repaired["deleted"] == 1
    assert verify(booted, chroma.url, "films-drift", sample=2000)["in_step"]


def test_server_killed_mid_sync_leaves_the_watermark_and_the_next_sync_repairs(booted, own_chroma):
    n = one(booted, "SELECT count(*) FROM recvector.entity_vectors")
    relay = KillingRelay(own_chroma, after=None)  # the sync's way to Chroma; it can kill the server
    try:
        first = sync(booted, relay.url, "films-kill")
        # 200 films change (real re-embedding with the local model).
        booted.execute("UPDATE film SET description = description || ' Remastered.' WHERE film_id <= 200")
        assert one(booted, "SELECT recvector.sync()")["embedded"] == 200
        relay.arm(after=3)
        with pytest.raises(psycopg.errors.SystemError) as e:
            sync(booted, relay.url, "films-kill", batch_size=20, max_retries=2)
        assert relay.killed.is_set() and relay.upserts == 4
        assert "chroma" in str(e.value) and "HTTP 502" in str(e.value)
        assert "retryable=yes" in e.value.diag.message_detail and "attempts=3" in e.value.diag.message_detail
        assert one(booted, "SELECT watermark::text FROM recvector.chroma_targets WHERE url = %s", (relay.url,)) \
            == first["watermark"]
        own_chroma.start()  # same data directory: Chroma has the first sync and 3 batches of the second
        stale = verify(booted, relay.url, "films-kill", sample=n)
        assert stale["counts_match"] and not stale["in_step"] and stale["mismatched_count"] == 200 - 3 * 20
        repair = sync(booted, relay.url, "films-kill")
        assert (repair["mode"], repair["upserted"], repair["previous_watermark"]) == ("incremental", 200, first["watermark"])
        assert verify(booted, relay.url, "films-kill", sample=n)["in_step"]
    finally:
        relay.close()


def test_server_restarted_within_the_retries_is_invisible(booted, own_chroma):
    n = one(booted, "SELECT count(*) FROM recvector.entity_vectors")
    relay = KillingRelay(own_chroma, after=2, restart_after=1.0)
    try:
        result = sync(booted, relay.url, "films-restart", batch_size=100, max_retries=10)
        assert relay.killed.is_set() and relay.restarted.is_set()
        assert result["upserted"] == n and result["chroma_calls"]["retries"] >= 1
    finally:
        relay.close()
    assert verify(booted, own_chroma.url, "films-restart", sample=n)["in_step"]


def test_chroma_top10_matches_pgvector(booted, chroma, record_property):
    sync(booted, chroma.url, "films-knn", documents=False)
    users = [r[0] for r in booted.execute(
        "SELECT user_id FROM recvector.rec_user_profiles WHERE embedding IS NOT NULL ORDER BY user_id LIMIT 50")]
    exact_overlap, hnsw_overlap = [], []
    cid = chroma.collection("films-knn")["id"]
    for u in users:
        profile = vec(one(booted, "SELECT embedding::text FROM recvector.rec_user_profiles WHERE user_id = %s", (u,)))
        theirs = chroma.call("POST", f"/api/v2/tenants/default_tenant/databases/default_database/collections/{cid}/query",
                             {"query_embeddings": [profile], "n_results": 10, "include": []})["ids"][0]
        with booted.transaction():
            booted.execute("SET LOCAL enable_indexscan = off")
            exact = [r[0] for r in booted.execute(
                "SELECT entity_id FROM recvector.entity_vectors ORDER BY embedding <=> %s::vector LIMIT 10",
                (str(profile),))]
        hnsw = [r[0] for r in booted.execute(
            "SELECT entity_id FROM recvector.entity_vectors ORDER BY embedding <=> %s::vector LIMIT 10", (str(profile),))]
        exact_overlap.append(len(set(theirs) & set(exact)) / 10)
        hnsw_overlap.append(len(set(theirs) & set(hnsw)) / 10)
    report = {"users": len(users), "chroma_vs_exact": sum(exact_overlap) / len(users),
              "chroma_vs_pgvector_hnsw": sum(hnsw_overlap) / len(users)}
    record_property("chroma_top10_overlap", json.dumps(report))
    print(f"\nChroma top-10 overlap: {report}")
    assert report["chroma_vs_exact"] >= 0.9 and report["chroma_vs_pgvector_hnsw"] >= 0.9


def test_errors_name_what_is_wrong(booted, chroma):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not a valid Chroma name") as e:
        sync(booted, chroma.url, "x")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="url must be an http"):
        sync(booted, "ftp://example", "films")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="url must not be NULL"):
        sync(booted, None, "films")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="batch_size must be between"):
        sync(booted, chroma.url, "films", batch_size=0)
    # Nothing answers on this port: a retryable network error, reported after the retries.
    with pytest.raises(psycopg.errors.SystemError, match="chroma request failed") as e:
        sync(booted, "http://127.0.0.1:9", "films", max_retries=0)
    assert "retryable=yes" in e.value.diag.message_detail
    # A collection made by someone else with another distance.
    chroma.call("POST", "/api/v2/tenants/default_tenant/databases/default_database/collections",
                {"name": "films-l2", "configuration": {"hnsw": {"space": "l2"}}})
    with pytest.raises(psycopg.errors.SystemError, match="compares vectors by l2") as e:
        sync(booted, chroma.url, "films-l2")
    assert "recreate => true" in e.value.diag.message_hint
    assert sync(booted, chroma.url, "films-l2", recreate=True)["recreated"] is True
    assert chroma.collection("films-l2")["configuration_json"]["hnsw"]["space"] == "cosine"
    # Another vector size (a collection filled by another model).
    chroma.call("POST", "/api/v2/tenants/default_tenant/databases/default_database/collections",
                {"name": "films-3d", "configuration": {"hnsw": {"space": "cosine"}}})
    chroma.records("films-3d", "upsert", {"ids": ["x"], "embeddings": [[1, 2, 3]]})
    with pytest.raises(psycopg.errors.SystemError, match="holds 3-dimensional vectors"):
        sync(booted, chroma.url, "films-3d")
    # Failed calls wrote nothing.
    assert one(booted, "SELECT count(*) FROM recvector.chroma_targets WHERE collection IN ('films', 'films-3d')") == 0
    with pytest.raises(psycopg.errors.SystemError, match="no collection 'nothing-here'"):
        verify(booted, chroma.url, "nothing-here")


def test_sync_is_admin_only_and_needs_to_see_every_session(booted, chroma):
    booted.execute("CREATE ROLE rv_chroma_app LOGIN")
    booted.execute("CREATE ROLE rv_chroma_admin LOGIN")
    try:
        booted.execute("SET ROLE rv_chroma_app")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sync(booted, chroma.url, "films-app")
        booted.execute("RESET ROLE")
        # An admin role granted the function (and the tables it needs) but not pg_read_all_stats
        # could not see other roles' open transactions: refused with the grant to give.
        booted.execute("GRANT USAGE ON SCHEMA recvector TO rv_chroma_admin")
        booted.execute("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA recvector TO rv_chroma_admin")
        booted.execute("GRANT ALL ON ALL TABLES IN SCHEMA recvector TO rv_chroma_admin")
        booted.execute("SET ROLE rv_chroma_admin")
        with pytest.raises(psycopg.errors.SystemError, match="must see every session") as e:
            sync(booted, chroma.url, "films-admin")
        assert "pg_read_all_stats" in e.value.diag.message_hint
        booted.execute("RESET ROLE")
        booted.execute("GRANT pg_read_all_stats TO rv_chroma_admin")
        booted.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO rv_chroma_admin")  # documents, metadata
        booted.execute("SET ROLE rv_chroma_admin")
        assert sync(booted, chroma.url, "films-admin")["mode"] == "full"
    finally:
        booted.execute("RESET ROLE")
        booted.execute("DROP OWNED BY rv_chroma_app, rv_chroma_admin")
        booted.execute("DROP ROLE rv_chroma_app")
        booted.execute("DROP ROLE rv_chroma_admin")


def test_a_token_is_read_from_the_server_environment(booted, chroma):
    with pytest.raises(psycopg.errors.SystemError, match="RECVECTOR_TEST_NO_SUCH_TOKEN"):
        sync(booted, chroma.url, "films-token", token_env="RECVECTOR_TEST_NO_SUCH_TOKEN")


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "PGPASSWORD", "HOME", "recvector_lower", "RECVECTOR_"])
def test_token_env_must_start_with_recvector(booted, chroma, name):
    """A caller may not have an arbitrary environment variable of the server sent to a URL."""
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="must name an environment variable starting with RECVECTOR_"):
        sync(booted, chroma.url, "films-token", token_env=name)
    assert one(booted, "SELECT count(*) FROM recvector.chroma_targets WHERE collection = 'films-token'") == 0


def test_concurrent_syncs_of_one_target_take_turns(booted, chroma):
    from conftest import dsn
    dbname = one(booted, "SELECT current_database()")
    results: list[dict] = []

    def run():
        with psycopg.connect(dsn(dbname), autocommit=True) as c:
            results.append(sync(c, chroma.url, "films-turns"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["mode"] for r in results) == ["full", "incremental"]
    assert wait_for(lambda: verify(booted, chroma.url, "films-turns")["in_step"], timeout=5)


def cli(*args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "recvector.cli", *args], capture_output=True, text=True, timeout=600)


def test_cli_sync_and_verify(booted, chroma):
    from conftest import dsn

    db = dsn(one(booted, "SELECT current_database()"))
    r = cli("chroma-sync", chroma.url, "films-cli", "--dsn", db)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("chroma-sync: full: 1000 upserted, 0 deleted")
    r = cli("chroma-verify", chroma.url, "films-cli", "--sample", "50", "--dsn", db, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["in_step"] is True
    chroma.records("films-cli", "delete", {"ids": ["7"]})
    r = cli("chroma-verify", chroma.url, "films-cli", "--sample", "1000", "--dsn", db)
    assert r.returncode == 2 and "NOT in step" in r.stdout and "1 missing" in r.stdout


def test_out_of_database_sync_without_plpython(empty_db, chroma):
    """A plain-SQL install (no PL/Python): the CLI runs the very same sync over psycopg."""
    import tiny
    from conftest import dsn

    db = dsn(one(empty_db, "SELECT current_database()"))
    assert cli("install", "--plain", "--dsn", db).returncode == 0
    empty_db.execute(tiny.SCHEMA)
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(tiny.mapping("incremental"), f)
    r = cli("set-schema", f.name, "--dsn", db)
    assert r.returncode == 0, r.stderr
    for eid, v in tiny.VECTORS.items():
        empty_db.execute("INSERT INTO recvector.entity_vectors (entity_id, embedding, fingerprint, model) "
                         "VALUES (%s, %s::vector, 'hand', 'hand')", (eid, str(v)))
    r = cli("chroma-sync", chroma.url, "tiny-plain", "--dsn", db, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["upserted"] == 5
    got = chroma.records("tiny-plain", "get", {"ids": ["4"], "include": ["embeddings", "documents", "metadatas"]})
    assert got["embeddings"][0] == pytest.approx(tiny.VECTORS["4"], abs=1e-6)
    assert got["documents"][0].lower().startswith("title: four") and got["metadatas"][0]["title"] == "four"
    empty_db.execute("DELETE FROM recvector.entity_vectors WHERE entity_id = '5'")
    r = cli("chroma-sync", chroma.url, "tiny-plain", "--dsn", db, "--json")
    assert (json.loads(r.stdout)["mode"], json.loads(r.stdout)["deleted"]) == ("incremental", 1)
    assert cli("chroma-verify", chroma.url, "tiny-plain", "--dsn", db).returncode == 0
