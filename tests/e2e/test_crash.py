"""A run that dies never wedges the platform, and a run told to stop stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import psutil
import pytest
from polars.testing import assert_frame_equal

from tests.conftest import generate

pytestmark = pytest.mark.e2e

AS_OF = "2026-11-28T00:00:00Z"
MARTS = ("identity_map", "customer_profiles", "segment_memberships", "segments")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INBOXGRAPH_")}
    env.pop("DAGSTER_HOME", None)
    return {**env, "INBOXGRAPH_HOME": str(home), "INBOXGRAPH_EVENTS_START_DATE": "2026-01-01"}


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    ran = subprocess.run(
        [sys.executable, "-m", "inboxgraph.cli", "run", "--as-of", AS_OF, *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return ran


def _start(home: Path, log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "inboxgraph.cli", "run", "--as-of", AS_OF, *args],
        env=_env(home),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_for(log: Path, text: str, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def _ended(processes: list[psutil.Process], timeout: float) -> bool:
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


def _marts(home: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        frames = {}
        for name in MARTS:
            frame = con.sql(f"select * from marts.{name}").pl()
            frame = frame.drop([c for c in ("refreshed_at", "built_at") if c in frame.columns])
            frames[name] = frame.sort(frame.columns[:2])
        return frames


def _warehouse_pool(home: Path) -> tuple[list, list[dg.DagsterRunStatus]]:
    os.environ["DAGSTER_HOME"] = str(home / "dagster")  # the instance's config reads it
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    try:
        info = instance.event_log_storage.get_concurrency_info("warehouse")
        statuses = [run.status for run in instance.get_runs(limit=1)]
        return list(info.claimed_slots), statuses
    finally:
        instance.dispose()


def test_a_killed_run_leaves_nothing_that_blocks_and_a_stopped_run_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    undisturbed, home = tmp_path / "undisturbed", tmp_path / "home"
    for root in (undisturbed, home):
        generate(root / "landing", people=300, days=20)
    assert _run(undisturbed).returncode == 0
    expected = _marts(undisturbed)

    # SIGKILL (an OOM kill, a reboot) inside the dbt build: the dead run holds the warehouse.
    log = tmp_path / "killed.log"
    killed = _start(home, log)
    _wait_for(log, "START test", killed)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    claimed, _ = _warehouse_pool(home)
    assert claimed, "the killed run still holds the warehouse pool's slot"
    started = time.monotonic()
    again = _run(home)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "is gone: killed or crashed, marked failed" in again.stdout
    assert time.monotonic() - started < 300
    got = _marts(home)
    for name in MARTS:
        assert_frame_equal(got[name], expected[name], check_row_order=False)

    # SIGTERM (a service manager's stop) inside the dbt build: stopped within seconds, the run
    # failed without its retries, dbt terminated, no slot left claimed.
    log = tmp_path / "stopped.log"
    stopped = _start(home, log, "--full-refresh")
    _wait_for(log, "START test", stopped)
    children = psutil.Process(stopped.pid).children(recursive=True)
    dbt = [child for child in children if "dbt" in " ".join(child.cmdline())]
    assert dbt, "dbt was running"
    sent = time.monotonic()
    stopped.send_signal(signal.SIGTERM)
    assert stopped.wait(timeout=30) == 1
    assert time.monotonic() - sent < 30
    claimed, statuses = _warehouse_pool(home)
    assert claimed == [] and statuses == [dg.DagsterRunStatus.FAILURE]
    assert _ended(dbt, timeout=10), "dbt was terminated"
    last = _run(home, "--full-refresh")
    assert last.returncode == 0, last.stdout[-3000:] + last.stderr[-3000:]
    got = _marts(home)
    for name in MARTS:
        assert_frame_equal(got[name], expected[name], check_row_order=False)
