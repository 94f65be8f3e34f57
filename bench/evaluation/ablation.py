"""Ablation study of RecVector on the real anime lists: which sources and settings matter.

Every variant is one call of the extension's own offline evaluation,

    SELECT * FROM recvector.evaluate(10, max_users => 1500, seed => 42, min_positives => 5,
                                     protocol => 'random', ...variant's arguments...,
                                     methods => ARRAY['recvector'])

on the database made by ``--setup`` (the full anime data of examples/anime, loaded without
--holdout, mapped with examples/anime/rec_schema.json and bootstrapped). The first variant
(``defaults``) also runs the baselines (popularity, random, item-kNN, EASE). Variants that need
another mapping (neighbour settings, ratings instead of the list) load it with
``recvector.set_schema`` for their run and load the example's mapping back afterwards; the stored
entity vectors are kept by set_schema when the entity features do not change, which each run checks
(``recvector.sync()`` inside a rolled-back transaction must find every entity up to date).

Paired differences between two RecVector variants: ``evaluate`` returns averages only, so after
each call the script ranks the same users again from the evaluation's temporary tables (left in
the session) with the same production function and arguments, recomputes the same split, and
checks that its mean NDCG equals the one ``evaluate`` returned. When it does, the per-user NDCG
of the variant and of the defaults (same split, same users) give a paired bootstrap interval of the
difference (1,000 resamples of users, seed 0, percentiles 2.5 / 97.5, as evaluate's own). When the
check fails, only the intervals of the two variants can be compared, and the report says so.

    cd /work/main
    .venv/bin/python -m bench.evaluation.ablation --setup                  # database, load, bootstrap (~15 min)
    .venv/bin/python -m bench.evaluation.ablation                          # every variant, then tune
    .venv/bin/python -m bench.evaluation.ablation --variants defaults,lambda1
    .venv/bin/python -m bench.evaluation.ablation --report                 # tables from the saved results

Results are kept (merged by variant) in a JSON file (``--results``, outside the source tree by
default); the Markdown tables are printed on stdout, progress on stderr.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "examples" / "anime" / "rec_schema.json"
LOADER = REPO / "examples" / "anime" / "load_anime.py"
DEFAULT_DSN = "host=127.0.0.1 user=postgres dbname=anime_eval"
DEFAULT_RESULTS = Path("/tmp/recvector_ablation/results.json")
ALL_METHODS = ("recvector", "popularity", "random", "itemknn", "ease")
K = 10
SEED = 42
MIN_POSITIVES = 5
PROTOCOL = "random"
SAVED_VECTORS = "public.saved_vectors"
# Arguments of recvector.evaluate that override the mapping's scoring for one call (evaluation.py).
SCORING_ARGS = ("lambda", "alpha", "beta", "gamma", "candidate_pool")


def log(message: str) -> None:
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Variants
# ------------------------------------------------------------------------------------------------

def with_neighbors(**settings: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The mapping with a ``neighbors`` section (k, method, ...) over the example's."""
    def change(doc: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(doc)
        out.setdefault("neighbors", {}).update(settings)
        return out
    return change


def ratings_instead_of_list(doc: dict[str, Any]) -> dict[str, Any]:
    """Interactions from anime_rating, weight (rating - 5.5) / 4.5, positive from 8 (docs/mapping.md)."""
    out = copy.deepcopy(doc)
    out["interactions"] = [{
        "name": "rating", "table": "public.anime_rating", "user_column": "user_id", "entity_column": "anime_id",
        "weight": {"from_value": {"column": "rating", "center": 5.5, "scale": 4.5, "positive_from": 8}},
    }]
    return out


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    args: dict[str, Any] = field(default_factory=dict)       # named arguments of recvector.evaluate
    mapping: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    mapping_note: str = ""
    methods: tuple[str, ...] = ("recvector",)
    same_split: bool = True                                   # same held-out items as `defaults`


VARIANTS: list[Variant] = [
    Variant("defaults", "defaults (α 0.5, β 0.1, γ 1, λ 0.9, K 3, EASE k 100)", methods=ALL_METHODS),
    Variant("content_k1", "content only (γ 0, β 0), K = 1", {"gamma": 0.0, "beta": 0.0, "interests": 1}),
    Variant("content_k3", "content only (γ 0, β 0), K = 3", {"gamma": 0.0, "beta": 0.0, "interests": 3}),
    Variant("content_pop", "content + popularity (γ 0, β 0.1)", {"gamma": 0.0}),
    Variant("collab_only", "collaborative only (α 0, β 0)", {"alpha": 0.0, "beta": 0.0}),
    Variant("hybrid_k1", "hybrid, K = 1", {"interests": 1}),
    Variant("hybrid_k3", "hybrid, K = 3 (explicit; = defaults)", {"interests": 3}),
    Variant("lambda1", "λ = 1 (no MMR diversification)", {"lambda": 1.0}),
    Variant("nb_k50", "neighbours k = 50 (EASE)", mapping=with_neighbors(k=50), mapping_note='"neighbors": {"k": 50}'),
    Variant("nb_k300", "neighbours k = 300 (EASE)", mapping=with_neighbors(k=300),
            mapping_note='"neighbors": {"k": 300}'),
    Variant("nb_cosine", "neighbours: cosine instead of EASE (k 100)", mapping=with_neighbors(method="cosine"),
            mapping_note='"neighbors": {"method": "cosine"}'),
    Variant("nb_cosine_collab", "cosine neighbours, collaborative only (α 0, β 0)", {"alpha": 0.0, "beta": 0.0},
            mapping=with_neighbors(method="cosine"), mapping_note='"neighbors": {"method": "cosine"}'),
    Variant("ratings", "ratings mapping (from_value centre 5.5, scale 4.5, positive from 8)",
            mapping=ratings_instead_of_list, methods=ALL_METHODS, same_split=False,
            mapping_note='interactions: anime_rating, "weight": {"from_value": {"column": "rating", "center": 5.5, '
                         '"scale": 4.5, "positive_from": 8}}'),
    Variant("ratings_collab", "ratings mapping, collaborative only (α 0, β 0)", {"alpha": 0.0, "beta": 0.0},
            mapping=ratings_instead_of_list, same_split=False, mapping_note="as ratings"),
]
BY_NAME = {v.name: v for v in VARIANTS}
NAMES = [v.name for v in VARIANTS] + ["tune"]


# ------------------------------------------------------------------------------------------------
# Database helpers
# ------------------------------------------------------------------------------------------------

def connect(dsn: str) -> psycopg.Connection[dict[str, Any]]:
    conn = psycopg.connect(dsn, autocommit=True, row_factory=dict_row)
    return conn


def base_mapping() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def set_schema(conn: psycopg.Connection[Any], doc: dict[str, Any]) -> dict[str, Any]:
    row = conn.execute("SELECT recvector.set_schema(%s::jsonb) AS r", [json.dumps(doc)]).fetchone()
    return row["r"]


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def library_fingerprint(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Where the extension's Python library is, its newest file time and a hash of its sources (the
    library can be reinstalled while a study runs; a session keeps the version it imported first)."""
    import hashlib

    where = conn.execute("SELECT recvector._py_library_dir() AS d").fetchone()["d"]
    files = sorted((Path(where) / "recvector").rglob("*.py"))
    if not files:
        return {"dir": where, "readable": False}
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    newest = max(f.stat().st_mtime for f in files)
    return {"dir": where, "sha256": h.hexdigest()[:12],
            "newest": datetime.datetime.fromtimestamp(newest, datetime.timezone.utc).isoformat(timespec="seconds")}


def check_vectors(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Whether the stored vectors are those saved after the bootstrap and are current for the loaded
    mapping: recvector.sync() in a rolled-back transaction must find every entity up to date (a
    2-minute statement timeout stops it should it start embedding)."""
    out: dict[str, Any] = {}
    row = conn.execute(
        f"SELECT (SELECT count(*) FROM recvector.entity_vectors) AS stored, (SELECT count(*) FROM {SAVED_VECTORS}) AS saved, "
        f"(SELECT count(*) FROM recvector.entity_vectors v JOIN {SAVED_VECTORS} s USING (entity_id) "
        " WHERE v.fingerprint = s.fingerprint AND v.embedding = s.embedding) AS same").fetchone()
    out.update(row)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL statement_timeout = '120s'")
            out["sync"] = conn.execute("SELECT recvector.sync() AS r").fetchone()["r"]
    except psycopg.Error as e:
        out["sync_error"] = str(e).strip()
    return out


# ------------------------------------------------------------------------------------------------
# Setup
# ------------------------------------------------------------------------------------------------

def setup(dsn: str) -> dict[str, Any]:
    """Database (dropped if it exists), the full anime data, the extension, the example's mapping,
    bootstrap (embeds 7,390 anime), then the saved copy of the vectors and its check."""
    params = conninfo_to_dict(dsn)
    dbname = str(params.get("dbname") or "anime_eval")
    admin = make_conninfo(dsn, dbname="postgres")
    report: dict[str, Any] = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    t0 = time.monotonic()
    log(f"loading the anime data into {dbname}")
    subprocess.run([sys.executable, str(LOADER), "--dsn", dsn], check=True, cwd=REPO)
    report["load_seconds"] = round(time.monotonic() - t0, 1)
    with connect(dsn) as conn:
        conn.add_notice_handler(lambda d: log(d.message_primary or ""))
        conn.execute("CREATE EXTENSION recvector CASCADE")
        report["set_schema"] = set_schema(conn, base_mapping())
        t0 = time.monotonic()
        log("bootstrap (embeds every anime; several minutes)")
        report["bootstrap"] = conn.execute("SELECT recvector.bootstrap() AS r").fetchone()["r"]
        report["bootstrap_seconds"] = round(time.monotonic() - t0, 1)
    report["saved_vectors"] = save_vectors(dsn)
    return report


def save_vectors(dsn: str) -> dict[str, Any]:
    """public.saved_vectors := the stored vectors; then, in a rolled-back transaction, the vectors
    deleted and copied back from it: sync() must find them all up to date and rec_recommend work."""
    with connect(dsn) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {SAVED_VECTORS}")
        conn.execute(f"CREATE TABLE {SAVED_VECTORS} AS SELECT * FROM recvector.entity_vectors")
        out: dict[str, Any] = {"saved": conn.execute(f"SELECT count(*) AS n FROM {SAVED_VECTORS}").fetchone()["n"]}
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("SET LOCAL statement_timeout = '120s'")
                conn.execute("DELETE FROM recvector.entity_vectors")
                conn.execute(f"INSERT INTO recvector.entity_vectors SELECT * FROM {SAVED_VECTORS}")
                out["copied_back"] = conn.execute("SELECT count(*) AS n FROM recvector.entity_vectors").fetchone()["n"]
                out["sync_after_copy"] = conn.execute("SELECT recvector.sync() AS r").fetchone()["r"]
                user = conn.execute("SELECT min(user_id)::text AS u FROM public.anime_list").fetchone()["u"]
                recs = conn.execute("SELECT count(*) AS n FROM rec_recommend(%s, 10)", [user]).fetchone()["n"]
                out["rec_recommend_rows"] = {user: recs}
        except psycopg.Error as e:
            out["error"] = str(e).strip()
        out["status"] = {k: str(v) for k, v in conn.execute("SELECT * FROM recvector.status()").fetchone().items()}
    return out


# ------------------------------------------------------------------------------------------------
# The evaluation's split and per-user NDCG, recomputed for paired differences
# ------------------------------------------------------------------------------------------------

def _id_key(e: str) -> tuple[int, Any]:
    return (0, int(e)) if e.lstrip("-").isdigit() else (1, e)


def heldout_items(conn: psycopg.Connection[Any], max_users: int | None) -> dict[str, str]:
    """The held-out entity of each evaluated user, as recvector.evaluate draws it (protocol random,
    evaluation.split): users in id order with at least MIN_POSITIVES positive entities (net weight
    > 0 and one positive row), numpy default_rng(SEED).integers over their positives sorted by id."""
    row = conn.execute("SELECT compiled::text AS c FROM recvector.mapping WHERE id = 1").fetchone()
    compiled = json.loads(row["c"])
    query = (f"SELECT t.user_id, t.entity_id FROM ({compiled['all_interactions']}) AS t "
             "GROUP BY t.user_id, t.entity_id HAVING sum(t.weight) > 0 AND bool_or(t.weight > 0)")
    positives: dict[str, list[str]] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        # (the compiled SQL takes its parameters as $1 jsonb: a server-side prepared statement)
        cur.execute("PREPARE rv_ablation_pos(jsonb) AS " + query)
        try:
            # (EXECUTE takes no bind parameters: the jsonb goes as a quoted literal)
            execute = sql.SQL("EXECUTE rv_ablation_pos({}::jsonb)").format(sql.Literal(json.dumps(compiled["params"])))
            for r in cur.execute(execute):
                positives.setdefault(str(r["user_id"]), []).append(str(r["entity_id"]))
        finally:
            cur.execute("DEALLOCATE rv_ablation_pos")
    rng = np.random.default_rng(SEED)
    held: dict[str, str] = {}
    for user in sorted(positives, key=_id_key):
        items = sorted(positives[user], key=_id_key)
        if len(items) < max(MIN_POSITIVES, 2):
            continue
        held[user] = items[int(rng.integers(len(items)))]
        if max_users is not None and len(held) >= max_users:
            break
    return held


def recvector_lists(conn: psycopg.Connection[Any], overrides: dict[str, Any]) -> dict[str, list[str]]:
    """Each evaluated user's top K from the evaluation's temporary tables (still in this session),
    with the production ranking and the same arguments as evaluation.rank_recvector."""
    rows = conn.execute(
        "SELECT p.user_id, array_agg(r.entity_id ORDER BY r.o) AS recs "
        "FROM pg_temp.rv_eval_profiles AS p "
        "CROSS JOIN LATERAL recvector._rank(coalesce(p.interests, CASE WHEN p.embedding IS NOT NULL THEN ARRAY[p.embedding] END), "
        "  p.interest_weights, p.cf_candidates, p.cf_scores, p.seen, %(k)s::integer, recvector._scoring(%(s)s::jsonb, %(k)s::integer), "
        "  %(seed)s::bigint, NULL, 'pg_temp.rv_eval_stats') WITH ORDINALITY AS r(entity_id, score, similarity, "
        "  popularity_term, collaborative_term, exploration_term, mmr_penalty, sources, o) "
        "GROUP BY p.user_id",
        {"k": K, "s": json.dumps({**overrides, "exploration": 0}), "seed": SEED}).fetchall()
    return {r["user_id"]: list(r["recs"] or []) for r in rows}


def ndcg_per_user(lists: dict[str, list[str]], held: dict[str, str]) -> dict[str, float]:
    """NDCG@K with one held-out item: 1 / log2(rank + 1) of the hit, 0 without one."""
    out = {}
    for user, item in held.items():
        recs = lists.get(user, [])[:K]
        out[user] = 1.0 / math.log2(recs.index(item) + 2) if item in recs else 0.0
    return out


def bootstrap_interval(values: np.ndarray, seed: int = 0, n: int = 1000) -> tuple[float, float]:
    """95 % percentile interval of the mean, resampling users (as recvector's evaluation)."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


# ------------------------------------------------------------------------------------------------
# Runs
# ------------------------------------------------------------------------------------------------

def evaluate_sql(args: dict[str, Any], methods: tuple[str, ...], max_users: int | None) -> tuple[str, dict[str, Any]]:
    named = {"seed": SEED, "min_positives": MIN_POSITIVES, "protocol": PROTOCOL, "max_users": max_users, **args,
             "methods": list(methods)}
    parts = []
    for name, value in named.items():
        # (lambda is a Python keyword, not an SQL one: the argument is written quoted)
        parts.append(f'"{name}" => %({name})s' if name == "lambda" else f"{name} => %({name})s")
    return f"SELECT * FROM recvector.evaluate({K}, " + ", ".join(parts) + ")", named


def evaluate_literal(args: dict[str, Any], methods: tuple[str, ...], max_users: int | None) -> str:
    """The call as one would type it in psql (for the report)."""
    named = {"max_users": max_users, "seed": SEED, "min_positives": MIN_POSITIVES, "protocol": f"'{PROTOCOL}'"}
    named.update({k: v for k, v in args.items()})
    text = ", ".join(f"{k} => {v}" for k, v in named.items() if v is not None)
    if tuple(methods) != ALL_METHODS:
        text += ", methods => ARRAY[" + ", ".join(f"'{m}'" for m in methods) + "]"
    return f"SELECT * FROM recvector.evaluate({K}, {text});"


def started() -> dict[str, Any]:
    """When a run started and the machine's load then."""
    return {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "load_start": loadavg()}


def collect_notices(conn: Any) -> list[str]:
    """The connection's NOTICEs, logged as they come and kept in the returned list."""
    notices: list[str] = []
    conn.add_notice_handler(lambda d: (notices.append(d.message_primary or ""), log(d.message_primary or "")))
    return notices


def run_variant(dsn: str, variant: Variant, max_users: int | None, paired: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"name": variant.name, "label": variant.label, "args": variant.args,
                              "methods": list(variant.methods), "mapping_note": variant.mapping_note,
                              "same_split": variant.same_split, "max_users": max_users,
                              "call": evaluate_literal(variant.args, variant.methods, max_users), **started()}
    with connect(dsn) as conn:
        notices = collect_notices(conn)
        result["library"] = library_fingerprint(conn)
        try:
            if variant.mapping is not None:
                doc = variant.mapping(base_mapping())
                result["mapping"] = doc
                t0 = time.monotonic()
                result["set_schema"] = set_schema(conn, doc)
                result["set_schema_seconds"] = round(time.monotonic() - t0, 1)
                result["vectors"] = check_vectors(conn)
                log(f"{variant.name}: mapping loaded, vectors {result['vectors']}")
            query, params = evaluate_sql(variant.args, variant.methods, max_users)
            log(f"{variant.name}: {result['call']}")
            t0 = time.monotonic()
            rows = conn.execute(query, params).fetchall()
            result["seconds"] = round(time.monotonic() - t0, 1)
            result["rows"] = [dict(r) for r in rows]
            log(f"{variant.name}: {len(rows)} rows in {result['seconds']} s")
            if paired and "recvector" in variant.methods:
                try:
                    result["paired"] = reproduce(conn, variant, max_users, result["rows"])
                except psycopg.Error as e:
                    result["paired_error"] = f"{type(e).__name__}: {str(e).strip()}"
                    log(f"{variant.name}: per-user re-ranking failed: {result['paired_error']}")
        except psycopg.Error as e:
            result["error"] = f"{type(e).__name__}: {str(e).strip()}"
            diag = e.diag
            if diag and (diag.message_detail or diag.message_hint):
                result["error"] += f" (DETAIL: {diag.message_detail}; HINT: {diag.message_hint})"
            log(f"{variant.name}: FAILED {result['error']}")
        finally:
            if variant.mapping is not None:
                try:
                    set_schema(conn, base_mapping())
                    result["restored"] = check_vectors(conn)
                except psycopg.Error as e:
                    result["restore_error"] = str(e).strip()
                    log(f"{variant.name}: could not load the example's mapping back: {e}")
    result["notices"] = notices
    result["load_end"] = loadavg()
    return result


def reproduce(conn: psycopg.Connection[Any], variant: Variant, max_users: int | None,
              rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-user NDCG of RecVector for paired differences, checked against evaluate's mean."""
    t0 = time.monotonic()
    # (which neighbours the evaluation built: method and list lengths, to show the settings applied)
    nb = conn.execute("SELECT min(method) AS method, count(*) AS entities, max(cardinality(neighbor_ids)) AS max_k, "
                      "round(avg(cardinality(neighbor_ids)), 1)::float8 AS mean_k FROM pg_temp.rv_eval_neighbors").fetchone()
    held = heldout_items(conn, max_users)
    overrides = {k: v for k, v in variant.args.items() if k in SCORING_ARGS}
    per_user = ndcg_per_user(recvector_lists(conn, overrides), held)
    mean = float(np.mean(list(per_user.values()))) if per_user else math.nan
    reported = next(r for r in rows if r["method"] == "recvector")
    ok = len(per_user) == reported["users"] and abs(mean - reported["ndcg"]) < 1e-9
    log(f"{variant.name}: per-user NDCG recomputed: mean {mean:.6f} vs evaluate {reported['ndcg']:.6f} "
        f"({'same' if ok else 'DIFFERENT'}, {time.monotonic() - t0:.1f} s)")
    return {"ndcg_per_user": per_user, "mean": mean, "matches_evaluate": ok, "neighbors": dict(nb),
            "seconds": round(time.monotonic() - t0, 1)}


def run_tune(dsn: str, budget: str) -> dict[str, Any]:
    result: dict[str, Any] = {"name": "tune", "call": f"SELECT recvector.tune(interval '{budget}', store => false);",
                              **started()}
    with connect(dsn) as conn:
        notices = collect_notices(conn)
        result["library"] = library_fingerprint(conn)
        t0 = time.monotonic()
        try:
            result["report"] = conn.execute("SELECT recvector.tune(%s::interval, store => false) AS r",
                                            [budget]).fetchone()["r"]
        except psycopg.Error as e:
            result["error"] = f"{type(e).__name__}: {str(e).strip()}"
            log(f"tune: FAILED {result['error']}")
        result["seconds"] = round(time.monotonic() - t0, 1)
    result["notices"] = notices
    result["load_end"] = loadavg()
    return result


def reference_check(max_users: int | None, ease_lambdas: tuple[float, ...]) -> dict[str, Any]:
    """The baselines of the independent numpy evaluation (bench/evaluation: splits, methods, metrics)
    on exactly the rows evaluate() uses with max_users: the dataset README's draw, the first
    max_users evaluated users held out, every other pair in training (evaluate's split stops drawing
    after max_users users, so the later users keep their items). Per-user NDCG@10 means with the
    same bootstrap as above. No database."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import data as ref_data  # noqa: E402  (bench/evaluation modules, imported as the reference CLI does)
    import methods as ref_methods  # noqa: E402
    import splits as ref_splits  # noqa: E402
    from evaluate import prepare as ref_prepare, run as ref_run  # noqa: E402

    t0 = time.monotonic()
    pos = ref_data.history_positives()
    full = ref_splits.split_random_holdout(pos, SEED, MIN_POSITIVES)
    n = len(full.test_users) if max_users is None else min(max_users, len(full.test_users))
    held = {(int(u), int(h[0])) for u, h in zip(full.test_users[:n], full.heldout[:n])}
    train = np.array([p for p in pos.tolist() if (p[0], p[1]) not in held], dtype=np.int64)
    sp = ref_splits.Split(train=train, test_users=full.test_users[:n], heldout=full.heldout[:n],
                          description=f"README draw, first {n} evaluated users held out")
    prep = ref_prepare(sp, ref_data.read_catalogue().ids)
    named: list[tuple[str, Any]] = [("popularity", ref_methods.popularity(prep.X)),
                                    ("item-kNN cosine k=20", ref_methods.itemknn(prep.X, k=20))]
    for lam in ease_lambdas:
        named.append((f"EASE λ={lam:g}", ref_methods.linear(prep.X, ref_methods.ease_weights(prep.X, lam))))
    out: dict[str, Any] = {"users": n, "train_pairs": len(train), "methods": {}}
    for name, scorer in named:
        r = ref_run(name, scorer, prep, K)
        nd = r.per_user["ndcg"]
        lo, hi = bootstrap_interval(nd)
        out["methods"][name] = {"ndcg": float(nd.mean()), "ndcg_low": lo, "ndcg_high": hi,
                                "recall": float(r.per_user["recall"].mean()),
                                "coverage": float(np.unique(r.top).size / prep.n_items), "seconds": round(r.seconds, 1)}
        log(f"reference: {name}: NDCG@10 {nd.mean():.4f} [{lo:.4f}, {hi:.4f}]")
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------

def f3(x: Any) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def signed(x: float) -> str:
    return f"{x:+.3f}"


def paired_vs_defaults(results: dict[str, Any], name: str) -> str:
    """Variant minus defaults, NDCG@10, paired over the same users (when both per-user series are
    checked against evaluate); else a comparison of the two intervals."""
    base, var = results.get("defaults"), results.get(name)
    if name == "defaults" or not base or not var or "rows" not in var or "rows" not in base:
        return "—"
    if not var.get("same_split", True):
        return "other split (not comparable)"
    bp, vp = base.get("paired"), var.get("paired")
    if bp and vp and bp["matches_evaluate"] and vp["matches_evaluate"] and set(bp["ndcg_per_user"]) == set(vp["ndcg_per_user"]):
        users = sorted(bp["ndcg_per_user"], key=_id_key)
        diff = np.array([vp["ndcg_per_user"][u] - bp["ndcg_per_user"][u] for u in users])
        lo, hi = bootstrap_interval(diff)
        mark = "" if lo > 0 or hi < 0 else " (ns)"
        return f"{signed(float(diff.mean()))} [{signed(lo)}, {signed(hi)}]{mark}"
    b = next(r for r in base["rows"] if r["method"] == "recvector")
    v = next(r for r in var["rows"] if r["method"] == "recvector")
    overlap = not (v["ndcg_low"] > b["ndcg_high"] or v["ndcg_high"] < b["ndcg_low"])
    return f"{signed(v['ndcg'] - b['ndcg'])} (CIs {'overlap' if overlap else 'disjoint'})"


# Paired comparisons between two variants other than the defaults (a minus b, same users).
PAIRS: list[tuple[str, str, str]] = [
    ("content_k3", "content_k1", "content only: K = 3 − K = 1"),
    ("content_pop", "content_k3", "content: + popularity (β 0.1) − without"),
    ("defaults", "content_pop", "hybrid (defaults) − content + popularity"),
    ("collab_only", "defaults", "collaborative only − hybrid (defaults)"),
    ("defaults", "hybrid_k1", "hybrid: K = 3 − K = 1"),
    ("defaults", "lambda1", "λ 0.9 (MMR) − λ 1"),
    ("nb_k300", "nb_k50", "EASE neighbours: k 300 − k 50"),
    ("defaults", "nb_cosine", "EASE − cosine neighbours"),
    ("nb_cosine_collab", "nb_cosine", "cosine neighbours: collaborative only − hybrid"),
    ("ratings_collab", "ratings", "ratings mapping: collaborative only − hybrid"),
]


def paired(results: dict[str, Any], a: str, b: str) -> str:
    """a minus b, NDCG@10, paired by user, when both per-user series were checked against evaluate."""
    ra, rb = results.get(a) or {}, results.get(b) or {}
    pa, pb = ra.get("paired"), rb.get("paired")
    if not (pa and pb and pa["matches_evaluate"] and pb["matches_evaluate"]
            and set(pa["ndcg_per_user"]) == set(pb["ndcg_per_user"])):
        return "—"
    users = sorted(pa["ndcg_per_user"], key=_id_key)
    diff = np.array([pa["ndcg_per_user"][u] - pb["ndcg_per_user"][u] for u in users])
    lo, hi = bootstrap_interval(diff)
    return f"{signed(float(diff.mean()))} [{signed(lo)}, {signed(hi)}]" + ("" if lo > 0 or hi < 0 else " (ns)")


def pairs_table(results: dict[str, Any]) -> str:
    lines = ["| comparison (a − b) | ΔNDCG@10 [95% paired CI] | users better / worse |", "|---|---|---:|"]
    for a, b, label in PAIRS:
        cell = paired(results, a, b)
        if cell == "—":
            continue
        pa, pb = results[a]["paired"]["ndcg_per_user"], results[b]["paired"]["ndcg_per_user"]
        better = sum(pa[u] > pb[u] for u in pa)
        worse = sum(pa[u] < pb[u] for u in pa)
        lines.append(f"| {label} | {cell} | {better} / {worse} |")
    return "\n".join(lines)


def table(results: dict[str, Any]) -> str:
    lines = ["| variant | method | users | NDCG@10 [95% CI] | Recall@10 | MRR@10 | coverage | ILS | pop. bias | "
             "vs defaults: ΔNDCG@10 [95% CI] | recvector − this (paired) | time |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---|---|---:|"]
    for v in VARIANTS:
        r = results.get(v.name)
        if not r:
            continue
        if "error" in r:
            lines.append(f"| {v.label} | — | — | failed: `{r['error']}` | | | | | | | | {r.get('seconds', '—')} s |")
            continue
        for row in r["rows"]:
            diff = "—"
            if row["method"] != "recvector" and row.get("recvector_minus_this") is not None:
                lo, hi = row["difference_low"], row["difference_high"]
                diff = f"{signed(row['recvector_minus_this'])} [{signed(lo)}, {signed(hi)}]" + (
                    "" if lo > 0 or hi < 0 else " (ns)")
            vs = paired_vs_defaults(results, v.name) if row["method"] == "recvector" else "—"
            lines.append(f"| {v.label} | {row['method']} | {row['users']} | {f3(row['ndcg'])} "
                         f"[{f3(row['ndcg_low'])}, {f3(row['ndcg_high'])}] | {f3(row['recall'])} | {f3(row['mrr'])} | "
                         f"{f3(row['coverage'])} | {f3(row['intra_list_similarity'])} | {f3(row['popularity_bias'])} | "
                         f"{vs} | {diff} | {r['seconds'] if row['method'] == 'recvector' else ''}"
                         f"{' s' if row['method'] == 'recvector' else ''} |")
    return "\n".join(lines)


def runs_table(results: dict[str, Any]) -> str:
    lines = ["| run | started (UTC) | seconds | load avg. start → end | paired check | notes |", "|---|---|---:|---|---|---|"]
    for name in NAMES:
        r = results.get(name)
        if not r:
            continue
        p = r.get("paired")
        check = "—" if not p else ("matches evaluate" if p["matches_evaluate"] else
                                   f"DIFFERS ({p['mean']:.6f})")
        notes = []
        if r.get("library"):
            notes.append(f"library {r['library'].get('sha256', '?')} ({r['library'].get('newest', '?')})")
        if "set_schema_seconds" in r:
            notes.append(f"set_schema {r['set_schema_seconds']} s")
        vec = r.get("vectors")
        if vec:
            sync = vec.get("sync") or {}
            notes.append(f"vectors kept: {vec.get('same')}/{vec.get('saved')} identical to saved, sync up to date "
                         f"{sync.get('up_to_date', '?')}, embedded {sync.get('embedded', '?')}"
                         + (f", sync error {vec['sync_error']}" if "sync_error" in vec else ""))
        if p and p.get("neighbors"):
            nb = p["neighbors"]
            notes.append(f"neighbours {nb['method']}: {nb['entities']} entities, ≤ {nb['max_k']} each (mean {nb['mean_k']})")
        train = [n for n in r.get("notices", []) if "training part ready" in n]
        if train:
            notes.append(train[0].replace("recvector: evaluation: ", ""))
        if "error" in r:
            notes.append(f"error: {r['error']}")
        lines.append(f"| {name} | {r['started']} | {r.get('seconds', '—')} | {r['load_start']} → {r['load_end']} | "
                     f"{check} | {'; '.join(notes)} |")
    return "\n".join(lines)


def tune_summary(results: dict[str, Any]) -> str:
    r = results.get("tune")
    if not r:
        return ""
    if "error" in r:
        return f"tune failed after {r['seconds']} s: `{r['error']}`"
    rep = r["report"]
    val = rep["validation"]
    out = [f"- users {rep['users']}, protocol {rep['protocol']}, k {rep['k']}, {rep['seconds']} s",
           f"- decision: {rep['decision']} (stored: {rep['stored']})",
           f"- current: `{json.dumps(rep['current'])}`",
           f"- tuned: `{json.dumps(rep['tuned'])}`",
           f"- validation NDCG@{rep['k']}: current {val['current_ndcg']:.4f}, tuned {val['tuned_ndcg']:.4f}, "
           f"difference {signed(val['difference'])} [{signed(val['difference_low'])}, {signed(val['difference_high'])}]",
           "- λ search: " + ", ".join(f"λ {x['lambda']}: {x['ndcg']:.4f}" for x in rep["search"]["lambdas"]),
           f"- grid points searched: {len(rep['search']['points'])}",
           "", "| test items | users | NDCG@10 [95% CI] | Recall@10 | coverage | tuned − this [95% CI] |",
           "|---|---:|---|---:|---:|---|"]
    for row in rep["test"]:
        diff = "—"
        if row.get("recvector_minus_this") is not None:
            diff = (f"{signed(row['recvector_minus_this'])} [{signed(row['difference_low'])}, "
                    f"{signed(row['difference_high'])}]")
        out.append(f"| {row['method']} | {row['users']} | {f3(row['ndcg'])} [{f3(row['ndcg_low'])}, "
                   f"{f3(row['ndcg_high'])}] | {f3(row['recall'])} | {f3(row['coverage'])} | {diff} |")
    best = sorted(rep["search"]["points"], key=lambda p: -p["ndcg"])[:5]
    out += ["", "Best grid points on validation (re-scored candidates, before MMR):", ""]
    out += [f"- K {p['interests']}, α {p['alpha']}, β {p['beta']}, γ {p['gamma']}: {p['ndcg']:.4f}" for p in best]
    return "\n".join(out)


def reference_table(results: dict[str, Any]) -> str:
    ref = results.get("reference")
    if not ref:
        return ""
    lines = [f"Independent numpy evaluation (bench/evaluation) on the same {ref['users']} users and training rows "
             f"({ref['train_pairs']} pairs, {ref['seconds']} s):", "",
             "| method | NDCG@10 [95% CI] | Recall@10 | coverage |", "|---|---|---:|---:|"]
    for name, m in ref["methods"].items():
        lines.append(f"| {name} | {f3(m['ndcg'])} [{f3(m['ndcg_low'])}, {f3(m['ndcg_high'])}] | {f3(m['recall'])} | "
                     f"{f3(m['coverage'])} |")
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    parts = ["## Variants", "", table(results), "", "## Paired comparisons between variants", "",
             pairs_table(results), "", "## Runs", "", runs_table(results)]
    if results.get("reference"):
        parts += ["", "## Reference cross-check", "", reference_table(results)]
    t = tune_summary(results)
    if t:
        parts += ["", "## tune()", "", t]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------

def load_results(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def save_results(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=f"variants: {', '.join(NAMES)}")
    ap.add_argument("--dsn", default=DEFAULT_DSN, help=f"the evaluation database (default: {DEFAULT_DSN!r})")
    ap.add_argument("--max-users", type=int, default=1500, help="users evaluated per run (0 = all; default 1500)")
    ap.add_argument("--variants", default="all",
                    help="comma-separated variants to run, 'all' (every variant, then tune) or 'none'")
    ap.add_argument("--tune-budget", default="25 minutes", help="time budget of recvector.tune() (default: 25 minutes)")
    ap.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                    help=f"JSON file the results are merged into (default: {DEFAULT_RESULTS})")
    ap.add_argument("--no-paired", action="store_true",
                    help="skip the per-user re-ranking that gives paired differences between variants")
    ap.add_argument("--setup", action="store_true",
                    help="first create the database (dropped if it exists), load the data, bootstrap, save the vectors")
    ap.add_argument("--save-vectors", action="store_true",
                    help="(re)create public.saved_vectors from the stored vectors and check a copy back is accepted")
    ap.add_argument("--reference", action="store_true",
                    help="also run the independent numpy baselines (bench/evaluation) on the same users and rows")
    ap.add_argument("--ease-lambdas", default="100",
                    help="EASE lambdas of the --reference check, comma-separated (default: 100, the README's)")
    ap.add_argument("--report", action="store_true", help="print the tables of the saved results and stop")
    a = ap.parse_args(argv)

    results = load_results(a.results)
    if a.report:
        print(report(results))
        return 0
    results.setdefault("meta", {}).update({"python": platform.python_version(), "numpy": np.__version__,
                                           "psycopg": psycopg.__version__, "nproc": os.cpu_count()})
    if a.setup:
        results["setup"] = setup(a.dsn)
        save_results(a.results, results)
    elif a.save_vectors:
        results.setdefault("setup", {})["saved_vectors"] = save_vectors(a.dsn)
        save_results(a.results, results)
        log(f"saved vectors: {json.dumps(results['setup']['saved_vectors'], default=str)}")

    if a.variants == "none":
        names: list[str] = []
    elif a.variants == "all":
        names = NAMES
    else:
        names = [n.strip() for n in a.variants.split(",") if n.strip()]
        unknown = [n for n in names if n not in NAMES]
        if unknown:
            ap.error(f"unknown variants {unknown}; known: {', '.join(NAMES)}")
    max_users = a.max_users or None
    if a.reference:
        results["reference"] = reference_check(max_users, tuple(float(x) for x in a.ease_lambdas.split(",")))
        save_results(a.results, results)
    if not names:
        print(report(results))
        return 0
    with connect(a.dsn) as conn:
        results["meta"]["server"] = conn.execute("SELECT version() AS v").fetchone()["v"]
        results["meta"]["extension"] = conn.execute(
            "SELECT extversion AS v FROM pg_extension WHERE extname = 'recvector'").fetchone()["v"]
    for name in names:
        if name == "tune":
            results["tune"] = run_tune(a.dsn, a.tune_budget)
        else:
            results[name] = run_variant(a.dsn, BY_NAME[name], max_users, paired=not a.no_paired)
        save_results(a.results, results)
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
