"""The ``recvector`` command line: install, status, sync, studio, chroma-sync, chroma-verify,
set-schema, bootstrap, recommend, similar, evaluate, tune, explain, worker, demo
(``recvector <command> --help`` for each).

Errors print as one line (``recvector: error: ...``, then hint) and exit 1; usage errors exit 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .client import Client
from .errors import RecVectorError


def _dsn(args: argparse.Namespace) -> str:
    return args.dsn if args.dsn is not None else os.environ.get("RECVECTOR_DSN", "")


def _print_notice(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _client(args: argparse.Namespace) -> Client:
    return Client.connect(_dsn(args), on_notice=None if args.json else _print_notice)


def _out(args: argparse.Namespace, value: Any, text: str) -> None:
    print(json.dumps(value, indent=2, default=str) if args.json else text)


def cmd_install(args: argparse.Namespace) -> int:
    with _client(args) as c:
        version = c.install(plain=args.plain, schema=args.schema)
        result: dict[str, Any] = {"extension": "recvector", "version": version,
                                  "mode": "plain SQL, Python outside the database" if args.plain else "extension"}
        if args.mapping:
            result["mapping"] = c.set_schema(Path(args.mapping).read_text(encoding="utf-8"))
        _out(args, result, f"recvector {version} installed" + (" and mapping loaded" if args.mapping else ""))
    return 0


def cmd_set_schema(args: argparse.Namespace) -> int:
    with _client(args) as c:
        text = Path(args.mapping).read_text(encoding="utf-8")
        if args.check:
            problems = c.validate_schema(text)
            _out(args, [{"path": p, "problem": m} for p, m in problems],
                 "\n".join(f"{p}: {m}" for p, m in problems) or "mapping is valid")
            return 1 if problems else 0
        summary = c.set_schema(text)
        _out(args, summary, f"mapping loaded: {json.dumps(summary)}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    with _client(args) as c:
        summary = c.sync()
        _out(args, summary, f"sync: {json.dumps(summary)}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as c:
        st = c.status()
        width = max(len(k) for k in st)
        _out(args, st, "\n".join(f"{k.ljust(width)}  {'' if v is None else v}" for k, v in st.items()))
    return 0


def cmd_chroma_sync(args: argparse.Namespace) -> int:
    with _client(args) as c:
        summary = c.chroma_sync(args.url, args.collection, full_sync=args.full, batch_size=args.batch_size,
                                recreate=args.recreate, tenant=args.tenant, database=args.database,
                                token_env=args.token_env)
        _out(args, summary, f"chroma-sync: {summary['mode']}: {summary['upserted']} upserted, "
                            f"{summary['deleted']} deleted in {summary['batches']} calls")
    return 0


def cmd_chroma_verify(args: argparse.Namespace) -> int:
    with _client(args) as c:
        report = c.chroma_verify(args.url, args.collection, sample=args.sample, tenant=args.tenant,
                                 database=args.database, token_env=args.token_env)
        _out(args, report, f"chroma-verify: {'in step' if report['in_step'] else 'NOT in step'}: "
                           f"{report['postgres_count']} vectors in PostgreSQL, {report['chroma_count']} in Chroma; "
                           f"{report['missing_count']} missing and {report['mismatched_count']} different "
                           f"of {report['sampled']} sampled")
    return 0 if report["in_step"] else 2


def cmd_studio(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .studio.server import serve

    serve(_dsn(args), args.port, Path(args.file) if args.file else None, open_browser=not args.no_open)
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    with _client(args) as c:
        c.bootstrap(batch_size=args.batch_size, resumable=True, concurrency=args.concurrency)
        _out(args, {"status": "done"}, "bootstrap done")
    return 0



def cmd_recommend(args: argparse.Namespace) -> int:
    opts = {k: v for k, v in (("alpha", args.alpha), ("beta", args.beta), ("exploration", args.exploration),
                              ("seed", args.seed), ("candidate_pool", args.candidate_pool)) if v is not None}
    with _client(args) as c:
        recs = c.recommend(args.user_id, args.k, args.lambda_, **opts)
        _out(args, [r.__dict__ for r in recs], "\n".join(f"{r.entity_id}\t{r.score:.4f}" for r in recs))
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    with _client(args) as c:
        recs = c.similar(args.entity_id, args.k, args.mode)
        _out(args, [r.__dict__ for r in recs], "\n".join(f"{r.entity_id}\t{r.score:.4f}" for r in recs))
    return 0


def _evaluation_table(rows: list[dict[str, Any]], k: int) -> str:
    head = (f"{'method':<20}{'users':>7}{'recall@' + str(k):>11}{'ndcg':>8}{'95 %':>17}{'mrr':>8}{'coverage':>10}"
            f"{'ILS':>7}{'pop.bias':>9}  recvector minus this")

    def interval(lo: Any, hi: Any) -> str:
        return f"[{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""

    def diff(r: dict[str, Any]) -> str:
        d = r.get("recvector_minus_this")
        return "" if d is None else f"{d:+.3f} [{r['difference_low']:+.3f}, {r['difference_high']:+.3f}]"

    return "\n".join([head] + [f"{r['method']:<20}{r['users']:>7}{r['recall']:>11.3f}{r['ndcg']:>8.3f}"
                                f"{interval(r.get('ndcg_low'), r.get('ndcg_high')):>17}{r['mrr']:>8.3f}"
                                f"{r['coverage']:>10.3f}{(r['intra_list_similarity'] or 0):>7.3f}"
                                f"{(r['popularity_bias'] or 0):>9.3f}  {diff(r)}" for r in rows])


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import report

    grid = report.parse_sweeps(args.sweep or [])
    with _client(args) as c:
        rows = c.evaluate(args.k, args.max_users, **{"lambda": args.lambda_, "alpha": args.alpha, "beta": args.beta,
                                                     "gamma": args.gamma, "seed": args.seed,
                                                     "protocol": args.protocol, "min_positives": args.min_positives})
        sweep = report.run_sweep(c.evaluate, grid, args.k, args.max_users, args.seed) if grid else None
        if args.html:
            db = c.conn.info.dbname
            with open(args.html, "w", encoding="utf-8") as f:
                f.write(report.html_report(rows, sweep, db))
        if sweep:
            text = (_evaluation_table(rows, args.k) + "\n\nsweep: best on validation users "
                    + json.dumps(sweep["best"]["params"]) + "\ntest users, best settings:\n"
                    + _evaluation_table(sweep["test_best"], args.k) + "\ntest users, current settings:\n"
                    + _evaluation_table(sweep["test_default"], args.k)
                    + "\nmapping fragment: " + json.dumps(sweep["mapping_fragment"]))
            _out(args, {"evaluation": rows, "sweep": sweep}, text)
            return 0
        _out(args, rows, _evaluation_table(rows, args.k))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from . import report

    with _client(args) as c:
        result = c.tune(args.time_budget, args.k, args.max_users, args.seed, store=not args.dry_run)
        if args.html:
            with open(args.html, "w", encoding="utf-8") as f:
                f.write(report.tune_report(result, c.conn.info.dbname))
        v = result["validation"]
        text = (f"tune: {result['users']} users ({result['protocol']}), {result['seconds']} s\n"
                f"validation NDCG@{result['k']}: current {v['current_ndcg']:.4f}, tuned {v['tuned_ndcg']:.4f}, "
                f"difference {v['difference']:+.4f} [{v['difference_low']:+.4f}, {v['difference_high']:+.4f}]\n"
                f"decision: {result['decision']}\ntuned settings: {json.dumps(result['tuned'])}\n\n"
                f"test items:\n{_evaluation_table(result['test'], result['k'])}")
        _out(args, result, text)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    with _client(args) as c:
        rows = c.explain(args.user_id, args.k, args.lambda_)
        lines = [f"{r['rank']:>3}. {r['entity_id']:<12} score {r['score']:.3f} (similarity {r['similarity'] or 0:.3f}, "
                 f"popularity {r['popularity_term']:.3f}, collaborative {r['collaborative_term']:.3f}, "
                 f"MMR -{r['mmr_penalty']:.3f}; from {r['sources']}) because of "
                 + ", ".join(f"{b['entity_id']} ({b['via']})" for b in r["because"]) for r in rows]
        _out(args, rows, "\n".join(lines))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    with _client(args) as c:
        total = 0
        if args.once:
            while True:
                done = c.drain_entities(args.batch) + c.process_queue(args.batch)
                total += done
                if done < args.batch:
                    break
        else:
            for done in c.worker(interval=args.interval, max_items=args.batch):
                total += done
                if done and not args.json:
                    print(f"recvector worker: {done} items (interactions folded, entities, profiles)", file=sys.stderr, flush=True)
        _out(args, {"processed": total}, f"processed {total}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(_dsn(args), database=args.database, json_output=args.json)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recvector", description="Content-based recommendations inside PostgreSQL.")
    p.add_argument("--version", action="version", version=f"recvector {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dsn", default=None, help="libpq connection string (default: $RECVECTOR_DSN, then libpq's PG* variables)")
    common.add_argument("--json", action="store_true", help="print JSON")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("install", parents=[common], help="CREATE EXTENSION recvector (and load a mapping)")
    s.add_argument("--mapping", help="mapping file to load after installing")
    s.add_argument("--plain", action="store_true",
                   help="install as plain SQL without PL/Python (managed PostgreSQL); this CLI then embeds")
    s.add_argument("--schema", default="public", help="schema for rec_recommend and rec_similar (with --plain)")
    s.set_defaults(fn=cmd_install)

    s = sub.add_parser("status", parents=[common], help="version, mapping, counts and what waits for the worker")
    s.set_defaults(fn=cmd_status)
    s = sub.add_parser("sync", parents=[common], help="embed only entities whose text changed; drop deleted ones")
    s.set_defaults(fn=cmd_sync)
    s = sub.add_parser("studio", parents=[common], help="the visual mapping editor, on http://127.0.0.1:PORT")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--file", help="the mapping JSON file to load and save (rec_schema.json)")
    s.add_argument("--no-open", action="store_true", help="do not open a browser")
    s.set_defaults(fn=cmd_studio)
    for name, fn, helptext in (("chroma-sync", cmd_chroma_sync, "push changed entity vectors to a Chroma collection"),
                               ("chroma-verify", cmd_chroma_verify, "compare a Chroma collection with the vectors (exit 2 if not in step)")):
        s = sub.add_parser(name, parents=[common], help=helptext)
        s.add_argument("url", help="Chroma server, e.g. http://127.0.0.1:8000")
        s.add_argument("collection")
        s.add_argument("--tenant", default="default_tenant")
        s.add_argument("--database", default="default_database")
        if name == "chroma-sync":
            s.add_argument("--full", action="store_true", help="send everything and delete ids PostgreSQL does not have")
            s.add_argument("--recreate", action="store_true", help="drop and rebuild the collection")
            s.add_argument("--batch-size", type=int)
        else:
            s.add_argument("--sample", type=int, default=100)
        s.add_argument("--token-env", help="environment variable holding a Chroma token")
        s.set_defaults(fn=fn)

    s = sub.add_parser("set-schema", parents=[common], help="load (or --check) a mapping file")
    s.add_argument("mapping")
    s.add_argument("--check", action="store_true", help="only validate; list every problem")
    s.set_defaults(fn=cmd_set_schema)

    s = sub.add_parser("bootstrap", parents=[common], help="embed entities, build stats and profiles (resumable)")
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--concurrency", type=int, default=None, metavar="N",
                   help="requests to a hosted embedding provider at a time (1-64; default the mapping's "
                        "embedding.max_concurrency); embedding.max_requests_per_second still holds")
    s.set_defaults(fn=cmd_bootstrap)

    s = sub.add_parser("recommend", parents=[common], help="recommendations for a user")
    s.add_argument("user_id")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--lambda", dest="lambda_", type=float, default=None)
    s.add_argument("--alpha", type=float)
    s.add_argument("--beta", type=float)
    s.add_argument("--exploration", type=float)
    s.add_argument("--seed", type=int)
    s.add_argument("--candidate-pool", type=int)
    s.set_defaults(fn=cmd_recommend)

    s = sub.add_parser("similar", parents=[common], help="entities similar to an entity")
    s.add_argument("entity_id")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--mode", choices=("content", "cf", "hybrid"), default="content",
                   help="content: nearest vectors; cf: liked by the same users; hybrid: both")
    s.set_defaults(fn=cmd_similar)

    s = sub.add_parser("evaluate", parents=[common], help="offline evaluation on the database's own history")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--max-users", type=int, default=None)
    s.add_argument("--lambda", dest="lambda_", type=float)
    s.add_argument("--alpha", type=float)
    s.add_argument("--beta", type=float)
    s.add_argument("--gamma", type=float)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--protocol", choices=("auto", "last", "random"), default="auto",
                   help="hold out each user's most recent positive interaction (last), or one drawn with the seed "
                        "(random); auto: last when the interactions have times")
    s.add_argument("--min-positives", type=int, default=2)
    s.add_argument("--sweep", action="append", metavar="NAME=V1,V2,...",
                   help="grid over lambda, alpha, beta, gamma, candidate_pool, half_life_days, interests (repeatable); "
                        "chosen on validation users, reported on test users")
    s.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report with plots")
    s.set_defaults(fn=cmd_evaluate)

    s = sub.add_parser("tune", parents=[common], help="search the scoring settings on the database's own history; "
                                                      "store them when they win beyond the noise")
    s.add_argument("--time-budget", default="10 minutes", help="an interval, e.g. '5 minutes' (default 10 minutes)")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--max-users", type=int, default=2000)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--dry-run", action="store_true", help="report only; never store the settings")
    s.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report with plots")
    s.set_defaults(fn=cmd_tune)

    s = sub.add_parser("explain", parents=[common], help="a user's recommendations with their score parts and reasons")
    s.add_argument("user_id")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--lambda", dest="lambda_", type=float)
    s.set_defaults(fn=cmd_explain)

    s = sub.add_parser("worker", parents=[common], help="drain the profile queue (instead of pg_cron)")
    s.add_argument("--interval", type=float, default=1.0, help="seconds to sleep when the queue is empty")
    s.add_argument("--batch", type=int, default=100)
    s.add_argument("--once", action="store_true", help="drain what is queued, then exit")
    s.set_defaults(fn=cmd_worker)

    s = sub.add_parser("demo", parents=[common], help="load the bundled Pagila sample and show recommendations")
    s.add_argument("--database", default="recvector_demo", help="database to (re)create for the demo")
    s.set_defaults(fn=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except RecVectorError as e:
        print(f"recvector: error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"recvector: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("recvector: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
