"""Entities, their text and their vectors: reading the mapped entity table, composing each entity's
text, embedding what changed and storing the vectors (recvector.entity_vectors)."""
from __future__ import annotations

import json
import time
from typing import Any

from .errors import NotConfiguredError, RecVectorError
from .providers import EmbeddingModel, get_embedding_model
from .spi import vector_literal, vector_type
from .text import compose, fingerprint


def loaded(db: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The loaded mapping (document, compiled), after checking that the mapped columns still have
    the types it was compiled for (recvector._check_columns)."""
    rows = db.execute("SELECT document::text AS d, compiled::text AS c FROM recvector.mapping WHERE id = 1")
    if not rows.nrows():
        raise NotConfiguredError()
    db.execute("SELECT recvector._check_columns(compiled -> 'columns') FROM recvector.mapping WHERE id = 1")
    return json.loads(rows[0]["d"]), json.loads(rows[0]["c"])


_MODELS: dict[str, EmbeddingModel] = {}


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def model_for(config: dict[str, Any]) -> EmbeddingModel:
    """The embedding model of a mapping's ``embedding`` section (one instance per configuration)."""
    key = json.dumps(config, sort_keys=True)
    if key not in _MODELS:
        _MODELS[key] = get_embedding_model(config)
    return _MODELS[key]


def vector_dimensions(db: Any, table: str) -> int | None:
    """D of a table's ``embedding vector(D)`` column; None while it is an untyped ``vector``."""
    plan = db.prepare(
        "SELECT CASE WHEN atttypmod > 0 THEN atttypmod END AS d FROM pg_catalog.pg_attribute "
        "WHERE attrelid = $1::regclass AND attname = 'embedding'", ["text"])
    d = db.execute(plan, [table])[0]["d"]
    return int(d) if d is not None else None


def embed_texts(db: Any, texts: list[str]) -> list[str]:
    """Vectors (as pgvector text) for ad-hoc texts, with the mapping's provider."""
    doc, _ = loaded(db)
    return [vector_literal(v) for v in model_for(doc["embedding"]).embed(list(texts), purpose="query")]


_UPSERT = ("INSERT INTO recvector.entity_vectors (entity_id, embedding, fingerprint, model) "
           "SELECT i, e::{vector}, f, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(i, e, f) "
           "ON CONFLICT (entity_id) DO UPDATE SET embedding = excluded.embedding, "
           "fingerprint = excluded.fingerprint, model = excluded.model, embedded_at = now()")


def scan(cursor: Any, features: list[dict[str, Any]], model: EmbeddingModel,
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


def embed_and_store(db: Any, model: EmbeddingModel, todo: list[tuple[str, str, str]], size: int,
                    commit: bool, progress: bool) -> int:
    """Embed in batches; each batch is embedded completely (dimensions checked) before it is written."""
    plan = db.prepare(_UPSERT.format(vector=vector_type(db)), ["text[]", "text[]", "text[]", "text"])
    done = 0
    t0 = time.monotonic()
    for start in range(0, len(todo), size):
        batch = todo[start:start + size]
        vectors = model.embed([t for _, t, _ in batch], purpose="document")
        db.execute(plan, [[e for e, _, _ in batch], [vector_literal(v) for v in vectors],
                          [f for _, _, f in batch], model.model_id])
        done += len(batch)
        if commit:
            db.commit()
        if progress:
            rate = done / max(time.monotonic() - t0, 1e-9)
            left = (len(todo) - done) / rate if rate > 0 else 0.0
            bar = "#" * round(20 * done / max(len(todo), 1))
            db.notice(f"recvector: [{bar:<20}] embedded {done}/{len(todo)} entities ({rate:.1f}/s, "
                      f"about {_duration(left)} left)")
    return done


def delete_vectors(db: Any, ids: list[str]) -> None:
    if ids:
        plan = db.prepare("DELETE FROM recvector.entity_vectors WHERE entity_id = ANY($1::text[])", ["text[]"])
        db.execute(plan, [ids])


def refresh_entities(db: Any, entity_ids: list[str] | None) -> dict[str, Any]:
    """Embed the named entities again if their text changed; drop vectors of ids no longer in the table."""
    if entity_ids is None:
        raise RecVectorError("entity_ids must not be NULL", hint="Pass an array of entity ids.")
    ids = sorted({str(i) for i in entity_ids if i is not None})
    doc, compiled = loaded(db)
    model = model_for(doc["embedding"])
    plan = db.prepare("SELECT entity_id, fingerprint FROM recvector.entity_vectors WHERE entity_id = ANY($1::text[])",
                      ["text[]"])
    existing = {r["entity_id"]: r["fingerprint"] for r in db.execute(plan, [ids])}
    try:
        cursor = db.cursor(db.prepare(compiled["entities_by_id"], ["text[]"]), [ids])
        live, todo = scan(cursor, doc["entities"]["features"], model, existing)
    except db.SPIError as e:
        raise RecVectorError(f"entity ids do not fit the entity id type {compiled['entity_id_type']}: {e}",
                             hint="Pass ids as they appear in the mapped entity table.") from None
    gone = sorted(set(ids) - live)
    delete_vectors(db, gone)
    done = embed_and_store(db, model, todo, int(doc["embedding"].get("batch_size") or model.max_batch_size),
                           False, progress=False)
    return {"requested": len(ids), "embedded": done, "up_to_date": len(live) - len(todo),
            "removed": len(gone), "missing": gone}


__all__ = ["loaded", "model_for", "vector_dimensions", "embed_texts", "scan", "embed_and_store", "delete_vectors",
           "refresh_entities"]
