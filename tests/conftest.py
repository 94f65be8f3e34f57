"""Fixtures: a real PostgreSQL (127.0.0.1:5432 unless PG* says otherwise) with the real extension.

Template databases are built once per session with pytest-postgresql's DatabaseJanitor:

* ``rv_tpl_pagila``   Pagila loaded from ../shared (falls back to the copy in examples/), extension
                      created, nothing else;
* ``rv_tpl_booted``   the same plus the Pagila mapping and a full bootstrap with the local model;
* ``rv_tpl_chinook``  Chinook loaded from ../shared, its mapping, bootstrapped;
* ``rv_tpl_anime``    800 real users' anime lists (tests/anime.py), mapped and bootstrapped.

Every test that asks for ``pagila`` or ``booted`` gets its own database cloned from a template, so
tests can write freely and run in any order.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
PAGILA_MAPPING = ROOT / "examples" / "pagila" / "rec_schema.json"
CHINOOK_MAPPING = ROOT / "examples" / "chinook" / "rec_schema.json"

HOST = os.environ.get("PGHOST", "127.0.0.1")
PORT = int(os.environ.get("PGPORT", "5432"))
USER = os.environ.get("PGUSER", "postgres")


def dsn(dbname: str) -> str:
    return f"host={HOST} port={PORT} user={USER} dbname={dbname}"


def pagila_sql() -> list[bytes]:
    shared = SHARED / "datasets" / "pagila"
    if (shared / "pagila-schema.sql").is_file():
        return [(shared / "pagila-schema.sql").read_bytes(), (shared / "pagila-data.sql").read_bytes()]
    data = ROOT / "examples" / "pagila" / "data"
    return [gzip.decompress((data / f).read_bytes()) for f in ("pagila-schema.sql.gz", "pagila-data.sql.gz")]


def psql(dbname: str, script: bytes) -> None:
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn(dbname)], input=script,
                   check=True, capture_output=True)


def _template(name: str, build: Any, template: str | None = None) -> Iterator[str]:
    janitor = DatabaseJanitor(user=USER, host=HOST, port=PORT, dbname=name, template_dbname=template,
                              as_template=True)
    # A template left by an interrupted run is rebuilt.
    with psycopg.connect(dsn("postgres"), autocommit=True) as c:
        if c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            c.execute(f'ALTER DATABASE "{name}" WITH is_template false')
            c.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    janitor.init()
    try:
        build(name)
        yield name
    finally:
        janitor.drop()


@pytest.fixture(scope="session")
def pagila_template() -> Iterator[str]:
    def build(name: str) -> None:
        for script in pagila_sql():
            psql(name, script)
        with psycopg.connect(dsn(name), autocommit=True) as c:
            c.execute("CREATE EXTENSION recvector CASCADE")

    yield from _template("rv_tpl_pagila", build)


@pytest.fixture(scope="session")
def booted_template(pagila_template: str) -> Iterator[str]:
    def build(name: str) -> None:
        with psycopg.connect(dsn(name), autocommit=True) as c:
            c.execute("SELECT recvector.set_schema(%s::jsonb)", (PAGILA_MAPPING.read_text(),))
            c.execute("SELECT recvector.bootstrap()")

    yield from _template("rv_tpl_booted", build, template=pagila_template)


@pytest.fixture(scope="session")
def chinook_template() -> Iterator[str]:
    def build(name: str) -> None:
        with psycopg.connect(dsn(name), autocommit=True) as c:
            load_chinook(c)
            c.execute("CREATE EXTENSION recvector CASCADE")
            c.execute("SELECT recvector.set_schema(%s::jsonb)", (CHINOOK_MAPPING.read_text(),))
            c.execute("SELECT recvector.bootstrap()")

    yield from _template("rv_tpl_chinook", build)


@pytest.fixture(scope="session")
def anime_template() -> Iterator[str]:
    import anime

    yield from _template("rv_tpl_anime", lambda name: anime.load(dsn(name)))


def _clone(template: str | None) -> Iterator[psycopg.Connection]:
    name = f"rv_test_{uuid.uuid4().hex[:10]}"
    janitor = DatabaseJanitor(user=USER, host=HOST, port=PORT, dbname=name,
                              template_dbname=template)
    janitor.init()
    try:
        with psycopg.connect(dsn(name), autocommit=True) as conn:
            yield conn
    finally:
        janitor.drop()


@pytest.fixture
def pagila(pagila_template: str) -> Iterator[psycopg.Connection]:
    """Pagila with the extension created, no mapping loaded (autocommit connection)."""
    yield from _clone(pagila_template)


@pytest.fixture
def booted(booted_template: str) -> Iterator[psycopg.Connection]:
    """Pagila with the mapping loaded and bootstrapped (autocommit connection)."""
    yield from _clone(booted_template)


@pytest.fixture
def chinook(chinook_template: str) -> Iterator[psycopg.Connection]:
    """Chinook with its mapping loaded and bootstrapped (autocommit connection)."""
    yield from _clone(chinook_template)


@pytest.fixture
def anime_db(anime_template: str) -> Iterator[psycopg.Connection]:
    """800 real users' anime lists, mapped and bootstrapped (autocommit connection)."""
    yield from _clone(anime_template)


@pytest.fixture
def empty_db() -> Iterator[psycopg.Connection]:
    """A new empty database (nothing installed)."""
    yield from _clone(None)


def load_chinook(conn: psycopg.Connection) -> None:
    """Chinook (PostgreSQL version, from ../shared) into the connection's database; skips the test
    when the sample is not beside the checkout."""
    script = SHARED / "datasets" / "chinook" / "Chinook_PostgreSql.sql"
    if not script.is_file():
        pytest.skip("../shared/datasets/chinook is not beside the checkout")
    lines = script.read_text(encoding="utf-8").splitlines()
    body = "\n".join(ln for ln in lines if not ln.lstrip().upper().startswith(("DROP DATABASE", "CREATE DATABASE", "\\C ")))
    psql(one(conn, "SELECT current_database()"), body.encode())


def pagila_mapping() -> dict[str, Any]:
    return json.loads(PAGILA_MAPPING.read_text())


def one(conn: psycopg.Connection, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def vec(text: str | None) -> list[float] | None:
    """pgvector text form -> list of floats."""
    if text is None:
        return None
    return [float(x) for x in text.strip("[]").split(",")]
