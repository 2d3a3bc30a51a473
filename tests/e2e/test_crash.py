"""A run that dies never wedges the platform, and a run told to stop stops."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import psutil
import pytest
from polars.testing import assert_frame_equal

from tests.conftest import generate, outside_environment, processes_ended

pytestmark = pytest.mark.e2e

AS_OF = "2026-11-28T00:00:00Z"
MARTS = ("identity_map", "customer_profiles", "segment_memberships", "segments")
ESPS = ("mailchimp", "klaviyo", "braze")


def _env(home: Path) -> dict[str, str]:
    return outside_environment(INBOXGRAPH_HOME=str(home), INBOXGRAPH_EVENTS_START_DATE="2026-01-01")


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


def _marts(home: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        frames = {}
        for name in MARTS:
            frame = con.sql(f"select * from marts.{name}").pl()
            frame = frame.drop([c for c in ("refreshed_at", "built_at") if c in frame.columns])
            frames[name] = frame.sort(frame.columns[:2])
        return frames


def _lake(home: Path) -> dict[str, pl.DataFrame]:
    """Every lake dataset's rows (raw and quarantine), whatever batches they came in."""
    frames = {}
    for dataset in sorted({p.parent for p in (home / "lake").rglob("*.parquet")}):
        files = [p for p in dataset.glob("*.parquet") if not p.name.startswith(("_", "."))]
        if not files:
            continue
        name = str(dataset.relative_to(home / "lake")).split("/")[:2]
        frame = pl.concat([pl.read_parquet(f, hive_partitioning=False) for f in files])
        frame = frame.drop("_source_file")
        frames["/".join(name)] = pl.concat([frames.get("/".join(name), frame.clear()), frame])
    return {name: frame.sort(frame.columns) for name, frame in frames.items()}


def _exports(home: Path) -> dict[str, object]:
    """What each ESP holds (the export state), what was sent to it (every line of every
    batch, as a set: a batch sent again after a crash is an idempotent upsert) and the
    suppression list."""
    exports = home / "exports"
    sent: dict[str, object] = {}
    for esp in ESPS:
        state = pl.read_parquet(exports / "_state" / f"{esp}.parquet")
        sent[f"{esp} state"] = state.sort(state.columns)
        sent[f"{esp} sent"] = {
            (path.name, line)
            for path in (exports / esp).rglob("*")
            if path.is_file()
            for line in path.read_text().splitlines()
        }
    sent["suppression"] = (exports / "suppression" / "suppressions.csv").read_text()
    return sent


def _snapshot(home: Path) -> dict[str, object]:
    return {"marts": _marts(home), "lake": _lake(home), "exports": _exports(home)}


def _assert_same(home: Path, expected: dict[str, object]) -> None:
    got = _snapshot(home)
    for layer in ("marts", "lake"):
        assert got[layer].keys() == expected[layer].keys(), layer
        for name, frame in expected[layer].items():
            assert_frame_equal(got[layer][name], frame, check_row_order=False), name
    assert got["exports"].keys() == expected["exports"].keys()
    for name, value in expected["exports"].items():
        if isinstance(value, pl.DataFrame):
            assert_frame_equal(got["exports"][name], value), name
        else:
            assert got["exports"][name] == value, name


