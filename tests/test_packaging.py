"""One distribution, one package: what a built wheel carries."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from inboxgraph.project_files import dbt_project_dir, platform_dir
from tests.conftest import REPOSITORY_ROOT

SETUPTOOLS = tomllib.loads((REPOSITORY_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_the_wheel_installs_one_top_level_package() -> None:
    assert {name.split(".")[0] for name in SETUPTOOLS["packages"]} == {"inboxgraph"}
    assert SETUPTOOLS["package-dir"]["inboxgraph.assets"] == "assets"


def test_every_folder_of_the_dbt_project_ships_with_the_wheel() -> None:
    # Package data ships a listed package's files only: a new dbt folder must be listed.
    listed = {name for name in SETUPTOOLS["packages"] if name.startswith("inboxgraph.project_")}
    project = REPOSITORY_ROOT / "dbt"
    for folder in [project, *(p for p in project.rglob("*") if p.is_dir())]:
        relative = folder.relative_to(project)
        if relative.parts and relative.parts[0] in {"target", "logs", "dbt_packages"}:
            continue
        name = ".".join(("inboxgraph", "project_files", "dbt", *relative.parts))
        assert name in listed, f"{folder} is not in pyproject.toml's packages"
        suffixes = {p.suffix for p in folder.iterdir() if p.is_file()}
        shipped = {".sql", ".yml", ".yaml", ".py", ".csv", ""}
        assert suffixes <= shipped, f"{folder} holds {suffixes}"


def test_a_checkout_reads_its_own_project_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INBOXGRAPH_DBT_PROJECT_DIR", raising=False)
    assert dbt_project_dir() == REPOSITORY_ROOT / "dbt"
    assert platform_dir() == REPOSITORY_ROOT / "platform"
    assert (platform_dir() / "dagster.yaml").exists()
    assert not (Path(platform_dir()) / "__init__.py").exists(), "platform/ is never a package"
    monkeypatch.setenv("INBOXGRAPH_DBT_PROJECT_DIR", "elsewhere/dbt")
    assert dbt_project_dir() == Path("elsewhere/dbt").resolve()
