"""Named filters compiled without a database: allowed shapes, rejected ones, casts of user types."""
from __future__ import annotations

import pytest

from recvector.filters import FilterError, compile_filter

from catalog import FakeCatalog
from test_compiler import TABLES

DOC = {"entities": {"table": "film", "id": "film_id"}}


def test_a_filter_compiles_to_one_select_over_the_entity_table():
    sql = compile_filter("length(title) < 20 AND rating <> 'NC-17'", DOC, FakeCatalog(TABLES))
    assert sql == ('SELECT CAST(e."film_id" AS TEXT) FROM "public"."film" AS e '
                   'WHERE LENGTH("e"."title") < 20 AND "e"."rating" <> \'NC-17\'')


@pytest.mark.parametrize("expression, reason", [
    ("pg_sleep(1) IS NULL", "not allowed"),
    ("film_id IN (SELECT 1)", "subqueries are not allowed"),
    ("other.title = 'x'", "must not be qualified"),
    ("nope = 1", "does not exist"),
    ("1; DROP TABLE film", "exactly one expression"),
    ("rating::text = 'PG'", "can be compared with literals but not cast"),
])
def test_rejected_filters_say_why(expression, reason):
    with pytest.raises(FilterError, match=reason):
        compile_filter(expression, DOC, FakeCatalog(TABLES))
