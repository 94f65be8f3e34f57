"""What every benchmark shares: timing, percentiles, the machine, draining the worker's queue."""
from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import psycopg

DOCS = Path(__file__).resolve().parents[1] / "docs"


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    s = sorted(samples_ms)

    def pct(p: float) -> float:
        return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]

    return {"n": len(s), "min": round(s[0], 3), "median": round(statistics.median(s), 3),
            "p95": round(pct(95), 3), "p99": round(pct(99), 3)}


def timed(fn: Callable[[], Any], n: int, warmup: int = 5) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return percentiles(out)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "os": platform.platform()}


def drain_queue(conn: psycopg.Connection, batch: int) -> dict[str, Any]:
    """Run recvector.process_queue(batch) until the queue is empty; how many per second."""
    queued = conn.execute("SELECT count(*) FROM recvector.queue").fetchone()[0]
    t0 = time.perf_counter()
    done = 0
    while True:
        k = conn.execute("SELECT recvector.process_queue(%s)", (batch,)).fetchone()[0]
        done += k
        if k < batch:
            break
    return {"queued": queued, "done": done, "per_second": round(done / max(time.perf_counter() - t0, 1e-9), 1)}


def fold_all(conn: psycopg.Connection, batch: int = 10000) -> dict[str, Any]:
    """Fold every deferred capture (recvector.fold_pending) and how many per second."""
    t0 = time.perf_counter()
    folded = 0
    while (k := conn.execute("SELECT recvector.fold_pending(%s)", (batch,)).fetchone()[0]) > 0:
        folded += k
    return {"folded": folded, "per_second": round(folded / max(time.perf_counter() - t0, 1e-9), 1)}