def _assert_audited(home: Path) -> None:
    """The audit trail holds every materialization of every run, the killed ones' included,
    once each."""
    # Counted from the instance's asset history, which every asset query (the UI's asset pages,
    # the audit) reads. Dagster's local storage writes an event to its run's own log first and to
    # that history second: a kill between the two leaves a materialization no asset query sees.
    with _instance(home) as instance:
        stored: dict[str, int] = {}
        for key in instance.get_asset_keys():
            if key.to_user_string() == "marts/audit_log":
                continue
            for record in instance.fetch_materializations(key, limit=10_000).records:
                if "partition_range" not in record.asset_materialization.metadata:
                    stored[record.run_id] = stored.get(record.run_id, 0) + 1
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        audited = dict(
            con.sql(
                "select run_id, count(*) from marts.audit_log where event_type = "
                "'materialization' and asset_key != 'marts/audit_log' group by run_id"
            ).fetchall()
        )
        repeated = con.sql(
            "select count(*) - count(distinct audit_id) from marts.audit_log"
        ).fetchone()[0]
    assert repeated == 0
    assert audited == {run_id: n for run_id, n in stored.items() if n}


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """What a run of the test data that nothing disturbed leaves in the lake, the marts and
    the exports."""
    home = tmp_path_factory.mktemp("undisturbed")
    generate(home / "landing", people=300, days=20)
    ran = _run(home)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    return _snapshot(home)


def _kill_at(home: Path, log: Path, marker: str) -> str:
    """Start ``inboxgraph run`` and SIGKILL its process group the moment ``marker`` is
    printed (read from a pipe, so the kill follows the line within milliseconds); the output
    up to the kill."""
    process = subprocess.Popen(
        [sys.executable, "-m", "inboxgraph.cli", "run", "--as-of", AS_OF],
        env={**_env(home), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    seen: list[str] = []

    def watch() -> None:
        for raw in process.stdout:
            line = raw.decode(errors="replace")
            seen.append(line)
            if marker in line:
                os.killpg(process.pid, signal.SIGKILL)
                break

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    watcher.join(timeout=300)
    process.wait(timeout=60)
    process.stdout.close()
    output = "".join(seen)
    log.write_text(output)
    assert process.returncode == -signal.SIGKILL, f"the run ended by itself\n{output[-3000:]}"
    return output


def _warehouse_pool(home: Path) -> tuple[list, list[dg.DagsterRunStatus]]:
    with _instance(home) as instance:
        info = instance.event_log_storage.get_concurrency_info("warehouse")
        statuses = [run.status for run in instance.get_runs(limit=1)]
        return list(info.claimed_slots), statuses


@contextlib.contextmanager
def _instance(home: Path) -> Iterator[dg.DagsterInstance]:
    """The home's Dagster instance (its config reads DAGSTER_HOME, set only meanwhile)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        instance = dg.DagsterInstance.from_config(str(home / "dagster"))
        try:
            yield instance
        finally:
            instance.dispose()


def test_a_killed_run_leaves_nothing_that_blocks_and_a_stopped_run_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, undisturbed: dict[str, object]
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = tmp_path / "home"
    generate(home / "landing", people=300, days=20)

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
    _assert_same(home, undisturbed)

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
    assert processes_ended(dbt, timeout=10), "dbt was terminated"
    last = _run(home, "--full-refresh")
    assert last.returncode == 0, last.stdout[-3000:] + last.stderr[-3000:]
    _assert_same(home, undisturbed)


# Where to kill (the first line of the phase) and a line the killed run must not have reached.
PHASES = {
    "landing events": ("lake__esp_events - esp_events 2026-", "refresh_warehouse:"),
    "extracting": ("lake__enrichment - enrichment:", "Running dbt command"),
    "exporting": ("activation__braze_export - braze:", "suppression list:"),
}


@pytest.mark.parametrize("phase", PHASES)
def test_a_run_killed_in_any_phase_is_completed_by_the_next(
    phase: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, undisturbed: dict[str, object]
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = tmp_path / "home"
    generate(home / "landing", people=300, days=20)
    marker, unreached = PHASES[phase]
    output = _kill_at(home, tmp_path / "killed.log", marker)
    assert unreached not in output, f"killed after {phase}\n{output[-3000:]}"

    started = time.monotonic()
    again = _run(home)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "is gone: killed or crashed, marked failed" in again.stdout
    assert time.monotonic() - started < 300
    claimed, statuses = _warehouse_pool(home)
    assert claimed == [] and statuses == [dg.DagsterRunStatus.SUCCESS]
    _assert_same(home, undisturbed)
    _assert_audited(home)
