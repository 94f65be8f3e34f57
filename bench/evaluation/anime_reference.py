"""Reference offline evaluation on the anime dataset (real MyAnimeList lists), printed as Markdown.

Sub-commands (each a run of one to three minutes on 2 cores; see README.md in this directory):

  reference     the dataset README's protocol (one random held-out item per user with >= 5
                positives, default_rng(42)) for popularity, content-only, item-kNN, EASE and random,
                with 95% bootstrap intervals, paired differences and the README's figures beside them
  split-draws   which way of drawing the held-out item reproduces the README (rng.integers over the
                user's items sorted by id; choice, permutation, random, file order tried)
  content-text  the content-only baseline with several item-text templates
  robustness    the same methods on a per-user 5-fold split of the lists, and on the ratings with
                rating >= --threshold as positives (one held-out item and 5-fold)
  knn           item-kNN variants: neighbours, pruning side, shrinkage, asymmetric cosine, history cap
  ease          EASE for some lambdas and with B truncated to the top-M entries per row
  hybrid        blends a·itemknn + b·log(1+popularity) + c·content (each divided by its per-user max),
                weights chosen on a validation split carved out of the training rows, reported on test

Item embeddings are cached under --cache-dir (default /tmp/anime_reference_cache), as are EASE
matrices. Every number printed is computed by this run.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import itertools
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import content  # noqa: E402
import data  # noqa: E402
import methods  # noqa: E402
from evaluate import Prepared, Result, diff_table, make_bootstrap, prepare, results_table, run, summary  # noqa: E402
from splits import (HOLDOUT_DRAWS, Split, group_by_user, holdout_with_draw, items_in_file_order,  # noqa: E402
                    split_kfold, split_random_holdout, with_exclusions)

# The dataset README's published figures (NDCG@10, Recall@10), printed beside ours for the cross-check.
README_FIGURES = {"popularity": (0.051, 0.095), "content": (0.015, 0.026),
                  "item-kNN": (0.117, 0.208), "EASE": (0.257, 0.389)}


@dataclass
class Env:
    """Arguments plus the catalogue and (lazily) the item embeddings."""

    args: argparse.Namespace
    catalogue: data.Catalogue
    _embeddings: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return len(self.catalogue)

    def embeddings(self, template: str | None = None, unescape: bool | None = None) -> np.ndarray:
        template = template or self.args.content_template
        unescape = self.args.unescape if unescape is None else unescape
        default = template == self.args.content_template and unescape == self.args.unescape
        if default and self._embeddings is not None:
            return self._embeddings
        c = self.catalogue
        texts = content.item_texts(c.name, c.genre, c.type, template, unescape)
        vectors = content.cached_embeddings(texts, content.find_model_dir(self.args.model_dir),
                                            self.args.cache_dir)
        if default:
            self._embeddings = vectors
        return vectors


# ---------------------------------------------------------------------------------------- helpers

def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cached_ease(prep: Prepared, lam: float, cache_dir: Path) -> np.ndarray:
    """EASE's B for this training matrix, from cache_dir when computed before."""
    digest = hashlib.sha256(np.ascontiguousarray(prep.split.train).tobytes()).hexdigest()[:16]
    path = cache_dir / f"ease_{digest}_{lam:g}.npy"
    if path.exists():
        return np.load(path)
    log(f"EASE lambda={lam:g}: inverting {prep.n_items}x{prep.n_items}")
    B = methods.ease_weights(prep.X, lam)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, B)
    return B


