"""``recvector.tune()``: scoring settings learnt from the application's own history, stored only
when they win by more than the noise (docs/evaluation.md#tuning).

1. Split: every user with at least three positive interactions holds out two — for dated data the
   most recent (test) and the one before (validation), for undated data two drawn with the seed —
   and everything is learnt from the rest (neighbours, popularity, profiles): never the future.
2. Search, on the validation items: for each profile setting (interests K, half-life) the
   production ranking gives every user's candidates with their score parts once (similarity,
   popularity, collaborative); the weights alpha, beta, gamma are then searched over a grid by
   re-scoring those parts in numpy (the same formula as ``recvector._rank``), and MMR's lambda on
   the best of them with the production ranking itself. The search stops when the time budget
   is spent.
3. Decision: the best settings against the current ones on the validation users, with the
   production ranking, paired by user: stored in the mapping only when the lower end of the 95 %
   bootstrap interval of the NDCG difference is above zero.
4. Report: both settings on the test items (which the search never saw), beside popularity and
   item-kNN, with intervals; an HTML page with plots.
"""
from __future__ import annotations

import itertools
import json
import time
from typing import Any, Callable

import numpy as np

from . import evaluation
from .errors import ArgumentError, NotEnoughDataError
from .storing import loaded

ALPHAS = (0.0, 0.25, 0.5, 1.0, 2.0)
BETAS = (0.0, 0.05, 0.1, 0.2, 0.4)
GAMMAS = (0.0, 0.5, 1.0, 2.0)
LAMBDAS = (1.0, 0.9, 0.8, 0.7)


def _current(doc: dict[str, Any]) -> dict[str, Any]:
    sc = doc.get("scoring") or {}
    agg = doc.get("aggregation") or {}
    return {"alpha": sc.get("alpha", 0.5), "beta": sc.get("beta", 0.1), "gamma": sc.get("gamma", 1.0),
            "lambda": sc.get("lambda", 0.9), "interests": agg.get("interests", 1), "half_life": agg.get("half_life")}


def _features(db: Any, width: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, list[list[str]]]:
    """Every evaluated user's candidates (up to ``width``) with their similarity, popularity and
    collaborative parts on their 0..1 scales, from the production ranking."""
    rows = db.execute(db.prepare(
        "SELECT p.user_id, array_agg(r.entity_id ORDER BY r.o) AS ids, array_agg(r.similarity ORDER BY r.o) AS s, "
        "array_agg(r.popularity_term ORDER BY r.o) AS p, array_agg(r.collaborative_term ORDER BY r.o) AS c "
        "FROM pg_temp.rv_eval_profiles AS p "
        "CROSS JOIN LATERAL recvector._rank(coalesce(p.interests, CASE WHEN p.embedding IS NOT NULL THEN ARRAY[p.embedding] END), "
        "  p.interest_weights, p.cf_candidates, p.cf_scores, p.seen, $1, "
        "  recvector._scoring('{\"alpha\": 1, \"beta\": 1, \"gamma\": 1, \"lambda\": 1, \"exploration\": 0}'::jsonb, $1), "
        "  NULL, NULL, 'pg_temp.rv_eval_stats') WITH ORDINALITY AS r(entity_id, score, similarity, popularity_term, "
        "  collaborative_term, exploration_term, mmr_penalty, sources, o) "
        "GROUP BY p.user_id, p.o ORDER BY p.o", ["integer"]), [width])
    users = [r["user_id"] for r in rows]
    sims = np.full((len(rows), width), np.nan)
    pops = np.zeros((len(rows), width))
    cfs = np.zeros((len(rows), width))
    ids: list[list[str]] = []
    for i, r in enumerate(rows):
        n = len(r["ids"] or [])
        ids.append(list(r["ids"] or []))
        if n:
            sims[i, :n] = r["s"]
            pops[i, :n] = r["p"]
            cfs[i, :n] = r["c"]
    return users, sims, pops, cfs, ids


