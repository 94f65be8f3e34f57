"""The studio in a real browser (Debian's Chromium driven by Playwright, never a downloaded browser):
on Pagila and on Chinook, a mapping is built from scratch by using the page as a user would — roles
from the menus on the table nodes, features, the join path the page proposes from the foreign keys —
checked live, shown on the node it concerns when wrong, applied, bootstrapped and previewed.
Screenshots go to test-artifacts/."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from conftest import ROOT, dsn, load_chinook, one
from recvector.studio.server import StudioServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is not installed: `make deps` installs Debian's chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def open_studio(conn, tmp_path):
    server = StudioServer(dsn(one(conn, "SELECT current_database()")), 0, tmp_path / "rec_schema.json")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def build_mapping(page, user, entity, interaction, time_column, drag=False):
    def role(table, name):
        if drag:   # drag the role from the palette onto the table's node
            page.get_by_test_id(f"drag-{name}").drag_to(page.get_by_test_id(f"node-{table}").locator(".table-title"))
            assert page.get_by_label(f"Role of {table}", exact=True).input_value() == name
        else:      # or pick it from the node's menu
            page.get_by_label(f"Role of {table}", exact=True).select_option(name)

    role(entity, "entity")
    role(interaction, "interaction")
    # No user table yet: set_schema's validator says so, and the page shows it.
    page.get_by_test_id("validity").filter(has_text="problem").wait_for()
    role(user, "user")
    page.get_by_test_id("validity").filter(has_text="Mapping is valid").wait_for()
    # A wrong choice is shown on the node it concerns, then put right.
    page.get_by_label(f"timestamp_column of {interaction}", exact=True).select_option("")
    page.get_by_test_id(f"node-{interaction}").get_by_role("alert").first.wait_for()
    assert "timestamp_column" in page.get_by_test_id(f"node-{interaction}").get_by_role("alert").first.inner_text()
    page.get_by_label(f"timestamp_column of {interaction}", exact=True).select_option(time_column)
    page.get_by_test_id("validity").filter(has_text="Mapping is valid").wait_for()
    # Every table stays on the canvas while roles and problems change (React Flow hides a node it
    # has to measure again).
    page.wait_for_function("() => [...document.querySelectorAll('.react-flow__node')]"
                           ".every((n) => getComputedStyle(n).visibility !== 'hidden')")


def apply_bootstrap_preview(page, user_id, entity_id, name):
    page.get_by_role("button", name="Show diff").click()
    page.get_by_test_id("diff").wait_for()
    page.get_by_role("button", name="Apply").click()
    page.get_by_test_id("status").filter(has_text="Apply: done").wait_for()
    page.get_by_role("button", name="Save file").click()
    page.get_by_test_id("status").filter(has_text="Save: done").wait_for()
    page.get_by_role("button", name="Bootstrap").click()
    page.get_by_test_id("status").filter(has_text="Bootstrap: done").wait_for(timeout=180_000)
    page.get_by_label("Preview user id").fill(user_id)
    page.get_by_role("button", name="Recommend").click()
    page.get_by_test_id("preview-results").locator("li").nth(9).wait_for()
    recs = page.get_by_test_id("preview-results").locator("li").count()
    assert page.get_by_test_id("preview-recent").locator("li").count() == 5  # the user's latest, with titles
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"studio-{name}-recommend.png"), full_page=True)
    page.get_by_label("Preview entity id").fill(entity_id)
    page.get_by_role("button", name="Similar").click()
    page.get_by_test_id("preview-results").locator("li").nth(9).wait_for()
    page.screenshot(path=str(ARTIFACTS / f"studio-{name}-similar.png"), full_page=True)
    return recs


def test_pagila_from_scratch(pagila, browser, tmp_path):
    server = open_studio(pagila, tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(server.url)
        build_mapping(page, "public.customer", "public.film", "public.rental", "rental_date")
        assert "public.inventory (inventory_id → film_id)" in page.get_by_test_id("path-public.rental").inner_text()
        # Features from related tables, proposed from the foreign keys: the film's categories through
        # the link table film_category (many-to-many) by giving category the Feature role, its
        # language through film.language_id from the list.
        category = "public.category.name via public.film_category"
        page.get_by_label("Role of public.category", exact=True).select_option("feature")
        assert page.get_by_label(f"Feature {category}", exact=True).is_checked()
        page.get_by_label(f"Kind of {category}", exact=True).select_option("category")
        page.get_by_label(f"Weight of {category}", exact=True).fill("2")
        page.get_by_label("Feature public.language.name via film.language_id", exact=True).check()
        # The actors' names: two columns of the same related row in one feature.
        actor = "public.actor.first_name via public.film_actor"
        page.get_by_label(f"Feature {actor}", exact=True).check()
        page.get_by_label(f"Add a column to {actor}", exact=True).select_option("last_name")
        assert page.get_by_label("Role of public.language", exact=True).input_value() == "feature"
        # A table the entity cannot reach gets no feature, and the page says why.
        page.get_by_label("Role of public.payment", exact=True).select_option("feature")
        page.get_by_test_id("status").filter(has_text="public.payment is not reachable from public.film").wait_for()
        assert page.get_by_label("Role of public.payment", exact=True).input_value() == ""
        # Weights per type value (here the staff member who handled the rental), decay and scoring.
        page.get_by_label("Weight kind of public.rental", exact=True).select_option("by_type")
        page.get_by_label("Type column of public.rental", exact=True).select_option("staff_id")
        page.get_by_label("Type weights of public.rental", exact=True).fill("1=1, 2=0.5")
        # A second interaction table two tables away from the film, weighted by the amount paid:
        # payment.rental_id -> rental.inventory_id -> inventory.film_id.
        page.get_by_label("Role of public.payment", exact=True).select_option("interaction")
        page.get_by_test_id("path-public.payment").filter(has_text="public.inventory").wait_for()
        assert page.get_by_test_id("path-public.payment").inner_text() == (
            "join path: public.rental (rental_id → inventory_id) → public.inventory (inventory_id → film_id)")
        page.get_by_label("Weight kind of public.payment", exact=True).select_option("from_value")
        page.get_by_label("Rating column of public.payment", exact=True).select_option("amount")
        page.get_by_label("Scale of public.payment", exact=True).fill("5")
        page.get_by_label("Half-life").fill("14 days")
        page.get_by_label("Scoring lambda").fill("0.5")
        page.get_by_test_id("validity").filter(has_text="Mapping is valid").wait_for()
        assert apply_bootstrap_preview(page, "1", "1", "pagila") == 10
        doc = one(pagila, "SELECT document FROM recvector.mapping")
        assert doc["users"] == {"table": "public.customer", "id": "customer_id"}
        assert doc["entities"]["table"] == "public.film" and doc["entities"]["id"] == "film_id"
        assert {f["column"] for f in doc["entities"]["features"] if isinstance(f["column"], str)} >= {"title", "description"}
        feats = {f["name"]: f for f in doc["entities"]["features"]}
        assert feats["category"]["from"] == {"table": "public.category", "key": "category_id",
                                             "link": {"table": "public.film_category", "entity_column": "film_id",
                                                      "key_column": "category_id"}}
        assert (feats["category"]["column"], feats["category"]["kind"], feats["category"]["weight"]) == ("name", "category", 2)
        assert feats["language"]["from"] == {"table": "public.language", "key": "language_id", "entity_column": "language_id"}
        assert (feats["actor"]["column"], feats["actor"]["kind"], feats["actor"]["from"]) == (
            ["first_name", "last_name"], "tags", {"table": "public.actor", "key": "actor_id",
                                                 "link": {"table": "public.film_actor", "entity_column": "film_id",
                                                          "key_column": "actor_id"}})
        # The joined values are in the text that was embedded (the mapping's own entity query).
        pagila.execute("PREPARE by_id(text[]) AS " + one(pagila, "SELECT compiled ->> 'entities_by_id' FROM recvector.mapping"))
        row = pagila.execute("EXECUTE by_id('{1}')").fetchone()
        names = [f["name"] for f in doc["entities"]["features"]]
        assert row[1 + names.index("category")] == one(
            pagila, "SELECT string_agg(DISTINCT c.name, ', ' ORDER BY c.name) FROM film_category fc "
                    "JOIN category c USING (category_id) WHERE fc.film_id = 1")
        assert row[1 + names.index("language")].strip() == "English"
        src = doc["interactions"][0]
        assert (src["table"], src["user_column"], src["entity_column"], src["timestamp_column"]) == \
            ("public.rental", "customer_id", "inventory_id", "rental_date")
        assert src["path"] == [{"table": "public.inventory", "match": "inventory_id", "select": "film_id"}]
        assert src["weight"] == {"by_type": {"column": "staff_id", "values": {"1": 1, "2": 0.5}}}
        pay = doc["interactions"][1]
        assert (pay["table"], pay["user_column"], pay["entity_column"], pay["timestamp_column"]) == \
            ("public.payment", "customer_id", "rental_id", "payment_date")
        assert pay["path"] == [{"table": "public.rental", "match": "rental_id", "select": "inventory_id"},
                               {"table": "public.inventory", "match": "inventory_id", "select": "film_id"}]
        assert pay["weight"] == {"from_value": {"column": "amount", "center": 0, "scale": 5}}
        assert doc["aggregation"]["half_life"] == "14 days" and doc["scoring"]["lambda"] == 0.5
        saved = json.loads((tmp_path / "rec_schema.json").read_text())
        assert saved["interactions"][0]["path"] == src["path"]
        assert one(pagila, "SELECT count(*) FROM recvector.rec_user_profiles WHERE embedding IS NOT NULL") == 599
        # A new visit loads the mapping from the database: nothing differs.
        page.reload()
        page.get_by_role("button", name="Load from database").click()
        page.get_by_test_id("validity").filter(has_text="Mapping is valid").wait_for()
        page.get_by_role("button", name="Show diff").click()
        page.get_by_test_id("diff").filter(has_text="(no change)").wait_for()
        # The richer example mapping from a file: what the page does not edit (features from joined
        # tables) is kept and applied as written.
        (tmp_path / "rec_schema.json").write_text((ROOT / "examples" / "pagila" / "rec_schema.json").read_text())
        page.get_by_role("button", name="Load file").click()
        page.get_by_test_id("validity").filter(has_text="Mapping is valid").wait_for()
        page.get_by_role("button", name="Show diff").click()
        page.get_by_test_id("diff").filter(has_text='"category"').wait_for()
        page.get_by_role("button", name="Apply").click()
        page.get_by_test_id("status").filter(has_text="Apply: done").wait_for()
        example = json.loads((ROOT / "examples" / "pagila" / "rec_schema.json").read_text())
        doc = one(pagila, "SELECT document FROM recvector.mapping")
        assert doc["entities"]["features"] == [{**f, "label": f.get("label", f["name"].replace("_", " ").capitalize())}
                                               for f in example["entities"]["features"]]
        assert doc["interactions"][0]["path"] == example["interactions"][0]["path"]
    finally:
        server.shutdown()
        server.server_close()


def test_chinook_from_scratch(empty_db, browser, tmp_path):
    load_chinook(empty_db)
    empty_db.execute("CREATE EXTENSION recvector CASCADE")
    server = open_studio(empty_db, tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(server.url)
        build_mapping(page, "public.customer", "public.track", "public.invoice", "invoice_date", drag=True)
        assert "public.invoice_line (invoice_id → track_id)" in page.get_by_test_id("path-public.invoice").inner_text()
        # The track's genre as a feature: drag the Feature role onto the genre table. Only real
        # link tables count for many-to-many (playlist_track, not invoice_line with its own key).
        page.get_by_test_id("drag-feature").drag_to(page.get_by_test_id("node-public.genre").locator(".table-title"))
        assert page.get_by_label("Feature public.genre.name via track.genre_id", exact=True).is_checked()
        offered = page.get_by_test_id("joined-features").inner_text()
        assert "playlist.name" in offered and "invoice." not in offered
        page.get_by_label("Strategy", exact=True).select_option("incremental")
        page.get_by_label("Capture", exact=True).select_option("deferred")
        page.get_by_test_id("validity").filter(has_text="Mapping is valid").wait_for()
        assert apply_bootstrap_preview(page, "1", "1", "chinook") == 10
        doc = one(empty_db, "SELECT document FROM recvector.mapping")
        src = doc["interactions"][0]
        assert (src["table"], src["user_column"], src["entity_column"]) == ("public.invoice", "customer_id", "invoice_id")
        assert src["path"] == [{"table": "public.invoice_line", "match": "invoice_id", "select": "track_id"}]
        assert {f["column"] for f in doc["entities"]["features"]} >= {"name", "composer"}
        assert (doc["aggregation"]["strategy"], doc["aggregation"]["capture"]) == ("incremental", "deferred")
        genre = next(f for f in doc["entities"]["features"] if f["name"] == "genre")
        assert (genre["column"], genre["kind"], genre["from"]) == (
            "name", "category", {"table": "public.genre", "key": "genre_id", "entity_column": "genre_id"})
        assert one(empty_db, "SELECT count(*) FROM recvector.entity_vectors") == 3503
    finally:
        server.shutdown()
        server.server_close()
