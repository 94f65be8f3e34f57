"""Mapping validation: every kind of mistake gives its error at its JSON path and writes nothing;
generated SQL quotes identifiers and has exactly the intended shape (checked with sqlglot)."""
from __future__ import annotations

import copy
import json
from typing import Any, Callable

import psycopg
import pytest
import sqlglot
from sqlglot import exp

from conftest import one, pagila_mapping

Mutation = Callable[[dict[str, Any]], None]


def _set(path: list[Any], value: Any) -> Mutation:
    def f(doc: dict[str, Any]) -> None:
        node = doc
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value
    return f


def _del(path: list[Any]) -> Mutation:
    def f(doc: dict[str, Any]) -> None:
        node = doc
        for p in path[:-1]:
            node = node[p]
        del node[path[-1]]
    return f


CASES = [
    ("unknown table", _set(["users", "table"], "public.nope"), "$.users.table", "table public.nope does not exist"),
    ("unknown column", _set(["entities", "features", 1, "column"], "titel"), "$.entities.features[1].column",
     "column 'titel' does not exist in table public.film"),
    ("unknown column in a list", _set(["entities", "features", 5, "column"], ["first_name", "surname"]),
     "$.entities.features[5].column[1]", "column 'surname' does not exist in table public.actor"),
    ("unknown link table", _set(["entities", "features", 0, "from", "link", "table"], "film_categories"),
     "$.entities.features[0].from.link.table", "table public.film_categories does not exist"),
    ("wrong type for a timestamp", _set(["interactions", 0, "timestamp_column"], "customer_id"),
     "$.interactions[0].timestamp_column", "has type integer, which cannot be used as a timestamp"),
    ("wrong type for a number feature", _set(["entities", "features", 1, "kind"], "number"),
     "$.entities.features[1].column", "has type text, which cannot be used as a number feature"),
    ("join path type mismatch", _set(["interactions", 0, "path", 0, "match"], "last_update"),
     "$.interactions[0].path[0].match", "inventory.last_update has type timestamp with time zone, which cannot be used as a key"),
    ("entity reference of the wrong type", _set(["interactions", 0, "path", 0, "select"], "last_update"),
     "$.interactions[0].path[0].select", "which cannot be used as an entity reference"),
    ("entity reference mismatching the entity id", _set(["entities", "id"], "title"),
     "$.entities.features[0].from.link.entity_column", "against the entity id: types integer and text do not match"),
    ("user column type mismatch", _set(["interactions", 0, "user_column"], "last_update"),
     "$.interactions[0].user_column", "cannot be used as a user id"),
    ("missing key", _del(["entities", "id"]), "$.entities", "'id' is a required property"),
    ("unknown key", _set(["entities", "colour"], "red"), "$.entities",
     "Additional properties are not allowed ('colour' was unexpected)"),
    ("bad kind", _set(["entities", "features", 0, "kind"], "colour"), "$.entities.features[0].kind",
     "'colour' is not one of ['text', 'category', 'tags', 'number']"),
    ("bad strategy", _set(["aggregation", "strategy"], "sometimes"), "$.aggregation.strategy", "is not one of"),
    ("lambda out of range", _set(["scoring", "lambda"], 1.5), "$.scoring.lambda", "1.5 is greater than the maximum of 1"),
    ("bad interval", _set(["aggregation", "half_life"], "a fortnight"), "$.aggregation.half_life", "does not match"),
    ("weight as text", _set(["interactions", 0, "weight"], {"fixed": "heavy"}), "$.interactions[0].weight.fixed",
     "'heavy' is not of type 'number'"),
    ("two weight kinds", _set(["interactions", 0, "weight"], {"fixed": 1, "by_type": {"column": "x", "values": {"a": 1}}}),
     "$.interactions[0].weight", None),
    ("duplicate feature names", _set(["entities", "features", 1, "name"], "category"), "$.entities.features[1].name",
     "feature name 'category' is used twice"),
    ("no interactions", _set(["interactions"], []), "$.interactions", "should be non-empty"),
    ("wrong version", _set(["version"], 2), "$.version", "1 was expected"),
]


