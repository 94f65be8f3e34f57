"""Builds the plain-SQL install script into the package (python/recvector/sql/) from the source
tree's sql/ before packaging, so that a wheel or an install from a checkout carries it: the same
step `make` runs (scripts/build_sql.py). Everything else is in pyproject.toml."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
BUILD_SQL = HERE.parent / "scripts" / "build_sql.py"


class BuildWithSQL(build_py):
    def run(self) -> None:
        if BUILD_SQL.exists():
            subprocess.run([sys.executable, str(BUILD_SQL), "--plain-only"], check=True)
        elif not any((HERE / "recvector" / "sql").glob("*.plain.sql")):
            raise SystemExit("recvector/sql/*.plain.sql is missing and scripts/build_sql.py is not beside this tree")
        super().run()


setup(cmdclass={"build_py": BuildWithSQL})
