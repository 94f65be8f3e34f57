"""Keeping a Chroma collection in step with the entity vectors (``recvector.chroma_sync``).

pgvector's HNSW index serves RecVector itself; a team that already runs Chroma gets the same
vectors there, with the entity's composed text as the document and its features as metadata.

* A sync pushes what changed since the target's *watermark* (``recvector.chroma_targets``) and
  deletes what was deleted since (``recvector.entity_tombstones``, filled by a trigger on the
  vectors table). The first sync of a target, ``full_sync => true`` and a collection that was
  re-created behind RecVector's back push everything and delete every id Chroma has that
  PostgreSQL does not.
* The new watermark is taken *before* the changes are read: the start of the oldest transaction
  still running, or now. A change made by a transaction that commits after the read therefore has
  a timestamp at or after the new watermark and is sent by the next sync; nothing is skipped.
  Changes can be sent twice; upserts and deletes by id make that harmless.
* Every call to Chroma is retried with backoff; a sync that still fails raises, its transaction
  rolls back, and the watermark stays where it was, so the next call sends the lost part again.

Runs wherever the ``plpy`` interface is: inside PostgreSQL, or over psycopg from the CLI.
"""
from __future__ import annotations

import json
import math
import re
import time
import urllib.parse
from decimal import Decimal
from typing import Any, Callable, Iterator, Mapping, Sequence

from . import __version__, waiting
from .errors import APICallError, ArgumentError, ChromaError, NotConfiguredError
from .storing import loaded, vector_dimensions
from .providers.http import RetryStats, call_with_retries, request_json, resolve_api_key
from .text import compose

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
DEFAULT_BATCH = 1000
PAGE = 5000


class ChromaClient:
    """The part of Chroma's HTTP API v2 a sync needs (``/api/v2/tenants/{t}/databases/{d}/...``)."""

    def __init__(self, url: str, *, tenant: str = "default_tenant", database: str = "default_database",
                 token: str | None = None, timeout: float = 30.0, max_retries: int = 5,
                 base_delay: float = 0.5, max_delay: float = 10.0,
                 sleep: Callable[[float], None] = waiting.sleep) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ArgumentError(f"url must be an http:// or https:// address of a Chroma server, got {url!r}",
                                 hint="For example 'http://127.0.0.1:8000'.")
        self.url = url.rstrip("/")
        self.base = (f"{self.url}/api/v2/tenants/{urllib.parse.quote(tenant, safe='')}"
                     f"/databases/{urllib.parse.quote(database, safe='')}")
        self.headers = {"x-chroma-token": token} if token else {}
        self.timeout = timeout
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.stats = RetryStats()

    def _call(self, method: str, url: str, body: Any = None) -> Any:
        return call_with_retries(lambda: request_json("chroma", method, url, body, self.headers, self.timeout),
                                 max_retries=self.max_retries, base_delay=self.base_delay,
                                 max_delay=self.max_delay, stats=self.stats, sleep=self.sleep)

    def max_batch_size(self) -> int:
        doc = self._call("GET", f"{self.url}/api/v2/pre-flight-checks")
        return int(doc.get("max_batch_size") or DEFAULT_BATCH) if isinstance(doc, dict) else DEFAULT_BATCH

    def get_or_create(self, name: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"{self.base}/collections",
                          {"name": name, "configuration": {"hnsw": {"space": "cosine"}},
                           "metadata": dict(metadata), "get_or_create": True})

    def collection(self, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", f"{self.base}/collections/{urllib.parse.quote(name, safe='')}")
        except APICallError as e:
            if e.status == 404:
                return None
            raise

    def delete_collection(self, name: str) -> bool:
        try:
            self._call("DELETE", f"{self.base}/collections/{urllib.parse.quote(name, safe='')}")
            return True
        except APICallError as e:
            if e.status == 404:
                return False
            raise

    def upsert(self, cid: str, ids: list[str], embeddings: list[list[float]],
               metadatas: list[dict[str, Any]], documents: list[str | None] | None) -> None:
        body: dict[str, Any] = {"ids": ids, "embeddings": embeddings, "metadatas": metadatas}
        if documents is not None:
            body["documents"] = documents
        self._call("POST", f"{self.base}/collections/{cid}/upsert", body)

    def delete(self, cid: str, ids: list[str]) -> None:
        if ids:
            self._call("POST", f"{self.base}/collections/{cid}/delete", {"ids": ids})

    def count(self, cid: str) -> int:
        return int(self._call("GET", f"{self.base}/collections/{cid}/count"))

    def get(self, cid: str, *, ids: list[str] | None = None, include: Sequence[str] = (),
            limit: int | None = None, offset: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"include": list(include)}
        if ids is not None:
            body["ids"] = ids
        if limit is not None:
            body.update(limit=limit, offset=offset or 0)
        return self._call("POST", f"{self.base}/collections/{cid}/get", body)

    def all_ids(self, cid: str) -> Iterator[str]:
        offset = 0
        while True:
            page = self.get(cid, limit=PAGE, offset=offset)["ids"]
            yield from page
            if len(page) < PAGE:
                return
            offset += len(page)

    def query(self, cid: str, embedding: Sequence[float], n: int) -> list[tuple[str, float]]:
        doc = self._call("POST", f"{self.base}/collections/{cid}/query",
                         {"query_embeddings": [list(embedding)], "n_results": n, "include": ["distances"]})
        return list(zip(doc["ids"][0], doc["distances"][0]))


# --------------------------------------------------------------------------------------------

def _check_name(value: str | None, what: str) -> str:
    if value is None or not _NAME.match(value) or ".." in value:
        raise ArgumentError(f"{what} {value!r} is not a valid Chroma name",
                             hint="3-512 characters from [a-zA-Z0-9._-], starting and ending with a letter or digit.")
    return value


def _metadata_value(v: Any) -> Any:
    """A feature value as Chroma metadata (str, int, float, bool, or a list of one of them)."""
    if v is None:
        return None
    if isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Decimal):
        return float(v) if v.is_finite() else None
    if isinstance(v, list):
        items = [_metadata_value(x) for x in v if x is not None]
        items = [x for x in items if x is not None]
        if not items:
            return None
        if all(isinstance(x, str) for x in items) or all(isinstance(x, bool) for x in items):
            return items
        if all(isinstance(x, int | float) and not isinstance(x, bool) for x in items):
            return [float(x) for x in items] if any(isinstance(x, float) for x in items) else items
        return [str(x) for x in items]
    return str(v)


