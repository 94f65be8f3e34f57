"""A catalog without a database: tables and columns as the mapping compiler's catalog query
returns them (name, type, category, relkind, relation oid, type oid, trusted, type ident)."""
from __future__ import annotations

from typing import Any, Sequence

BUILTIN = {  # type name -> (category, oid, ident)
    "integer": ("N", 23, "pg_catalog.int4"), "bigint": ("N", 20, "pg_catalog.int8"),
    "text": ("S", 25, "pg_catalog.text"), "numeric": ("N", 1700, "pg_catalog.numeric"),
    "timestamp with time zone": ("D", 1184, "pg_catalog.timestamptz"), "text[]": ("A", 1009, "pg_catalog._text"),
    "smallint": ("N", 21, "pg_catalog.int2"),
}


class FakeCatalog:
    """``tables``: {"public.film": {"film_id": "integer", "title": "text", ...}}; a type given as
    ("public.mood", "E", False) is a user type (category, trusted)."""

    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self.tables = tables
        self.oids = {name: 16400 + i for i, name in enumerate(tables)}

    def __call__(self, sql: str, args: Sequence[Any]) -> list[tuple]:
        assert "pg_catalog.pg_attribute" in sql, sql
        schema, name = args
        cols = self.tables.get(f"{schema}.{name}")
        if cols is None:
            return []
        rel = self.oids[f"{schema}.{name}"]
        rows = []
        for i, (col, typ) in enumerate(cols.items()):
            if isinstance(typ, tuple):
                tname, cat, trusted = typ
                rows.append((col, tname, cat, "r", rel, 20000 + i, trusted, tname))
            else:
                cat, oid, ident = BUILTIN[typ]
                rows.append((col, typ, cat, "r", rel, oid, True, ident))
        return rows
