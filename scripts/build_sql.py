#!/usr/bin/env python3
"""Assemble the extension's install and upgrade scripts from sql/ (run by `make`).

    sql/versions.txt                      released versions, oldest first; the last line is the
                                          version being built (the control file must agree)
    sql/incremental/<version>-NNN-*.sql   run once, in order; frozen once <version> is released
    sql/idempotent/NNN-*.sql              CREATE OR REPLACE; re-run by every install and upgrade
    sql/frozen.txt                        sha256 of every released file (released scripts in
                                          extension/ and the incremental files of released versions)

Build outputs (never committed; `make` writes them to build/):

    build/recvector--<cur>.sql              the install script
    build/recvector--<prev>--<cur>.sql      the upgrade from the last release (earlier releases
                                          reach it through their own frozen upgrade scripts)
    python/recvector/sql/recvector--<cur>.plain.sql
                                          the plain-SQL install for databases without PL/Python

Released scripts live in extension/ and are never rewritten. `--check` verifies the frozen hashes
and that versions agree everywhere; `--release` (when cutting a release) copies the built scripts
of the current version into extension/ and records every released file in sql/frozen.txt.

Names of pgvector's objects are written `@vector@.name` in sql/ (`@vector@.vector`,
`OPERATOR(@vector@.<=>)`): a file that uses them is run through one EXECUTE that puts in the schema
pgvector was installed into, so that RecVector's functions can run with
`search_path = pg_catalog, recvector, pg_temp` and never look anything up in a schema other roles
can create objects in.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQL = ROOT / "sql"
RELEASED_DIR = ROOT / "extension"
BUILD = ROOT / "build"
FROZEN = SQL / "frozen.txt"
PLAIN_OUT = ROOT / "python" / "recvector" / "sql"
PYTHON_ONLY = {"060-python.sql"}

PREAMBLE = '''\
rv = GD.get("recvector-@VERSION@")
if rv is None:
    import os, sys
    _dir = plpy.execute("SELECT recvector._py_library_dir() AS d")[0]["d"]
    _old = sys.modules.get("recvector")
    if _old is not None and getattr(_old, "__version__", None) != "@VERSION@":
        # This session ran another version's library (before ALTER EXTENSION UPDATE): unload it.
        _root = os.path.dirname(os.path.dirname(_old.__file__))
        for _name in [n for n in sys.modules if n == "recvector" or n.startswith("recvector.")]:
            del sys.modules[_name]
        sys.path[:] = [p for p in sys.path if p != _root]
        GD.pop("recvector", None)
    if _dir not in sys.path:
        sys.path.insert(0, _dir)
    try:
        import recvector.plpython as rv
    except ImportError as e:
        plpy.error("recvector Python library not found: %s" % e, detail="looked in %s" % _dir,
                   hint="Run `make install` from the RecVector @VERSION@ source tree.")
    if rv.__version__ != "@VERSION@":
        plpy.error("recvector Python library %s does not match extension version @VERSION@" % rv.__version__,
                   detail="loaded from %s" % rv.__file__,
                   hint="Run `make install` from the RecVector @VERSION@ source tree.")
    GD["recvector-@VERSION@"] = rv'''


PY_MARKER = re.compile(r"^--@python recvector\.(\w+)\(([^)]*)\) RETURNS (\S+)\n--@call (.+)$", re.M)


def expand_python_functions(text: str) -> str:
    """--@python/--@call markers -> the PL/Python body recvector._py_<name> and a PL/pgSQL wrapper
    recvector.<name> that re-raises its errors without the "plpy.Error: " prefix."""

    def repl(m: re.Match[str]) -> str:
        name, args, returns, call = m.groups()
        params = [a.strip() for a in args.split(",") if a.strip()]
        bare_params = [re.sub(r"\s+DEFAULT\s+.*$", "", p) for p in params]
        names = ", ".join(p.split()[0] for p in params)
        types = ", ".join(p.split(None, 1)[1] for p in bare_params)
        bare = ", ".join(bare_params)
        return f"""CREATE OR REPLACE FUNCTION recvector._py_{name}({bare})
