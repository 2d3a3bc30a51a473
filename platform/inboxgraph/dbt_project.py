"""The dbt project (dbt-duckdb) that builds the warehouse, and its manifest."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dagster_dbt import DbtCliInvocation, DbtCliResource, DbtProject
from dagster_dbt.core.dbt_event_iterator import DbtEventIterator
from filelock import FileLock
from packaging import version

from inboxgraph.project_files import dbt_project_dir
from inboxgraph.settings import resolve_paths

DBT_PROJECT_DIR = dbt_project_dir()

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


# The variables the project's profile and sources read: the manifest depends on their values.
PARSE_VARIABLES = (
    "INBOXGRAPH_DBT_TARGET",
    "INBOXGRAPH_WAREHOUSE",
    "INBOXGRAPH_LAKE_URL",
    "INBOXGRAPH_DUCKDB_HTTPFS",
    "INBOXGRAPH_DUCKDB_MEMORY_LIMIT",
)
LOCAL_DBT = ("inboxgraph-dbt", "dbt")  # dbt-core beside this interpreter
PROJECT_INPUTS = ("models", "macros", "tests", "seeds", "dbt_project.yml", "profiles.yml")


def ensure_manifest(refresh: bool = False) -> Path:
    """Parse the dbt project when no manifest exists yet (a fresh checkout) or when asked.

    The manifest records relation names, whose catalog is the warehouse file's name, so a run
    re-parses against the configuration it runs with. A refresh is skipped when the project's
    files and those variables are what the current manifest was parsed from.
    """
    manifest = dbt_project.manifest_path
    with _parse_environment():
        stamp = _manifest_stamp()
        stamp_path = manifest.parent / "inboxgraph_parse_stamp.json"
        current = manifest.exists() and stamp_path.exists() and stamp_path.read_text() == stamp
        if not manifest.exists() or (refresh and not current):
            # One parse at a time: dbt writes the manifest in place, and processes that share
            # the project (a code server and the command line) would read it half written.
            manifest.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(manifest.parent / ".inboxgraph-parse.lock"):
                current = stamp_path.exists() and stamp_path.read_text() == stamp
                if not manifest.exists() or (refresh and not current):
                    dbt = ProjectDbtCliResource(
                        project_dir=dbt_project, dbt_executable=dbt_executable()
                    )
                    dbt.cli(["--quiet", "parse"], target_path=dbt_project.target_path).wait()
                    stamp_path.write_text(stamp)
    return manifest


def _manifest_stamp() -> str:
    """What a parse depends on: the variables' values and the project files' times."""
    newest = 0
    for name in PROJECT_INPUTS:
        path = DBT_PROJECT_DIR / name
        files = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
        for file in files:
            newest = max(newest, file.stat().st_mtime_ns)
    values = {name: os.environ.get(name, "") for name in PARSE_VARIABLES}
    return json.dumps({"variables": values, "newest_file_ns": newest}, sort_keys=True)


@contextmanager
def _parse_environment() -> Iterator[None]:
    """The profile and sources read INBOXGRAPH_* variables: give unset or empty ones their
    defaults while dbt parses (importing the definitions must work in a bare shell), then put
    back exactly what was there, an empty value included: a code server that loaded `.env`
    keeps every variable its resources read through ``dg.EnvVar``."""
    paths = resolve_paths()
    defaults = {"INBOXGRAPH_WAREHOUSE": paths.warehouse, "INBOXGRAPH_LAKE_URL": paths.lake_url}
    saved = {name: os.environ.get(name) for name in defaults}
    os.environ.update({name: value for name, value in defaults.items() if not saved[name]})
    try:
        yield
    finally:
        restore_environment(saved)


def restore_environment(saved: dict[str, str | None]) -> None:
    """Put back variables as ``saved`` holds them (None: it was not set)."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def completed_events(invocation: DbtCliInvocation) -> DbtEventIterator[Any]:
    """The invocation's Dagster events, for dagster-dbt's row count and column metadata fetches.

    On DuckDB, dagster-dbt fetches metadata only once dbt has exited (dbt holds the warehouse
    file's lock), and its chained fetches wait for that in threads that poll without sleeping:
    for the whole build they took a core from DuckDB, which had two. Here the events are
    collected first, then replayed into the fetches, with dbt's error (a failed model or test)
    raised after the events that came before it, as dagster-dbt does. Another adapter's events
    stream as they come.
    """
    if not _on_duckdb(invocation):
        dbt_core_adapter(invocation)  # dagster-dbt's fetches use it while dbt runs
        return invocation.stream()
    stream = invocation.stream()
    events: list[Any] = []
    error: Exception | None = None
    try:
        for event in stream:
            events.append(event)
    except Exception as exc:  # re-raised after the events before it
        error = exc

    def replay() -> Iterator[Any]:
        yield from events
        if error is not None:
            raise error

    return DbtEventIterator(replay(), dbt_cli_invocation=invocation)


