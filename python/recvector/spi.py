"""The database handle RecVector's engine runs SQL through.

Inside PostgreSQL it is PL/Python's ``plpy`` module; outside (``recvector install --plain``, the
CLI) it is :class:`recvector.outside.PsycopgPlpy`, which offers the same small API over psycopg.
Nothing else in the engine knows which one it has.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol, Sequence


class Database(Protocol):
    """The subset of ``plpy`` RecVector uses."""

    SPIError: type[BaseException]

    def prepare(self, query: str, types: Sequence[str] | None = None) -> Any: ...
    def execute(self, query: Any, args: Sequence[Any] | None = None) -> Any: ...
    def cursor(self, query: Any, args: Sequence[Any] | None = None) -> Any: ...
    def commit(self) -> None: ...
    def notice(self, msg: str, **kw: Any) -> None: ...
    def warning(self, msg: str, **kw: Any) -> None: ...
    def error(self, msg: str, **kw: Any) -> None: ...


Query = Callable[[str, Sequence[Any]], list[tuple]]


def query_function(db: Any) -> Query:
    """``run(sql, args) -> rows as tuples``, each statement prepared once (text parameters)."""
    plans: dict[str, Any] = {}

    def run(sql: str, args: Sequence[Any]) -> list[tuple]:
        if sql not in plans:
            plans[sql] = db.prepare(sql, ["text"] * len(args))
        rows = db.execute(plans[sql], list(args))
        cols = rows.colnames() if rows.nrows() else []
        return [tuple(r[c] for c in cols) for r in rows]

    return run


def count(db: Any, sql: str) -> int:
    """The value of a query's column ``n``."""
    return int(db.execute(sql)[0]["n"])


def vector_literal(vec: Iterable[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vec) + "]"


def vector_type(db: Any) -> str:
    """pgvector's type, schema-qualified (RecVector's functions do not have pgvector's schema on
    their search_path)."""
    return db.execute(
        "SELECT pg_catalog.format('%I.vector', n.nspname) AS t FROM pg_catalog.pg_extension e "
        "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'")[0]["t"]


SAFE_SEARCH_PATH = "pg_catalog, recvector, pg_temp"


__all__ = ["Database", "Query", "query_function", "count", "vector_literal", "vector_type", "SAFE_SEARCH_PATH"]
