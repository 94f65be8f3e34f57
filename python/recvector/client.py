"""A small psycopg client for applications and the CLI: the SQL API, typed."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator

import psycopg
from psycopg import sql

from .errors import RecVectorError


@dataclass(frozen=True)
class Recommendation:
    entity_id: str
    score: float


class Client:
    """Calls RecVector's SQL functions over one psycopg connection (autocommit)."""

    def __init__(self, conn: psycopg.Connection, dsn: str = "",
                 on_notice: Callable[[str], None] | None = None) -> None:
        self.conn = conn
        self.dsn = dsn
        self.on_notice = on_notice
        self._in_db: bool | None = None

    @classmethod
    def connect(cls, dsn: str = "", *, on_notice: Callable[[str], None] | None = None, **kwargs: Any) -> "Client":
        try:
            conn = psycopg.connect(dsn, autocommit=True, **kwargs)
        except psycopg.OperationalError as e:
            raise RecVectorError(f"cannot connect to PostgreSQL: {str(e).strip()}",
                                 hint="Pass --dsn 'host=... dbname=... user=...' or set RECVECTOR_DSN.") from None
        if on_notice is not None:
            conn.add_notice_handler(lambda d: on_notice(d.message_primary or ""))
        return cls(conn, dsn, on_notice)

    # -- in-database (PL/Python) or out-of-database mode ------------------------------------
    def in_database(self) -> bool:
        """True when the database runs the Python side itself (the extension with PL/Python);
        False for a plain-SQL install, where this client runs it (recvector.outside)."""
        if self._in_db is None:
            from . import outside

            self._in_db = outside.in_database(self.conn)
        return self._in_db

    def _outside(self, fn_name: str, *args: Any, **kwargs: Any) -> Any:
        from . import outside

        with psycopg.connect(self.dsn) as conn:
            try:
                return getattr(outside, fn_name)(conn, *args, on_notice=self.on_notice, **kwargs)
            except psycopg.Error as e:
                raise _wrap(e) from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------------
    def rows(self, query: str | sql.Composed, params: tuple | dict = ()) -> list[tuple]:
        try:
            with self.conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description else []
        except psycopg.Error as e:
            raise _wrap(e) from None

    def one(self, query: str, params: tuple | dict = ()) -> Any:
        rows = self.rows(query, params)
        return rows[0][0] if rows else None

    def extension_schema(self) -> str:
        schema = self.one("SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                           "WHERE p.proname = 'rec_recommend' ORDER BY n.nspname = 'public' DESC LIMIT 1")
        if schema is None:
            raise RecVectorError("RecVector is not installed in this database",
                                 hint="Run: CREATE EXTENSION recvector CASCADE;  (or `recvector install`, "
                                      "or `recvector install --plain` where PL/Python is not available)")
        return schema

    # -- the API ------------------------------------------------------------------------------
    def install(self, *, plain: bool = False, schema: str = "public") -> str:
        """CREATE EXTENSION recvector CASCADE, or with ``plain`` the plain-SQL install for databases
        without PL/Python or custom extensions (managed PostgreSQL)."""
        if plain:
            from . import outside

            try:
                return outside.install_plain(self.conn, schema)
            except psycopg.Error as e:
                raise _wrap(e) from None
        self.rows("CREATE EXTENSION IF NOT EXISTS recvector CASCADE")
        return self.one("SELECT extversion FROM pg_extension WHERE extname = 'recvector'")

    def set_schema(self, mapping: dict[str, Any] | str) -> dict[str, Any]:
        text = mapping if isinstance(mapping, str) else json.dumps(mapping)
        if not self.in_database():
            return self._outside("set_schema", text)
        return self.one("SELECT recvector.set_schema(%s::jsonb)", (text,))

    def validate_schema(self, mapping: dict[str, Any] | str) -> list[tuple[str, str]]:
        text = mapping if isinstance(mapping, str) else json.dumps(mapping)
        if not self.in_database():
            from .mapping import mapping_problems
            from .outside import PsycopgPlpy
            from .spi import query_function

            return [(p.path, p.message) for p in mapping_problems(text, query_function(PsycopgPlpy(self.conn)))]
        return [(p, m) for p, m in self.rows("SELECT path, problem FROM recvector.validate_schema(%s::jsonb)", (text,))]

    def sync(self) -> dict[str, Any]:
        if not self.in_database():
            return self._outside("sync")
        return self.one("SELECT recvector.sync()")

    def chroma_sync(self, url: str, collection: str, *, full_sync: bool = False, batch_size: int | None = None,
                    recreate: bool = False, tenant: str = "default_tenant", database: str = "default_database",
                    token_env: str | None = None) -> dict[str, Any]:
        """Push changed entity vectors to a Chroma collection (recvector.chroma_sync). Outside the
        database (plain install) the sync runs here, with ``token_env`` read from this process."""
        kw = dict(full_sync=full_sync, batch_size=batch_size, recreate=recreate, tenant=tenant, database=database,
                  token_env=token_env)
        if not self.in_database():
            return self._outside("chroma_sync", url, collection, **kw)
        return self.one("SELECT recvector.chroma_sync(%(url)s, %(collection)s, full_sync => %(full_sync)s, "
                         "batch_size => %(batch_size)s, tenant => %(tenant)s, database => %(database)s, "
                         "recreate => %(recreate)s, token_env => %(token_env)s)",
                         {"url": url, "collection": collection, **kw})

    def chroma_verify(self, url: str, collection: str, *, sample: int = 100, tenant: str = "default_tenant",
                      database: str = "default_database", token_env: str | None = None) -> dict[str, Any]:
        if not self.in_database():
            return self._outside("chroma_verify", url, collection, sample=sample, tenant=tenant, database=database,
                                 token_env=token_env)
        return self.one("SELECT recvector.chroma_verify(%s, %s, %s, %s, %s, %s)",
                         (url, collection, sample, tenant, database, token_env))

    def drain_entities(self, max_items: int = 100) -> int:
        """Out-of-database mode: embed entities queued by the entity-sync triggers."""
        return 0 if self.in_database() else int(self._outside("drain_entities", max_items))

    def bootstrap(self, *, batch_size: int | None = None, resumable: bool = True,
                  concurrency: int | None = None) -> dict[str, Any] | None:
        """Embed what is new or changed and build stats and profiles. ``resumable`` commits per batch
        (CALL recvector.bootstrap_resumable), so an interrupted run continues where it stopped.
        ``concurrency``: requests to a hosted provider at a time for this run (the mapping's
        embedding.max_concurrency otherwise; embedding.max_requests_per_second still holds)."""
        if not self.in_database():
            return self._outside("bootstrap", batch_size, concurrency=concurrency)
        if concurrency is not None:
            self.rows("SELECT pg_catalog.set_config('recvector.embed_concurrency', %s, false)", (str(concurrency),))
        try:
            if resumable:
                self.rows("CALL recvector.bootstrap_resumable(%s)", (batch_size,))
                return None
            return self.one("SELECT recvector.bootstrap(%s)", (batch_size,))
        finally:
            if concurrency is not None:
                self.rows("RESET recvector.embed_concurrency")

    def recommend(self, user_id: Any, k: int = 10, lambda_: float | None = None, **options: Any) -> list[Recommendation]:
        schema = self.extension_schema()
        args = [sql.Literal(str(user_id)), sql.Literal(k), sql.Literal(lambda_)]
        named = [sql.SQL("{} => {}").format(sql.Identifier(name), sql.Literal(value))
                 for name, value in options.items()]
        q = sql.SQL("SELECT entity_id, score FROM {}.rec_recommend({}::text, {}, {}::double precision{})").format(
            sql.Identifier(schema), args[0], args[1], args[2],
            sql.SQL("").join(sql.SQL(", ") + n for n in named))
        return [Recommendation(e, s) for e, s in self.rows(q)]

    def similar(self, entity_id: Any, k: int = 10, mode: str = "content") -> list[Recommendation]:
        """The k entities most like one: by content, by the same users' likes (cf), or both (hybrid)."""
        schema = self.extension_schema()
        q = sql.SQL("SELECT entity_id, score FROM {}.rec_similar(%s::text, %s, %s)").format(sql.Identifier(schema))
        return [Recommendation(e, s) for e, s in self.rows(q, (str(entity_id), k, mode))]

    def log_interaction(self, user_id: Any, entity_id: Any, kind: str = "interaction",
                        at: datetime | None = None, weight: float | None = None) -> None:
        self.rows("SELECT recvector.log_interaction(%s::text, %s::text, %s, coalesce(%s::timestamptz, now()), %s)",
                   (str(user_id), str(entity_id), kind, at, weight))

    def hide(self, user_id: Any, entity_id: Any, until: datetime | None = None) -> None:
        """Never recommend this entity to this user (until the given time, or for good)."""
        self.rows("SELECT recvector.hide(%s::text, %s::text, %s::timestamptz)", (str(user_id), str(entity_id), until))

    def unhide(self, user_id: Any, entity_id: Any) -> bool:
        """Show a hidden entity to the user again; True if it was hidden."""
        return bool(self.one("SELECT recvector.unhide(%s::text, %s::text)", (str(user_id), str(entity_id))))

    def upsert_entity(self, *entity_ids: Any) -> dict[str, Any]:
        """Re-embed entities whose row in the application's table was inserted or changed."""
        return self.one("SELECT recvector.refresh_entities(%s::text[])", ([str(i) for i in entity_ids],))

    def dicts(self, query: str | sql.Composed, params: tuple | dict = ()) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        try:
            with self.conn.cursor() as cur:
                cur.execute(query, params)
                names = [d.name for d in cur.description or []]
                return [dict(zip(names, r)) for r in cur.fetchall()] if cur.description else []
        except psycopg.Error as e:
            raise _wrap(e) from None

    def evaluate(self, k: int = 10, max_users: int | None = None, **options: Any) -> list[dict[str, Any]]:
        """recvector.evaluate(): RecVector beside popularity, random, item-kNN and EASE on the app's history."""
        named = sql.SQL("").join(sql.SQL(", {} => {}").format(sql.Identifier(n), sql.Literal(v))
                                 for n, v in options.items() if v is not None)
        q = sql.SQL("SELECT * FROM recvector.evaluate({}, {}{})").format(sql.Literal(k), sql.Literal(max_users), named)
        return self.dicts(q)

    def tune(self, time_budget: str = "10 minutes", k: int = 10, max_users: int | None = 2000, seed: int = 42,
             store: bool = True) -> dict[str, Any]:
        """recvector.tune(): search the scoring settings; stored in the mapping only when they win."""
        return self.one("SELECT recvector.tune(%s::interval, %s, %s, %s, %s)", (time_budget, k, max_users, seed, store))

    def explain(self, user_id: Any, k: int = 10, lambda_: float | None = None, **options: Any) -> list[dict[str, Any]]:
        named = sql.SQL("").join(sql.SQL(", {} => {}").format(sql.Identifier(n), sql.Literal(v))
                                 for n, v in options.items() if v is not None)
        q = sql.SQL("SELECT * FROM recvector.explain({}::text, {}, {}::double precision{})").format(
            sql.Literal(str(user_id)), sql.Literal(k), sql.Literal(lambda_), named)
        return self.dicts(q)

    def status(self) -> dict[str, Any]:
        """``recvector.status()``: version, mapping, counts and what waits for the worker."""
        return self.rows("SELECT row_to_json(s) FROM recvector.status() AS s")[0][0]  # json keeps the column order

    def update_user_profile(self, user_id: Any) -> None:
        self.rows("SELECT recvector.update_user_profile(%s::text)", (str(user_id),))

    def process_queue(self, max_items: int = 100) -> int:
        """Profile recomputes (and, in-database, queued entities) in SQL; see also drain_entities."""
        return int(self.one("SELECT recvector.process_queue(%s)", (max_items,)))

    def worker(self, *, interval: float = 1.0, max_items: int = 100,
               stop: Callable[[], bool] = lambda: False) -> Iterator[int]:
        """Drain the queue forever (until ``stop()``), yielding the items done per round."""
        import time

        while not stop():
            done = self.drain_entities(max_items) + self.process_queue(max_items)
            if not self.in_database():
                self._outside("neighbor_upkeep")  # EASE, which a plain-SQL install cannot build itself
            yield done
            if done < max_items:
                time.sleep(interval)


def _wrap(e: psycopg.Error) -> RecVectorError:
    diag = e.diag
    err = RecVectorError(diag.message_primary or str(e).strip(), detail=diag.message_detail, hint=diag.message_hint)
    err.sqlstate = diag.sqlstate or err.sqlstate
    return err