def with_table_metadata(
    invocation: DbtCliInvocation, events: DbtEventIterator[Any], with_column_lineage: bool
) -> Iterator[Any]:
    """``events`` with the row counts and column schemas of the models built, as dagster-dbt's
    ``fetch_row_counts`` and ``fetch_column_metadata`` attach them.

    dagster-dbt reads them through dbt's adapter, one adapter connection per model and per
    fetch: on DuckDB a fixed cost a run at any size, spent setting connections up (the queries
    themselves are quick). Once dbt has exited (``completed_events``), one read-only connection
    reads them all here, with dbt-duckdb's own column types. Column lineage, which needs
    dagster-dbt's sqlglot analysis (a checkout's first build, see inboxgraph.lineage), and any
    other adapter still go through dagster-dbt, as do a profile that loads extensions, secrets
    or attachments (a view over an S3 lake binds only with them) and a warehouse this process
    cannot open.
    """
    import duckdb

    def dagster_dbt() -> Iterator[Any]:
        dbt_core_adapter(invocation)
        return events.fetch_row_counts().fetch_column_metadata(
            with_column_lineage=with_column_lineage
        )

    if with_column_lineage or not _on_duckdb(invocation):
        return dagster_dbt()
    credentials = (
        invocation.adapter.config.credentials
        if invocation.adapter is not None
        else _profile_credentials(invocation)
    )
    if any(getattr(credentials, name, None) for name in ("extensions", "secrets", "attach")):
        # The profile's `s3` output: views over the lake need its httpfs secret to bind.
        return dagster_dbt()
    try:
        connection = duckdb.connect(credentials.path, read_only=True)
    except duckdb.Error:
        return dagster_dbt()
    return _table_metadata(invocation, events, connection)


def _table_metadata(
    invocation: DbtCliInvocation, events: Iterator[Any], connection: Any
) -> Iterator[Any]:
    import dagster as dg
    from dagster._core.definitions.metadata import TableMetadataSet
    from dagster_dbt.asset_utils import default_metadata_from_dbt_resource_props
    from dbt.adapters.duckdb.column import DuckDBColumn

    nodes = invocation.manifest["nodes"]
    adapter_type = invocation.manifest.get("metadata", {}).get("adapter_type")
    with connection:
        for event in events:
            unique_id = event.metadata.get("unique_id")
            node = nodes.get(getattr(unique_id, "value", unique_id))
            if not isinstance(event, dg.Output | dg.AssetMaterialization) or node is None:
                yield event
                continue
            relation = node["relation_name"]
            added: dict[str, Any] = {}
            if node["config"]["materialized"] != "view":
                (count,) = connection.execute(f"select count(*) from {relation}").fetchone()
                added.update(TableMetadataSet(row_count=count, storage_kind=adapter_type))
            columns = {
                # dbt-duckdb's get_columns_in_relation: `describe`, then its Column's type name.
                name: {"data_type": DuckDBColumn(name, data_type, None, None, None).data_type}
                for name, data_type, *_ in connection.execute(f"describe {relation}").fetchall()
            }
            added.update(default_metadata_from_dbt_resource_props({"columns": columns}))
            yield event.with_metadata({**event.metadata, **added})


