"""The project's files that are not Python: the dbt project (``dbt/``) and the Dagster
instance configuration (``platform/dagster.yaml``, ``platform/deploy/``).

A built wheel carries copies of them inside this package (``pyproject.toml`` maps them in);
an editable install or a checkout reads the repository's own folders.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

_HERE = Path(__file__).resolve().parent
_CHECKOUT = _HERE.parents[2]


def _located(name: str) -> Path:
    bundled = _HERE / name
    return bundled if bundled.exists() else _CHECKOUT / name


def dbt_project_dir() -> Path:
    """The dbt project (dbt-duckdb): staging, intermediate and marts models, tests, contracts.
    ``INBOXGRAPH_DBT_PROJECT_DIR`` names a copy of it to build instead (one with segments or
    models of your own, or one per process that must not share its ``target/``)."""
    configured = os.environ.get("INBOXGRAPH_DBT_PROJECT_DIR")
    return Path(configured).resolve() if configured else _located("dbt")


def platform_dir() -> Path:
    """The Dagster instance configuration: ``dagster.yaml`` (local) and ``deploy/``."""
    return _located("platform")


def dbt_var(name: str, project_dir: Path | None = None) -> dict[str, Any]:
    """A mapping var of the dbt project's ``dbt_project.yml`` (empty when unset), for Python
    that applies the project's settings outside dbt."""
    path = Path(project_dir or dbt_project_dir()) / "dbt_project.yml"
    project = yaml.safe_load(path.read_text())
    return dict((project.get("vars") or {}).get(name) or {})
