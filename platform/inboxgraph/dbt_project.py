"""The dbt project (dbt-duckdb) that builds the warehouse, and its manifest."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliInvocation, DbtCliResource, DbtProject
from filelock import FileLock

from inboxgraph.dbt_child import started_by_this_process
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
ROW_COUNT = "dagster/row_count"
# The target directories of the newest dbt invocations kept per kind (:func:`invocation_dir`).
KEPT_INVOCATIONS = 5
PROJECT_INPUTS = ("models", "macros", "tests", "seeds", "dbt_project.yml", "profiles.yml")


def target_dir() -> Path:
    """The dbt target directory of the configuration this process runs with: one per set of
    the variables the profile reads (a platform home's warehouse and lake, the target), so
    homes that share the project each keep their manifest and dbt's partial parse (dbt parses
    the whole project again whenever the profile differs from its last parse's), and each
    home's runs write their artifacts beside them."""
    with _parse_environment():
        values = json.dumps({name: os.environ.get(name, "") for name in PARSE_VARIABLES})
    key = hashlib.sha256(values.encode()).hexdigest()[:12]
    return DBT_PROJECT_DIR / "target" / f"config-{key}"


def ensure_manifest(refresh: bool = False) -> Path:
    """The manifest of this process's configuration (:func:`target_dir`), parsed when none
    exists yet (a fresh checkout, a new home) or when asked and the project's files changed
    since it was parsed."""
    target = target_dir()
    manifest = target / "manifest.json"
    with _parse_environment():
        stamp = _manifest_stamp()
        stamp_path = target / "inboxgraph_parse_stamp.json"
        current = manifest.exists() and stamp_path.exists() and stamp_path.read_text() == stamp
        if not manifest.exists() or (refresh and not current):
            # One parse at a time: dbt writes the manifest in place, and processes that share
            # the configuration (a code server and the command line) would read it half written.
            target.mkdir(parents=True, exist_ok=True)
            with FileLock(target / ".inboxgraph-parse.lock"):
                current = stamp_path.exists() and stamp_path.read_text() == stamp
                if not manifest.exists() or (refresh and not current):
                    dbt_cli().cli(["--quiet", "parse"], target_path=target).wait()
                    stamp_path.write_text(stamp)
    return manifest


def invocation_dir(kind: str, run_id: str = "") -> Path:
    """A new target directory for one dbt invocation of this configuration, holding a copy of
    its partial parse, so dbt parses only what changed since (dagster-dbt copies the one of
    the project's default target directory, which is another configuration's)."""
    target = target_dir()
    # The newest invocations' artifacts of each kind are kept for a look after a run; a
    # nightly run's several megabytes would otherwise pile up for as long as the home lives.
    earlier = sorted(target.glob(f"{kind}-*"), key=lambda p: p.stat().st_mtime)
    for old in earlier[: max(len(earlier) - KEPT_INVOCATIONS + 1, 0)]:
        shutil.rmtree(old, ignore_errors=True)
    path = target / "-".join(filter(None, (kind, run_id[:7], uuid.uuid4().hex[:7])))
    path.mkdir(parents=True)
    partial = target / "partial_parse.msgpack"
    if partial.exists():
        shutil.copyfile(partial, path / partial.name)
    return path


def _manifest_stamp() -> str:
    """What a parse depends on beyond the variables that name its directory: the project
    files' times."""
    newest = 0
    for name in PROJECT_INPUTS:
        path = DBT_PROJECT_DIR / name
        files = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
        for file in files:
            newest = max(newest, file.stat().st_mtime_ns)
    return json.dumps({"newest_file_ns": newest})


@contextmanager
def _parse_environment() -> Iterator[None]:
    """The profile and sources read INBOXGRAPH_* variables: give unset or empty ones their
    defaults while dbt parses (importing the definitions must work in a bare shell)."""
    paths = resolve_paths()
    defaults = {"INBOXGRAPH_WAREHOUSE": paths.warehouse, "INBOXGRAPH_LAKE_URL": paths.lake_url}
    unset = {name: value for name, value in defaults.items() if not os.environ.get(name)}
    with dbt_run_environment(unset):
        yield


@contextmanager
def dbt_run_environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in this process's environment, which dbt's process inherits, with this
    process named as dbt's parent (:mod:`inboxgraph.dbt_child`); then everything put back
    exactly as it was, an empty value included: a code server that loaded `.env` keeps every
    variable its resources read through ``dg.EnvVar``."""
    values = {**values, **started_by_this_process()}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# The line dbt logs with each model's columns, its parents' and its row count (macro
# log_table_metadata).
TABLE_METADATA_PREFIX = "inboxgraph table metadata: "


def dbt_cli() -> DbtCliResource:
    """dagster-dbt's dbt resource for this project, running the dbt beside this interpreter."""
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())


def build_events(invocation: DbtCliInvocation, with_column_lineage: bool) -> Iterator[Any]:
    """The invocation's Dagster events as dbt finishes each node, each model's with its row
    count and column schema, and its column lineage when ``with_column_lineage``.

    A project-wide post-hook (macro log_table_metadata) logs each model's columns, its parents'
    columns and its row count while dbt builds it, inside dbt's own connection, so nothing waits
    for dbt to exit (on DuckDB no other connection can open the warehouse file until then).
    The columns go to dagster-dbt as the event history it builds the column schema from, with
    the parents' when lineage is wanted: dagster-dbt's sqlglot analysis costs seconds a run.
    """
    logged: dict[str, dict[str, Any]] = {}
    for message in invocation.stream_raw_events():
        info = message.raw_event["info"]
        unique_id = message.raw_event["data"].get("node_info", {}).get("unique_id")
        if info["name"] == "JinjaLogInfo" and info["msg"].startswith(TABLE_METADATA_PREFIX):
            logged[unique_id] = json.loads(info["msg"].removeprefix(TABLE_METADATA_PREFIX))
            continue
        metadata = logged.pop(unique_id, None) if message.is_result_event else None
        if metadata is not None:
            history = {"columns": metadata["columns"]}
            if with_column_lineage:
                history["parents"] = metadata["parents"]
            message = replace(message, event_history_metadata=history)
        for event in message.to_default_asset_events(
            manifest=invocation.manifest,
            dagster_dbt_translator=invocation.dagster_dbt_translator,
            context=invocation.context,
            target_path=invocation.target_path,
            project=invocation.project,
        ):
            count = metadata and metadata["row_count"]
            if count is not None and isinstance(event, dg.Output | dg.AssetMaterialization):
                event = event.with_metadata({**event.metadata, ROW_COUNT: int(count)})
            yield event


def dbt_executable() -> str:
    """The dbt installed beside this interpreter (a virtualenv need not be on PATH), through
    `inboxgraph-dbt` so that it dies with the run that started it
    (:mod:`inboxgraph.dbt_child`)."""
    for name in ("inboxgraph-dbt", "dbt"):
        candidate = Path(sys.executable).parent / name
        if candidate.exists():
            return str(candidate)
    return "dbt"
