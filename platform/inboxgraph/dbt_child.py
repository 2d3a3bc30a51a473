"""`inboxgraph-dbt`: dbt as a child process that dies with the run that started it.

A run killed outright (an out-of-memory kill, a SIGKILL to the run worker) cannot stop its dbt
subprocess, which would keep the warehouse's DuckDB file locked and fail the retry. On Linux
this entry point asks the kernel to send dbt SIGTERM when its parent dies, then runs dbt's own
command line in the same process. Elsewhere it is dbt unchanged.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
# The process starting dbt names itself here (:func:`started_by_this_process`).
PARENT_VARIABLE = "INBOXGRAPH_DBT_PARENT"


def started_by_this_process() -> dict[str, str]:
    """The environment that tells `inboxgraph-dbt` which process started it."""
    return {PARENT_VARIABLE: str(os.getpid())}


def die_with_parent() -> None:
    """Have the kernel terminate this process when its parent exits (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    # The parent as it named itself: one killed while this interpreter started has already
    # been replaced by the process that adopted the orphan, which os.getppid() would return.
    named = os.environ.get(PARENT_VARIABLE, "")
    parent = int(named) if named.isdigit() else os.getppid()
    # An ignored SIGTERM is inherited across exec: a process started from one that ignores it
    # (a test runner, a shell's background job) would never act on the signal asked for here.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return  # not permitted here: dbt runs as it would without this entry point
    if os.getppid() != parent:
        sys.exit("inboxgraph-dbt: the run that started dbt has already ended")


def print_version() -> None:
    """What ``dbt --version`` reports of the installed packages, read from their metadata:
    dagster-dbt asks for the version before every run, and dbt's own answer costs an import of
    dbt and a look-up of the newest release online."""
    from importlib.metadata import PackageNotFoundError, version

    print(f"Core:\n  - installed: {version('dbt-core')}\n\nPlugins:")
    for plugin in ("duckdb", "postgres", "snowflake", "bigquery"):
        try:
            print(f"  - {plugin}: {version(f'dbt-{plugin}')}")
        except PackageNotFoundError:
            continue


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        print_version()
        return
    die_with_parent()
    from dbt.cli.main import cli

    sys.exit(cli())
