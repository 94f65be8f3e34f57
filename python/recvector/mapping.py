"""The mapping of an application's existing tables: validation and compilation to SQL.

A mapping document (``rec_schema.json``) names the user table, the entity table and its features,
and the interaction tables. :func:`load_mapping` checks it in three passes and reports every problem
with its JSON path:

1. the JSON Schema shipped as ``mapping.schema.json`` (shape, kinds, ranges);
2. the live catalog (tables and columns exist, types fit their role, join paths are type-compatible);
3. the generated SQL, parsed back with sqlglot (one ``SELECT``, only the mapped tables).

Every identifier in generated SQL is quoted by sqlglot; every value from the document (weights,
type names, rating centres) travels as the jsonb parameter ``$1``, never inside the SQL text.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable, Iterable, Mapping, Sequence

import jsonschema
import sqlglot
from sqlglot import exp

from .errors import MappingError, Problem
from .providers.registry import defaults as provider_defaults

MAPPING_VERSION = 1

DEFAULTS: dict[str, dict[str, Any]] = {
    "aggregation": {
        "strategy": "full",
        "capture": "immediate",
        "batch_threshold": 5,
        "time_fallback": "1 hour",
        "history_limit": 500,
        "half_life": "30 days",
        "full_refresh_every": 50,
        "interests": 3,
        "cf_candidates": 200,
    },
    # Chosen by evaluation on real interactions (docs/evaluation.md), not by taste.
    "scoring": {"alpha": 0.5, "beta": 0.1, "gamma": 1.0, "candidate_pool": 100, "cf_pool": 200, "popular_pool": 50,
                "ef_search": 100, "lambda": 0.9, "exploration": 0.0, "mmr_window": 0},
    "embedding": {"provider": "local"},
}


# pg_type.typcategory values that each role accepts.
_DATETIME = {"D"}
_NUMERIC = {"N"}
_ID_CATEGORIES = {"N", "S", "U", "B"}  # numbers, strings, uuid and other user types, booleans
_TEXTUAL = {"S", "N", "D", "B", "U", "E", "A"}

_INTERVAL_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]+)\s*$")
_UNIT_SECONDS = {
    "s": 1, "second": 1, "seconds": 1,
    "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "week": 604800, "weeks": 604800,
}


def interval_seconds(text: str) -> float:
    """``'30 days'`` -> 2592000.0 (the JSON Schema has already checked the form)."""
    m = _INTERVAL_RE.match(text.lower())
    if not m or m.group(2) not in _UNIT_SECONDS:
        raise ValueError(f"not an interval: {text!r}")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


# --------------------------------------------------------------------------------------------
# Catalog access (PL/Python's plpy or a psycopg connection both fit behind `Query`)
# --------------------------------------------------------------------------------------------

Query = Callable[[str, Sequence[Any]], list[tuple]]

# Where an interaction query's source relation goes (new_rows in the trigger, the table in history):
# a NUL, which no identifier can hold, so that no quoted column name can be taken for it (a name
# with braces broke str.format here).
_REL = "\x00rel\x00"

# Columns of a table, with their type and whether that type is *trusted*: built into PostgreSQL or
# owned by a superuser (an extension's), and so is every type it is made of (a domain's base type,
# an array's element type). Only trusted types are cast, compared or coerced by RecVector's code,
# which runs as another role than the caller (SECURITY DEFINER): a type owned by an ordinary role
# could carry a cast or a domain check of that role's making.
_COLUMNS_SQL = """
SELECT a.attname::text,
       -- (the type as SQL can name it under any search_path: types outside pg_catalog qualified)
       CASE WHEN tn.nspname = 'pg_catalog' THEN pg_catalog.format_type(a.atttypid, a.atttypmod)
            ELSE pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.typname) END,
       t.typcategory::text,
       c.relkind::text, c.oid::bigint, a.atttypid::bigint,
       (WITH RECURSIVE chain(oid) AS (
            SELECT a.atttypid
            UNION
            SELECT CASE WHEN ct.typtype = 'd' THEN ct.typbasetype ELSE ct.typelem END
            FROM chain JOIN pg_catalog.pg_type AS ct ON ct.oid = chain.oid
            WHERE ct.typtype = 'd' OR (ct.typcategory = 'A' AND ct.typelem <> 0))
        SELECT pg_catalog.bool_and(tt.oid < 16384 OR r.rolsuper)
        FROM chain JOIN pg_catalog.pg_type AS tt ON tt.oid = chain.oid
        JOIN pg_catalog.pg_roles AS r ON r.oid = tt.typowner),
       pg_catalog.format('%I.%I', tn.nspname, t.typname)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY a.attnum