@pytest.mark.parametrize("name, mutate, path, message", CASES, ids=[c[0] for c in CASES])
def test_each_mistake_is_reported_at_its_path_and_nothing_is_written(pagila, name, mutate, path, message):
    doc = pagila_mapping()
    mutate(doc)
    with pytest.raises(psycopg.Error) as err:
        pagila.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    diag = err.value.diag
    assert diag.sqlstate == "22023"
    assert diag.message_primary.startswith(f"invalid mapping at {path}:")
    if message:
        assert message in diag.message_primary
    assert diag.message_hint == "Fix every listed path; nothing was written."
    assert one(pagila, "SELECT count(*) FROM recvector.mapping") == 0
    assert one(pagila, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                       "WHERE attrelid = 'recvector.entity_vectors'::regclass AND attname = 'embedding'") == "vector"
    # validate_schema lists the same problem without raising.
    problems = pagila.execute("SELECT path, problem FROM recvector.validate_schema(%s::jsonb)", (json.dumps(doc),)).fetchall()
    assert problems and problems[0][0] == path


def test_every_problem_is_listed_in_the_detail(pagila):
    doc = pagila_mapping()
    doc["users"]["table"] = "public.nope"
    doc["entities"]["features"][1]["column"] = "titel"
    doc["interactions"][0]["timestamp_column"] = "return_dat"
    with pytest.raises(psycopg.Error) as err:
        pagila.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    assert "(and 2 more)" in err.value.diag.message_primary
    lines = err.value.diag.message_detail.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["$.users.table", "$.entities.features[1].column",
                                                  "$.interactions[0].timestamp_column"]


def test_a_failed_reload_keeps_the_previous_mapping(booted):
    before = one(booted, "SELECT document FROM recvector.mapping")
    doc = copy.deepcopy(before)
    doc["entities"]["table"] = "public.films"
    with pytest.raises(psycopg.Error):
        booted.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    assert one(booted, "SELECT document FROM recvector.mapping") == before


def test_changing_dimensions_needs_reembed(booted):
    doc = pagila_mapping()
    doc["embedding"]["dimensions"] = 128
    with pytest.raises(psycopg.Error) as err:
        booted.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    assert "1000 stored entity vectors have 384 dimensions; the mapping declares" in err.value.diag.message_primary
    assert "recvector.reembed" in err.value.diag.message_hint


def test_wrong_dimensions_from_the_model_write_nothing(pagila):
    doc = pagila_mapping()
    doc["embedding"]["dimensions"] = 3
    pagila.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
    with pytest.raises(psycopg.Error) as err:
        pagila.execute("SELECT recvector.bootstrap()")
    assert err.value.diag.message_primary == \
        "embedding provider returned 384-dimensional vectors, the mapping declares 3"
    assert "provider=local" in err.value.diag.message_detail
    assert one(pagila, "SELECT count(*) FROM recvector.entity_vectors") == 0


def test_not_json_and_null(pagila):
    with pytest.raises(psycopg.Error) as err:
        pagila.execute("SELECT recvector.set_schema('[1, 2]'::jsonb)")
    assert "invalid mapping at $:" in err.value.diag.message_primary
    with pytest.raises(psycopg.Error) as err:
        pagila.execute("SELECT recvector.set_schema(NULL)")
    assert "the mapping is NULL" in err.value.diag.message_primary


HOSTILE_SCHEMA = r'''
CREATE SCHEMA "odd ""schema""";
CREATE TABLE "odd ""schema"""."Users; DROP TABLE film" ("id key" text PRIMARY KEY);
CREATE TABLE "odd ""schema"""."it""ems" ("Id" integer PRIMARY KEY, "na'me" text, "tag--s" text[]);
CREATE TABLE "odd ""schema"""."ev/*ents*/" ("{who}" text, "what" integer, "when{rel}" timestamptz, "how" text);
INSERT INTO "odd ""schema"""."Users; DROP TABLE film" VALUES ('o''brien; --'), ('ünïcödé');
INSERT INTO "odd ""schema"""."it""ems" VALUES (1, 'Robert''); DROP TABLE students;--', '{a,b}'), (2, 'plain', NULL);
INSERT INTO "odd ""schema"""."ev/*ents*/" VALUES ('o''brien; --', 1, '2024-01-01', 'like'), ('ünïcödé', 2, '2024-01-02', 'like');
'''