@dataclass(frozen=True)
class KnnSpec:
    """An item-kNN configuration (see methods.py), written on the command line as
    `k=20,prune=target,alpha=0.9,shrink=0,cap=none` (any subset; k=all keeps every neighbour)."""

    k: int | None = 20
    prune: str = "row"
    shrink: float = 0.0
    alpha: float = 0.5
    cap: int | None = None

    @classmethod
    def parse(cls, text: str) -> "KnnSpec":
        fields: dict[str, object] = {}
        for part in filter(None, text.split(",")):
            key, _, value = part.partition("=")
            key = key.strip()
            if key in ("k", "cap"):
                fields[key] = None if value in ("all", "none") else int(value)
            elif key in ("shrink", "alpha"):
                fields[key] = float(value)
            elif key == "prune" and value in ("row", "target"):
                fields[key] = value
            else:
                raise argparse.ArgumentTypeError(f"bad item-kNN setting {part!r}")
        return cls(**fields)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        parts = [f"k={self.k if self.k else 'all'}", self.prune if self.k else ""]
        if self.shrink:
            parts.append(f"shrink={self.shrink:g}")
        if self.alpha != 0.5:
            parts.append(f"α={self.alpha:g}")
        if self.cap:
            parts.append(f"cap={self.cap}")
        return "item-kNN " + " ".join(p for p in parts if p)

    def weights(self, cooc: np.ndarray) -> np.ndarray:
        return methods.itemknn_weights(cooc, self.k, self.shrink, self.alpha, self.prune)

    def scorer(self, X: np.ndarray, cap_seed: int = 0) -> methods.Scorer:
        return methods.itemknn(X, self.k, self.shrink, self.alpha, self.prune, self.cap, cap_seed)


README_KNN = KnnSpec(k=20)


def base_methods(env: Env, prep: Prepared) -> list[tuple[str, methods.Scorer]]:
    """The README's four methods plus random (and any --extra-knn), with the command line's parameters."""
    a = env.args
    knn = KnnSpec(k=a.knn_k)
    return [
        ("popularity", methods.popularity(prep.X)),
        ("content", methods.content_profile(prep.X, env.embeddings())),
        (knn.name, knn.scorer(prep.X)),
        (f"EASE λ={a.ease_lambda:g}", methods.linear(prep.X, cached_ease(prep, a.ease_lambda, a.cache_dir))),
        ("random", methods.random_scores(prep.n_items, a.random_seed)),
    ] + [(spec.name, spec.scorer(prep.X, a.cap_seed)) for spec in a.extra_knn]


def run_all(named: list[tuple[str, methods.Scorer]], prep: Prepared, k: int) -> list[Result]:
    results = []
    for name, scorer in named:
        results.append(run(name, scorer, prep, k))
        log(f"{name}: NDCG {results[-1].per_user['ndcg'].mean():.4f} ({results[-1].seconds:.1f} s)")
    return results


def describe(prep: Prepared, title: str) -> str:
    split = prep.split
    n_held = sum(len(h) for h in split.heldout)
    return (f"### {title}\n\n{split.description}; {len(split.test_users)} users evaluated, {n_held} held-out "
            f"items, {len(split.train)} training pairs from {len(prep.users)} users, ranking over "
            f"{prep.n_items} items minus {len(split.exclude)} excluded pairs.\n")


def report(prep: Prepared, results: list[Result], diffs: list[tuple[int, int]], args: argparse.Namespace,
           title: str) -> None:
    idx = make_bootstrap(prep, args.n_boot, args.boot_seed)
    print(describe(prep, title))
    print(results_table(results, idx, prep.n_items, args.k))
    if diffs:
        print(f"\nPaired bootstrap differences ({args.n_boot} resamples of users, seed {args.boot_seed}; "
              "(ns): the 95% interval contains 0):\n")
        print(diff_table([(results[i], results[j]) for i, j in diffs], idx, prep.n_items, args.k))
    print()


def readme_split(env: Env) -> Split:
    """The README protocol's split."""
    return split_random_holdout(data.history_positives(env.args.data_dir), env.args.seed, env.args.min_positives)


def validation_split(split: Split, seed: int, min_positives: int) -> Split:
    """One more random held-out item from the training rows of the evaluated users (for tuning).

    The README split's held-out items stay out of it entirely (neither trained on nor ranked).
    """
    inner = split_random_holdout(split.train, seed, min_positives)
    keep = np.isin(inner.test_users, split.test_users)
    return Split(train=inner.train, test_users=inner.test_users[keep],
                 heldout=[h for h, k in zip(inner.heldout, keep) if k],
                 description=f"VALIDATION split: {inner.description}, drawn from the training rows of the README split")


