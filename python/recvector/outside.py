"""Out-of-database mode: the code PL/Python runs, run by the CLI over psycopg instead.

For managed PostgreSQL (RDS, Cloud SQL, Supabase, ...) where pgvector is allowed but neither
PL/Python nor custom extensions are: `recvector install --plain` creates the same schema and the
same SQL/PL/pgSQL serving path from a plain script, and `recvector set-schema`, `bootstrap`, `sync`
and `worker` run mapping validation and embedding here, with the very same functions
(:mod:`recvector.applying`, :mod:`recvector.bootstrapping`, :mod:`recvector.storing`) that run
inside the database elsewhere. :class:`PsycopgPlpy` gives them
the small part of PL/Python's ``plpy`` API they use.
"""
from __future__ import annotations

import re
import sys
from importlib import resources
from typing import Any, Callable, Sequence

import psycopg
from psycopg import sql

from . import __version__, bootstrapping
from .applying import apply_mapping
from .errors import RecVectorError
from .storing import refresh_entities

# A quoted identifier, a string literal, or a $N parameter (only the last is rewritten).
_PARAM = re.compile(r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'|\$(\d+)')


def to_psycopg(query: str) -> str:
    """$1-style parameters -> psycopg's %(pN)s (literal % doubled); a "$1" inside a quoted identifier
    or a string literal stays as it is."""
    return _PARAM.sub(lambda m: m.group(0) if m.group(1) is None else f"%(p{m.group(1)})s", query.replace("%", "%%"))


class _Result(list):  # type: ignore[type-arg]
    def __init__(self, rows: list[dict[str, Any]], columns: list[str]) -> None:
        super().__init__(rows)
        self._columns = columns

    def nrows(self) -> int:
        return len(self)

    def colnames(self) -> list[str]:
        return self._columns


class _Plan:
    def __init__(self, query: str) -> None:
        self.query = query


class _Cursor:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows
        self._pos = 0

    def fetch(self, n: int) -> list[dict[str, Any]]:
        out = self._rows[self._pos:self._pos + n]
        self._pos += len(out)
        return out


class PsycopgPlpy:
    """The subset of ``plpy`` that RecVector's engine uses (:class:`recvector.spi.Database`), over one psycopg connection
    (not in autocommit: ``commit()`` ends a transaction, as in a PL/Python procedure)."""

    SPIError = psycopg.Error

    def __init__(self, conn: psycopg.Connection, on_notice: Callable[[str], None] | None = None) -> None:
        self.conn = conn
        self.on_notice = on_notice or (lambda m: print(m, file=sys.stderr, flush=True))

    def prepare(self, query: str, types: Sequence[str] | None = None) -> _Plan:
        return _Plan(query)

    def execute(self, query: str | _Plan, args: Sequence[Any] | None = None) -> _Result:
        q = query.query if isinstance(query, _Plan) else query
        params = {f"p{i + 1}": a for i, a in enumerate(args or [])}
        with self.conn.cursor() as cur:
            cur.execute(to_psycopg(q) if params else q, params or None)
            if cur.description is None:
                return _Result([], [])
            cols = [d.name for d in cur.description]
            return _Result([dict(zip(cols, r)) for r in cur.fetchall()], cols)

    def cursor(self, query: str | _Plan, args: Sequence[Any] | None = None) -> _Cursor:
        return _Cursor(list(self.execute(query, args)))

    def commit(self) -> None:
        self.conn.commit()

    def notice(self, msg: str, **_: Any) -> None:
        self.on_notice(msg)

    def warning(self, msg: str, **kw: Any) -> None:
        self.on_notice(f"WARNING: {msg}" + (f" ({kw['hint']})" if kw.get("hint") else ""))

    def error(self, msg: str, detail: str | None = None, hint: str | None = None, sqlstate: str | None = None) -> None:
        raise RecVectorError(msg, detail=detail, hint=hint)


def plain_script(schema: str = "public") -> str:
    text = resources.files(__package__).joinpath(f"sql/recvector--{__version__}.plain.sql").read_text(encoding="utf-8")
    return text.replace("@extschema@", sql.Identifier(schema).as_string(None))


