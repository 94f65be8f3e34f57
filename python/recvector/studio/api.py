"""What the studio's page asks the database, as plain functions over a :class:`recvector.client.Client`.

* :func:`catalog` — tables, columns (type, nullability), primary and foreign keys, from pg_catalog;
* :func:`validate` — the very validator ``recvector.set_schema`` runs (in the database with the
  extension, here with a plain-SQL install), problems by JSON path;
* :func:`current_mapping`, :func:`diff`, :func:`apply` — load, compare, and apply with set_schema;
* :func:`preview_user`, :func:`preview_entity` — recent interactions, recommendations with their
  explanations, similar entities: the real extension's answers.
"""
from __future__ import annotations

import difflib
import json
from typing import Any

from ..client import Client
from ..outside import to_psycopg

_CATALOG = """
SELECT n.nspname, c.relname, c.relkind::text,
       coalesce(obj_description(c.oid, 'pg_class'), ''),
       (SELECT coalesce(json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                                                  'nullable', NOT a.attnotnull) ORDER BY a.attnum), '[]')
        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
       (SELECT coalesce(json_agg(a.attname ORDER BY k.ord), '[]')
        FROM pg_constraint p, unnest(p.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
        WHERE p.conrelid = c.oid AND p.contype = 'p'),
       -- Foreign keys: the table's own, and for a partitioned table those declared on most of its
       -- partitions rather than on it (Pagila's payment: on each monthly partition but the newest,
       -- empty one), which the diagram and the suggestions treat as the parent's.
       (SELECT coalesce(json_agg(json_build_object('columns', k.cols, 'references', k.ref, 'referenced_columns', k.refcols)
                                 ORDER BY k.name), '[]')
        FROM (SELECT min(d.conname) AS name, d.cols, d.ref, d.refcols
              FROM (SELECT f.conname, f.conrelid, f.conrelid = c.oid AS own,
                           (SELECT jsonb_agg(a.attname ORDER BY k.ord) FROM unnest(f.conkey) WITH ORDINALITY AS k(attnum, ord)
                            JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.attnum) AS cols,
                           (SELECT rn.nspname || '.' || rc.relname FROM pg_class rc
                            JOIN pg_namespace rn ON rn.oid = rc.relnamespace WHERE rc.oid = f.confrelid) AS ref,
                           (SELECT jsonb_agg(a.attname ORDER BY k.ord) FROM unnest(f.confkey) WITH ORDINALITY AS k(attnum, ord)
                            JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.attnum) AS refcols
                    FROM pg_constraint f
                    WHERE f.contype = 'f'
                      AND (f.conrelid = c.oid
                           OR (c.relkind = 'p' AND f.conparentid = 0
                               AND f.conrelid IN (SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = c.oid)))) AS d
              GROUP BY d.cols, d.ref, d.refcols
              HAVING bool_or(d.own)
                  OR 2 * count(DISTINCT d.conrelid) > (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = c.oid)) AS k),
       coalesce(c.reltuples, 0)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'recvector') AND n.nspname !~ '^pg_'
  AND NOT c.relispartition
  AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')
ORDER BY 1, 2
"""

_KINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}


def catalog(client: Client) -> dict[str, Any]:
    """Every table the connected role can read (RecVector's own schema left out), with foreign keys
    as edges for the diagram."""
    tables, edges = [], []
    for schema, name, kind, comment, columns, pk, fks, rows in client.rows(_CATALOG):
        qualified = f"{schema}.{name}"
        tables.append({"id": qualified, "schema": schema, "name": name, "kind": _KINDS.get(kind, kind),
                       "comment": comment, "columns": columns, "primary_key": pk, "estimated_rows": max(rows, 0)})
        for fk in fks:
            edges.append({"from": qualified, "columns": fk["columns"], "to": fk["references"],
                          "to_columns": fk["referenced_columns"]})
    return {"tables": tables, "foreign_keys": edges}