def tuning_split(env: Env) -> Split:
    """The README split, or its validation split with --on validation."""
    split = readme_split(env)
    return split if env.args.on == "test" else validation_split(split, env.args.validation_seed, env.args.min_positives)


# --------------------------------------------------------------------------------------- commands

def cmd_reference(env: Env) -> None:
    prep = prepare(readme_split(env), env.catalogue.ids)
    results = run_all(base_methods(env, prep), prep, env.args.k)
    extras = [(i, j) for i in range(5, len(results)) for j in (2, 3)]
    report(prep, results, [(2, 0), (3, 2), (3, 0), (0, 4), (1, 4), (0, 1)] + extras, env.args,
           "Reference protocol of the dataset README (anime_history)")
    means = summary(results, prep.n_items)
    print("Cross-check against the dataset README (NDCG@10 / Recall@10):\n")
    print("| method | README | measured | difference |\n|---|---:|---:|---:|")
    for (label, (ndcg, recall)), r in zip(README_FIGURES.items(), results):
        m = means[r.name]
        print(f"| {label} ({r.name}) | {ndcg:.3f} / {recall:.3f} | {m['ndcg']:.4f} / {m['recall']:.4f} | "
              f"{m['ndcg'] - ndcg:+.4f} / {m['recall'] - recall:+.4f} |")
    print()


def cmd_content_text(env: Env) -> None:
    prep = prepare(readme_split(env), env.catalogue.ids)
    target = README_FIGURES["content"]
    named = []
    for template in env.args.templates:
        for unescape in (form == "unescaped" for form in env.args.name_forms):
            E = env.embeddings(template, unescape)
            shown = content.TEMPLATES[template].replace("\n", "\\n")
            named.append((f"{template} “{shown}”, names {'unescaped' if unescape else 'raw'}",
                          methods.content_profile(prep.X, E)))
    results = run_all(named, prep, env.args.k)
    report(prep, results, [], env.args, "Content-only baseline: item-text templates")
    means = summary(results, prep.n_items)
    print(f"Against the README's content-only figures ({target[0]:.3f} / {target[1]:.3f}):\n")
    print("| item text | NDCG@10 | Recall@10 | sum of abs. differences |\n|---|---:|---:|---:|")
    distance = {r.name: abs(means[r.name]["ndcg"] - target[0]) + abs(means[r.name]["recall"] - target[1])
                for r in results}
    for r in results:
        print(f"| {r.name} | {means[r.name]['ndcg']:.4f} | {means[r.name]['recall']:.4f} | {distance[r.name]:.4f} |")
    best = min(distance, key=distance.get)
    print(f"\nClosest: {best}.\n")


def cmd_split_draws(env: Env) -> None:
    """Which way of drawing the held-out item reproduces the README's popularity and item-kNN figures."""
    a = env.args
    rows = data.read_interactions(a.data_dir / "anime_history.dat.gz")
    orders = {"sorted by id": group_by_user(rows), "in file order": items_in_file_order(rows)}
    print("### Held-out draws against the README (popularity / item-kNN cosine k=20, NDCG@10 and Recall@10)\n")
    print("| draw (users in id order, one turn per user with >= 5 items) | items | popularity | item-kNN | "
          "max abs. difference to README |\n|---|---|---:|---:|---:|")
    for draw in HOLDOUT_DRAWS:
        for order, (users, items) in orders.items():
            prep = prepare(holdout_with_draw(users, items, draw, a.seed, a.min_positives, order), env.catalogue.ids)
            m = summary([run("popularity", methods.popularity(prep.X), prep, a.k),
                         run("knn", README_KNN.scorer(prep.X), prep, a.k)], prep.n_items)
            got = [m["popularity"]["ndcg"], m["popularity"]["recall"], m["knn"]["ndcg"], m["knn"]["recall"]]
            want = [*README_FIGURES["popularity"], *README_FIGURES["item-kNN"]]
            gap = max(abs(g - w) for g, w in zip(got, want))
            print(f"| `{draw}` | {order} | {got[0]:.4f} / {got[1]:.4f} | {got[2]:.4f} / {got[3]:.4f} | {gap:.4f} |")
            log(f"{draw} {order}: {gap:.4f}")
    print()


