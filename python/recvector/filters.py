"""Business rules: a boolean SQL expression over the entity table's columns, e.g.
``rental_rate < 3 AND rating <> 'NC-17'``, checked with sqlglot and compiled to
``SELECT CAST(e.id AS TEXT) FROM <entity table> AS e WHERE <expression>``.

Allowed: columns of the entity table (unqualified), literals, comparisons, AND/OR/NOT, IN with
literal lists, BETWEEN, LIKE/ILIKE, IS [NOT] NULL, arithmetic, casts and the functions in
:data:`ALLOWED_FUNCTIONS`. Anything else — subqueries, other tables, other functions, parameters,
several statements — is rejected with the reason.
"""
from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp

from .errors import Problem, RecVectorError
from .mapping import Catalog, Query, TableRef, check_select, qi
from .spi import query_function
from .storing import loaded

ALLOWED_FUNCTIONS = {"LOWER", "UPPER", "LENGTH", "COALESCE", "ABS", "ROUND", "TRIM"}
_PREDICATES = (exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In,
               exp.Between, exp.Like, exp.ILike, exp.Is, exp.Boolean, exp.Paren)
_ALLOWED = _PREDICATES + (exp.Column, exp.Identifier, exp.Literal, exp.Null, exp.Neg, exp.Add, exp.Sub,
                          exp.Mul, exp.Div, exp.Mod, exp.Cast, exp.DataType, exp.Tuple, exp.Lower, exp.Upper,
                          exp.Length, exp.Coalesce, exp.Abs, exp.Round, exp.Trim, exp.DPipe)


class FilterError(RecVectorError):
    sqlstate = "22023"

    def __init__(self, expression: str, reason: str) -> None:
        super().__init__(f"filter rejected: {reason}", detail=f"expression: {expression}",
                         hint="Use a boolean expression over the entity table's columns and literals, e.g. "
                              "rental_rate < 3 AND rating <> 'NC-17'.")


def compile_filter(expression: str, doc: dict[str, Any], query: Query) -> str:
    if not isinstance(expression, str) or not expression.strip():
        raise FilterError(str(expression), "the expression is empty")
    if "\x00" in expression:
        raise FilterError(expression, "the expression contains a NUL byte")
    try:
        trees = [t for t in sqlglot.parse(expression, read="postgres") if t is not None]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as e:
        raise FilterError(expression, f"not valid SQL: {str(e).splitlines()[0]}") from None
    if len(trees) != 1:
        raise FilterError(expression, "exactly one expression is allowed")
    tree = trees[0]
    if not isinstance(tree, _PREDICATES):
        raise FilterError(expression, f"not a boolean expression ({type(tree).__name__})")
    ent = TableRef.parse(doc["entities"]["table"])
    cols = Catalog(query).columns(ent) or {}
    for node in tree.walk():
        if isinstance(node, (exp.Func,)) and not isinstance(node, _ALLOWED):
            name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            raise FilterError(expression, f"function {name}() is not allowed (allowed: {', '.join(sorted(ALLOWED_FUNCTIONS))})")
        if not isinstance(node, _ALLOWED):
            raise FilterError(expression, f"{type(node).__name__} is not allowed in a filter")
        if isinstance(node, exp.In) and node.args.get("query") is not None:
            raise FilterError(expression, "subqueries are not allowed in a filter")
        if isinstance(node, exp.Column):
            if node.table:
                raise FilterError(expression, f"column {node.sql()} must not be qualified")
            if node.name not in cols:
                raise FilterError(expression, f"column {node.name!r} does not exist in table {ent}")
        if isinstance(node, exp.Cast):
            # A cast of a column whose type an ordinary role owns could run that role's cast
            # function inside rec_recommend (docs/security.md, rule 4).
            for c in node.find_all(exp.Column):
                col = cols.get(c.name)
                if col is not None and not col.trusted:
                    raise FilterError(expression, f"column {c.name!r} has type {col.type}, owned by a role that is not "
                                                  "a superuser: it can be compared with literals but not cast")
    qualified = tree.transform(
        lambda n: exp.column(n.name, table="e", quoted=True) if isinstance(n, exp.Column) else n)
    where = qualified.sql(dialect="postgres")
    return (f"SELECT CAST(e.{qi(doc['entities']['id'])} AS TEXT) FROM {ent.sql} AS e WHERE {where}")


def problems(expression: str, doc: dict[str, Any], query: Query) -> list[Problem]:
    try:
        compile_filter(expression, doc, query)
    except FilterError as e:
        return [Problem("$", e.message)]
    return []


def store_filter(db: Any, name: str, expression: str | None) -> dict[str, Any]:
    """Check and store a named filter (NULL expression: remove it)."""
    if not name or not name.strip():
        raise RecVectorError("a filter needs a name")
    if expression is None:
        db.execute(db.prepare("DELETE FROM recvector.filters WHERE name = $1", ["text"]), [name])
        return {"name": name, "removed": True}
    doc, _ = loaded(db)
    compiled = compile_filter(expression, doc, query_function(db))
    ent = doc["entities"]["table"]
    check_select(compiled, {ent if "." in ent else f"public.{ent}"})
    db.execute(db.prepare(
        "INSERT INTO recvector.filters (name, expression, compiled) VALUES ($1, $2, $3) "
        "ON CONFLICT (name) DO UPDATE SET expression = excluded.expression, compiled = excluded.compiled, "
        "created_at = now()", ["text", "text", "text"]), [name, expression, compiled])
    allowed = db.execute(f"SELECT count(*) AS n FROM ({compiled}) AS f")[0]["n"]
    return {"name": name, "expression": expression, "entities_allowed": int(allowed)}
