"""`recvector bootstrap --concurrency N` against a slow, rate-limited provider: Pagila's 1,000 films
embedded through the fake Gemini server of the tests (tests/fake_providers.py: the documented
request and response shapes, each answer delayed by --latency seconds, default 2), for several N, with and
without `max_requests_per_second`. Prints a Markdown table (the embedding phase: first request sent
to last answer received; the whole CLI run, which also builds stats, neighbours and profiles;
requests, 429s, most requests in flight, requests per second held).

    .venv/bin/python -m bench.bootstrap_concurrency [--latency 2] [--rate 1]

Not a test: nothing asserts a time. Creates and drops the database rv_bench_concurrency.
"""
from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from .common import machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fake_providers import KEY, FakeProviders  # noqa: E402

DB = "rv_bench_concurrency"


def _pagila(dsn: str) -> None:
    shared = ROOT.parent / "shared" / "datasets" / "pagila"
    if (shared / "pagila-schema.sql").is_file():
        scripts = [(shared / f).read_bytes() for f in ("pagila-schema.sql", "pagila-data.sql")]
    else:
        data = ROOT / "examples" / "pagila" / "data"
        scripts = [gzip.decompress((data / f).read_bytes()) for f in ("pagila-schema.sql.gz", "pagila-data.sql.gz")]
    for script in scripts:
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn], input=script, check=True,
                       capture_output=True)


def run(base: str, latency: float, rate: float, concurrencies: list[int]) -> list[dict]:
    with psycopg.connect(f"{base} dbname=postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {DB}")
    dsn = f"{base} dbname={DB}"
    fake = FakeProviders().start()
    key_dir = Path(tempfile.mkdtemp(prefix="rv-bench-keys-"))
    key_dir.chmod(0o755)
    (key_dir / "key").write_text(KEY + "\n")
    (key_dir / "key").chmod(0o644)
    rows = []
    try:
        _pagila(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION recvector CASCADE")
            doc = json.loads((ROOT / "examples" / "pagila" / "rec_schema.json").read_text())
            for limit in (None, rate):
                for n in concurrencies:
                    doc["embedding"] = {"provider": "gemini", "model": "gemini-embedding-001", "dimensions": 128,
                                        "base_url": f"{fake.url}/v1beta", "api_key_file": str(key_dir / "key"),
                                        "retry_base_seconds": 0.05, "retry_max_seconds": 2, "max_concurrency": 1}
                    if limit:
                        doc["embedding"]["max_requests_per_second"] = limit
                    conn.execute("SELECT recvector.set_schema(%s::jsonb)", (json.dumps(doc),))
                    conn.execute("TRUNCATE recvector.entity_vectors")
                    fake.reset()
                    fake.latency = latency
                    t0 = time.perf_counter()
                    r = subprocess.run([sys.executable, "-m", "recvector.cli", "bootstrap", "--concurrency", str(n),
                                        "--dsn", dsn], capture_output=True, text=True, timeout=1800, cwd=ROOT)
                    wall = time.perf_counter() - t0
                    if r.returncode != 0:
                        raise SystemExit(r.stderr)
                    starts = sorted(q.at for q in fake.requests)
                    span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
                    rows.append({"concurrency": n, "max_requests_per_second": limit, "seconds": round(wall, 2),
                                 "requests": len(fake.requests),
                                 "refused_429": sum(1 for q in fake.requests if q.status == 429),
                                 "max_in_flight": fake.max_in_flight,
                                 "requests_per_second": round((len(starts) - 1) / span, 1) if span else None,
                                 # first request sent to last answer received: the embedding itself
                                 "embedding_seconds": round(span + latency, 2),
                                 "embedded": conn.execute("SELECT count(*) FROM recvector.entity_vectors").fetchone()[0]})
                    print(rows[-1], file=sys.stderr)
    finally:
        fake.stop()
        with psycopg.connect(f"{base} dbname=postgres", autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="host=127.0.0.1 user=postgres")
    ap.add_argument("--latency", type=float, default=2.0)
    ap.add_argument("--rate", type=float, default=1.0)
    ap.add_argument("--concurrency", default="1,2,4,8")
    args = ap.parse_args()
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[:3]
    rows = run(args.base, args.latency, args.rate, [int(x) for x in args.concurrency.split(",")])
    with open("/proc/loadavg") as f:
        load_after = f.read().split()[:3]
    m = machine()
    print(f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {m['cores']} cores ({m['cpu']}, {m['memory']}); load average before "
          f"{' '.join(load_before)}, after {' '.join(load_after)}; fake Gemini answering in {args.latency} s, "
          "100 texts a request, Pagila's 1,000 films (10 requests).\n")
    print("| --concurrency | max_requests_per_second | embedding (s) | whole bootstrap (s) | requests | 429s | most in flight | requests/s | embedded |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['concurrency']} | {r['max_requests_per_second'] or '—'} | {r['embedding_seconds']} | {r['seconds']} | "
              f"{r['requests']} | {r['refused_429']} | {r['max_in_flight']} | {r['requests_per_second']} | {r['embedded']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
