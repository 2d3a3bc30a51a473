"""A private platform home with generated data, run through the real pipeline."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from inboxgraph.runner import RunSummary, run_pipeline
from inboxgraph.settings import Paths
from tests.conftest import generate, home_environment

AS_OF = datetime(2026, 11, 28)


@contextlib.contextmanager
def pipeline_home(
    root: Path, people: int = 400, days: int = 100
) -> Iterator[tuple[Paths, RunSummary]]:
    with home_environment(root) as paths:
        generate(Path(paths.landing_url), people=people, days=days)
        summary = run_pipeline(paths, as_of=AS_OF, log=lambda _: None)
        assert summary.succeeded, summary
        yield paths, summary


def rerun(paths: Paths) -> RunSummary:
    summary = run_pipeline(paths, as_of=AS_OF, log=lambda _: None)
    assert summary.succeeded, summary
    return summary
