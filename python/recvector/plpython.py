"""What the PL/Python functions of the extension call (``rv.<name>(plpy, ...)``).

Each entry point takes the ``plpy`` module PostgreSQL gives the function, so this file is the only
place that knows it runs inside the server. RecVector errors become ``ERROR`` with DETAIL, HINT and
SQLSTATE; a failing call raises before it writes, and the function's transaction undoes the rest.
"""
from __future__ import annotations

import functools
import json
import time
from typing import Any, Callable, Iterable, Sequence, TypeVar

from . import __version__, waiting
from .errors import ArgumentError, MappingError, NotConfiguredError, Problem, RecVectorError
from .mapping import TableRef, interval_seconds, load_mapping, mapping_problems, qi
from .providers import EmbeddingModel, get_embedding_model
from .redaction import redact
from .text import compose, fingerprint

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
            plpy.error(e.message, detail=e.detail, hint=e.hint, sqlstate=e.sqlstate)
        except plpy.SPIError:
            raise  # the server's own error (a cancel, a timeout, a constraint): as it is
        except Exception as e:  # noqa: BLE001 - a bug or a library's error: no key may leave with it
            plpy.error(redact(f"{type(e).__name__}: {e}"), sqlstate="XX000")
        finally:
            waiting.use_server_wait(None)

    return wrapper  # type: ignore[return-value]


def _server_wait(plpy: Any) -> Any:
    plan = plpy.prepare("SELECT pg_catalog.pg_sleep($1)", ["float8"])

    def wait(seconds: float) -> None:
        plpy.execute(plan, [seconds])  # pg_sleep checks for interrupts: cancel and statement_timeout raise here

    return wait


def _query(plpy: Any) -> Callable[[str, Sequence[Any]], list[tuple]]:
    plans: dict[str, Any] = {}

    def run(sql: str, args: Sequence[Any]) -> list[tuple]:
        if sql not in plans:
            plans[sql] = plpy.prepare(sql, ["text"] * len(args))
        rows = plpy.execute(plans[sql], list(args))
        cols = rows.colnames() if rows.nrows() else []
        return [tuple(r[c] for c in cols) for r in rows]

    return run


