"""Runs that died never wedge the next: the command line's runs carry their process, and a run
whose process is gone is marked failed and its pool slots freed before anything waits on them.

Runs launched through the instance (the UI, schedules, sensors) are watched by Dagster's run
monitoring instead (platform/dagster.yaml); the command line executes its runs in its own
process, which run monitoring cannot see.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg
import psutil

HOST_TAG = "inboxgraph/host"
PID_TAG = "inboxgraph/pid"
PROCESS_STARTED_TAG = "inboxgraph/process_started"
UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def process_tags() -> dict[str, str]:
    """Tags naming this process, so a later command can tell whether it is still alive."""
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
        PROCESS_STARTED_TAG: f"{psutil.Process().create_time():.3f}",
    }


def process_alive(tags: dict[str, str]) -> bool:
    """Whether the process the tags name still runs (the same process, not a reused pid)."""
    try:
        process = psutil.Process(int(tags[PID_TAG]))
        return f"{process.create_time():.3f}" == tags.get(PROCESS_STARTED_TAG)
    except (KeyError, ValueError, psutil.NoSuchProcess):
        return False


def reclaim_dead_runs(instance: dg.DagsterInstance, log: Callable[[str], None]) -> list[str]:
    """Mark failed the unfinished runs this machine's command line started whose process is
    gone, and free every pool slot a finished or dead run still holds; the run ids freed."""
    reclaimed = []
    host = socket.gethostname()
    for run in instance.get_runs(dg.RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: host})):
        if process_alive(run.tags):
            continue
        message = f"its process (pid {run.tags.get(PID_TAG)}) is gone: killed or crashed"
        instance.report_run_failed(run, message=message)
        log(f"run {run.run_id} ({run.job_name}) was left unfinished; {message}, marked failed")
        reclaimed.append(run.run_id)
    storage = instance.event_log_storage
    for run_id in storage.get_concurrency_run_ids():
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            if run_id not in reclaimed:
                reclaimed.append(run_id)
    return reclaimed


def wait_for_pool(
    instance: dg.DagsterInstance,
    pool: str,
    timeout_seconds: float,
    log: Callable[[str], None],
    poll_seconds: float = 2.0,
) -> None:
    """Return once no live run holds a slot of ``pool``; say once which run it waits for, and
    raise TimeoutError after ``timeout_seconds``."""
    deadline = time.monotonic() + timeout_seconds
    announced: set[str] = set()
    while True:
        reclaim_dead_runs(instance, log)
        info = instance.event_log_storage.get_concurrency_info(pool)
        holders = sorted({slot.run_id for slot in info.claimed_slots})
        if len(holders) < max(info.slot_count, 1) or not holders:
            return
        for run_id in holders:
            if run_id not in announced:
                run = instance.get_run_by_id(run_id)
                job = run.job_name if run else "an unknown job"
                log(f"waiting for run {run_id} ({job}), which holds the {pool} pool")
                announced.add(run_id)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the {pool} pool is still held by run(s) {', '.join(holders)} after "
                f"{timeout_seconds:g} s; stop that run or wait for it, then run again"
            )
        time.sleep(poll_seconds)


@contextmanager
def stop_when_interrupted() -> Iterator[None]:
    """A step interrupted (Ctrl-C, SIGTERM, a stop from the UI) fails without its retries: a
    retry policy is for faults, and a run that was told to stop must stop."""
    try:
        yield
    except dg.DagsterExecutionInterruptedError:
        raise dg.Failure(
            "stopped: the run was interrupted (Ctrl-C, SIGTERM or a stop from the UI); "
            "what it had written is replaced or completed by the next run",
            allow_retries=False,
        ) from None
