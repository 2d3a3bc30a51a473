"""The production instance (platform/deploy/dagster.yaml) on a PostgreSQL server.

A real ``dagster-daemon`` dequeues runs submitted to the queue; two runs of the warehouse job
are both submitted at once and must run one after the other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from inboxgraph.generate.writer import GenerateReport
from inboxgraph.settings import Paths
from tests.assets.lake_helpers import materialize_events
from tests.conftest import REPOSITORY_ROOT, stop_process_group
from tests.production.postgres import database_url, require_server

DEPLOY = REPOSITORY_ROOT / "platform" / "deploy"
BIN = Path(sys.executable).parent


@pytest.fixture
def dagster_database() -> Iterator[str]:
    """A database of its own on the tests' server; yields its postgresql:// URL."""
    engine = require_server().execution_options(isolation_level="AUTOCOMMIT")
    name = f"dagster_{uuid.uuid4().hex[:10]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f"create database {name}"))
    try:
        yield database_url(name)
    finally:
        with engine.connect() as conn:
            conn.execute(
                sa.text(
                    "select pg_terminate_backend(pid) from pg_stat_activity where datname = :name"
                ),
                {"name": name},
            )
            conn.execute(sa.text(f"drop database if exists {name}"))
        engine.dispose()


def _instance_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    return home


def test_production_instance_uses_postgres_and_the_queue(
    tmp_path: Path, dagster_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_database)
    instance = dg.DagsterInstance.from_config(str(_instance_home(tmp_path)))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled
        assert instance.run_monitoring_enabled
    finally:
        instance.dispose()
    engine = sa.create_engine(dagster_database)
    with engine.connect() as conn:
        tables = set(
            conn.execute(
                sa.text(
                    "select table_name from information_schema.tables where table_schema='public'"
                )
            ).scalars()
        )
    engine.dispose()
    assert {"runs", "event_logs", "jobs", "job_ticks"} <= tables


def test_daemon_runs_queued_jobs_and_one_warehouse_writer_at_a_time(
    landed: tuple[Paths, GenerateReport],
    tmp_path: Path,
    dagster_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths, _ = landed
    materialize_events(paths)  # the lake the warehouse reads
    home = _instance_home(tmp_path)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": dagster_database,
        "INBOXGRAPH_HOME": paths.home,
    }
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_database)
    workspace = str(REPOSITORY_ROOT / "workspace.yaml")
    for _ in range(2):
        subprocess.run(
            [str(BIN / "dagster"), "job", "launch", "-w", workspace, "-j", "refresh_warehouse"],
            env=env,
            cwd=tmp_path,  # away from the repository's .env, which sets a dev home
            check=True,
            capture_output=True,
        )
    instance = dg.DagsterInstance.from_config(str(home))
    runs = instance.get_runs(dg.RunsFilter(job_name="refresh_warehouse"))
    assert len(runs) == 2
    assert {run.status for run in runs} == {dg.DagsterRunStatus.QUEUED}
    assert all(run.tags.get("inboxgraph/warehouse") == "writer" for run in runs)

    log = open(tmp_path / "daemon.log", "wb")  # noqa: SIM115 - closed below
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", workspace],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600
        overlap = False
        while True:
            statuses = [
                r.status for r in instance.get_runs(dg.RunsFilter(job_name="refresh_warehouse"))
            ]
            started = [
                s
                for s in statuses
                if s in (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)
            ]
            overlap = overlap or len(started) > 1
            if all(
                s in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE) for s in statuses
            ):
                break
            assert time.monotonic() < deadline, (tmp_path / "daemon.log").read_text()[-3000:]
            time.sleep(0.5)
    finally:
        stop_process_group(daemon)
        log.close()

    records = instance.get_run_records(dg.RunsFilter(job_name="refresh_warehouse"))
    assert [r.dagster_run.status for r in records] == [dg.DagsterRunStatus.SUCCESS] * 2, (
        tmp_path / "daemon.log"
    ).read_text()[-3000:]
    assert not overlap
    first, second = sorted(records, key=lambda r: r.start_time)
    assert first.end_time <= second.start_time, "two warehouse writers ran at the same time"
    instance.dispose()


def test_helm_values_and_instance_limit_the_same_warehouse_writer_tag() -> None:
    import yaml

    from inboxgraph.definitions import WAREHOUSE_WRITER_TAGS, defs

    values = yaml.safe_load((DEPLOY / "values.yaml").read_text())
    instance = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    ((key, value),) = WAREHOUSE_WRITER_TAGS.items()
    expected = {"key": key, "value": value, "limit": 1}
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    assert expected in coordinator["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert expected in instance["concurrency"]["runs"]["tag_concurrency_limits"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    env = {e["name"] for e in values["dagster-user-deployments"]["deployments"][0]["env"]}
    assert {"INBOXGRAPH_LAKE_URL", "INBOXGRAPH_SHOP_DB_URL", "KAFKA_BOOTSTRAP_SERVERS"} <= env
    # Every job that writes the warehouse carries the tag.
    assert defs.resolve_job_def("refresh_warehouse").tags.get(key) == value


def test_unsupported_locations_are_clear_errors_not_local_folders(tmp_path: Path) -> None:
    from inboxgraph.objectstore import store_for
    from inboxgraph.resources.lake import LakeResource

    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        store_for("gs://bucket/lake")
    # Erasure and the stream worker rewrite and append files: they need a file system.
    with pytest.raises(ValueError, match="needs a local folder"):
        _ = LakeResource(url="s3://bucket/lake", home=str(tmp_path)).root
    assert not (Path.cwd() / "s3:").exists()
