"""The pipeline benchmark at a tiny size, so it never rots (its timings are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def test_pipeline_bench_runs_end_to_end_and_matches_the_floor(tmp_path: Path) -> None:
    results = tmp_path / "results"
    completed = subprocess.run(
        [
            sys.executable,
            str(REPOSITORY / "bench" / "pipeline.py"),
            "--sizes",
            "150",
            "--days",
            "3",
            "--workdir",
            str(tmp_path / "work"),
            "--results",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    report = json.loads((results / "pipeline.json").read_text())
    (size,) = report["sizes"]
    assert size["people"] == 150
    assert size["web_events"] > 0 and size["esp_events"] > 0
    assert size["ga4_events"] > 0 and size["mixpanel_events"] > 0
    outputs = {"marts.identity_map", "marts.customer_profiles", "marts.segment_memberships"}
    # Every output was compared with the floor, after the full refresh and after the new day.
    assert size["full_equal"] == dict.fromkeys(outputs, 0)
    assert size["incremental_equal"] == dict.fromkeys(outputs, 0)
    for phase in ("land", "full", "floor", "incremental", "incremental_floor", "no_change"):
        assert size[phase]["seconds"] > 0, phase
        assert size[phase]["peak_rss_bytes"] > 50 * 2**20, phase
    # With nothing new, the refresh rebuilds no dbt asset (it confirms each instead).
    rebuilt, total = size["no_change_rebuilt"]
    assert rebuilt == 0 and total > 30
    assert 0 < size["process_start"]["seconds"] < size["no_change"]["seconds"]
    assert set(report["ratios"]) == set(report["targets"])
    assert (results / "pipeline.png").read_bytes().startswith(b"\x89PNG")
    assert "| 150 |" in (results / "pipeline.md").read_text()
    # The floor is a real SQL script over the lake files, built from the compiled models.
    assert "full_vs_floor" in completed.stdout