def _loaded(plpy: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The loaded mapping (document, compiled), after checking that the mapped columns still have
    the types it was compiled for (recvector._check_columns)."""
    rows = plpy.execute("SELECT document::text AS d, compiled::text AS c FROM recvector.mapping WHERE id = 1")
    if not rows.nrows():
        raise NotConfiguredError()
    plpy.execute("SELECT recvector._check_columns(compiled -> 'columns') FROM recvector.mapping WHERE id = 1")
    return json.loads(rows[0]["d"]), json.loads(rows[0]["c"])


_MODELS: dict[str, EmbeddingModel] = {}


def _model(config: dict[str, Any]) -> EmbeddingModel:
    key = json.dumps(config, sort_keys=True)
    if key not in _MODELS:
        _MODELS[key] = get_embedding_model(config)
    return _MODELS[key]


def _vector_literal(vec: Iterable[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vec) + "]"


def vector_dimensions(plpy: Any, table: str) -> int | None:
    """D of a table's ``embedding vector(D)`` column; None while it is an untyped ``vector``."""
    plan = plpy.prepare(
        "SELECT CASE WHEN atttypmod > 0 THEN atttypmod END AS d FROM pg_catalog.pg_attribute "
        "WHERE attrelid = $1::regclass AND attname = 'embedding'", ["text"])
    d = plpy.execute(plan, [table])[0]["d"]
    return int(d) if d is not None else None


def _count(plpy: Any, sql: str) -> int:
    return int(plpy.execute(sql)[0]["n"])


# --------------------------------------------------------------------------------------------
# Mapping
# --------------------------------------------------------------------------------------------

@_sql_errors
def validate_schema(plpy: Any, mapping: str) -> list[tuple[str, str]]:
    if mapping is None:
        return [("$", "the mapping is NULL")]
    return [(p.path, p.message) for p in mapping_problems(mapping, _query(plpy))]


def _apply_mapping(plpy: Any, mapping: str, *, allow_dimension_change: bool, recompile: bool = False) -> dict[str, Any]:
    """Validate, compile and store a mapping. ``recompile``: the loaded document compiled again by
    this version (an extension update), keeping when and by whom it was loaded."""
    if mapping is None:
        raise MappingError([Problem("$", "the mapping is NULL")])
    full, compiled = load_mapping(mapping, _query(plpy))
    emb = full["embedding"]
    dims = int(emb["dimensions"])
    agg = full["aggregation"]
    compiled_json = compiled.as_json()
    compiled_json["aggregation"] = {
        "half_life_seconds": interval_seconds(agg["half_life"]),
        "time_fallback_seconds": interval_seconds(agg["time_fallback"]),
    }
    compiled_json["model_id"] = f"{emb['provider']}/{emb['model']}/{dims}"

    previous = plpy.execute("SELECT document::text AS d, compiled::text AS c FROM recvector.mapping WHERE id = 1")
    prev_model = json.loads(previous[0]["c"]).get("model_id") if previous.nrows() else None

    current = vector_dimensions(plpy, "recvector.entity_vectors")
    stored = _count(plpy, "SELECT count(*) AS n FROM recvector.entity_vectors")
    if current != dims:
        other = _count(plpy, "SELECT count(*) AS n FROM recvector.entity_vectors "
                             f"WHERE array_length(embedding::real[], 1) <> {dims}")
        if other and not allow_dimension_change:
            raise MappingError(
                [Problem("$.embedding.dimensions",
                         f"{other} stored entity vectors have {current or 'other'} dimensions; "
                         f"the mapping declares {dims}")],
                hint="Changing the vector size means embedding every entity again: "
                     "SELECT recvector.reembed('<mapping json>'::jsonb);")
        if other:
            plpy.execute("DELETE FROM recvector.entity_vectors")
    plpy.execute(plpy.prepare("SELECT recvector._ensure_storage($1) AS r", ["integer"]), [dims])
    if prev_model and prev_model != compiled_json["model_id"] and stored and not allow_dimension_change:
        plpy.warning(
            f"recvector: embedding model changed from {prev_model} to {compiled_json['model_id']}; "
            f"{stored} stored vectors come from the old model",
            detail="Profiles and recommendations mix two vector spaces until every entity is embedded again.",
            hint="Run SELECT recvector.reembed();")

    compiled_json["granted"] = _grant_definer(plpy, compiled.tables, json.loads(previous[0]["c"]).get("granted", [])
                                              if previous.nrows() else [])
    plan = plpy.prepare(
        "INSERT INTO recvector.mapping (id, document, compiled, loaded_at, loaded_by) "
        "VALUES (1, $1::jsonb, $2::jsonb, now(), current_user) "
        "ON CONFLICT (id) DO UPDATE SET document = excluded.document, compiled = excluded.compiled"
        + ("" if recompile else ", loaded_at = excluded.loaded_at, loaded_by = excluded.loaded_by"), ["text", "text"])
    # (On a recompile the stored document, defaults included, is kept as it was.)
    plpy.execute(plan, [mapping if recompile else json.dumps(full), json.dumps(compiled_json)])
    plpy.execute("SELECT recvector._generate_mapped()")

    advice = _index_advice(plpy, full)
    for a in advice:
        plpy.notice(f"recvector: {a['column']} has no index: {a['why']}", hint=a["sql"])
    if agg["capture"] == "deferred":
        plpy.notice("recvector: capture is deferred: captured interactions count only once "
                    "recvector.process_queue() has folded them",
                    hint="Schedule it with pg_cron or run `recvector worker`; SELECT * FROM recvector.status() "
                         "shows what is pending.")

    # Auto-logging triggers whose source is gone or moved are removed.
    removed: list[str] = []
    trig = plpy.execute("SELECT source, table_oid::text AS t FROM recvector.triggers ORDER BY source")
    for row in trig:
        src = compiled.sources.get(row["source"])
        if src is None or _same_table(plpy, src["table"], row["t"]) is False:
            plan = plpy.prepare("SELECT recvector.disable_auto_logging($1) AS r", ["text"])
            removed.extend(r["r"] for r in plpy.execute(plan, [row["source"]]))
    return {
        "entities_table": full["entities"]["table"],
        "features": [f["name"] for f in full["entities"]["features"]],
        "interaction_sources": list(compiled.sources),
        "strategy": agg["strategy"],
        "capture": agg["capture"],
        "model": compiled_json["model_id"],
        "stored_vectors": stored,
        "triggers_removed": removed,
        "index_advice": [a["sql"] for a in advice],
    }


DEFINER_ROLE = "recvector_definer"


def _grant_definer(plpy: Any, tables: list[str], previously: list[str]) -> list[str]:
    """SELECT on the mapped tables (and USAGE on their schemas) for the role RecVector's SECURITY
    DEFINER functions run as, which has no other privilege on the application's data; revoked from
    tables an earlier mapping named and this one does not. Returns the tables granted."""
    exists = plpy.execute(plpy.prepare("SELECT to_regrole($1) IS NOT NULL AS ok", ["text"]), [DEFINER_ROLE])[0]["ok"]
    if not exists:  # a plain-SQL install made by a non-superuser has no definer role
        return []
    granted = []
    for name in tables:
        ref = TableRef.parse(name)
        plpy.execute(f"GRANT USAGE ON SCHEMA {qi(ref.schema)} TO {qi(DEFINER_ROLE)}")
        plpy.execute(f"GRANT SELECT ON TABLE {ref.sql} TO {qi(DEFINER_ROLE)}")
        granted.append(str(ref))
    for name in sorted(set(previously) - set(granted)):
        ref = TableRef.parse(name)
        if plpy.execute(plpy.prepare("SELECT to_regclass($1) IS NOT NULL AS ok", ["text"]), [ref.sql])[0]["ok"]:
            plpy.execute(f"REVOKE SELECT ON TABLE {ref.sql} FROM {qi(DEFINER_ROLE)}")
    return granted


_HAS_LEADING_INDEX = (
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a "
    "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
    "WHERE i.indrelid = pg_catalog.format('%I.%I', $1::text, $2::text)::regclass AND a.attname = $3) AS ok")


def _index_advice(plpy: Any, doc: dict[str, Any]) -> list[dict[str, str]]:
    """Columns the serving path looks rows up by that no index leads with. RecVector never creates
    indexes on the application's tables; it says which one would help."""
    plan = plpy.prepare(_HAS_LEADING_INDEX, ["text", "text", "text"])
    wanted: list[tuple[str, str, str]] = []
    for src in doc["interactions"]:
        wanted.append((src["table"], src["user_column"], "reading a user's history scans the whole table"))
        for hop in src.get("path", []):
            wanted.append((hop["table"], hop["match"], "each interaction's join path scans the table"))
    out = []
    for table, column, why in wanted:
        schema, _, name = table.partition(".") if "." in table else ("public", "", table)
        if not plpy.execute(plan, [schema, name, column])[0]["ok"]:
            ref = f"{qi(schema)}.{qi(name)}"
            out.append({"column": f"{schema}.{name}.{column}", "why": why,
                        "sql": f"CREATE INDEX ON {ref} ({qi(column)});"})
    return out


def _same_table(plpy: Any, table: str, regclass_text: str) -> bool:
    schema, _, name = table.partition(".")
    plan = plpy.prepare("SELECT $1::regclass = format('%I.%I', $2::text, $3::text)::regclass AS same",
                        ["text", "text", "text"])
    return bool(plpy.execute(plan, [regclass_text, schema, name])[0]["same"])


@_sql_errors
def set_schema(plpy: Any, mapping: str) -> str:
    return json.dumps(_apply_mapping(plpy, mapping, allow_dimension_change=False))


@_sql_errors
def recompile(plpy: Any) -> str:
    """Compile the loaded mapping again with this version (run by every install and update of the
    extension): new checks and SQL apply at once, and the definer role gets its grants."""
    rows = plpy.execute("SELECT document::text AS d FROM recvector.mapping WHERE id = 1")
    if not rows.nrows():
        return json.dumps({"recompiled": False})
    summary = _apply_mapping(plpy, rows[0]["d"], allow_dimension_change=True, recompile=True)
    return json.dumps({"recompiled": True, **summary})


# --------------------------------------------------------------------------------------------
# Embedding
# --------------------------------------------------------------------------------------------

@_sql_errors
def embed(plpy: Any, texts: list[str] | None) -> list[str] | None:
    if texts is None:
        return None
    doc, _ = _loaded(plpy)
    model = _model(doc["embedding"])
    return [_vector_literal(v) for v in model.embed(list(texts), purpose="query")]


_UPSERT = ("INSERT INTO recvector.entity_vectors (entity_id, embedding, fingerprint, model) "
           "SELECT i, e::{vector}, f, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(i, e, f) "
           "ON CONFLICT (entity_id) DO UPDATE SET embedding = excluded.embedding, "
           "fingerprint = excluded.fingerprint, model = excluded.model, embedded_at = now()")


def _scan(cursor: Any, features: list[dict[str, Any]], model: EmbeddingModel,
          existing: dict[str, str]) -> tuple[set[str], list[tuple[str, str, str]]]:
    """Compose every entity's text from a cursor over the compiled entity query; return the ids seen
    and the (id, text, fingerprint) of those whose fingerprint differs from the stored one."""
    todo: list[tuple[str, str, str]] = []
    live: set[str] = set()
    while True:
        rows = cursor.fetch(2000)
        if not rows:
            break
        for r in rows:
            eid = r["entity_id"]
            if eid is None:
                continue
            live.add(eid)
            text = compose(features, [r[f"f{i}"] for i in range(len(features))])
            fp = fingerprint(model.model_id, text)
            if existing.get(eid) != fp:
                todo.append((eid, text, fp))
    return live, todo


def _embed_and_store(plpy: Any, model: EmbeddingModel, todo: list[tuple[str, str, str]], size: int,
                     commit: bool, progress: bool) -> int:
    """Embed in batches; each batch is embedded completely (dimensions checked) before it is written."""
    vector_type = plpy.execute(
        "SELECT pg_catalog.format('%I.vector', n.nspname) AS t FROM pg_catalog.pg_extension e "
        "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'")[0]["t"]
    plan = plpy.prepare(_UPSERT.format(vector=vector_type), ["text[]", "text[]", "text[]", "text"])
    done = 0
    t0 = time.monotonic()
    for start in range(0, len(todo), size):
        batch = todo[start:start + size]
        vectors = model.embed([t for _, t, _ in batch], purpose="document")
        plpy.execute(plan, [[e for e, _, _ in batch], [_vector_literal(v) for v in vectors],
                            [f for _, _, f in batch], model.model_id])
        done += len(batch)
        if commit:
            plpy.commit()
        if progress:
            rate = done / max(time.monotonic() - t0, 1e-9)
            plpy.notice(f"recvector: embedded {done}/{len(todo)} entities ({rate:.1f}/s)")
    return done


def _delete_vectors(plpy: Any, ids: list[str]) -> None:
    if ids:
        plan = plpy.prepare("DELETE FROM recvector.entity_vectors WHERE entity_id = ANY($1::text[])", ["text[]"])
        plpy.execute(plan, [ids])


def _bootstrap(plpy: Any, batch_size: int | None, max_entities: int | None, commit: bool,
               profiles: bool = True) -> dict[str, Any]:
    started = time.monotonic()
    doc, compiled = _loaded(plpy)
    if batch_size is not None and not 1 <= batch_size <= 100000:
        raise RecVectorError(f"batch_size must be between 1 and 100000, got {batch_size}",
                             hint="Leave it NULL to use embedding.batch_size from the mapping.")
    if max_entities is not None and max_entities < 0:
        raise RecVectorError(f"max_entities must not be negative, got {max_entities}")
    model = _model(doc["embedding"])
    size = batch_size or int(doc["embedding"].get("batch_size") or model.max_batch_size)

    existing = {r["entity_id"]: r["fingerprint"]
                for r in plpy.execute("SELECT entity_id, fingerprint FROM recvector.entity_vectors")}
    live, todo = _scan(plpy.cursor(compiled["entities"]), doc["entities"]["features"], model, existing)
    todo.sort(key=lambda t: len(t[1]))  # similar lengths share a batch: less padding for the model
    gone = sorted(set(existing) - live)
    _delete_vectors(plpy, gone)
    up_to_date = len(live) - len(todo)
    plpy.notice(f"recvector: {len(live)} entities: {up_to_date} up to date, {len(todo)} to embed, "
                f"{len(gone)} removed (model {model.model_id})")
    todo_now = todo if max_entities is None else todo[:max_entities]
    calls = getattr(model, "stats", None)
    before = calls.as_dict() if calls else None
    done = _embed_and_store(plpy, model, todo_now, size, commit, progress=True)

    remaining = len(todo) - done
    result: dict[str, Any] = {
        "entities": len(live), "embedded": done, "up_to_date": up_to_date, "removed": len(gone),
        "remaining": remaining, "model": model.model_id,
    }
    if calls and before:
        after = calls.as_dict()
        result["provider_calls"] = {k: round(after[k] - before[k], 3) for k in after}
    if not profiles:
        pass
    elif remaining:
        plpy.notice(f"recvector: {remaining} entities left to embed; profiles are built once all are embedded")
        result.update(entity_stats=None, profiles=None)
    else:
        stats = plpy.execute("SELECT recvector.rebuild_entity_stats() AS n")[0]["n"]
        plpy.notice(f"recvector: entity stats for {stats} entities")
        profiles = plpy.execute("SELECT recvector.rebuild_profiles() AS n")[0]["n"]
        plpy.notice(f"recvector: profiles for {profiles} users")
        result.update(entity_stats=stats, profiles=profiles)
        if commit:
            plpy.commit()
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


@_sql_errors
def set_filter(plpy: Any, name: str, expression: str | None) -> str:
    """Check and store a named filter (NULL expression: remove it)."""
    from .filters import compile_filter
    from .mapping import check_select

    if not name or not name.strip():
        raise RecVectorError("a filter needs a name")
    if expression is None:
        plpy.execute(plpy.prepare("DELETE FROM recvector.filters WHERE name = $1", ["text"]), [name])
        return json.dumps({"name": name, "removed": True})
    doc, _ = _loaded(plpy)
    compiled = compile_filter(expression, doc, _query(plpy))
    ent = doc["entities"]["table"]
    check_select(compiled, {ent if "." in ent else f"public.{ent}"})
    plpy.execute(plpy.prepare(
        "INSERT INTO recvector.filters (name, expression, compiled) VALUES ($1, $2, $3) "
        "ON CONFLICT (name) DO UPDATE SET expression = excluded.expression, compiled = excluded.compiled, "
        "created_at = now()", ["text", "text", "text"]), [name, expression, compiled])
    allowed = plpy.execute(f"SELECT count(*) AS n FROM ({compiled}) AS f")[0]["n"]
    return json.dumps({"name": name, "expression": expression, "entities_allowed": int(allowed)})


@_sql_errors
def sync(plpy: Any) -> str:
    """Embed only entities whose composed text or model changed; delete vectors of entities gone."""
    return json.dumps(_bootstrap(plpy, None, None, False, profiles=False))


@_sql_errors
def refresh_entities(plpy: Any, entity_ids: list[str] | None) -> str:
    return json.dumps(_refresh_entities(plpy, entity_ids))


def _refresh_entities(plpy: Any, entity_ids: list[str] | None) -> dict[str, Any]:
    """Embed the named entities again if their text changed; drop vectors of ids no longer in the table."""
    if entity_ids is None:
        raise RecVectorError("entity_ids must not be NULL", hint="Pass an array of entity ids.")
    ids = sorted({str(i) for i in entity_ids if i is not None})
    doc, compiled = _loaded(plpy)
    model = _model(doc["embedding"])
    plan = plpy.prepare("SELECT entity_id, fingerprint FROM recvector.entity_vectors WHERE entity_id = ANY($1::text[])",
                        ["text[]"])
    existing = {r["entity_id"]: r["fingerprint"] for r in plpy.execute(plan, [ids])}
    try:
        cursor = plpy.cursor(plpy.prepare(compiled["entities_by_id"], ["text[]"]), [ids])
        live, todo = _scan(cursor, doc["entities"]["features"], model, existing)
    except plpy.SPIError as e:
        raise RecVectorError(f"entity ids do not fit the entity id type {compiled['entity_id_type']}: {e}",
                             hint="Pass ids as they appear in the mapped entity table.") from None
    gone = sorted(set(ids) - live)
    _delete_vectors(plpy, gone)
    done = _embed_and_store(plpy, model, todo, int(doc["embedding"].get("batch_size") or model.max_batch_size),
                            False, progress=False)
    return {"requested": len(ids), "embedded": done, "up_to_date": len(live) - len(todo),
            "removed": len(gone), "missing": gone}


SAFE_SEARCH_PATH = "pg_catalog, recvector, pg_temp"


@_sql_errors
def bootstrap(plpy: Any, *, batch_size: int | None, max_entities: int | None, commit: bool) -> str:
    if not commit:
        return json.dumps(_bootstrap(plpy, batch_size, max_entities, commit))
    # The resumable form is a procedure, which cannot carry a fixed search_path (it commits):
    # set the same safe path for its run and put the caller's back after.
    old = plpy.execute("SELECT pg_catalog.current_setting('search_path') AS p")[0]["p"]
    plpy.execute(plpy.prepare("SELECT pg_catalog.set_config('search_path', $1, false)", ["text"]), [SAFE_SEARCH_PATH])
    try:
        return json.dumps(_bootstrap(plpy, batch_size, max_entities, commit))
    finally:
        plpy.execute(plpy.prepare("SELECT pg_catalog.set_config('search_path', $1, false)", ["text"]), [old])


@_sql_errors
def reembed(plpy: Any, mapping: str | None = None) -> str:
    if mapping is not None:
        _apply_mapping(plpy, mapping, allow_dimension_change=True)
    n = _count(plpy, "SELECT count(*) AS n FROM recvector.entity_vectors")
    plpy.warning(f"recvector: re-embedding every entity ({n} stored vectors are deleted first)")
    plpy.execute("DELETE FROM recvector.entity_vectors")
    plpy.execute("UPDATE recvector.rec_user_profiles SET embedding = NULL, accumulated_weight = 0 "
                 "WHERE embedding IS NOT NULL")
    return json.dumps(_bootstrap(plpy, None, None, False))


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


__all__ = ["__version__", "set_schema", "validate_schema", "embed", "bootstrap", "reembed", "refresh_entities", "sync", "set_filter", "chroma_sync", "chroma_verify"]