"""


@dataclass(frozen=True)
class Column:
    name: str
    type: str       # format_type(), e.g. 'integer', 'character varying(50)'
    category: str   # pg_type.typcategory
    rel_oid: int = 0
    type_oid: int = 0
    trusted: bool = True
    type_ident: str = ""  # schema-qualified type name, found again by name after pg_restore


@dataclass(frozen=True)
class TableRef:
    schema: str
    name: str

    @classmethod
    def parse(cls, text: str) -> "TableRef":
        if "." in text:
            schema, _, name = text.partition(".")
            return cls(schema, name)
        return cls("public", text)

    @property
    def sql(self) -> str:
        return f"{qi(self.schema)}.{qi(self.name)}"

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


class Catalog:
    """Columns of tables in the live database, cached for one validation."""

    def __init__(self, query: Query) -> None:
        self._query = query
        self._cache: dict[TableRef, dict[str, Column] | None] = {}

    def columns(self, table: TableRef) -> dict[str, Column] | None:
        if table not in self._cache:
            rows = self._query(_COLUMNS_SQL, [table.schema, table.name])
            if not rows:
                self._cache[table] = None
            else:
                self._cache[table] = {r[0]: Column(r[0], r[1], r[2], int(r[4]), int(r[5]), _truthy(r[6]), r[7])
                                      for r in rows if r[0] is not None}
        return self._cache[table]


def _truthy(value: Any) -> bool:
    """A boolean from the catalog query (PL/Python gives bool, the text-typed plan gives 't'/'f')."""
    return value is True or value in ("t", "true", "True", 1)


# --------------------------------------------------------------------------------------------
# Identifier quoting and SQL checking with sqlglot
# --------------------------------------------------------------------------------------------

def qi(name: str) -> str:
    """Quote an identifier for PostgreSQL (sqlglot doubles embedded quotes)."""
    if "\x00" in name:
        raise ValueError("identifier contains a NUL byte")
    return exp.to_identifier(name, quoted=True).sql(dialect="postgres")


_TABLE_FUNCTIONS = {"JSONB_POPULATE_RECORDSET"}
_FORBIDDEN_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Command,
                    exp.Alter, exp.Merge, exp.TruncateTable)


def check_select(sql: str, allowed_tables: Iterable[str]) -> None:
    """Parse generated SQL with sqlglot: exactly one SELECT (or UNION of SELECTs) reading only
    ``allowed_tables`` (``schema.name`` or a bare name). Raises ``AssertionError`` otherwise: a
    failure here is a bug in the compiler, never a user error."""
    trees = [t for t in sqlglot.parse(sql, read="postgres") if t is not None]
    assert len(trees) == 1, f"generated SQL is not one statement: {sql}"
    tree = trees[0]
    assert isinstance(tree, (exp.Select, exp.Union, exp.Subquery)), f"not a SELECT: {sql}"
    assert not any(True for _ in tree.find_all(*_FORBIDDEN_NODES)), f"not read-only: {sql}"
    allowed = set(allowed_tables)
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            # A set-returning function in FROM: only the one that re-reads failed trigger rows.
            fn = table.this
            name = fn.name if isinstance(fn, exp.Anonymous) else (
                fn.sql_name() if isinstance(fn, exp.Func) else type(fn).__name__)
            assert name.upper() in _TABLE_FUNCTIONS, f"generated SQL reads from {name}()"
            continue
        ref = f"{table.db}.{table.name}" if table.db else table.name
        assert ref in allowed, f"generated SQL reads {ref}, which the mapping does not name"


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

def _schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("mapping.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def schema_problems(doc: Any) -> list[Problem]:
    """Problems found by the shipped JSON Schema, each at its JSON path."""
    validator = jsonschema.Draft202012Validator(_schema())
    problems: list[Problem] = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        if err.validator == "oneOf" and err.context:
            # Report the failure inside the branch the author evidently meant (the one whose keys
            # are present), rather than "is not valid under any of the given schemas".
            best = _intended_branch_error(err.context)
            path = _json_path(list(err.absolute_path) + list(best.relative_path))
            problems.append(Problem(path, best.message))
        else:
            problems.append(Problem(_json_path(err.absolute_path), err.message))
    return problems


def _intended_branch_error(errors: list[Any]) -> Any:
    branches: dict[int, list[Any]] = {}
    for e in errors:
        branches.setdefault(e.schema_path[0], []).append(e)

    def shape_errors(errs: list[Any]) -> int:
        return sum(1 for e in errs if not e.relative_path and e.validator in ("required", "additionalProperties"))

    chosen = min(branches.values(), key=lambda errs: (shape_errors(errs), len(errs)))
    return jsonschema.exceptions.best_match(chosen)


class _Checker:
    """Checks a schema-valid document against the catalog, collecting every problem and every
    column of the application's tables the compiled SQL will read."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.problems: list[Problem] = []
        self.used: dict[tuple[TableRef, str], Column] = {}

    def table(self, text: str, path: str) -> tuple[TableRef, dict[str, Column] | None]:
        ref = TableRef.parse(text)
        cols = self.catalog.columns(ref)
        if cols is None:
            self.problems.append(Problem(path, f"table {ref} does not exist"))
        return ref, cols

    def column(self, table: TableRef, cols: dict[str, Column] | None, name: str, path: str,
               categories: set[str] | None = None, role: str = "", *, cast: bool = True) -> Column | None:
        """A column the SQL reads. ``cast``: it is cast, compared or coerced (ids, keys, times,
        weights), so its type must be trusted; feature values are only printed with their type's
        output function, which any type may have."""
        if cols is None:
            return None
        col = cols.get(name)
        if col is None:
            self.problems.append(Problem(path, f"column {name!r} does not exist in table {table}"))
            return None
        if categories is not None and col.category not in categories:
            self.problems.append(Problem(path, f"column {table}.{name} has type {col.type}, "
                                               f"which cannot be used as {role}"))
        elif cast and not col.trusted:
            self.problems.append(Problem(path, f"column {table}.{name} has type {col.type}, which is owned by a role "
                                               "that is not a superuser: RecVector compares and casts only types built "
                                               "into PostgreSQL or installed by a superuser (a type's owner can attach "
                                               "casts and checks that would run inside RecVector)"))
        self.used[(table, name)] = col
        return col

    def compatible(self, a: Column | None, b: Column | None, path: str, what: str) -> None:
        if a is None or b is None:
            return
        if a.category != b.category:
            self.problems.append(Problem(path, f"{what}: types {a.type} and {b.type} do not match"))

    def columns_json(self, tables: Iterable[TableRef] | None = None) -> list[dict[str, Any]]:
        """The used columns (of ``tables`` when given) with their relation and type, as compiled
        into the mapping: RecVector checks them again before it reads (recvector._check_columns)."""
        wanted = None if tables is None else set(tables)
        return [{"rel": ref.sql, "rel_oid": col.rel_oid, "column": name, "type_oid": col.type_oid, "type": col.type,
                 "type_ident": col.type_ident}
                for (ref, name), col in sorted(self.used.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))
                if wanted is None or ref in wanted]


