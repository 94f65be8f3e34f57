"""Throw-away PostgreSQL 15 clusters on other ports (Debian's postgresql-common), for tests that stop,
restart or replicate a server."""
from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import psycopg


def available() -> bool:
    return shutil.which("pg_createcluster") is not None


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited with {done.returncode}: {done.stderr.strip()[-800:]}")
    return done


class Cluster:
    def __init__(self, prefix: str, port: int) -> None:
        self.name = f"{prefix}{uuid.uuid4().hex[:6]}"
        self.port = port
        self.datadir = Path(f"/var/lib/postgresql/15/{self.name}")

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def create(self, *server_options: str) -> "Cluster":
        opts = [x for o in server_options for x in ("-o", o)]
        run("pg_createcluster", "15", self.name, "--port", str(self.port), *opts, "--", "--auth=trust")
        return self

    def ctl(self, *args: str) -> None:
        run("pg_ctlcluster", "--skip-systemctl-redirect", "15", self.name, *args)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def drop(self) -> None:
        subprocess.run(["pg_dropcluster", "15", self.name, "--stop"], capture_output=True)
