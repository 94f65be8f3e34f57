"""Bootstrapping: embed every entity whose text or model changed, drop vectors of entities gone,
recount the stats and build the profiles; sync (embeddings only) and re-embed (everything again)."""
from __future__ import annotations

import time
from typing import Any

from .applying import apply_mapping
from .neighbors import rebuild as rebuild_neighbors
from .errors import RecVectorError
from .spi import SAFE_SEARCH_PATH, count
from .storing import delete_vectors, embed_and_store, loaded, model_for, scan


def bootstrap(db: Any, batch_size: int | None, max_entities: int | None, commit: bool,
               profiles: bool = True) -> dict[str, Any]:
    started = time.monotonic()
    doc, compiled = loaded(db)
    if batch_size is not None and not 1 <= batch_size <= 100000:
        raise RecVectorError(f"batch_size must be between 1 and 100000, got {batch_size}",
                             hint="Leave it NULL to use embedding.batch_size from the mapping.")
    if max_entities is not None and max_entities < 0:
        raise RecVectorError(f"max_entities must not be negative, got {max_entities}")
    config, concurrency = _with_concurrency(db, doc["embedding"])
    model = model_for(config)
    size = batch_size or int(config.get("batch_size") or model.max_batch_size)
    if concurrency and config.get("provider", "local") != "local":
        # N requests in flight need N requests' worth of entities per batch (each batch commits).
        size = batch_size or min(100000, size * concurrency)
        db.notice(f"recvector: {concurrency} requests at a time"
                  + (f", at most {config['max_requests_per_second']:g} a second" if config.get("max_requests_per_second") else "")
                  + f", {size} entities per batch")
    elif concurrency:
        db.notice("recvector: the local model embeds in this process (its own threads); --concurrency applies to "
                  "hosted providers")

    existing = {r["entity_id"]: r["fingerprint"]
                for r in db.execute("SELECT entity_id, fingerprint FROM recvector.entity_vectors")}
    live, todo = scan(db.cursor(compiled["entities"]), doc["entities"]["features"], model, existing)
    todo.sort(key=lambda t: len(t[1]))  # similar lengths share a batch: less padding for the model
    gone = sorted(set(existing) - live)
    delete_vectors(db, gone)
    up_to_date = len(live) - len(todo)
    db.notice(f"recvector: {len(live)} entities: {up_to_date} up to date, {len(todo)} to embed, "
                f"{len(gone)} removed (model {model.model_id})")
    todo_now = todo if max_entities is None else todo[:max_entities]
    calls = getattr(model, "stats", None)
    before = calls.as_dict() if calls else None
    done = embed_and_store(db, model, todo_now, size, commit, progress=True)

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
        db.notice(f"recvector: {remaining} entities left to embed; profiles are built once all are embedded")
        result.update(entity_stats=None, profiles=None)
    else:
        stats = db.execute("SELECT recvector.rebuild_entity_stats() AS n")[0]["n"]
        db.notice(f"recvector: entity stats for {stats} entities")
        # Neighbours before profiles: a profile keeps its collaborative candidates.
        neighbors = rebuild_neighbors(db)
        db.notice(f"recvector: {neighbors['method']} neighbours for {neighbors['neighbors']} entities")
        profiles = db.execute("SELECT recvector.rebuild_profiles() AS n")[0]["n"]
        db.notice(f"recvector: profiles for {profiles} users")
        result.update(entity_stats=stats, profiles=profiles,
                      neighbors={"method": neighbors["method"], "entities": neighbors["neighbors"]})
        if commit:
            db.commit()
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def _with_concurrency(db: Any, config: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """The embedding section with the session's ``recvector.embed_concurrency`` (set by
    ``recvector bootstrap --concurrency N``) as its max_concurrency, for this run only."""
    raw = db.execute("SELECT pg_catalog.current_setting('recvector.embed_concurrency', true) AS c")[0]["c"]
    if not raw:
        return config, None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if not 1 <= n <= 64:
        raise RecVectorError(f"recvector.embed_concurrency must be an integer between 1 and 64, got {raw!r}",
                             hint="recvector bootstrap --concurrency N sets it for its session; RESET recvector.embed_concurrency.")
    return {**config, "max_concurrency": n}, n


def bootstrap_resumable(db: Any, batch_size: int | None) -> dict[str, Any]:
    """The bootstrap committing after every batch. It runs from a procedure, which cannot carry a
    fixed search_path (it commits): the same safe path is set for its run, the caller's put back after."""
    old = db.execute("SELECT pg_catalog.current_setting('search_path') AS p")[0]["p"]
    plan = db.prepare("SELECT pg_catalog.set_config('search_path', $1, false)", ["text"])
    db.execute(plan, [SAFE_SEARCH_PATH])
    try:
        return bootstrap(db, batch_size, None, True)
    finally:
        db.execute(plan, [old])


def sync(db: Any, commit: bool = False) -> dict[str, Any]:
    """Embed only entities whose composed text or model changed; delete vectors of entities gone."""
    return bootstrap(db, None, None, commit, profiles=False)


def reembed(db: Any, mapping: str | None = None) -> dict[str, Any]:
    """Load the given mapping if any (a new model or size is allowed), drop every vector, embed again."""
    if mapping is not None:
        apply_mapping(db, mapping, allow_dimension_change=True)
    n = count(db, "SELECT count(*) AS n FROM recvector.entity_vectors")
    db.warning(f"recvector: re-embedding every entity ({n} stored vectors are deleted first)")
    db.execute("DELETE FROM recvector.entity_vectors")
    db.execute("UPDATE recvector.rec_user_profiles SET embedding = NULL, accumulated_weight = 0 "
               "WHERE embedding IS NOT NULL")
    return bootstrap(db, None, None, False)


__all__ = ["bootstrap", "bootstrap_resumable", "sync", "reembed"]