def robustness_splits(env: Env) -> list[tuple[str, Split]]:
    a = env.args
    history = data.history_positives(a.data_dir)
    out: list[tuple[str, Split]] = []
    if "history-kfold" in a.protocols:
        for fold in a.folds:
            out.append((f"anime_history, per-user 5-fold, fold {fold}",
                        split_kfold(history, fold, 5, a.seed, a.min_positives)))
    rated = data.rating_positives(a.threshold, a.data_dir)
    if "ratings-holdout" in a.protocols:
        out.append((f"anime_ratings >= {a.threshold} as positives, one held-out item",
                    with_exclusions(split_random_holdout(rated, a.seed, a.min_positives), history)))
    if "ratings-kfold" in a.protocols:
        for fold in a.folds:
            out.append((f"anime_ratings >= {a.threshold} as positives, per-user 5-fold, fold {fold}",
                        with_exclusions(split_kfold(rated, fold, 5, a.seed, a.min_positives), history)))
    return out


def cmd_robustness(env: Env) -> None:
    for title, split in robustness_splits(env):
        prep = prepare(split, env.catalogue.ids)
        log(title)
        results = run_all(base_methods(env, prep), prep, env.args.k)
        extras = [(i, j) for i in range(5, len(results)) for j in (2, 3)]
        report(prep, results, [(2, 0), (3, 2), (1, 4), (0, 1)] + extras, env.args, title)
    if any(p.startswith("ratings") for p in env.args.protocols):
        print(f"Ratings protocols: training positives are ratings >= {env.args.threshold}; every other item "
              "on the user's list (anime_history, rated lower or unrated) is excluded from the ranking too.\n")


def cmd_knn(env: Env) -> None:
    a = env.args
    prep = prepare(tuning_split(env), env.catalogue.ids)
    full_cooc = methods.cooccurrence(prep.X)
    results = [run(README_KNN.name, methods.linear(prep.X, README_KNN.weights(full_cooc)), prep, a.k)]
    seen = {README_KNN}
    for cap in a.caps:
        cooc = full_cooc if cap is None else methods.cooccurrence(methods.cap_history(prep.X, cap, a.cap_seed))
        for alpha, shrink, prune, k in itertools.product(a.alphas, a.shrinks, a.prunes, a.ks):
            spec = KnnSpec(k, prune if k else "row", shrink, alpha, cap)
            if spec in seen:
                continue
            seen.add(spec)
            results.append(run(spec.name, methods.linear(prep.X, spec.weights(cooc)), prep, a.k))
            log(f"{spec.name}: NDCG {results[-1].per_user['ndcg'].mean():.4f} ({results[-1].seconds:.1f} s)")
    report(prep, results, [(i, 0) for i in range(1, len(results))], a,
           f"Item-kNN variants ({a.on} split; paired differences against the README's configuration)")


def cmd_ease(env: Env) -> None:
    a = env.args
    prep = prepare(tuning_split(env), env.catalogue.ids)
    results: list[Result] = []
    diffs: list[tuple[int, int]] = []
    fulls: dict[float, int] = {}
    for lam in a.lambdas:
        B = cached_ease(prep, lam, a.cache_dir)
        full = fulls[lam] = len(results)
        results.append(run(f"EASE λ={lam:g} (full, {np.count_nonzero(B) / len(B):.0f} per row)",
                           methods.linear(prep.X, B), prep, a.k))
        for by in a.truncate_by:
            for m in filter(None, a.truncate):
                Bm = methods.truncate_rows(B, m, by)
                label = "largest abs(B)" if by == "abs" else "largest B"
                results.append(run(f"EASE λ={lam:g}, top {m} per row by {label}",
                                   methods.linear(prep.X, Bm), prep, a.k))
                diffs.append((len(results) - 1, full))
                log(f"{results[-1].name}: NDCG {results[-1].per_user['ndcg'].mean():.4f}")
        del B
    n_ease = len(results)
    reference = fulls.get(a.ease_lambda, fulls[a.lambdas[0]])
    diffs += [(i, reference) for i in fulls.values() if i != reference]
    for spec in [README_KNN, *a.extra_knn]:
        results.append(run(spec.name, spec.scorer(prep.X, a.cap_seed), prep, a.k))
    diffs += [(i, j) for j in range(n_ease, len(results)) for i in range(n_ease)]
    report(prep, results, diffs, a, f"EASE and its row-truncated B ({a.on} split)")