def in_database(conn: psycopg.Connection) -> bool:
    """True when the PL/Python functions exist in the database (the extension install)."""
    row = conn.execute("SELECT to_regprocedure('recvector._py_set_schema(jsonb)') IS NOT NULL").fetchone()
    return bool(row and row[0])


def installed(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regnamespace('recvector') IS NOT NULL").fetchone()
    return bool(row and row[0])


def install_plain(conn: psycopg.Connection, schema: str = "public") -> str:
    """Create RecVector from the plain script in one transaction (pgvector must be available)."""
    if installed(conn):
        raise RecVectorError("RecVector is already installed in this database (schema recvector exists)")
    with conn.transaction():
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(plain_script(schema))
    return __version__


def _run(conn: psycopg.Connection, fn: Callable[..., Any], *args: Any, on_notice: Callable[[str], None] | None = None,
         **kwargs: Any) -> Any:
    # The same fixed search_path the functions have inside the database: nothing a caller's path
    # holds can stand in for a built-in or RecVector's own object.
    conn.execute("SET search_path = pg_catalog, recvector, pg_temp")
    plpy = PsycopgPlpy(conn, on_notice)
    try:
        result = fn(plpy, *args, **kwargs)
        conn.commit()
        return result
    except BaseException:
        conn.rollback()
        raise


def set_schema(conn: psycopg.Connection, mapping: str, **kw: Any) -> dict[str, Any]:
    return _run(conn, apply_mapping, mapping, allow_dimension_change=False, **kw)


def bootstrap(conn: psycopg.Connection, batch_size: int | None = None, concurrency: int | None = None,
              **kw: Any) -> dict[str, Any]:
    """Commits after every batch, like CALL recvector.bootstrap_resumable(); ``concurrency`` requests
    to a hosted provider at a time (recvector bootstrap --concurrency N)."""
    if concurrency is not None:
        conn.execute("SELECT pg_catalog.set_config('recvector.embed_concurrency', %s, false)", (str(concurrency),))
    try:
        return _run(conn, bootstrapping.bootstrap, batch_size, None, True, **kw)
    finally:
        if concurrency is not None and not conn.closed:
            conn.rollback()
            conn.execute("RESET recvector.embed_concurrency")
            conn.commit()


def sync(conn: psycopg.Connection, **kw: Any) -> dict[str, Any]:
    return _run(conn, bootstrapping.sync, True, **kw)


def drain_entities(conn: psycopg.Connection, max_items: int = 100, **kw: Any) -> int:
    """Re-embed entities queued by the entity-sync triggers (what process_queue does in-database)."""
    with conn.transaction():
        conn.execute("SET LOCAL search_path = pg_catalog, recvector, pg_temp")
        rows = conn.execute("SELECT id, key FROM recvector.queue WHERE kind = 'entity' AND next_attempt_at <= now() "
                            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED", (max_items,)).fetchall()
        if not rows:
            return 0
        refresh_entities(PsycopgPlpy(conn, kw.get("on_notice")), [k for _, k in rows])
        conn.execute("DELETE FROM recvector.queue WHERE id = ANY(%s)", ([i for i, _ in rows],))
    return len(rows)


def neighbor_upkeep(conn: psycopg.Connection, **kw: Any) -> bool:
    """The worker's EASE rebuild that a plain-SQL install cannot do itself (no numpy inside)."""
    from .neighbors import upkeep_outside

    return bool(_run(conn, upkeep_outside, **kw))


def chroma_sync(conn: psycopg.Connection, url: str, collection: str, **kw: Any) -> dict[str, Any]:
    """The same sync as recvector.chroma_sync(), run here: one transaction, committed at the end."""
    from . import chroma

    return _run(conn, chroma.sync, url, collection, **kw)


def chroma_verify(conn: psycopg.Connection, url: str, collection: str, **kw: Any) -> dict[str, Any]:
    from . import chroma

    return _run(conn, chroma.verify, url, collection, **kw)


__all__ = ["PsycopgPlpy", "plain_script", "install_plain", "in_database", "installed", "set_schema",
           "bootstrap", "sync", "drain_entities", "neighbor_upkeep", "chroma_sync", "chroma_verify"]
