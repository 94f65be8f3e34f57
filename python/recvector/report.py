"""`recvector evaluate --sweep ...`: a grid over scoring settings, chosen on a validation split of
the users and reported on a separate test split, with a self-contained HTML report (inline SVG)."""
from __future__ import annotations

import html
import itertools
import json
from typing import Any, Callable, Sequence

SWEEPABLE = ("lambda", "alpha", "beta", "gamma", "candidate_pool", "half_life_days", "interests")
METRICS = ("recall", "ndcg", "mrr", "coverage", "intra_list_similarity", "popularity_bias")


def parse_sweeps(specs: Sequence[str]) -> dict[str, list[float]]:
    """``["lambda=0.3,0.7,1", "beta=0,0.05"]`` -> {"lambda": [0.3, 0.7, 1.0], "beta": [0.0, 0.05]}."""
    grid: dict[str, list[float]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or name not in SWEEPABLE:
            raise ValueError(f"--sweep takes NAME=V1,V2,... with NAME one of {', '.join(SWEEPABLE)}; got {spec!r}")
        try:
            grid[name] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--sweep {name}: values must be numbers, got {values!r}") from None
        if not grid[name]:
            raise ValueError(f"--sweep {name}: no values")
    return grid


def run_sweep(evaluate: Callable[..., list[dict[str, Any]]], grid: dict[str, list[float]], k: int,
              max_users: int | None, seed: int) -> dict[str, Any]:
    """Evaluate every grid point on the validation users, pick the best NDCG@k, then report the
    best and the current defaults on the test users."""
    names = list(grid)
    points = []
    for values in itertools.product(*(grid[n] for n in names)):
        params = dict(zip(names, values))
        rows = evaluate(k, max_users, part="validation", seed=seed, **_sql_params(params))
        ours = next(r for r in rows if r["method"] == "recvector")
        points.append({"params": params, "validation": ours})
    best = max(points, key=lambda p: (p["validation"]["ndcg"], p["validation"]["recall"]))
    test_best = evaluate(k, max_users, part="test", seed=seed, **_sql_params(best["params"]))
    test_default = evaluate(k, max_users, part="test", seed=seed)
    fragment: dict[str, Any] = {"scoring": {}}
    for n, v in best["params"].items():
        if n == "half_life_days":
            fragment.setdefault("aggregation", {})["half_life"] = f"{v:g} days"
        elif n == "candidate_pool":
            fragment["scoring"][n] = int(v)
        else:
            fragment["scoring"][n] = v
    return {"k": k, "grid": grid, "points": points, "best": best, "test_best": test_best,
            "test_default": test_default, "mapping_fragment": fragment}


def _sql_params(params: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, v in params.items():
        out[n] = int(v) if n == "candidate_pool" else v
    return out


def _bars(title: str, labels: list[str], values: list[float]) -> str:
    width, height, pad = 520, 200, 30
    top = max(values + [1e-9])
    bw = (width - 2 * pad) / max(len(values), 1)
    bars = []
    for i, (label, v) in enumerate(zip(labels, values)):
        h = (height - 2 * pad) * (v / top)
        x = pad + i * bw
        bars.append(f'<rect x="{x + 4:.1f}" y="{height - pad - h:.1f}" width="{bw - 8:.1f}" height="{h:.1f}" fill="#3b6ea5"/>'
                    f'<text x="{x + bw / 2:.1f}" y="{height - pad + 14}" font-size="10" text-anchor="middle">{html.escape(label)}</text>'
                    f'<text x="{x + bw / 2:.1f}" y="{height - pad - h - 3:.1f}" font-size="10" text-anchor="middle">{v:.3f}</text>')
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" role="img">{"".join(bars)}</svg></figure>')


def _table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("method", "users") + METRICS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c])) if c in ('method', 'users') else f'{(r[c] or 0):.4f}'}</td>"
                                    for c in ("method", "users") + METRICS) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_report(evaluation: list[dict[str, Any]], sweep: dict[str, Any] | None, database: str) -> str:
    parts = [f"<h1>RecVector evaluation — {html.escape(database)}</h1>",
             "<p>Leave-last-out: each user's last positive interaction is held out; the profile is built from the "
             "earlier ones with the production formula; seen items are excluded.</p>",
             "<h2>All users</h2>", _table(evaluation),
             _bars("NDCG by method", [r["method"] for r in evaluation], [r["ndcg"] or 0 for r in evaluation]),
             _bars("Recall by method", [r["method"] for r in evaluation], [r["recall"] or 0 for r in evaluation])]
    if sweep:
        parts += ["<h2>Sweep (chosen on validation users, reported on test users)</h2>",
                  f"<p>Best on validation: <code>{html.escape(json.dumps(sweep['best']['params']))}</code></p>",
                  "<h3>Test users, best settings</h3>", _table(sweep["test_best"]),
                  "<h3>Test users, current settings</h3>", _table(sweep["test_default"]),
                  f"<p>Mapping fragment: <code>{html.escape(json.dumps(sweep['mapping_fragment']))}</code></p>"]
        for name, values in sweep["grid"].items():
            for metric in ("ndcg", "recall", "coverage"):
                means = []
                for v in values:
                    pts = [p["validation"][metric] or 0 for p in sweep["points"] if p["params"][name] == v]
                    means.append(sum(pts) / len(pts))
                parts.append(_bars(f"validation {metric} against {name}", [f"{v:g}" for v in values], means))
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}figure{display:inline-block;margin:1em}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>RecVector evaluation</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"


