"""The entry layer: what the PL/Python functions of the extension call (``rv.<name>(plpy, ...)``).

Each entry point takes the ``plpy`` module PostgreSQL gives the function and calls the engine
(modules that know nothing of PL/Python). Here, and only here: RecVector errors become ``ERROR``
with DETAIL, HINT and SQLSTATE, any other error an ``ERROR`` with keys masked, and waits become
interruptible by ``statement_timeout`` and cancel. A failing call raises before it writes, and the
function's transaction undoes the rest.
"""
from __future__ import annotations

import functools
import json
from typing import Any, Callable, TypeVar

from . import __version__, applying, bootstrapping, storing, waiting
from .errors import ArgumentError, MappingError, Problem, RecVectorError
from .filters import store_filter
from .mapping import mapping_problems
from .redaction import redact
from .spi import query_function

F = TypeVar("F", bound=Callable[..., Any])


def _sql_errors(fn: F) -> F:
    """Turn RecVectorError into a PostgreSQL ERROR with detail, hint and SQLSTATE; any other Python
    error into an ERROR with its text, keys masked. Waits inside the call are interruptible by
    statement_timeout and cancel (:mod:`recvector.waiting`)."""

    @functools.wraps(fn)
    def wrapper(plpy: Any, *args: Any, **kwargs: Any) -> Any:
        waiting.use_server_wait(_server_wait(plpy))
        try:
            return fn(plpy, *args, **kwargs)
        except RecVectorError as e:
            extra = {n: v for n, v in (("detail", e.detail), ("hint", e.hint)) if v}
            plpy.error(e.message, sqlstate=e.sqlstate, **extra)
        except plpy.SPIError:
            raise  # the server's own error (a cancel, a timeout, a constraint): as it is
        except Exception as e:  # noqa: BLE001 - a bug or a library's error: no key may leave with it
            plpy.error(redact(f"{type(e).__name__}: {e}"), sqlstate="XX000")
        finally:
            waiting.use_server_wait(None)

    return wrapper  # type: ignore[return-value]


def _server_wait(plpy: Any) -> Callable[[float], None]:
    plan = plpy.prepare("SELECT pg_catalog.pg_sleep($1)", ["float8"])

    def wait(seconds: float) -> None:
        plpy.execute(plan, [seconds])  # pg_sleep checks for interrupts: cancel and statement_timeout raise here

    return wait


@_sql_errors
def validate_schema(plpy: Any, mapping: str) -> list[tuple[str, str]]:
    if mapping is None:
        return [("$", "the mapping is NULL")]
    return [(p.path, p.message) for p in mapping_problems(mapping, query_function(plpy))]


@_sql_errors
def set_schema(plpy: Any, mapping: str) -> str:
    if mapping is None:
        raise MappingError([Problem("$", "the mapping is NULL")])
    return json.dumps(applying.apply_mapping(plpy, mapping, allow_dimension_change=False))


@_sql_errors
def recompile(plpy: Any) -> str:
    return json.dumps(applying.recompile(plpy))


@_sql_errors
def embed(plpy: Any, texts: list[str] | None) -> list[str] | None:
    return None if texts is None else storing.embed_texts(plpy, list(texts))


@_sql_errors
def bootstrap(plpy: Any, *, batch_size: int | None, max_entities: int | None, commit: bool) -> str:
    if commit:
        return json.dumps(bootstrapping.bootstrap_resumable(plpy, batch_size))
    return json.dumps(bootstrapping.bootstrap(plpy, batch_size, max_entities, False))


@_sql_errors
def sync(plpy: Any) -> str:
    return json.dumps(bootstrapping.sync(plpy))


@_sql_errors
def reembed(plpy: Any, mapping: str | None = None) -> str:
    return json.dumps(bootstrapping.reembed(plpy, mapping))


@_sql_errors
def refresh_entities(plpy: Any, entity_ids: list[str] | None) -> str:
    return json.dumps(storing.refresh_entities(plpy, entity_ids))


@_sql_errors
def set_filter(plpy: Any, name: str, expression: str | None) -> str:
    return json.dumps(store_filter(plpy, name, expression))


@_sql_errors
def ease_model(plpy: Any, lam: float, k: int, started: str, src: str, target: str) -> str:
    from .neighbors import build_ease

    return json.dumps(build_ease(plpy, float(lam), int(k), started, src, target))


@_sql_errors
def evaluate(plpy: Any, *, k: int, max_users: int | None, lam: float | None, alpha: float | None, beta: float | None,
             candidate_pool: int | None, seed: int, min_positives: int, part: str, half_life_days: float | None,
             cutoff: Any, gamma: float | None, protocol: str, interests: int | None, methods: list[str] | None) -> list[dict]:
    from . import evaluation

    overrides = {"lambda": lam, "alpha": alpha, "beta": beta, "gamma": gamma, "candidate_pool": candidate_pool}
    cut = None
    if cutoff is not None:
        cut = float(plpy.execute(plpy.prepare("SELECT extract(epoch FROM $1::timestamptz)::float8 AS t", ["text"]),
                                 [cutoff])[0]["t"])
    return evaluation.evaluate(plpy, k=k, max_users=max_users, seed=seed, min_positives=min_positives,
                               protocol=protocol or "auto", part=part or "all",
                               overrides={n: v for n, v in overrides.items() if v is not None},
                               interests=interests, half_life_days=half_life_days, cutoff=cut,
                               methods=methods or evaluation.METHODS, notice=plpy.notice)


@_sql_errors
def tune(plpy: Any, *, budget_seconds: float, k: int, max_users: int | None, seed: int, store: bool) -> str:
    from .tuning import tune as run

    return json.dumps(run(plpy, time_budget_seconds=float(budget_seconds), k=int(k), max_users=max_users,
                          seed=int(seed), store=bool(store), notice=plpy.notice))


@_sql_errors
def chroma_sync(plpy: Any, url: str | None, collection: str | None, full_sync: bool | None, batch_size: int | None,
                tenant: str | None, database: str | None, recreate: bool | None, documents: bool | None,
                token_env: str | None, max_retries: int | None, timeout_seconds: float | None) -> str:
    from . import chroma

    if url is None:
        raise ArgumentError("url must not be NULL", hint="Pass the Chroma server's address, e.g. 'http://127.0.0.1:8000'.")
    return json.dumps(chroma.sync(
        plpy, url, collection, full_sync=bool(full_sync), batch_size=batch_size,
        tenant=tenant or "default_tenant", database=database or "default_database", recreate=bool(recreate),
        documents=documents is not False, token_env=token_env,
        max_retries=5 if max_retries is None else max_retries,
        timeout_seconds=30.0 if timeout_seconds is None else timeout_seconds))


@_sql_errors
def chroma_verify(plpy: Any, url: str | None, collection: str | None, sample: int | None, tenant: str | None,
                  database: str | None, token_env: str | None) -> str:
    from . import chroma

    if url is None:
        raise ArgumentError("url must not be NULL", hint="Pass the Chroma server's address, e.g. 'http://127.0.0.1:8000'.")
    return json.dumps(chroma.verify(plpy, url, collection, sample=100 if sample is None else sample,
                                    tenant=tenant or "default_tenant", database=database or "default_database",
                                    token_env=token_env))


__all__ = ["__version__", "validate_schema", "set_schema", "recompile", "embed", "bootstrap", "sync", "reembed",
           "refresh_entities", "set_filter", "ease_model", "evaluate", "tune", "chroma_sync", "chroma_verify"]
