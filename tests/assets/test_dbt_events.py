"""dbt's events on their way to dagster-dbt's row count and column metadata fetches."""

import time
from collections.abc import Iterator

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