def blend_results(env: Env, prep: Prepared, grid: list[tuple[float, float, float]]) -> list[Result]:
    """One Result per (a, b, c) blend, component scores computed once."""
    a = env.args
    rows = prep.test_rows
    knn = methods.precomputed(a.hybrid_knn.scorer(prep.X, a.cap_seed), rows)
    pop = methods.precomputed(methods.log_popularity(prep.X), rows)
    text = methods.precomputed(methods.content_profile(prep.X, env.embeddings()), rows)
    out = []
    for wa, wb, wc in grid:
        scorer = methods.hybrid([(wa, knn), (wb, pop), (wc, text)], prep.exclude)
        out.append(run(f"{wa:g}·knn + {wb:g}·logpop + {wc:g}·content", scorer, prep, a.k))
    return out


def cmd_hybrid(env: Env) -> None:
    a = env.args
    split = readme_split(env)
    grid = [(wa, wb, wc) for wa in a.knn_weights for wb in a.pop_weights for wc in a.content_weights
            if wa or wb or wc]
    knn_only = next(i for i, g in enumerate(grid) if g[1] == 0 and g[2] == 0 and g[0] > 0)
    print(f"Item-kNN component: {a.hybrid_knn.name}; "
          f"content: MiniLM mean profile of “{content.TEMPLATES[a.content_template]}”.\n")
    val_prep = prepare(validation_split(split, a.validation_seed, a.min_positives), env.catalogue.ids)
    log("validation grid")
    val = blend_results(env, val_prep, grid)
    val_ndcg = [float(r.per_user["ndcg"].mean()) for r in val]
    chosen = int(np.argmax(val_ndcg))
    report(val_prep, val, [(i, knn_only) for i in range(len(val)) if i != knn_only], a,
           "Hybrid blends, validation split (used to choose the weights)")
    print(f"Chosen on validation (best NDCG@{a.k}): {val[chosen].name}.\n")
    del val, val_prep
    prep = prepare(split, env.catalogue.ids)
    log("test grid")
    test = blend_results(env, prep, grid)
    order = [chosen] + [i for i in range(len(test)) if i != chosen]
    report(prep, test, [(i, knn_only) for i in order if i != knn_only], a,
           "Hybrid blends on the README protocol (test; the first difference is the blend chosen on validation)")


# ------------------------------------------------------------------------------------------- CLI