def _grid_ndcg(sims: np.ndarray, pops: np.ndarray, cfs: np.ndarray, hit: np.ndarray, k: int,
               weights: tuple[float, float, float]) -> np.ndarray:
    """Per-user NDCG@k (one held-out item) of alpha*sim + beta*pop + gamma*cf over the candidates."""
    a, b, g = weights
    score = a * np.nan_to_num(sims, nan=0.0) + b * pops + g * cfs
    score[np.isnan(sims)] = -np.inf  # padding
    top = np.argsort(-score, axis=1, kind="stable")[:, :k]
    ranks = np.where(np.take_along_axis(hit, top, axis=1))
    out = np.zeros(len(sims))
    out[ranks[0]] = 1.0 / np.log2(ranks[1] + 2)
    return out


def tune(db: Any, time_budget_seconds: float = 600.0, k: int = 10, max_users: int | None = 2000, seed: int = 42,
         store: bool = True, notice: Callable[[str], None] | None = None) -> dict[str, Any]:
    if not time_budget_seconds > 0:
        raise ArgumentError(f"the time budget must be positive, got {time_budget_seconds} seconds")
    say = notice or (lambda m: None)
    started = time.monotonic()

    def left() -> float:
        return time_budget_seconds - (time.monotonic() - started)

    doc, _compiled = loaded(db)
    current = _current(doc)
    inter = evaluation.load_interactions(db)
    sp = evaluation.split(inter, "auto", seed, min_positives=3, max_users=max_users, holdout=2)
    if len(sp.users) < 20:
        raise NotEnoughDataError(f"only {len(sp.users)} users have three positive interactions or more: too few to tune on",
                             hint="tune() needs a history of at least a few dozen users; evaluate() works on fewer.")
    # Which held-out item is the validation one: the older (dated) or the second drawn (undated).
    val_items = [h[1] for h in sp.heldout]
    test_items = [h[0] for h in sp.heldout]
    say(f"recvector: tune: {len(sp.users)} users, protocol {sp.protocol}, budget {time_budget_seconds:.0f} s")
    evaluation.prepare(db, inter, sp, notice=say)

    def set_held(items: list[str], also_seen: list[str] | None) -> evaluation.Split:
        if also_seen is not None:
            for table in ("pg_temp.rv_eval_users", "pg_temp.rv_eval_profiles"):
                db.execute(db.prepare(f"UPDATE {table} AS u SET seen = u.seen || x.e "
                                      "FROM unnest($1::text[], $2::text[]) AS x(user_id, e) WHERE u.user_id = x.user_id",
                                      ["text[]", "text[]"]), [sp.users, also_seen])
        return evaluation.Split(sp.users, [[e] for e in items], sp.train, sp.protocol)

    val_split = set_held(val_items, None)
    # Profile settings to try: the current, one interest, and (dated data) a long half-life.
    profile_grid: list[dict[str, Any]] = [{"interests": current["interests"], "half_life_days": None}]
    if current["interests"] != 1:
        profile_grid.append({"interests": 1, "half_life_days": None})
    else:
        profile_grid.append({"interests": 3, "half_life_days": None})
    if inter.dated:
        profile_grid.append({"interests": current["interests"], "half_life_days": 365.0})
    width = 400
    points: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for prof in profile_grid:
        if best is not None and left() < 60:
            say("recvector: tune: time budget spent; stopping the profile search")
            break
        t0 = time.monotonic()
        evaluation.build_profiles(db, prof["interests"], prof["half_life_days"])
        users, sims, pops, cfs, ids = _features(db, width)
        held = dict(zip(val_split.users, val_items))
        hit = np.zeros(sims.shape, dtype=bool)
        for i, (u, cand) in enumerate(zip(users, ids)):
            for j, e in enumerate(cand):
                if e == held.get(u):
                    hit[i, j] = True
        for a, b, g in itertools.product(ALPHAS, BETAS, GAMMAS):
            if a == b == g == 0:
                continue
            nd = _grid_ndcg(sims, pops, cfs, hit, k, (a, b, g))
            point = {**prof, "alpha": a, "beta": b, "gamma": g, "ndcg": float(nd.mean())}
            points.append(point)
            if best is None or point["ndcg"] > best["ndcg"]:
                best = point
        say(f"recvector: tune: interests {prof['interests']}, half-life {prof['half_life_days'] or 'as mapped'}: "
            f"best NDCG@{k} so far {best['ndcg']:.4f} ({time.monotonic() - t0:.1f} s)")
    assert best is not None

    # MMR's lambda with the production ranking, on the best weights.
    evaluation.build_profiles(db, best["interests"], best["half_life_days"])
    weights = {"alpha": best["alpha"], "beta": best["beta"], "gamma": best["gamma"]}
    lambdas: list[dict[str, Any]] = []
    best_lambda = 1.0
    best_lambda_ndcg = -1.0
    for lam in LAMBDAS:
        if lambdas and left() < 30:
            break
        lists = evaluation.rank_recvector(db, k, {**weights, "lambda": lam}, seed)
        nd = float(evaluation.per_user_metrics(lists, val_split, k)["ndcg"].mean())
        lambdas.append({"lambda": lam, "ndcg": nd})
        if nd > best_lambda_ndcg + 1e-12:
            best_lambda, best_lambda_ndcg = lam, nd
    chosen = {**weights, "lambda": best_lambda}

    # Decision on the validation users: chosen against current, production ranking, paired.
    cur_over = {n: current[n] for n in ("alpha", "beta", "gamma", "lambda")}
    evaluation.build_profiles(db, current["interests"], None)
    cur_val = evaluation.per_user_metrics(evaluation.rank_recvector(db, k, cur_over, seed), val_split, k)["ndcg"]
    evaluation.build_profiles(db, best["interests"], best["half_life_days"])
    new_val = evaluation.per_user_metrics(evaluation.rank_recvector(db, k, chosen, seed), val_split, k)["ndcg"]
    diff = new_val - cur_val
    low, high = evaluation.bootstrap_interval(diff, seed)
    wins = low > 0
    say(f"recvector: tune: validation NDCG@{k} current {cur_val.mean():.4f}, tuned {new_val.mean():.4f}, "
        f"difference {diff.mean():+.4f} [{low:+.4f}, {high:+.4f}]: {'stored' if wins and store else 'kept as is'}")

    # The test items, which the search never saw (the validation item is seen now).
    test_split = set_held(test_items, val_items)
    rows: list[dict[str, Any]] = []
    tuned_lists = evaluation.rank_recvector(db, k, chosen, seed)  # (profiles of the best settings, built above)
    tuned_row, tuned_pu = evaluation.summarise(db, "recvector (tuned)", tuned_lists, test_split, k, None, seed)
    rows.append(tuned_row)
    evaluation.build_profiles(db, current["interests"], None)
    for method, lists in (("recvector (current)", evaluation.rank_recvector(db, k, cur_over, seed)),
                          ("popularity", evaluation.rank_popularity(db, k)),
                          ("itemknn", evaluation.rank_itemknn(db, k))):
        row, _ = evaluation.summarise(db, method, lists, test_split, k, tuned_pu, seed)
        rows.append(row)

    fragment: dict[str, Any] = {"scoring": {"alpha": chosen["alpha"], "beta": chosen["beta"], "gamma": chosen["gamma"],
                                            "lambda": chosen["lambda"]},
                                "aggregation": {"interests": best["interests"]}}
    if best["half_life_days"]:
        fragment["aggregation"]["half_life"] = f"{best['half_life_days']:g} days"
    stored = False
    if wins and store:
        new_doc = json.loads(json.dumps(doc))
        for section, values in fragment.items():
            new_doc.setdefault(section, {}).update(values)
        db.execute(db.prepare("SELECT recvector.set_schema($1::jsonb)", ["text"]), [json.dumps(new_doc)])
        stored = True
    return {"users": len(sp.users), "protocol": sp.protocol, "k": k, "current": current, "tuned": fragment,
            "validation": {"current_ndcg": float(cur_val.mean()), "tuned_ndcg": float(new_val.mean()),
                           "difference": float(diff.mean()), "difference_low": low, "difference_high": high},
            "stored": stored, "decision": ("stored: the tuned settings win on validation beyond the 95 % interval"
                                           if stored else "kept: no win beyond the noise" if not wins
                                           else "not stored (store => false)"),
            "test": rows, "search": {"points": points, "lambdas": lambdas},
            "seconds": round(time.monotonic() - started, 1)}


__all__ = ["tune"]