TOKEN_ENV = re.compile(r"^RECVECTOR_[A-Z0-9_]{1,100}$")


def _token(token_env: str | None) -> str | None:
    """The Chroma token from the server's environment variable ``token_env``, which must start
    with RECVECTOR_: a caller may not have any variable of the server sent to any URL."""
    if not token_env:
        return None
    if not TOKEN_ENV.match(token_env):
        raise ArgumentError(f"token_env must name an environment variable starting with RECVECTOR_, got {token_env!r}",
                            hint="Put the Chroma token in e.g. RECVECTOR_CHROMA_TOKEN in the server's environment "
                                 "(or the CLI's, outside the database) and pass that name.")
    return resolve_api_key({"api_key_env": token_env}, "chroma", token_env)


def _dimensions(plpy: Any) -> int | None:
    return vector_dimensions(plpy, "recvector.entity_vectors")


class _Enricher:
    """Documents (the composed entity text) and metadata (feature values) for a batch of ids, read
    from the application's entity table with the mapping's compiled query."""

    def __init__(self, plpy: Any, doc: dict[str, Any], compiled: dict[str, Any], documents: bool) -> None:
        self.plpy = plpy
        self.features = doc["entities"]["features"]
        self.documents = documents
        self.plan = plpy.prepare(compiled["entities_by_id"], ["text[]"])

    def __call__(self, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        for r in self.plpy.execute(self.plan, [ids]):
            values = [r[f"f{i}"] for i in range(len(self.features))]
            meta = {}
            for f, v in zip(self.features, values):
                mv = _metadata_value(v)
                if mv is not None:
                    meta[f["name"]] = mv
            out[r["entity_id"]] = (compose(self.features, values) if self.documents else "", meta)
        return out


def _new_watermark(plpy: Any) -> str:
    """The start of the oldest transaction still running in this database (a change it makes will
    carry a timestamp at or after it), or now if there is none. Other roles' sessions are visible
    only to superusers and members of pg_read_all_stats: without that, a watermark could pass a
    change still being written, so the sync refuses to run."""
    if not plpy.execute("SELECT pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS ok")[0]["ok"]:
        raise ChromaError("recvector.chroma_sync must see every session's open transaction to set a safe watermark",
                          hint="Run it as a superuser, or GRANT pg_read_all_stats TO the role that runs it.")
    return plpy.execute(
        "SELECT least(clock_timestamp(), (SELECT min(xact_start) FROM pg_catalog.pg_stat_activity "
        "WHERE pid <> pg_catalog.pg_backend_pid() AND datname = current_database() "
        "AND xact_start IS NOT NULL))::text AS w")[0]["w"]


def sync(plpy: Any, url: str, collection: str, *, full_sync: bool = False, batch_size: int | None = None,
         tenant: str = "default_tenant", database: str = "default_database", recreate: bool = False,
         documents: bool = True, token_env: str | None = None, max_retries: int = 5,
         timeout_seconds: float = 30.0) -> dict[str, Any]:
    started = time.monotonic()
    _check_name(collection, "collection")
    _check_name(tenant, "tenant")
    _check_name(database, "database")
    if batch_size is not None and not 1 <= batch_size <= 100_000:
        raise ArgumentError(f"batch_size must be between 1 and 100000, got {batch_size}",
                             hint="Leave it NULL to use the server's maximum batch size (at most 1000).")
    if max_retries is None or max_retries < 0:
        raise ArgumentError(f"max_retries must be 0 or more, got {max_retries}")
    doc, compiled = loaded(plpy)
    dims = _dimensions(plpy)
    if dims is None:
        raise NotConfiguredError()
    client = ChromaClient(url, tenant=tenant, database=database, token=_token(token_env),
                          timeout=float(timeout_seconds), max_retries=int(max_retries))

    key = [client.url, tenant, database, collection]
    plpy.execute(plpy.prepare(
        "INSERT INTO recvector.chroma_targets (url, tenant, database, collection) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING", ["text"] * 4), key)
    target = plpy.execute(plpy.prepare(
        "SELECT collection_id, watermark::text AS watermark FROM recvector.chroma_targets "
        "WHERE url = $1 AND tenant = $2 AND database = $3 AND collection = $4 FOR UPDATE", ["text"] * 4), key)[0]
    new_watermark = _new_watermark(plpy)

    size = min(batch_size or DEFAULT_BATCH, client.max_batch_size())
    recreated = client.delete_collection(collection) if recreate else False
    col = client.get_or_create(collection, {"created_by": f"recvector {__version__}"})
    space = ((col.get("configuration_json") or {}).get("hnsw") or {}).get("space") or "l2"
    if space != "cosine":
        raise ChromaError(f"Chroma collection {collection!r} compares vectors by {space}, RecVector by cosine",
                          detail=f"collection_id={col.get('id')}",
                          hint="Sync into another collection, or pass recreate => true to drop and rebuild this one.")
    if col.get("dimension") not in (None, dims):
        raise ChromaError(f"Chroma collection {collection!r} holds {col['dimension']}-dimensional vectors, "
                          f"the entity vectors have {dims}",
                          detail=f"collection_id={col.get('id')}",
                          hint="After a model change, pass recreate => true to drop and rebuild the collection.")
    cid = str(col["id"])
    mode = "incremental"
    if full_sync or recreate or target["watermark"] is None or target["collection_id"] != cid:
        mode = "full"

    enrich = _Enricher(plpy, doc, compiled, documents)
    if mode == "full":
        cursor = plpy.cursor(
            "SELECT entity_id, embedding::text AS e, model, fingerprint, embedded_at::text AS t "
            "FROM recvector.entity_vectors ORDER BY entity_id")
    else:
        cursor = plpy.cursor(plpy.prepare(
            "SELECT entity_id, embedding::text AS e, model, fingerprint, embedded_at::text AS t "
            "FROM recvector.entity_vectors WHERE embedded_at >= $1::timestamptz ORDER BY entity_id", ["text"]),
            [target["watermark"]])
    upserted = batches = 0
    while True:
        rows = cursor.fetch(size)
        if not rows:
            break
        ids = [r["entity_id"] for r in rows]
        extra = enrich(ids)
        metadatas = []
        for r in rows:
            meta = {"model": r["model"], "fingerprint": r["fingerprint"], "embedded_at": r["t"]}
            meta.update(extra.get(r["entity_id"], ("", {}))[1])
            metadatas.append(meta)
        docs = [extra[i][0] if i in extra else None for i in ids] if documents else None
        client.upsert(cid, ids, [json.loads(r["e"]) for r in rows], metadatas, docs)
        upserted += len(rows)
        batches += 1

    if mode == "full":
        live = {r["entity_id"] for r in plpy.execute("SELECT entity_id FROM recvector.entity_vectors")}
        gone = sorted(i for i in client.all_ids(cid) if i not in live)
    else:
        gone = [r["entity_id"] for r in plpy.execute(plpy.prepare(
            "SELECT t.entity_id FROM recvector.entity_tombstones AS t WHERE t.deleted_at >= $1::timestamptz "
            "AND NOT EXISTS (SELECT 1 FROM recvector.entity_vectors AS v WHERE v.entity_id = t.entity_id) "
            "ORDER BY 1", ["text"]), [target["watermark"]])]
    for start in range(0, len(gone), size):
        client.delete(cid, gone[start:start + size])
        batches += 1

    result: dict[str, Any] = {
        "collection": collection, "collection_id": cid, "mode": mode, "upserted": upserted,
        "deleted": len(gone), "batches": batches, "batch_size": size, "recreated": recreated,
        "previous_watermark": target["watermark"], "watermark": new_watermark,
        "chroma_calls": client.stats.as_dict(), "seconds": round(time.monotonic() - started, 3),
    }
    plpy.execute(plpy.prepare(
        "UPDATE recvector.chroma_targets SET collection_id = $5, watermark = $6::timestamptz, "
        "last_sync_at = now(), last_result = $7::jsonb "
        "WHERE url = $1 AND tenant = $2 AND database = $3 AND collection = $4", ["text"] * 7),
        key + [cid, new_watermark, json.dumps(result)])
    plpy.execute("DELETE FROM recvector.entity_tombstones WHERE deleted_at < "
                 "(SELECT min(coalesce(watermark, '-infinity')) FROM recvector.chroma_targets)")
    return result


def verify(plpy: Any, url: str, collection: str, *, sample: int = 100, tenant: str = "default_tenant",
           database: str = "default_database", token_env: str | None = None,
           tolerance: float = 1e-6) -> dict[str, Any]:
    """Counts on both sides, and a random sample of vectors fetched back from Chroma and compared."""
    _check_name(collection, "collection")
    if sample is None or not 0 <= sample <= 100_000:
        raise ArgumentError(f"sample must be between 0 and 100000, got {sample}")
    client = ChromaClient(url, tenant=tenant, database=database, token=_token(token_env))
    col = client.collection(collection)
    if col is None:
        raise ChromaError(f"Chroma has no collection {collection!r} in {tenant}/{database}",
                          hint="Create it with recvector.chroma_sync(url, collection).")
    cid = str(col["id"])
    pg_count = int(plpy.execute("SELECT count(*) AS n FROM recvector.entity_vectors")[0]["n"])
    chroma_count = client.count(cid)
    rows = plpy.execute(plpy.prepare(
        "SELECT entity_id, embedding::text AS e FROM recvector.entity_vectors ORDER BY random() LIMIT $1",
        ["int4"]), [sample])
    ours = {r["entity_id"]: json.loads(r["e"]) for r in rows}
    theirs: dict[str, list[float]] = {}
    ids = list(ours)
    for start in range(0, len(ids), 1000):
        got = client.get(cid, ids=ids[start:start + 1000], include=["embeddings"])
        theirs.update(zip(got["ids"], got.get("embeddings") or []))
    missing = sorted(set(ours) - set(theirs))
    worst = 0.0
    mismatched = []
    for eid, vec in ours.items():
        other = theirs.get(eid)
        if other is None:
            continue
        diff = max((abs(a - b) for a, b in zip(vec, other)), default=0.0) if len(vec) == len(other) else math.inf
        worst = max(worst, diff)
        if diff > tolerance:
            mismatched.append(eid)
    return {
        "collection": collection, "collection_id": cid, "postgres_count": pg_count, "chroma_count": chroma_count,
        "counts_match": pg_count == chroma_count, "sampled": len(ours), "missing": missing[:20],
        "missing_count": len(missing), "mismatched": sorted(mismatched)[:20], "mismatched_count": len(mismatched),
        "max_abs_difference": worst if math.isfinite(worst) else None,
        "in_step": pg_count == chroma_count and not missing and not mismatched,
    }