RETURNS {returns}
LANGUAGE plpython3u AS $$
#PREAMBLE
return {call}
$$;
COMMENT ON FUNCTION recvector._py_{name}({types}) IS 'Internal: PL/Python body of recvector.{name}().';

CREATE OR REPLACE FUNCTION recvector.{name}({args})
RETURNS {returns}
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    RETURN recvector._py_{name}({names});
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM recvector._rethrow(st, msg, det, hnt);
END
$$;"""

    return PY_MARKER.sub(repl, text)


VECTOR_SCHEMA_SQL = ("(SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension AS e "
                     "JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace WHERE e.extname = 'vector')")


def with_vector_schema(text: str, label: str) -> str:
    """A file that names pgvector's objects as @vector@.x, run through one EXECUTE that puts in
    pgvector's schema (known only when the script runs)."""
    if "@vector@" not in text:
        return text
    tag = "$rv_file$"
    assert tag not in text, f"{label} contains {tag}"
    return (f"DO $rv_vector$\nBEGIN\n    EXECUTE pg_catalog.replace({tag}\n{text.rstrip()}\n{tag}, '@vector@', "
            f"{VECTOR_SCHEMA_SQL});\nEND\n$rv_vector$;\n")


def vkey(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def versions() -> list[str]:
    return [v.strip() for v in (SQL / "versions.txt").read_text().split() if v.strip()]


def incremental(after: str | None, upto: str) -> list[Path]:
    out = []
    for p in sorted(SQL.glob("incremental/*.sql"), key=lambda p: (vkey(p.name.split("-")[0]), p.name)):
        v = p.name.split("-")[0]
        if vkey(v) <= vkey(upto) and (after is None or vkey(v) > vkey(after)):
            out.append(p)
    return out


def idempotent() -> list[Path]:
    return sorted(SQL.glob("idempotent/*.sql"))


def render(files: list[Path], version: str, header: str) -> str:
    parts = [header]
    for p in files:
        text = expand_python_functions(p.read_text(encoding="utf-8"))
        text = text.replace("#PREAMBLE", PREAMBLE).replace("@VERSION@", version)
        parts.append(f"-- ---- {p.relative_to(ROOT)} ----\n{with_vector_schema(text, p.name).rstrip()}\n")
    return "\n".join(parts)


def build() -> dict[Path, str]:
    """Every build output of the current version, by path."""
    vs = versions()
    cur = vs[-1]
    idem = idempotent()
    guard = "\\echo Use \"CREATE EXTENSION recvector\" to load this file. \\quit\n"
    out = {
        BUILD / f"recvector--{cur}.sql": render(incremental(None, cur) + idem, cur,
                                                f"-- RecVector {cur}: generated by scripts/build_sql.py; do not edit.\n{guard}"),
    }
    plain = render(incremental(None, cur) + [p for p in idem if p.name not in PYTHON_ONLY], cur,
                   f"-- RecVector {cur}, plain SQL (no PL/Python, not an extension): generated by scripts/build_sql.py.\n"
                   "-- Installed by `recvector install --plain`, which replaces @extschema@.\n")
    plain = "\n".join(line for line in plain.splitlines() if "pg_extension_config_dump" not in line) + "\n"
    out[PLAIN_OUT / f"recvector--{cur}.plain.sql"] = plain
    if len(vs) > 1:
        prev = vs[-2]
        out[BUILD / f"recvector--{prev}--{cur}.sql"] = render(
            incremental(prev, cur) + idem, cur,
            f"-- RecVector upgrade {prev} -> {cur}: generated by scripts/build_sql.py; do not edit.\n"
            f"\\echo Use \"ALTER EXTENSION recvector UPDATE TO '{cur}'\" to load this file. \\quit\n")
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def released_files() -> list[Path]:
    """Files frozen by the releases in versions.txt (all lines but the last)."""
    vs = versions()
    files: list[Path] = []
    for i, v in enumerate(vs[:-1]):
        files.append(RELEASED_DIR / f"recvector--{v}.sql")
        if i:
            files.append(RELEASED_DIR / f"recvector--{vs[i - 1]}--{v}.sql")
        files.extend(p for p in SQL.glob(f"incremental/{v}-*.sql"))
    return sorted(files)


def read_frozen() -> dict[str, str]:
    out: dict[str, str] = {}
    if FROZEN.exists():
        for line in FROZEN.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                digest, _, name = line.partition("  ")
                out[name.strip()] = digest.strip()
    return out


def version_problems() -> list[str]:
    """The version must be the same in versions.txt, the control file, pyproject.toml and the package."""
    cur = versions()[-1]
    found = {
        "extension/recvector.control": re.search(r"default_version\s*=\s*'([^']+)'",
                                                 (ROOT / "extension" / "recvector.control").read_text()),
        "python/pyproject.toml": re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "python" / "pyproject.toml").read_text(), re.M),
        "python/recvector/__init__.py": re.search(r'^__version__\s*=\s*"([^"]+)"',
                                                 (ROOT / "python" / "recvector" / "__init__.py").read_text(), re.M),
    }
    return [f"{name} says {m.group(1) if m else 'nothing'}, sql/versions.txt says {cur}"
            for name, m in found.items() if not m or m.group(1) != cur]


