"""scripts/build_sql.py: released files frozen, versions in step, pgvector names put in at install."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _build():
    spec = importlib.util.spec_from_file_location("build_sql", ROOT / "scripts" / "build_sql.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_released_files_are_frozen_and_versions_agree():
    assert _build().check() == []


def test_files_naming_pgvector_are_run_through_one_execute():
    b = _build()
    text = b.with_vector_schema("SELECT 1 OPERATOR(@vector@.<=>) 2;\n", "x.sql")
    assert text.startswith("DO $rv_vector$") and "pg_catalog.replace($rv_file$" in text
    assert b.with_vector_schema("SELECT 1;\n", "y.sql") == "SELECT 1;\n"


def test_the_install_script_has_no_unqualified_pgvector_operator():
    out = _build().build()
    script = next(text for path, text in out.items() if path.name == f"recvector--{_build().versions()[-1]}.sql")
    for line in script.splitlines():
        if "<=>" in line and not line.lstrip().startswith("--"):
            assert "OPERATOR(@vector@.<=>)" in line or "'" in line.split("<=>")[0], line