def release_duckdb_adapter() -> None:
    """Close the DuckDB database that dagster-dbt's in-process adapter opened, and the adapter.

    Row counts and column metadata are read through dbt-duckdb's adapter in this process, and
    dbt-duckdb keeps that read-write handle on the warehouse file for the life of the process.
    A step that runs in its own process drops it on exit; a run executed in-process (the
    command line's) must close it before any later step opens the warehouse.
    """
    from dbt.adapters.factory import reset_adapters

    # dbt registers one adapter per type for the life of the process, configured by the first
    # run's profile: forget it, so the next run's adapter reads its own warehouse path.
    reset_adapters()
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing of DuckDB's is held
        return
    with DuckDBConnectionManager._LOCK:
        environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if environment is not None:
        environment.close()


class ProjectDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource, without a ``dbt --version`` process on every run and
    without setting dbt's adapter up in this process before dbt starts.

    dagster-dbt learns the dbt version by running ``dbt --version`` once per resource, which
    is once per run: a second process's imports before dbt starts. The dbt beside this interpreter
    (:func:`dbt_executable`) is the installed dbt-core package, whose version is read from its
    metadata instead. Any other executable is asked, as dagster-dbt does.

    dagster-dbt also sets up a dbt adapter in this process on every command (loading the
    profile, the project and dbt's macros) for its row count and column fetches.
    On the local DuckDB profile those are read without it (:func:`with_table_metadata`), and a
    parse never needs it, so it is set up on first use instead (:func:`dbt_core_adapter`).
    """

    def _initialize_dbt_core_adapter(self, args: Any) -> Any:
        return None

    @cached_property
    def _cli_version(self) -> version.Version:
        executable = Path(self.dbt_executable)
        if executable.parent == Path(sys.executable).parent and executable.name in LOCAL_DBT:
            return version.parse(installed_version("dbt-core"))
        return super()._cli_version


def _on_duckdb(invocation: DbtCliInvocation) -> bool:
    if invocation.adapter is not None:
        return type(invocation.adapter).__name__ == "DuckDBAdapter"
    return invocation.manifest.get("metadata", {}).get("adapter_type") == "duckdb"


def dbt_core_adapter(invocation: DbtCliInvocation) -> Any:
    """The dbt adapter of ``invocation``'s project in this process (dagster-dbt's fetches read
    through it), set up on first use: :class:`ProjectDbtCliResource` defers it. None, with a
    warning, when it cannot be set up, as dagster-dbt has it."""
    if invocation.adapter is None:
        from dagster_dbt.core.resource import pushd

        resource = ProjectDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
        with pushd(os.fspath(invocation.project_dir)):
            try:
                # dagster-dbt's own set-up, which the resource above defers.
                invocation.adapter = DbtCliResource._initialize_dbt_core_adapter(
                    resource, list(invocation.process.args)
                )
            except Exception:
                logging.getLogger(__name__).warning(
                    "could not set up the dbt adapter in this process", exc_info=True
                )
    return invocation.adapter


def _profile_credentials(invocation: DbtCliInvocation) -> Any:
    """The credentials of the dbt profile ``invocation`` ran with, read as dagster-dbt reads
    them to set its adapter up, without the adapter: a relative DuckDB path is the project
    directory's, where dbt ran."""
    from argparse import Namespace

    from dagster_dbt.core.resource import pushd
    from dbt.config.runtime import load_profile
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    project_dir = os.fspath(invocation.project_dir)
    set_invocation_context(os.environ.copy())
    set_from_args(Namespace(profiles_dir=os.fspath(DBT_PROJECT_DIR)), None)
    with pushd(project_dir):
        credentials = load_profile(project_dir, {}, None, None).credentials
        if _is_local_file(getattr(credentials, "path", None)):
            credentials.path = os.fspath(Path(credentials.path).absolute())
    return credentials


def _is_local_file(path: str | None) -> bool:
    """A DuckDB database file on this machine: not in memory, not a URL (``md:``, ``s3://``)."""
    return bool(path) and path != ":memory:" and not urlparse(path).scheme


def dbt_executable() -> str:
    """The dbt installed beside this interpreter (a virtualenv need not be on PATH), through
    `inboxgraph-dbt` so that it dies with the run that started it
    (:mod:`inboxgraph.dbt_child`)."""
    for name in ("inboxgraph-dbt", "dbt"):
        candidate = Path(sys.executable).parent / name
        if candidate.exists():
            return str(candidate)
    return "dbt"