def check() -> list[str]:
    problems = version_problems()
    frozen = read_frozen()
    for p in released_files():
        rel = str(p.relative_to(ROOT))
        if not p.exists():
            problems.append(f"{rel}: released file missing")
        elif rel not in frozen:
            problems.append(f"{rel}: released file not listed in sql/frozen.txt")
        elif sha256(p) != frozen[rel]:
            problems.append(f"{rel}: changed after release (sha256 differs from sql/frozen.txt)")
    for rel in frozen:
        if not (ROOT / rel).exists():
            problems.append(f"{rel}: listed in sql/frozen.txt but missing")
    cur = versions()[-1]
    for p in SQL.glob("incremental/*.sql"):
        if vkey(p.name.split("-")[0]) > vkey(cur):
            problems.append(f"{p.relative_to(ROOT)}: version newer than {cur}")
    return problems


def release() -> list[str]:
    """Freeze the current version: copy its built scripts into extension/ and hash every released file.
    (Run when cutting a release; the next version then gets its own line in versions.txt.)"""
    cur = versions()[-1]
    files = build()
    written = []
    for path, text in files.items():
        if path.parent == BUILD:
            target = RELEASED_DIR / path.name
            target.write_text(text, encoding="utf-8")
            written.append(str(target.relative_to(ROOT)))
    frozen = read_frozen()
    for p in [RELEASED_DIR / f"recvector--{cur}.sql", *sorted(SQL.glob(f"incremental/{cur}-*.sql")),
              *[RELEASED_DIR / n for n in written if "--" in Path(n).name.removeprefix("recvector--")]]:
        frozen[str(p.relative_to(ROOT))] = sha256(p)
    write_frozen(frozen)
    return written


def write_frozen(frozen: dict[str, str]) -> None:
    lines = ["# Released files: never edited after their release (checked by `scripts/build_sql.py --check`).",
             "# sha256  path"]
    lines += [f"{d}  {n}" for n, d in sorted(frozen.items())]
    FROZEN.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="verify frozen files and versions; write nothing")
    ap.add_argument("--release", action="store_true", help="freeze the current version (cutting a release)")
    ap.add_argument("--plain-only", action="store_true", help="write only the plain-SQL install (Python package build)")
    args = ap.parse_args(argv)
    if args.check:
        problems = check()
        for p in problems:
            print(f"build_sql: {p}", file=sys.stderr)
        return 1 if problems else 0
    problems = version_problems()
    if problems:
        for p in problems:
            print(f"build_sql: {p}", file=sys.stderr)
        return 1
    if args.release:
        for name in release():
            print(f"froze {name}")
        return 0
    for path, text in build().items():
        if args.plain_only and path.parent != PLAIN_OUT:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
