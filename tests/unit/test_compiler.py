"""The mapping compiler without a database: every problem at its JSON path, identifiers quoted,
values as parameters, and the SQL shapes of 0.3.0 (trusted types, undated interactions, weight
transforms, one-to-many features)."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from recvector.errors import MappingError
from recvector.mapping import check_select, load_mapping, mapping_problems

from catalog import FakeCatalog

TABLES = {
    "public.customer": {"customer_id": "integer"},
    "public.film": {"film_id": "integer", "title": "text", "rating": ("public.mpaa_rating", "E", False),
                    "features": "text[]", "language_id": "smallint"},
    "public.language": {"language_id": "smallint", "name": "text"},
    "public.tag": {"film_id": "integer", "tag": "text"},
    "public.rental": {"customer_id": "integer", "film_id": "integer", "rented_at": "timestamp with time zone",
                      "stars": "numeric", "plays": "bigint", "id": "bigint", "cust": ("public.cust_id", "N", False)},
}


def base() -> dict[str, Any]:
    return {"version": 1,
            "users": {"table": "customer", "id": "customer_id"},
            "entities": {"table": "film", "id": "film_id", "features": [
                {"name": "title", "kind": "text", "column": "title"},
                {"name": "rating", "kind": "category", "column": "rating"},
                {"name": "tags", "kind": "tags", "column": "tag", "max_values": 5,
                 "from": {"table": "tag", "entity_key": "film_id"}},
                {"name": "language", "kind": "category", "column": "name",
                 "from": {"table": "language", "key": "language_id", "entity_column": "language_id"}}]},
            "interactions": [{"name": "rental", "table": "rental", "user_column": "customer_id",
                              "entity_column": "film_id", "timestamp_column": "rented_at"}]}


def compile_(doc):
    return load_mapping(doc, FakeCatalog(TABLES))


def test_a_valid_mapping_compiles_to_checked_read_only_sql():
    full, c = compile_(base())
    assert full["aggregation"]["strategy"] == "full"
    for sql in (c.entities, c.history, c.seen, c.all_interactions):
        check_select(sql, set(c.tables) | {"recvector.events"})
    assert c.params == [{"kind": "rental", "fixed": 1.0}]
    assert '"public"."rental" AS s' in c.history and "$1 -> 0 ->> 'fixed'" in c.history


def test_user_typed_feature_is_printed_never_cast_and_user_typed_ids_are_refused():
    _, c = compile_(base())
    assert "pg_catalog.format('%s', e.\"rating\")" in c.entities
    assert 'CAST(e."rating"' not in c.entities
    doc = base()
    doc["interactions"][0]["user_column"] = "cust"
    problems = mapping_problems(doc, FakeCatalog(TABLES))
    assert any(p.path == "$.interactions[0].user_column" and "owned by a role that is not a superuser" in p.message
               for p in problems), problems


def test_one_to_many_feature_keeps_the_most_frequent_values():
    _, c = compile_(base())
    assert 'FROM "public"."tag" AS t WHERE t."film_id" = e."film_id"' in c.entities
    assert "GROUP BY pg_catalog.lower(y.v)" in c.entities and "LIMIT 5" in c.entities


def test_weights_are_capped_and_times_must_be_finite():
    _, c = compile_(base())
    trig = c.sources["rental"]["trigger"]
    assert "LEAST(GREATEST(" in trig and "-100.0), 100.0)" in trig
    assert 'pg_catalog.isfinite(s."rented_at")' in trig


def test_undated_interactions_with_and_without_an_order_column():
    doc = base()
    del doc["interactions"][0]["timestamp_column"]
    _, c = compile_(doc)
    assert "TIMESTAMPTZ '1970-01-01 00:00:00+00' AS occurred_at" in c.history
    doc["interactions"][0]["order_column"] = "id"
    _, c = compile_(doc)
    assert 'make_interval(secs => CAST(s."id" AS DOUBLE PRECISION) / 1000000)' in c.history
    assert 'ORDER BY s."id" DESC' in c.history
    doc["interactions"][0]["timestamp_column"] = "rented_at"
    with pytest.raises(MappingError, match="timestamp_column or order_column, not both"):
        compile_(doc)


def test_value_weights_log_transform_and_positive_threshold():
    doc = base()
    doc["interactions"][0]["weight"] = {"from_value": {"column": "plays", "transform": "log"}}
    _, c = compile_(doc)
    assert 'pg_catalog.ln(1 + GREATEST(CAST(s."plays" AS DOUBLE PRECISION), 0))' in c.history
    doc["interactions"][0]["weight"] = {"from_value": {"column": "stars", "center": 3, "positive_from": 4}}
    _, c = compile_(doc)
    assert c.params[0]["positive_from"] == 4.0 and "ELSE LEAST(" in c.history
    doc["interactions"][0]["weight"]["from_value"]["positive_from"] = 2
    problems = mapping_problems(doc, FakeCatalog(TABLES))
    assert [p.path for p in problems] == ["$.interactions[0].weight.from_value.positive_from"]


@pytest.mark.parametrize("path, value, where", [
    (["entities", "features", 0, "column"], "nope", "$.entities.features[0].column"),
    (["interactions", 0, "table"], "missing", "$.interactions[0].table"),
    (["users", "id"], "title", None),
])
def test_each_mistake_is_reported_at_its_path(path, value, where):
    doc = copy.deepcopy(base())
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    if path == ["users", "id"]:
        doc["users"]["table"] = "film"
        assert mapping_problems(doc, FakeCatalog(TABLES))  # a text id against an integer user column
        return
    assert [p.path for p in mapping_problems(doc, FakeCatalog(TABLES))] == [where]


def test_identifiers_are_quoted_and_values_are_parameters():
    tables = {"public.customer": {"customer_id": "integer"},
              "public.f'ilm\"; --": {"id": "integer", "ti\"tle": "text"},
              "public.ev": {"u": "integer", "e": "integer", "at": "timestamp with time zone", "k": "text"}}
    doc = {"version": 1, "users": {"table": "customer", "id": "customer_id"},
           "entities": {"table": "f'ilm\"; --", "id": "id", "features": [{"name": "t", "kind": "text", "column": "ti\"tle"}]},
           "interactions": [{"name": "ev", "table": "ev", "user_column": "u", "entity_column": "e", "timestamp_column": "at",
                             "weight": {"by_type": {"column": "k", "values": {"'; DROP TABLE x; --": 1}}}}]}
    _, c = load_mapping(doc, FakeCatalog(tables))
    assert '"public"."f\'ilm""; --"' in c.entities and 'e."ti""tle"' in c.entities
    assert "DROP TABLE" not in c.history and c.params[0]["values"] == {"'; DROP TABLE x; --": 1.0}