def csv_of(kind: type):
    def parse(text: str) -> list:
        return [None if v in ("none", "all") else kind(v) for v in text.split(",")]
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=data.DEFAULT_DATA_DIR)
    p.add_argument("--model-dir", type=Path, default=None, help="all-MiniLM-L6-v2 with onnx/model.onnx")
    p.add_argument("--cache-dir", type=Path, default=Path("/tmp/anime_reference_cache"))
    p.add_argument("--seed", type=int, default=42, help="split seed (numpy default_rng)")
    p.add_argument("--min-positives", type=int, default=5)
    p.add_argument("--k", type=int, default=10, help="list length")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of users")
    p.add_argument("--boot-seed", type=int, default=0)
    p.add_argument("--random-seed", type=int, default=0, help="seed of the random baseline")
    p.add_argument("--content-template", default="labelled", choices=list(content.TEMPLATES),
                   help="item text for the content baseline: " + "; ".join(f"{k}: {v!r}" for k, v in content.TEMPLATES.items()))
    p.add_argument("--raw-names", dest="unescape", action="store_false",
                   help="keep HTML entities in names (&#039;) in the content text (default: decoded, "
                        "which with the labelled template reproduces the README best)")
    p.add_argument("--knn-k", type=int, default=20, help="neighbours of the baseline item-kNN (cosine, row pruning)")
    p.add_argument("--ease-lambda", type=float, default=100.0)
    p.add_argument("--extra-knn", type=KnnSpec.parse, action="append", default=[], metavar="SPEC",
                   help="another item-kNN to run beside the baselines / EASE, e.g. k=20,prune=target,alpha=0.9 "
                        "(repeatable; keys k, prune, shrink, alpha, cap)")
    p.add_argument("--cap-seed", type=int, default=0, help="seed of the per-user history cap subsets")
    p.add_argument("--on", choices=["test", "validation"], default="test",
                   help="knn/ease grids: evaluate on the README split, or on a validation split carved "
                        "out of its training rows (one more held-out item per user, --validation-seed)")
    p.add_argument("--validation-seed", type=int, default=43)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("reference", help="the dataset README's protocol and figures")
    sub.add_parser("split-draws", help="held-out draw variants against the README's figures")
    s = sub.add_parser("content-text", help="content-only baseline, item-text templates")
    s.add_argument("--templates", type=csv_of(str), default=list(content.TEMPLATES))
    s.add_argument("--name-forms", type=csv_of(str), default=["raw", "unescaped"],
                   help="raw (as in the file) and/or unescaped (HTML entities decoded)")
    s = sub.add_parser("robustness", help="5-fold and ratings-based protocols")
    s.add_argument("--threshold", type=int, default=7, help="ratings >= threshold are positives")
    s.add_argument("--folds", type=csv_of(int), default=[0], help="which of the 5 folds, e.g. 0,1,2,3,4")
    s.add_argument("--protocols", type=csv_of(str), default=["history-kfold", "ratings-holdout", "ratings-kfold"])
    s = sub.add_parser("knn", help="item-kNN variants (cartesian product of the lists)")
    s.add_argument("--ks", type=csv_of(int), default=[20, 50, 100, 200], help="neighbours ('all' = no pruning)")
    s.add_argument("--prunes", type=csv_of(str), default=["row"], help="row and/or target")
    s.add_argument("--shrinks", type=csv_of(float), default=[0.0])
    s.add_argument("--alphas", type=csv_of(float), default=[0.5])
    s.add_argument("--caps", type=csv_of(int), default=[None], help="history cap per user ('none')")
    s = sub.add_parser("ease", help="EASE lambdas and row truncation of B")
    s.add_argument("--lambdas", type=csv_of(float), default=[100.0])
    s.add_argument("--truncate", type=csv_of(int), default=[50, 100, 200], help="'none' for no truncation")
    s.add_argument("--truncate-by", type=csv_of(str), default=["abs", "value"])
    s = sub.add_parser("hybrid", help="blends of item-kNN, popularity and content")
    s.add_argument("--hybrid-knn", type=KnnSpec.parse, default=README_KNN, metavar="SPEC",
                   help="the item-kNN component, e.g. k=20,prune=target,alpha=0.9 (default: the README's)")
    s.add_argument("--knn-weights", type=csv_of(float), default=[1.0])
    s.add_argument("--pop-weights", type=csv_of(float), default=[0.0, 0.05, 0.1, 0.2, 0.5])
    s.add_argument("--content-weights", type=csv_of(float), default=[0.0, 0.05, 0.1, 0.2, 0.5])
    return p


COMMANDS = {"reference": cmd_reference, "split-draws": cmd_split_draws, "content-text": cmd_content_text, "robustness": cmd_robustness,
            "knn": cmd_knn, "ease": cmd_ease, "hybrid": cmd_hybrid}


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    started = time.perf_counter()
    print(f"<!-- {' '.join(['anime_reference.py', *(argv if argv is not None else sys.argv[1:])])} | "
          f"{datetime.datetime.now():%Y-%m-%d %H:%M} | {platform.node()} {os.cpu_count()} cores | "
          f"numpy {np.__version__} -->\n")
    env = Env(args, data.read_catalogue(args.data_dir))
    COMMANDS[args.command](env)
    print(f"<!-- {time.perf_counter() - started:.0f} s -->")


if __name__ == "__main__":
    main()