def validate(client: Client, mapping: Any) -> list[dict[str, str]]:
    """The problems ``recvector.set_schema`` would report, each with its JSON path; [] when valid."""
    text = mapping if isinstance(mapping, str) else json.dumps(mapping)
    return [{"path": p, "problem": m} for p, m in client.validate_schema(text)]


def current_mapping(client: Client) -> dict[str, Any] | None:
    rows = client.rows("SELECT document FROM recvector.mapping WHERE id = 1")
    return rows[0][0] if rows else None


def _canonical(value: Any) -> Any:
    """JSON as written by either side: 1.0 and 1 are the same number (JavaScript writes 1)."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _pretty(doc: Any) -> list[str]:
    if not doc:
        return []
    return json.dumps(_canonical(doc), indent=2, sort_keys=True, ensure_ascii=False).splitlines(keepends=True)


def diff(client: Client, mapping: dict[str, Any]) -> dict[str, Any]:
    """A unified diff of the loaded mapping against ``mapping`` (both pretty-printed, keys sorted)."""
    current = current_mapping(client)
    lines = list(difflib.unified_diff(_pretty(current), _pretty(mapping), "loaded mapping", "this mapping"))
    return {"loaded": current is not None, "changed": bool(lines) or current is None, "diff": "".join(lines)}


def apply(client: Client, mapping: dict[str, Any]) -> dict[str, Any]:
    """``recvector.set_schema``: validates again, writes nothing if anything is wrong."""
    return client.set_schema(mapping)


def describe(client: Client, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Feature values of the given entities (the mapping's compiled entity query), for labels."""
    rows = client.rows("SELECT document, compiled ->> 'entities_by_id' FROM recvector.mapping WHERE id = 1")
    if not rows or not ids:
        return {}
    doc, query = rows[0]
    names = [f["name"] for f in doc["entities"]["features"]]
    out: dict[str, dict[str, Any]] = {}
    for row in client.rows(to_psycopg(query), {"p1": ids}):
        out[row[0]] = {n: (v if isinstance(v, (str, int, float, bool, list)) or v is None else str(v))
                       for n, v in zip(names, row[1:])}
    return out


def preview_user(client: Client, user_id: str, k: int = 10) -> dict[str, Any]:
    history = client.rows(
        "SELECT h.entity_id, h.kind, h.weight, h.occurred_at::text FROM recvector._mapped_history("
        "(SELECT compiled -> 'params' FROM recvector.mapping), %(u)s, 20, "
        "recvector._id_or_null(%(u)s, (SELECT compiled ->> 'user_id_type' FROM recvector.mapping)), NULL) AS h",
        {"u": user_id})
    profile = client.rows("SELECT embedding IS NOT NULL, interaction_count_since_update, last_updated::text "
                           "FROM recvector.rec_user_profiles WHERE user_id = %s", (user_id,))
    recs = client.explain(user_id, k) if profile and profile[0][0] else [
        {"rank": i + 1, "entity_id": r.entity_id, "score": r.score, "because": []}
        for i, r in enumerate(client.recommend(user_id, k))]
    labels = describe(client, sorted({e for e, *_ in history} | {r["entity_id"] for r in recs}))
    return {
        "user_id": user_id,
        "labels": labels,
        "profile": ({"has_vector": profile[0][0], "interactions_since_update": profile[0][1], "last_updated": profile[0][2]}
                    if profile else None),
        "recent": [{"entity_id": e, "kind": k_, "weight": w, "at": t} for e, k_, w, t in history],
        "recommendations": recs,
        "cold_start": not (profile and profile[0][0]),
    }


def preview_entity(client: Client, entity_id: str, k: int = 10) -> dict[str, Any]:
    similar = [{"entity_id": r.entity_id, "score": r.score} for r in client.similar(entity_id, k)]
    return {"entity_id": entity_id, "similar": similar,
            "labels": describe(client, [entity_id] + [s["entity_id"] for s in similar])}
