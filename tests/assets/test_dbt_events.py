"""dbt's events on their way to dagster-dbt's row count and column metadata fetches."""

import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from inboxgraph.dbt_project import completed_events


class DuckDBAdapter:
    """Named as dbt-duckdb's adapter, the name dagster-dbt and completed_events look for."""


class SlowInvocation:
    """A dbt invocation whose events come half a second apart, then its error if any."""

    is_fusion = False
    postprocessing_threadpool_num_threads = 2

    def __init__(self, count: int, error: Exception | None = None) -> None:
        self.adapter = DuckDBAdapter()
        self.events = [dg.AssetObservation(asset_key=f"model_{i}") for i in range(count)]
        self.error = error

    def stream(self) -> Iterator[dg.AssetObservation]:
        for event in self.events:
            time.sleep(0.5)
            yield event
        if self.error is not None:
            raise self.error


def _with_metadata(invocation: SlowInvocation) -> Iterator[dg.AssetObservation]:
    # Row counts are fetched for models' outputs only: these observations pass through.
    return completed_events(invocation).fetch_row_counts()  # type: ignore[arg-type]


def test_events_pass_through_the_metadata_fetches_in_order() -> None:
    invocation = SlowInvocation(3)
    assert [e.asset_key for e in _with_metadata(invocation)] == [
        e.asset_key for e in invocation.events
    ]


def test_dbt_error_comes_after_the_events_before_it() -> None:
    invocation = SlowInvocation(2, error=RuntimeError("dbt build failed"))
    seen = []
    with pytest.raises(RuntimeError, match="dbt build failed"):
        for event in _with_metadata(invocation):
            seen.append(event.asset_key)
    assert seen == [e.asset_key for e in invocation.events]


def test_no_thread_spins_while_dbt_runs() -> None:
    # dagster-dbt's fetches wait for dbt in threads that poll without sleeping; on a two-core
    # machine that took a core from DuckDB for the whole build. Waiting 2 s for dbt's
    # events must cost this process next to no CPU time.
    invocation = SlowInvocation(4)
    started = time.process_time()
    events = list(_with_metadata(invocation))
    used = time.process_time() - started
    assert len(events) == 4
    assert used < 0.5, f"{used:.2f}s of CPU time spent waiting 2 s for dbt"


def test_the_dbt_beside_the_interpreter_is_not_started_to_learn_its_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import subprocess
    from importlib.metadata import version

    import dagster_dbt.core.resource as dagster_dbt_resource

    from inboxgraph.dbt_project import ProjectDbtCliResource, dbt_executable, dbt_project

    asked = subprocess.run(
        [dbt_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"installed: {version('dbt-core')}" in asked

    started: list[list[str]] = []

    def check_output(command: list[str], **kwargs: object) -> bytes:
        started.append(command)
        return b"Core:\n  - installed: 1.2.3\n"

    monkeypatch.setattr(dagster_dbt_resource, "check_output", check_output)
    beside = ProjectDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
    assert str(beside._cli_version) == version("dbt-core")
    assert started == []
    # Another executable (here the same one, reached through a link) is asked, as dagster-dbt
    # asks it.
    link = tmp_path / "dbt"
    link.symlink_to(dbt_executable())
    other = ProjectDbtCliResource(project_dir=dbt_project, dbt_executable=str(link))
    assert str(other._cli_version) == "1.2.3"
    assert started == [[str(link), "--version"]]


def test_a_relative_warehouse_path_is_read_where_dbt_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    # dbt runs in the project directory, so a relative warehouse path names a file there; the
    # metadata connection must open that file, not one relative to this process's directory.
    import os
    from types import SimpleNamespace

    from inboxgraph.dbt_project import DBT_PROJECT_DIR, _profile_credentials

    monkeypatch.delenv("INBOXGRAPH_DBT_TARGET", raising=False)
    monkeypatch.setenv("INBOXGRAPH_WAREHOUSE", "relative/warehouse.duckdb")
    before = os.getcwd()
    credentials = _profile_credentials(SimpleNamespace(project_dir=DBT_PROJECT_DIR))  # type: ignore[arg-type]
    assert credentials.path == str(DBT_PROJECT_DIR / "relative" / "warehouse.duckdb")
    assert os.getcwd() == before
    # A database that is not a file here is named as it was.
    for path in (":memory:", "md:inboxgraph"):
        monkeypatch.setenv("INBOXGRAPH_WAREHOUSE", path)
        credentials = _profile_credentials(SimpleNamespace(project_dir=DBT_PROJECT_DIR))  # type: ignore[arg-type]
        assert credentials.path == path