@dataclass
class Compiled:
    """SQL compiled from a mapping, with the jsonb parameter ``$1`` that it reads values from."""

    params: list[dict[str, Any]]
    entities: str
    entities_by_id: str
    history: str
    seen: str
    all_interactions: str
    sources: dict[str, dict[str, Any]]
    user_id_type: str
    entity_id_type: str
    columns: list[dict[str, Any]]
    entity_columns: list[dict[str, Any]]
    tables: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "entities": self.entities,
            "entities_by_id": self.entities_by_id,
            "history": self.history,
            "seen": self.seen,
            "all_interactions": self.all_interactions,
            "sources": self.sources,
            "user_id_type": self.user_id_type,
            "entity_id_type": self.entity_id_type,
            "columns": self.columns,
            "entity_columns": self.entity_columns,
            "tables": self.tables,
        }


def with_defaults(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document with every optional section filled from :data:`DEFAULTS`."""
    out = json.loads(json.dumps(doc))
    for section, values in DEFAULTS.items():
        merged = dict(values)
        merged.update(out.get(section) or {})
        out[section] = merged
    emb = out["embedding"]
    for key, value in provider_defaults(emb["provider"]).items():
        emb.setdefault(key, value)
    for i, f in enumerate(out["entities"]["features"]):
        f.setdefault("weight", 1.0)
        f.setdefault("label", f["name"].replace("_", " ").capitalize())
        out["entities"]["features"][i] = f
    for src in out["interactions"]:
        src.setdefault("weight", {"fixed": 1.0})
        src.setdefault("path", [])
    return out


def load_mapping(doc: Any, query: Query) -> tuple[dict[str, Any], Compiled]:
    """Validate ``doc`` completely and compile it. Raises :class:`MappingError` listing every
    problem (JSON path + message); returns the document with defaults and the compiled SQL."""
    if isinstance(doc, (str, bytes)):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError as e:
            raise MappingError([Problem("$", f"not valid JSON: {e}")]) from None
    problems = schema_problems(doc)
    if problems:
        raise MappingError(problems)
    full = with_defaults(doc)
    compiled, problems = _compile(full, Catalog(query))
    if problems:
        raise MappingError(problems)
    assert compiled is not None
    return full, compiled


def mapping_problems(doc: Any, query: Query) -> list[Problem]:
    """Every problem :func:`load_mapping` would report, as a list (empty when the mapping is valid)."""
    try:
        load_mapping(doc, query)
    except MappingError as e:
        return e.problems
    return []


# --------------------------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------------------------

def _value_expr(alias: str, columns: list[str], cols: Mapping[str, Column] | None) -> str:
    """A feature value as text. Trusted types are cast (as before 0.3.0, so texts and fingerprints
    stay the same); any other type is printed with its output function (pg_catalog.format), which
    no cast of a role's making can replace."""
    if len(columns) == 1:
        c = columns[0]
        col = cols.get(c) if cols is not None else None
        if col is not None and col.category == "A":
            return f"pg_catalog.array_to_string({alias}.{qi(c)}, ', ')"
        if col is not None and not col.trusted:
            return f"pg_catalog.format('%s', {alias}.{qi(c)})"
        return f"CAST({alias}.{qi(c)} AS TEXT)"
    return "pg_catalog.concat_ws(' ', " + ", ".join(f"{alias}.{qi(c)}" for c in columns) + ")"


def _related_values(value: str, from_where: str, limit: int) -> str:
    """The values of a feature kept in a related table, as one text: whitespace collapsed, case
    variants counted as one (the first spelling in sort order is shown), the ``limit`` most frequent
    kept, most frequent first, then in sort order."""
    return ("(SELECT pg_catalog.string_agg(x.v, ', ' ORDER BY x.n DESC, x.v) FROM "
            "(SELECT pg_catalog.min(y.v) AS v, pg_catalog.count(*) AS n FROM "
            f"(SELECT pg_catalog.regexp_replace(pg_catalog.btrim({value}), '\\s+', ' ', 'g') AS v {from_where}) AS y "
            "WHERE y.v <> '' GROUP BY pg_catalog.lower(y.v) "
            f"ORDER BY pg_catalog.count(*) DESC, pg_catalog.min(y.v) LIMIT {int(limit)}) AS x)")


# Undated interactions all get this time (no decay between them); with order_column, a row's
# order_column value in microseconds is added, so that "newest" follows that key.
UNDATED_EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"
WEIGHT_CAP = 100.0


def _compile(doc: dict[str, Any], catalog: Catalog) -> tuple[Compiled | None, list[Problem]]:
    ck = _Checker(catalog)
    tables: set[str] = set()

    # Users
    user_ref, user_cols = ck.table(doc["users"]["table"], "$.users.table")
    user_id = ck.column(user_ref, user_cols, doc["users"]["id"], "$.users.id", _ID_CATEGORIES, "an id")

    # Entities and features
    ent = doc["entities"]
    ent_ref, ent_cols = ck.table(ent["table"], "$.entities.table")
    ent_id = ck.column(ent_ref, ent_cols, ent["id"], "$.entities.id", _ID_CATEGORIES, "an id")
    tables.add(str(ent_ref))
    entity_tables: set[TableRef] = {ent_ref}
    feature_sql: list[str] = []
    names_seen: set[str] = set()
    for i, f in enumerate(ent["features"]):
        p = f"$.entities.features[{i}]"
        if f["name"] in names_seen:
            ck.problems.append(Problem(f"{p}.name", f"feature name {f['name']!r} is used twice"))
        names_seen.add(f["name"])
        columns = f["column"] if isinstance(f["column"], list) else [f["column"]]
        wanted = _NUMERIC if f["kind"] == "number" else _TEXTUAL
        role = "a number feature" if f["kind"] == "number" else f"a {f['kind']} feature"
        src = f.get("from")
        if src is None:
            for j, c in enumerate(columns):
                cp = f"{p}.column" + (f"[{j}]" if isinstance(f["column"], list) else "")
                ck.column(ent_ref, ent_cols, c, cp, wanted, role, cast=False)
            feature_sql.append(_value_expr("e", columns, ent_cols))
            continue
        t_ref, t_cols = ck.table(src["table"], f"{p}.from.table")
        tables.add(str(t_ref))
        entity_tables.add(t_ref)
        for j, c in enumerate(columns):
            cp = f"{p}.column" + (f"[{j}]" if isinstance(f["column"], list) else "")
            ck.column(t_ref, t_cols, c, cp, wanted, role, cast=False)
        value = _value_expr("t", columns, t_cols)
        limit = int(f.get("max_values", 50))
        if "entity_key" in src:
            # One-to-many: rows of the related table that point at the entity (tags, reviews).
            ek = ck.column(t_ref, t_cols, src["entity_key"], f"{p}.from.entity_key", _ID_CATEGORIES, "an entity reference")
            ck.compatible(ek, ent_id, f"{p}.from.entity_key", f"{t_ref}.{src['entity_key']} against the entity id")
            feature_sql.append(_related_values(
                value, f"FROM {t_ref.sql} AS t WHERE t.{qi(src['entity_key'])} = e.{qi(ent['id'])}", limit))
            continue
        key = ck.column(t_ref, t_cols, src["key"], f"{p}.from.key", _ID_CATEGORIES, "a key")
        if "link" in src:
            link = src["link"]
            l_ref, l_cols = ck.table(link["table"], f"{p}.from.link.table")
            tables.add(str(l_ref))
            entity_tables.add(l_ref)
            le = ck.column(l_ref, l_cols, link["entity_column"], f"{p}.from.link.entity_column", _ID_CATEGORIES, "a key")
            lk = ck.column(l_ref, l_cols, link["key_column"], f"{p}.from.link.key_column", _ID_CATEGORIES, "a key")
            ck.compatible(le, ent_id, f"{p}.from.link.entity_column",
                          f"{l_ref}.{link['entity_column']} against the entity id")
            ck.compatible(lk, key, f"{p}.from.link.key_column",
                          f"{l_ref}.{link['key_column']} against {t_ref}.{src['key']}")
            feature_sql.append(_related_values(
                value, f"FROM {l_ref.sql} AS l JOIN {t_ref.sql} AS t ON t.{qi(src['key'])} = l.{qi(link['key_column'])} "
                       f"WHERE l.{qi(link['entity_column'])} = e.{qi(ent['id'])}", limit))
        else:
            fk = ck.column(ent_ref, ent_cols, src["entity_column"], f"{p}.from.entity_column", _ID_CATEGORIES, "a key")
            ck.compatible(fk, key, f"{p}.from.entity_column",
                          f"{ent_ref}.{src['entity_column']} against {t_ref}.{src['key']}")
            feature_sql.append(_related_values(
                value, f"FROM {t_ref.sql} AS t WHERE t.{qi(src['key'])} = e.{qi(src['entity_column'])}", limit))

    # Interaction sources
    params: list[dict[str, Any]] = []
    branches: list[tuple[str, str, str, str, str]] = []  # (select-from-rel template, where, user filter, order key, time)
    sources: dict[str, dict[str, Any]] = {}
    src_names: set[str] = set()
    for i, src in enumerate(doc["interactions"]):
        p = f"$.interactions[{i}]"
        if src["name"] in src_names:
            ck.problems.append(Problem(f"{p}.name", f"interaction source name {src['name']!r} is used twice"))
        src_names.add(src["name"])
        s_ref, s_cols = ck.table(src["table"], f"{p}.table")
        tables.add(str(s_ref))
        source_tables: set[TableRef] = {s_ref}
        uc = ck.column(s_ref, s_cols, src["user_column"], f"{p}.user_column", _ID_CATEGORIES, "a user id")
        ck.compatible(uc, user_id, f"{p}.user_column",
                      f"{s_ref}.{src['user_column']} against {user_ref}.{doc['users']['id']}")
        if src.get("timestamp_column") and src.get("order_column"):
            ck.problems.append(Problem(f"{p}.order_column", "give timestamp_column or order_column, not both "
                                                           "(order_column orders interactions that have no time)"))
        if src.get("timestamp_column"):
            ck.column(s_ref, s_cols, src["timestamp_column"], f"{p}.timestamp_column", _DATETIME, "a timestamp")
            ts = f"CAST(s.{qi(src['timestamp_column'])} AS TIMESTAMPTZ)"
            ts_ok = f"s.{qi(src['timestamp_column'])} IS NOT NULL AND pg_catalog.isfinite(s.{qi(src['timestamp_column'])})"
            order_key = f"s.{qi(src['timestamp_column'])}"
        elif src.get("order_column"):
            ck.column(s_ref, s_cols, src["order_column"], f"{p}.order_column", {"N"}, "an order key")
            oc = f"s.{qi(src['order_column'])}"
            ts = f"({UNDATED_EPOCH} + pg_catalog.make_interval(secs => CAST({oc} AS DOUBLE PRECISION) / 1000000))"
            ts_ok = f"{oc} IS NOT NULL"
            order_key = oc
        else:
            ts = UNDATED_EPOCH
            ts_ok = "TRUE"
            order_key = ""  # set below: the entity id as text, the history's own tie-break
        current = ck.column(s_ref, s_cols, src["entity_column"], f"{p}.entity_column", _ID_CATEGORIES,
                            "an entity reference")
        joins: list[str] = []
        prev_alias, prev_col = "s", src["entity_column"]
        for h, hop in enumerate(src["path"]):
            hp = f"{p}.path[{h}]"
            h_ref, h_cols = ck.table(hop["table"], f"{hp}.table")
            tables.add(str(h_ref))
            source_tables.add(h_ref)
            match = ck.column(h_ref, h_cols, hop["match"], f"{hp}.match", _ID_CATEGORIES, "a key")
            ck.compatible(current, match, f"{hp}.match", f"join path step {h + 1}")
            current = ck.column(h_ref, h_cols, hop["select"], f"{hp}.select", _ID_CATEGORIES,
                                "an entity reference")
            alias = f"h{h + 1}"
            joins.append(f"JOIN {h_ref.sql} AS {alias} ON {alias}.{qi(hop['match'])} = "
                         f"{prev_alias}.{qi(prev_col)}")
            prev_alias, prev_col = alias, hop["select"]
        ck.compatible(current, ent_id, f"{p}.entity_column" if not src["path"] else f"{p}.path",
                      "the entity reference against the entity id")
        order_desc = True
        if not order_key:
            order_key, order_desc = f"CAST({prev_alias}.{qi(prev_col)} AS TEXT)", False

        w = src["weight"]
        prm: dict[str, Any] = {"kind": src["name"]}
        kind_sql = f"CAST($1 -> {i} ->> 'kind' AS TEXT)"
        if "fixed" in w:
            prm["fixed"] = float(w["fixed"])
            raw_weight = f"CAST($1 -> {i} ->> 'fixed' AS DOUBLE PRECISION)"
        elif "by_type" in w:
            bt = w["by_type"]
            tc = ck.column(s_ref, s_cols, bt["column"], f"{p}.weight.by_type.column", cast=False)
            prm["values"] = {k: float(v) for k, v in bt["values"].items()}
            prm["default"] = float(bt["default"]) if "default" in bt else None
            tcol = _value_expr("s", [bt["column"]], {bt["column"]: tc} if tc else None)
            kind_sql = tcol
            raw_weight = (f"COALESCE(CAST($1 -> {i} -> 'values' ->> {tcol} AS DOUBLE PRECISION), "
                          f"CAST($1 -> {i} ->> 'default' AS DOUBLE PRECISION))")
        else:
            fv = w["from_value"]
            ck.column(s_ref, s_cols, fv["column"], f"{p}.weight.from_value.column", _NUMERIC, "a rating value")
            prm["center"] = float(fv.get("center", 0.0))
            prm["scale"] = float(fv.get("scale", 1.0))
            value = f"CAST(s.{qi(fv['column'])} AS DOUBLE PRECISION)"
            if fv.get("transform") == "log":
                # Implicit counts (plays, views): ln(1 + count), saturating.
                linear = (f"(pg_catalog.ln(1 + GREATEST({value}, 0)) / "
                          f"CAST($1 -> {i} ->> 'scale' AS DOUBLE PRECISION))")
            else:
                linear = (f"(({value} - CAST($1 -> {i} ->> 'center' AS DOUBLE PRECISION)) / "
                          f"CAST($1 -> {i} ->> 'scale' AS DOUBLE PRECISION))")
            if "positive_from" in fv and fv.get("transform") != "log" and fv["positive_from"] <= prm["center"]:
                ck.problems.append(Problem(f"{p}.weight.from_value.positive_from",
                                           f"positive_from ({fv['positive_from']}) must be above center ({prm['center']}): "
                                           "values between them would be liked without counting as positive"))
            if "positive_from" in fv:
                # Below the threshold a value never counts as liked: at most 0 (neutral or a dislike).
                prm["positive_from"] = float(fv["positive_from"])
                raw_weight = (f"(CASE WHEN {value} >= CAST($1 -> {i} ->> 'positive_from' AS DOUBLE PRECISION) "
                              f"THEN {linear} ELSE LEAST({linear}, 0) END)")
            else:
                raw_weight = linear
        # Weights are kept within [-100, 100] whatever the data holds (a poisoned value cannot
        # overflow a profile), NaN is no weight.
        weight_sql = f"LEAST(GREATEST({raw_weight}, -{WEIGHT_CAP}), {WEIGHT_CAP})"
        params.append(prm)

        select = (f"SELECT CAST(s.{qi(src['user_column'])} AS TEXT) AS user_id, "
                  f"CAST({prev_alias}.{qi(prev_col)} AS TEXT) AS entity_id, "
                  f"{kind_sql} AS kind, {weight_sql} AS weight, {ts} AS occurred_at "
                  f"FROM {_REL} AS s {' '.join(joins)}".rstrip())
        where = (f"s.{qi(src['user_column'])} IS NOT NULL AND {prev_alias}.{qi(prev_col)} IS NOT NULL "
                 f"AND {ts_ok} AND {raw_weight} IS NOT NULL AND {raw_weight} <> CAST('NaN' AS DOUBLE PRECISION)")
        user_type = uc.type if uc else "text"
        # $4 is the user id when it is valid for the users.id type, else NULL (see recvector._id_or_null).
        user_filter = f"s.{qi(src['user_column'])} = CAST($4 AS {user_type})"
        branches.append((select, where, user_filter, order_key + (" DESC" if order_desc else ""), ts))
        own = sorted({name for (ref, name) in ck.used if ref == s_ref})
        failed_row = ("pg_catalog.jsonb_build_object(" + ", ".join(f"'{c.replace(chr(39), chr(39) * 2)}', r.{qi(c)}"
                                                                  for c in own) + ")")
        sources[src["name"]] = {
            "table": str(s_ref),
            "table_oid": s_cols[src["user_column"]].rel_oid if s_cols and src["user_column"] in s_cols else 0,
            "index": str(i),
            "trigger": select.replace(_REL, "new_rows") + f" WHERE {where}",
            # The mapped columns of the inserted rows, kept as jsonb when recording fails
            # (recvector.retry_failed re-reads them with the same query).
            "failed_row": failed_row,
            "retry": select.replace(_REL, f"pg_catalog.jsonb_populate_recordset(CAST(NULL AS {s_ref.sql}), $2)")
                     + f" WHERE {where}",
            "columns": ck.columns_json(source_tables),
        }

    if ck.problems:
        return None, ck.problems

    ev_cols = "user_id, entity_id, kind, weight, occurred_at"
    events = "\"recvector\".\"events\""
    # $5: an optional cutoff (only interactions before it: evaluation builds profiles "as of" a time).
    cut = "($5::timestamptz IS NULL OR {t} < $5::timestamptz)"
    hist_parts = []
    for k, (sel, wh, uf, order_key, ts) in enumerate(branches):
        order = f" ORDER BY {order_key}"
        hist_parts.append(f"({sel.replace(_REL, _src_table(doc, k))} WHERE {wh} AND {uf} AND "
                          f"{cut.format(t=ts)}{order} LIMIT $3)")
    hist_parts.append(f"(SELECT {ev_cols} FROM {events} WHERE user_id = $2 AND {cut.format(t='occurred_at')} "
                      "ORDER BY occurred_at DESC LIMIT $3)")
    history = (f"SELECT {ev_cols} FROM ({' UNION ALL '.join(hist_parts)}) AS h "
               f"ORDER BY occurred_at DESC, entity_id DESC, kind LIMIT $3")
    seen_parts = [f"SELECT entity_id FROM ({sel.replace(_REL, _src_table(doc, k))} WHERE {wh} AND {uf}) AS b{k}"
                  for k, (sel, wh, uf, _o, _t) in enumerate(branches)]
    seen_parts.append(f"SELECT entity_id FROM {events} WHERE user_id = $2")
    seen = "SELECT DISTINCT entity_id FROM (" + " UNION ALL ".join(seen_parts) + ") AS h"
    all_parts = [f"{sel.replace(_REL, _src_table(doc, k))} WHERE {wh}" for k, (sel, wh, _uf, _o, _t) in enumerate(branches)]
    all_parts.append(f"SELECT {ev_cols} FROM {events}")
    all_interactions = " UNION ALL ".join(all_parts)

    entity_cols = ", ".join(f"{expr} AS {qi('f' + str(n))}" for n, expr in enumerate(feature_sql))
    entities = (f"SELECT CAST(e.{qi(ent['id'])} AS TEXT) AS entity_id, {entity_cols} "
                f"FROM {ent_ref.sql} AS e ORDER BY e.{qi(ent['id'])}")
    ent_type = ent_id.type if ent_id else "text"
    entities_by_id = (f"SELECT CAST(e.{qi(ent['id'])} AS TEXT) AS entity_id, {entity_cols} "
                      f"FROM {ent_ref.sql} AS e WHERE e.{qi(ent['id'])} = ANY(CAST($1 AS {ent_type}[])) "
                      f"ORDER BY e.{qi(ent['id'])}")

    allowed = tables | {"recvector.events"}
    for sql in (entities, entities_by_id, history, seen, all_interactions):
        check_select(sql, allowed)
    for s in sources.values():
        check_select(s["trigger"], allowed | {"new_rows"})
        check_select(s["retry"], allowed)

    return Compiled(
        params=params,
        entities=entities,
        entities_by_id=entities_by_id,
        history=history,
        seen=seen,
        all_interactions=all_interactions,
        sources=sources,
        user_id_type=user_id.type if user_id else "text",
        entity_id_type=ent_id.type if ent_id else "text",
        columns=ck.columns_json(),
        entity_columns=ck.columns_json(entity_tables),
        tables=sorted(tables),
    ), []


def _src_table(doc: dict[str, Any], index: int) -> str:
    return TableRef.parse(doc["interactions"][index]["table"]).sql
