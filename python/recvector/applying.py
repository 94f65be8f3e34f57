"""Loading a mapping into the database: validation and compilation (:mod:`recvector.mapping`), the
vector storage, the grants of the definer role, the generated per-mapping functions, index advice."""
from __future__ import annotations

import json
from typing import Any

from .errors import MappingError, Problem
from .mapping import TableRef, interval_seconds, load_mapping, qi
from .spi import count, query_function
from .storing import vector_dimensions


def apply_mapping(db: Any, mapping: str, *, allow_dimension_change: bool, recompile: bool = False) -> dict[str, Any]:
    """Validate, compile and store a mapping. ``recompile``: the loaded document compiled again by
    this version (an extension update), keeping when and by whom it was loaded."""
    if mapping is None:
        raise MappingError([Problem("$", "the mapping is NULL")])
    full, compiled = load_mapping(mapping, query_function(db))
    emb = full["embedding"]
    dims = int(emb["dimensions"])
    agg = full["aggregation"]
    compiled_json = compiled.as_json()
    compiled_json["aggregation"] = {
        "half_life_seconds": interval_seconds(agg["half_life"]),
        "time_fallback_seconds": interval_seconds(agg["time_fallback"]),
    }
    compiled_json["model_id"] = f"{emb['provider']}/{emb['model']}/{dims}"
    compiled_json["neighbors"] = {
        "rebuild_every_seconds": interval_seconds((full.get("neighbors") or {}).get("rebuild_every", "1 day"))}

    previous = db.execute("SELECT document::text AS d, compiled::text AS c FROM recvector.mapping WHERE id = 1")
    prev_model = json.loads(previous[0]["c"]).get("model_id") if previous.nrows() else None

    current = vector_dimensions(db, "recvector.entity_vectors")
    stored = count(db, "SELECT count(*) AS n FROM recvector.entity_vectors")
    if current != dims:
        other = count(db, "SELECT count(*) AS n FROM recvector.entity_vectors "
                             f"WHERE array_length(embedding::real[], 1) <> {dims}")
        if other and not allow_dimension_change:
            raise MappingError(
                [Problem("$.embedding.dimensions",
                         f"{other} stored entity vectors have {current or 'other'} dimensions; "
                         f"the mapping declares {dims}")],
                hint="Changing the vector size means embedding every entity again: "
                     "SELECT recvector.reembed('<mapping json>'::jsonb);")
        if other:
            db.execute("DELETE FROM recvector.entity_vectors")
    db.execute(db.prepare("SELECT recvector._ensure_storage($1) AS r", ["integer"]), [dims])
    if prev_model and prev_model != compiled_json["model_id"] and stored and not allow_dimension_change:
        db.warning(
            f"recvector: embedding model changed from {prev_model} to {compiled_json['model_id']}; "
            f"{stored} stored vectors come from the old model",
            detail="Profiles and recommendations mix two vector spaces until every entity is embedded again.",
            hint="Run SELECT recvector.reembed();")

    compiled_json["granted"] = grant_definer(db, compiled.tables, json.loads(previous[0]["c"]).get("granted", [])
                                              if previous.nrows() else [])
    plan = db.prepare(
        "INSERT INTO recvector.mapping (id, document, compiled, loaded_at, loaded_by) "
        "VALUES (1, $1::jsonb, $2::jsonb, now(), current_user) "
        "ON CONFLICT (id) DO UPDATE SET document = excluded.document, compiled = excluded.compiled"
        + ("" if recompile else ", loaded_at = excluded.loaded_at, loaded_by = excluded.loaded_by"), ["text", "text"])
    # (On a recompile the stored document, defaults included, is kept as it was.)
    db.execute(plan, [mapping if recompile else json.dumps(full), json.dumps(compiled_json)])
    db.execute("SELECT recvector._generate_mapped()")

    advice = index_advice(db, full)
    for a in advice:
        db.notice(f"recvector: {a['column']} has no index: {a['why']}", hint=a["sql"])
    if agg["capture"] == "deferred":
        db.notice("recvector: capture is deferred: captured interactions count only once "
                    "recvector.process_queue() has folded them",
                    hint="Schedule it with pg_cron or run `recvector worker`; SELECT * FROM recvector.status() "
                         "shows what is pending.")

    # Auto-logging triggers whose source is gone or moved are removed.
    removed: list[str] = []
    trig = db.execute("SELECT source, table_oid::text AS t FROM recvector.triggers ORDER BY source")
    for row in trig:
        src = compiled.sources.get(row["source"])
        if src is None or same_table(db, src["table"], row["t"]) is False:
            plan = db.prepare("SELECT recvector.disable_auto_logging($1) AS r", ["text"])
            removed.extend(r["r"] for r in db.execute(plan, [row["source"]]))
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


