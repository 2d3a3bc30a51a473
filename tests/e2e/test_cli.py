"""End to end: the command line on generated data, through the Dagster instance."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import duckdb
import pytest

from inboxgraph.settings import Paths
from tests.conftest import inboxgraph_cli

pytestmark = pytest.mark.e2e


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return inboxgraph_cli(*args)


def test_generate_then_run_builds_profiles_and_segments(platform_home: Paths) -> None:
    generated = _cli(
        "generate", "--people", "400", "--days", "100", "--end", "2026-11-27", "--quiet"
    )
    assert generated.returncode == 0, generated.stderr
    assert "web_events" in generated.stdout

    ran = _cli("run", "--as-of", "2026-11-28T00:00:00Z")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "profiles:" in ran.stdout and "cart_abandoners" in ran.stdout
    assert "0 failed" in ran.stdout

    with duckdb.connect(paths_warehouse(platform_home), read_only=True) as con:
        profiles = con.sql("select count(*) from marts.customer_profiles").fetchone()[0]
        people = con.sql("select count(distinct person_id) from marts.identity_map").fetchone()[0]
        assert profiles == people > 300
        segments = dict(con.sql("select segment_id, member_count from marts.segments").fetchall())
        assert set(segments) == {
            "cart_abandoners",
            "lapsed_customers",
            "engaged_readers",
            "high_value",
        }
        assert all(n > 0 for n in segments.values()), segments
        not_subscribed = con.sql(
            "select count(*) from marts.segment_memberships m join marts.customer_profiles p "
            "using (person_id) where p.preferences.email_status != 'subscribed'"
        ).fetchone()[0]
        assert not_subscribed == 0
    runs = list((Path(platform_home.dagster_home)).rglob("*.db"))
    assert runs, "runs are recorded in the Dagster instance under DAGSTER_HOME"

    # Nothing new has landed: no received date is read again.
    again = _cli("run", "--as-of", "2026-11-28T00:00:00Z")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "ingest_events: all 100 received dates are already in the lake" in again.stdout
    assert "web_events  " not in again.stdout

    # Two days' files are rewritten (a late line appended): an older day and the newest, which
    # the incremental models hold and read again only because Dagster names them. Those two
    # days alone are landed again.
    web_landing = Path(platform_home.landing_url) / "web_events"
    newest = sorted(p.name for p in web_landing.iterdir() if p.is_dir())[-1]
    lines_before = 0
    for day in ("2026-11-20", newest):
        day_files = sorted((web_landing / day).iterdir())
        lines_before += sum(len(_read_lines(f)) for f in day_files)
        with gzip.open(day_files[0], "ab") as handle:
            handle.write(
                b'{"type": "page", "messageId": "late-%s", "anonymousId": "a-late", '
                b'"timestamp": "2026-11-20T10:00:00Z"}\n' % day.encode()
            )
    changed = _cli("run", "--as-of", "2026-11-28T00:00:00Z")
    assert changed.returncode == 0, changed.stdout[-3000:] + changed.stderr[-3000:]
    assert "ingest_events: received dates 2026-11-20 .. 2026-11-20 (1 day)" in changed.stdout
    assert f"ingest_events: received dates {newest} .. {newest} (1 day)" in changed.stdout
    (web_row,) = [line for line in changed.stdout.splitlines() if "web_events  " in line]
    assert int(web_row.split()[1].replace(",", "")) == lines_before + 2
    with duckdb.connect(paths_warehouse(platform_home), read_only=True) as con:
        late = con.sql(
            "select event_id, count(*) from intermediate.int_web__events_parsed "
            "where event_id like 'late-%' group by 1 order by 1"
        ).fetchall()
        assert late == [("late-2026-11-20", 1), (f"late-{newest}", 1)]


def _read_lines(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [line for line in data.splitlines() if line.strip()]


def paths_warehouse(paths: Paths) -> str:
    return paths.warehouse


def test_bad_arguments_are_clear_errors() -> None:
    result = _cli("generate", "--people", "0")
    assert result.returncode == 2
    assert "must be a positive whole number" in result.stderr
    result = _cli("run", "--as-of", "yesterday")
    assert result.returncode == 2
    assert "not an ISO timestamp" in result.stderr
