"""The pieces that keep a dead run from wedging the next: dead runs reclaimed, a bounded wait
for the warehouse pool, and dbt that dies with the run that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest

from inboxgraph.crash import (
    HOST_TAG,
    PID_TAG,
    PROCESS_STARTED_TAG,
    process_alive,
    process_tags,
    reclaim_dead_runs,
    wait_for_pool,
)


def _run(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun:
    run = instance.create_run_for_job(dg.GraphDefinition("noop").to_job(), tags=tags)
    instance.handle_run_event(
        run.run_id,
        dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name
        ),
    )
    return instance.get_run_by_id(run.run_id)


def test_a_process_is_alive_only_while_the_same_process_runs() -> None:
    assert process_alive(process_tags())
    assert not process_alive({**process_tags(), PROCESS_STARTED_TAG: "1.000"}), "a reused pid"
    assert not process_alive({})
    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        started = f"{psutil.Process(child.pid).create_time():.3f}"
    assert not process_alive({PID_TAG: str(child.pid), PROCESS_STARTED_TAG: started})


def test_dead_runs_are_marked_failed_and_their_slots_freed() -> None:
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("warehouse", 1)
        alive = _run(instance, process_tags())
        dead = _run(instance, {**process_tags(), PID_TAG: "999999999"})
        elsewhere = _run(instance, {**process_tags(), HOST_TAG: "another-host", PID_TAG: "1"})
        assert storage.claim_concurrency_slot("warehouse", dead.run_id, "dbt").is_claimed
        said: list[str] = []

        assert reclaim_dead_runs(instance, said.append) == [dead.run_id]
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
        # Another machine's runs are its own to judge.
        assert instance.get_run_by_id(elsewhere.run_id).status == dg.DagsterRunStatus.STARTED
        assert storage.get_concurrency_info("warehouse").claimed_slots == []
        assert said == [
            f"run {dead.run_id} (noop) was left unfinished; its process (pid 999999999) is "
            "gone: killed or crashed, marked failed"
        ]
        assert reclaim_dead_runs(instance, said.append) == []


def test_waiting_for_a_live_run_names_it_once_and_ends_after_the_timeout() -> None:
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("warehouse", 1)
        live = _run(instance, process_tags())
        assert storage.claim_concurrency_slot("warehouse", live.run_id, "dbt").is_claimed
        said: list[str] = []
        with pytest.raises(TimeoutError, match=f"still held by run\\(s\\) {live.run_id}"):
            wait_for_pool(instance, "warehouse", 0.3, said.append, poll_seconds=0.1)
        assert said == [f"waiting for run {live.run_id} (noop), which holds the warehouse pool"]
        storage.free_concurrency_slots_for_run(live.run_id)
        wait_for_pool(instance, "warehouse", 0.3, said.append, poll_seconds=0.1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_dbt_dies_with_the_run_that_started_it(tmp_path: Path) -> None:
    # A parent starts a child the way dbt is started (through inboxgraph-dbt's first step),
    # prints its pid, and is SIGKILLed: the child must not outlive it.
    ready = tmp_path / "asked"
    child = (
        "from inboxgraph.dbt_child import die_with_parent; die_with_parent(); "
        f"open({str(ready)!r}, 'w').close(); import time; time.sleep(120)"
    )
    # The parent ignores SIGTERM, as a test runner or a shell's background job may: the child
    # inherits that, and must still act on the signal it asked for.
    parent = (
        "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"p = subprocess.Popen([sys.executable, '-c', {child!r}]); "
        "print(p.pid, flush=True); time.sleep(120)"
    )
    with subprocess.Popen(
        [sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True
    ) as process:
        pid = int(process.stdout.readline())
        # Killed only once the child has asked for the signal (its imports take a while on a
        # busy machine).
        asked = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < asked, "the child never asked for the signal"
            time.sleep(0.05)
        assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        os.kill(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_dbt_started_by_a_run_killed_before_dbt_asked_for_the_signal_ends(tmp_path: Path) -> None:
    # The run is killed while dbt's interpreter is still starting: by the time dbt asks for the
    # signal, its parent is the process that adopted the orphan. The run named itself in the
    # environment, so dbt sees that its parent is gone and ends instead of running on.
    go = tmp_path / "go"
    child = (
        "import pathlib, time\n"
        f"while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.05)\n"
        "from inboxgraph.dbt_child import die_with_parent; die_with_parent()\n"
        "time.sleep(120)"
    )
    parent = (
        "import os, subprocess, sys, time\n"
        "from inboxgraph.dbt_child import started_by_this_process\n"
        f"p = subprocess.Popen([sys.executable, '-c', {child!r}], "
        "env={**os.environ, **started_by_this_process()}, stderr=subprocess.DEVNULL)\n"
        "print(p.pid, flush=True); time.sleep(120)"
    )
    with subprocess.Popen(
        [sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True
    ) as process:
        pid = int(process.stdout.readline())
        os.kill(process.pid, signal.SIGKILL)
    go.touch()
    deadline = time.monotonic() + 30
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "dbt outlived the run that started it"
        time.sleep(0.1)
