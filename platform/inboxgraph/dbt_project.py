"""The dbt project (dbt-duckdb) that builds the warehouse, and its manifest."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from inboxgraph.settings import resolve_paths

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPOSITORY_ROOT / "dbt"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def ensure_manifest(refresh: bool = False) -> Path:
    """Parse the dbt project when no manifest exists yet (a fresh checkout) or when asked.

    The manifest records relation names, whose catalog is the warehouse file's name, so a run
    re-parses against the configuration it runs with.
    """
    if refresh or not dbt_project.manifest_path.exists():
        with _parse_environment():
            dbt = DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
            dbt.cli(["--quiet", "parse"], target_path=dbt_project.target_path).wait()
    return dbt_project.manifest_path


@contextmanager
def _parse_environment() -> Iterator[None]:
    """The profile and sources read INBOXGRAPH_* variables: give unset ones their defaults
    while dbt parses (importing the definitions must work in a bare shell), then restore."""
    paths = resolve_paths()
    defaults = {"INBOXGRAPH_WAREHOUSE": paths.warehouse, "INBOXGRAPH_LAKE_URL": paths.lake_url}
    missing = {name: value for name, value in defaults.items() if not os.environ.get(name)}
    os.environ.update(missing)
    try:
        yield
    finally:
        for name in missing:
            os.environ.pop(name, None)


def dbt_executable() -> str:
    """The dbt installed beside this interpreter (a virtualenv need not be on PATH)."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"
