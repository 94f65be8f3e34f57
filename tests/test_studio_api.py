"""The studio's API (`recvector studio`) against the real extension: catalog introspection, live
validation with set_schema's own validator, diff, apply, save, previews, and the local-only guard."""
from __future__ import annotations

import http.client
import json
import threading

import pytest

from conftest import dsn, one, pagila_mapping
from recvector.studio.server import StudioServer


@pytest.fixture
def studio(booted, tmp_path):
    server = StudioServer(dsn(one(booted, "SELECT current_database()")), 0, tmp_path / "rec_schema.json")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def call(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    h = {"Host": f"127.0.0.1:{server.server_address[1]}"}
    if body is not None:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=h)
    r = conn.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if r.getheader("Content-Type") == "application/json" else data)


def test_catalog_lists_tables_columns_keys_and_foreign_keys(studio):
    status, cat = call(studio, "GET", "/api/catalog")
    assert status == 200
    tables = {t["id"]: t for t in cat["tables"]}
    film = tables["public.film"]
    assert film["primary_key"] == ["film_id"] and film["kind"] == "table"
    cols = {c["name"]: c for c in film["columns"]}
    assert cols["title"] == {"name": "title", "type": "text", "nullable": False}
    assert not any(t.startswith("recvector.") for t in tables)
    assert {"from": "public.rental", "columns": ["inventory_id"], "to": "public.inventory",
            "to_columns": ["inventory_id"]} in cat["foreign_keys"]
    # Pagila declares payment's foreign keys on its monthly partitions only (not on the newest, empty
    # one): they are shown as the partitioned table's, once each; the partitions are not listed.
    assert tables["public.payment"]["kind"] == "partitioned table"
    assert not any(t.startswith("public.payment_p") for t in tables)
    assert sorted((f["columns"][0], f["to"]) for f in cat["foreign_keys"] if f["from"] == "public.payment") == [
        ("customer_id", "public.customer"), ("rental_id", "public.rental"), ("staff_id", "public.staff")]


def test_validation_is_set_schemas_and_apply_writes_only_a_valid_mapping(studio, booted):
    good = pagila_mapping()
    assert call(studio, "POST", "/api/validate", {"mapping": good}) == (200, {"problems": []})
    bad = pagila_mapping()
    bad["interactions"][0]["timestamp_column"] = "rented_on"
    status, res = call(studio, "POST", "/api/validate", {"mapping": bad})
    assert status == 200 and res["problems"][0]["path"] == "$.interactions[0].timestamp_column"
    # The same problems as recvector.validate_schema in SQL.
    sql_problems = booted.execute("SELECT path, problem FROM recvector.validate_schema(%s::jsonb)",
                                  (json.dumps(bad),)).fetchall()
    assert [(p["path"], p["problem"]) for p in res["problems"]] == [tuple(r) for r in sql_problems]
    status, res = call(studio, "POST", "/api/apply", {"mapping": bad})
    assert status == 422 and res["problems"] and one(booted, "SELECT document->'interactions'->0->>'timestamp_column' "
                                                             "FROM recvector.mapping") == "rental_date"
    changed = pagila_mapping()
    changed["scoring"] = {"lambda": 0.5}
    status, d = call(studio, "POST", "/api/diff", {"mapping": changed})
    assert status == 200 and d["loaded"] and '+    "lambda": 0.5' in d["diff"]
    status, res = call(studio, "POST", "/api/apply", {"mapping": changed})
    assert status == 200 and res["summary"]["entities_table"] == "public.film"
    assert one(booted, "SELECT (document->'scoring'->>'lambda')::float FROM recvector.mapping") == 0.5
    status, res = call(studio, "POST", "/api/save", {"mapping": changed})
    assert status == 200 and json.loads(open(res["saved"]).read()) == changed
    status, res = call(studio, "GET", "/api/mapping")
    assert res["file_mapping"] == changed and res["loaded"]["scoring"]["lambda"] == 0.5


def test_previews_use_the_real_extension(studio, booted):
    status, p = call(studio, "GET", "/api/preview/user?id=1&k=5")
    assert status == 200 and not p["cold_start"] and len(p["recommendations"]) == 5
    assert [r["entity_id"] for r in p["recommendations"]] == \
        [r[0] for r in booted.execute("SELECT entity_id FROM recvector.explain('1', 5)")]
    assert p["recent"] and all(r["entity_id"] in p["labels"] for r in p["recent"])
    assert p["recommendations"][0]["because"]
    assert "title" in p["labels"][p["recommendations"][0]["entity_id"]]
    status, p = call(studio, "GET", "/api/preview/user?id=nobody")
    assert status == 200 and p["cold_start"] and p["profile"] is None and len(p["recommendations"]) == 10
    status, e = call(studio, "GET", "/api/preview/entity?id=1&k=3")
    assert status == 200 and len(e["similar"]) == 3 and e["labels"]["1"]["title"] == "ACADEMY DINOSAUR"
    status, e = call(studio, "GET", "/api/preview/entity?id=no-such-film")
    assert status == 400 and "has no vector" in e["error"] and e["hint"]


def test_only_the_studios_own_page_may_call_the_api(studio):
    port = studio.server_address[1]
    assert call(studio, "GET", "/api/catalog", headers={"Host": f"evil.example:{port}"})[0] == 403
    assert call(studio, "GET", "/api/catalog", headers={"Origin": "http://evil.example"})[0] == 403
    assert call(studio, "GET", "/api/catalog", headers={"Origin": f"http://localhost:{port}"})[0] == 200
    assert call(studio, "POST", "/api/apply", headers={"Content-Type": "text/plain"})[0] == 415
    assert call(studio, "GET", "/api/nothing")[0] == 404
    assert call(studio, "POST", "/api/validate", {"no": "mapping"})[0] == 400


def test_the_shipped_page_was_built_from_the_sources_in_the_repository():
    """`make studio` stamps the build with the hash of studio/'s sources: a change to the page's
    sources without a rebuild (the build is what users get) fails here."""
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("studio_source_hash", ROOT / "scripts" / "studio_source_hash.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    stamp = (ROOT / "python" / "recvector" / "studio" / "static" / "SOURCE_SHA256").read_text().strip()
    assert stamp == mod.source_hash(), "studio/ changed since the page was built: run `make studio`"
    # Every asset of the build is the one its page loads (no stale bundle left beside it).
    static = ROOT / "python" / "recvector" / "studio" / "static"
    index = (static / "index.html").read_text()
    assets = sorted((static / "assets").iterdir())
    assert all(f"assets/{p.name}" in index for p in assets)
    assert {p.suffix for p in assets} == {".js", ".css"}