def grant_definer(db: Any, tables: list[str], previously: list[str]) -> list[str]:
    """SELECT on the mapped tables (and USAGE on their schemas) for the role RecVector's SECURITY
    DEFINER functions run as, which has no other privilege on the application's data; revoked from
    tables an earlier mapping named and this one does not. Returns the tables granted."""
    exists = db.execute(db.prepare("SELECT to_regrole($1) IS NOT NULL AS ok", ["text"]), [DEFINER_ROLE])[0]["ok"]
    if not exists:  # a plain-SQL install made by a non-superuser has no definer role
        return []
    granted = []
    for name in tables:
        ref = TableRef.parse(name)
        db.execute(f"GRANT USAGE ON SCHEMA {qi(ref.schema)} TO {qi(DEFINER_ROLE)}")
        db.execute(f"GRANT SELECT ON TABLE {ref.sql} TO {qi(DEFINER_ROLE)}")
        granted.append(str(ref))
    for name in sorted(set(previously) - set(granted)):
        ref = TableRef.parse(name)
        if db.execute(db.prepare("SELECT to_regclass($1) IS NOT NULL AS ok", ["text"]), [ref.sql])[0]["ok"]:
            db.execute(f"REVOKE SELECT ON TABLE {ref.sql} FROM {qi(DEFINER_ROLE)}")
    return granted


_HAS_LEADING_INDEX = (
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a "
    "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
    "WHERE i.indrelid = pg_catalog.format('%I.%I', $1::text, $2::text)::regclass AND a.attname = $3) AS ok")


def index_advice(db: Any, doc: dict[str, Any]) -> list[dict[str, str]]:
    """Columns the serving path looks rows up by that no index leads with. RecVector never creates
    indexes on the application's tables; it says which one would help."""
    plan = db.prepare(_HAS_LEADING_INDEX, ["text", "text", "text"])
    wanted: list[tuple[str, str, str]] = []
    for src in doc["interactions"]:
        wanted.append((src["table"], src["user_column"], "reading a user's history scans the whole table"))
        for hop in src.get("path", []):
            wanted.append((hop["table"], hop["match"], "each interaction's join path scans the table"))
    out = []
    for table, column, why in wanted:
        schema, _, name = table.partition(".") if "." in table else ("public", "", table)
        if not db.execute(plan, [schema, name, column])[0]["ok"]:
            ref = f"{qi(schema)}.{qi(name)}"
            out.append({"column": f"{schema}.{name}.{column}", "why": why,
                        "sql": f"CREATE INDEX ON {ref} ({qi(column)});"})
    return out


def same_table(db: Any, table: str, regclass_text: str) -> bool:
    schema, _, name = table.partition(".")
    plan = db.prepare("SELECT $1::regclass = format('%I.%I', $2::text, $3::text)::regclass AS same",
                        ["text", "text", "text"])
    return bool(db.execute(plan, [regclass_text, schema, name])[0]["same"])


def recompile(db: Any) -> dict[str, Any]:
    """Compile the loaded mapping again with this version (run by every install and update of the
    extension): new checks and SQL apply at once, and the definer role gets its grants."""
    rows = db.execute("SELECT document::text AS d FROM recvector.mapping WHERE id = 1")
    if not rows.nrows():
        return {"recompiled": False}
    summary = apply_mapping(db, rows[0]["d"], allow_dimension_change=True, recompile=True)
    return {"recompiled": True, **summary}


__all__ = ["apply_mapping", "recompile", "grant_definer", "index_advice", "DEFINER_ROLE"]