HOSTILE_MAPPING = {
    "version": 1,
    "users": {"table": 'odd "schema".Users; DROP TABLE film', "id": "id key"},
    "entities": {"table": 'odd "schema".it"ems', "id": "Id", "features": [
        {"name": "name", "kind": "text", "column": "na'me"},
        {"name": "tags", "kind": "tags", "column": "tag--s"}]},
    "interactions": [{"name": "ev", "table": 'odd "schema".ev/*ents*/', "user_column": "{who}", "entity_column": "what",
                      "timestamp_column": "when{rel}",
                      "weight": {"by_type": {"column": "how", "values": {"like'); DROP TABLE film; --": 5, "like": 1}}}}],
}


def test_hostile_identifiers_are_quoted_and_values_stay_parameters(pagila):
    # (Braces too: "{who}" and "when{rel}" once broke the compiler's own templating.)
    pagila.execute(HOSTILE_SCHEMA)
    pagila.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(HOSTILE_MAPPING),))
    compiled = one(pagila, "SELECT compiled FROM recvector.mapping")
    allowed = {'odd "schema".Users; DROP TABLE film', 'odd "schema".it"ems', 'odd "schema".ev/*ents*/',
               "recvector.events"}
    for key in ("entities", "entities_by_id", "history", "seen", "all_interactions"):
        trees = sqlglot.parse(compiled[key], read="postgres")
        assert len(trees) == 1 and isinstance(trees[0], (exp.Select, exp.Union)), key
        tables = {f"{t.db}.{t.name}" for t in trees[0].find_all(exp.Table)}
        assert tables <= allowed, (key, tables)
        assert not list(trees[0].find_all(exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Command))
        assert "DROP TABLE film;" not in compiled[key].replace('"Users; DROP TABLE film"', "")
    # The type names of by_type weights are values: they travel in the jsonb parameter only.
    assert "like'); DROP" not in json.dumps({k: v for k, v in compiled.items() if k != "params"})
    assert compiled["params"][0]["values"]["like'); DROP TABLE film; --"] == 5
    pagila.execute("SELECT recvector.bootstrap()")
    assert one(pagila, "SELECT count(*) FROM recvector.entity_vectors") == 2
    assert one(pagila, "SELECT count(*) FROM film") == 1000
    # Ids with quotes, semicolons and unicode round-trip verbatim.
    users = {r[0] for r in pagila.execute("SELECT user_id FROM recvector.rec_user_profiles WHERE embedding IS NOT NULL")}
    assert users == {"o'brien; --", "ünïcödé"}
    assert [r[0] for r in pagila.execute("SELECT entity_id FROM rec_recommend('o''brien; --', 5)")] == ["2"]
    pagila.execute("SELECT recvector.enable_auto_logging()")
    pagila.execute('INSERT INTO "odd ""schema"""."ev/*ents*/" VALUES (%s, 2, now(), %s)',
                   ("o'brien; --", "like'); DROP TABLE film; --"))
    fc = one(pagila, "SELECT feedback_counts FROM recvector.rec_entity_stats WHERE entity_id = '2'")
    assert fc == {"like": 1, "like'); DROP TABLE film; --": 1}
    pagila.execute("SELECT recvector.disable_auto_logging()")


def test_compiler_rejects_sql_it_did_not_mean_to_write():
    from recvector.mapping import check_select

    check_select('SELECT a FROM "public"."film" AS e', {"public.film"})
    for bad in ('SELECT 1; DROP TABLE film', 'SELECT * FROM "public"."customer"', 'DELETE FROM film',
                'SELECT a FROM "public"."film" AS e UNION ALL SELECT b FROM pg_authid'):
        with pytest.raises(AssertionError):
            check_select(bad, {"public.film"})
