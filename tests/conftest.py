"""Shared fixtures: a private platform home per test, generated data with a fixed seed."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psutil
import pytest

from inboxgraph.generate.writer import GenerateOptions, GenerateReport, generate_landing
from inboxgraph.settings import OPTIONAL_VARIABLES, Paths, ensure_environment

# The event partitions start where a production backfill would (the setting), not at the
# oldest day of whichever home a test process first imported the definitions in.
os.environ.setdefault("INBOXGRAPH_EVENTS_START_DATE", "2026-01-01")

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
# Kept for every process a test starts as a user would (the command line, `dagster dev`).
KEPT_VARIABLES = ("INBOXGRAPH_DBT_PROJECT_DIR",)


def _own_dbt_project() -> None:
    """Tests run in two processes at once (pytest-xdist); each builds its own copy of the dbt
    project, since dbt writes its manifest and partial parse into the project's target/."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or "INBOXGRAPH_DBT_PROJECT_DIR" in os.environ:
        return
    copy = Path(tempfile.mkdtemp(prefix=f"inboxgraph-dbt-{worker}-")) / "dbt"
    shutil.copytree(REPOSITORY_ROOT / "dbt", copy, ignore=shutil.ignore_patterns("logs", "target"))
    atexit.register(shutil.rmtree, copy.parent, ignore_errors=True)
    os.environ["INBOXGRAPH_DBT_PROJECT_DIR"] = str(copy)


_own_dbt_project()


def inboxgraph_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """``inboxgraph <args>`` in a process of its own, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "inboxgraph.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def processes_ended(processes: list[psutil.Process], timeout: float) -> bool:
    """Whether every process has exited (a zombie has: only its parent's reaping is left, and
    in a container without an init process nobody reaps an orphan)."""
    deadline = time.monotonic() + timeout
    while True:
        running = []
        for process in processes:
            try:
                if process.status() != psutil.STATUS_ZOMBIE:
                    running.append(process)
            except psutil.NoSuchProcess:
                pass
        if not running:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def outside_environment(**variables: str) -> dict[str, str]:
    """The environment for a process started as a user would: none of the test process's own
    INBOXGRAPH_* settings but those every process keeps, with ``variables`` set."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("INBOXGRAPH_") or name in KEPT_VARIABLES
    }
    env.pop("DAGSTER_HOME", None)
    return {**env, **variables}


END = date(2026, 11, 27)
CONFIG_VARIABLES = (
    "INBOXGRAPH_HOME",
    "DAGSTER_HOME",
    "INBOXGRAPH_EVENTS_TOPIC",
    *OPTIONAL_VARIABLES,
)


@contextlib.contextmanager
def home_environment(root: Path) -> Iterator[Paths]:
    """The configuration of a home at ``root`` (every variable at its default) while inside,
    and exactly the configuration from before afterwards."""
    saved = _configuration()
    for name in CONFIG_VARIABLES:
        os.environ.pop(name, None)
    try:
        yield ensure_environment(str(root))
    finally:
        _restore(saved)


@pytest.fixture(autouse=True)
def _configuration_restored() -> Iterator[None]:
    """Whatever a test sets of the configuration (ensure_environment writes os.environ) is
    gone after it, so no test runs on another's home."""
    saved = _configuration()
    yield
    _restore(saved)


def _configuration() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if k.startswith("INBOXGRAPH_") or k in CONFIG_VARIABLES
    }


def _restore(saved: dict[str, str]) -> None:
    for name in set(_configuration()) - set(saved):
        del os.environ[name]
    os.environ.update(saved)


@pytest.fixture
def identity_overrides() -> Iterator[Path]:
    """The identity overrides seed of the dbt project the tests run, as it was afterwards."""
    from inboxgraph.overrides import overrides_file

    path = overrides_file()
    saved, stat = path.read_bytes(), path.stat()
    try:
        yield path
    finally:
        # The same bytes and time: the manifest parsed from the project stays current.
        path.write_bytes(saved)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.fixture
def platform_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """A fresh INBOXGRAPH_HOME with every configuration variable set to its default (put back
    after the test by ``_configuration_restored``)."""
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    return ensure_environment(str(home))


def generate(
    landing: Path, people: int = 300, days: int = 20, seed: int = 7, shop_db_url: str | None = None
) -> GenerateReport:
    options = GenerateOptions(people=people, days=days, seed=seed, end=END)
    return generate_landing(landing, options, shop_db_url=shop_db_url)


@pytest.fixture
def landed(platform_home: Paths) -> tuple[Paths, GenerateReport]:
    """Generated demo data (300 people, 20 days) in the home's landing zone."""
    report = generate(Path(platform_home.landing_url))
    return platform_home, report


@pytest.fixture(params=["local", "consolidated"])
def event_log_instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    """A test instance with the local default storage (SQLite, a file per run, as
    platform/dagster.yaml has it) or with one event log table for all runs (as Postgres has)."""
    import dagster as dg

    storage = tmp_path / "events"
    storage.mkdir()
    overrides = {
        "event_log_storage": {
            "module": "dagster._core.storage.event_log",
            "class": "ConsolidatedSqliteEventLogStorage",
            "config": {"base_dir": str(storage)},
        }
    }
    if request.param == "local":
        with dg.instance_for_test(temp_dir=str(storage)) as instance:
            yield instance
    else:
        with dg.instance_for_test(overrides=overrides) as instance:
            yield instance


def stop_process_group(process: subprocess.Popen, timeout: float = 60) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started.

    Dagster's webserver and daemon start code servers of their own; stopping only the parent
    would leave those running after the test.
    """
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; its children may still be shutting down.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return


# The longest modules first, so that two test processes finish together instead of one running
# `dagster dev` alone at the end (pytest-xdist hands out whole modules in collection order).
LONGEST_FIRST = (
    "tests/e2e/test_ui.py",
    "tests/stream/test_stream_worker.py",
    "tests/production/test_deploy.py",
    "tests/e2e/test_crash.py",
    "tests/bench/test_pipeline_bench.py",
    "tests/e2e/test_cli.py",
    "tests/e2e/test_identity.py",
    "tests/production/test_s3_lake.py",
    "tests/e2e/test_forget.py",
    "tests/e2e/test_trust_and_activation.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