def _line(title: str, xs: list[float], ys: list[float], xlabel: str) -> str:
    width, height, pad = 520, 220, 36
    if not xs:
        return ""
    lo, hi = min(ys), max(ys)
    span = (hi - lo) or 1e-9
    xmin, xmax = min(xs), max(xs)
    xspan = (xmax - xmin) or 1.0
    pts = [(pad + (x - xmin) / xspan * (width - 2 * pad), height - pad - (y - lo) / span * (height - 2 * pad))
           for x, y in zip(xs, ys)]
    path = " ".join(f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(pts))
    dots = "".join(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="#3b6ea5"/>'
                   f'<text x="{px:.1f}" y="{height - pad + 14}" font-size="10" text-anchor="middle">{x:g}</text>'
                   for (px, py), x in zip(pts, xs))
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" role="img"><path d="{path}" fill="none" stroke="#3b6ea5"/>{dots}'
            f'<text x="{width / 2}" y="{height - 4}" font-size="11" text-anchor="middle">{html.escape(xlabel)}</text>'
            f'<text x="4" y="{pad - 8}" font-size="10">{hi:.4f}</text><text x="4" y="{height - pad}" font-size="10">{lo:.4f}</text>'
            f'</svg></figure>')


def tune_report(result: dict[str, Any], database: str) -> str:
    """A self-contained HTML page of a recvector.tune() result: the decision, the test table with
    intervals, and the search (NDCG against each weight, best of the others; lambda)."""
    v = result["validation"]
    rows = result["test"]
    head = "".join(f"<th>{h}</th>" for h in ("method", "users", "recall", "ndcg", "ndcg 95 %", "tuned minus this", "95 %"))
    body = ""
    for r in rows:
        diff = r.get("recvector_minus_this")
        body += ("<tr>" + f"<td>{html.escape(r['method'])}</td><td>{r['users']}</td><td>{r['recall']:.4f}</td>"
                 f"<td>{r['ndcg']:.4f}</td><td>[{r['ndcg_low']:.4f}, {r['ndcg_high']:.4f}]</td>"
                 + (f"<td>{diff:+.4f}</td><td>[{r['difference_low']:+.4f}, {r['difference_high']:+.4f}]</td>"
                    if diff is not None else "<td></td><td></td>") + "</tr>")
    parts = [f"<h1>RecVector tuning — {html.escape(database)}</h1>",
             f"<p>{result['users']} users, protocol <b>{html.escape(result['protocol'])}</b>: two positive interactions "
             "held out per user (the validation one for the search and the decision, the test one for this report); "
             "everything learnt from the rest.</p>",
             f"<p><b>Decision:</b> {html.escape(result['decision'])}. Validation NDCG@{result['k']}: current "
             f"{v['current_ndcg']:.4f}, tuned {v['tuned_ndcg']:.4f}, difference {v['difference']:+.4f} "
             f"(95 % paired bootstrap interval [{v['difference_low']:+.4f}, {v['difference_high']:+.4f}]).</p>",
             f"<p>Tuned settings: <code>{html.escape(json.dumps(result['tuned']))}</code><br>"
             f"Current settings: <code>{html.escape(json.dumps(result['current']))}</code></p>",
             "<h2>Test items (never seen by the search)</h2>", f"<table><tr>{head}</tr>{body}</table>",
             _bars("Test NDCG by method", [r["method"] for r in rows], [r["ndcg"] for r in rows])]
    points = result["search"]["points"]
    for name in ("alpha", "beta", "gamma"):
        xs = sorted({p[name] for p in points})
        ys = [max(p["ndcg"] for p in points if p[name] == x) for x in xs]
        parts.append(_line(f"validation NDCG against {name} (best of the other settings)", xs, ys, name))
    lams = result["search"]["lambdas"]
    if lams:
        parts.append(_line("validation NDCG against lambda (production ranking)", [x["lambda"] for x in lams],
                           [x["ndcg"] for x in lams], "lambda"))
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}figure{display:inline-block;margin:1em}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>RecVector tuning</title><style>{style}</style>"
            f"</head><body>{''.join(parts)}</body></html>")
