"""Mixpanel's Raw Event Export pulled into the landing zone, against a local fake of the API:
the same rows as a file export, through rate limits and faults, resumable, failing clearly."""

from __future__ import annotations

import gzip
from collections import deque
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import orjson
import polars as pl
import pytest

from inboxgraph.assets.lake import mixpanel_export
from inboxgraph.resources.mixpanel import FILE_NAME, MixpanelExport
from inboxgraph.resources.sources import EventFolderSource
from inboxgraph.transforms import mixpanel_events
from inboxgraph.transforms.common import split_quarantine
from tests.sources.fake_mixpanel import FakeMixpanel, export_line, export_text

DAYS = [(date(2026, 11, 20) + timedelta(days=n)).isoformat() for n in range(4)]
TODAY = date.fromisoformat(DAYS[-1])


def _fake() -> FakeMixpanel:
    fake = FakeMixpanel()
    for day in DAYS:
        fake.add(
            day,
            [export_line(day, n, f"dev-{day}-{n % 3}", product_id=f"P{n:04d}") for n in range(25)],
        )
    return fake


def _reader(fake: FakeMixpanel, landing: Path, **overrides: object) -> MixpanelExport:
    settings = {
        "api_url": fake.url,
        "project_id": fake.project_id,
        "username": fake.username,
        "secret": fake.secret,
        "start_date": DAYS[0],
        "landing_url": str(landing),
        "backoff_seconds": 0.05,
        **overrides,
    }
    return MixpanelExport(**settings)


def _landed(landing: Path, day: str) -> pl.DataFrame:
    """The day's rows as the lake asset lands them, without the file they came from."""
    source = EventFolderSource(
        folder="mixpanel", source="mixpanel_events", landing_url=str(landing)
    )
    prepared = mixpanel_events.prepare(source.read_lines(day), date.fromisoformat(day))
    landed, quarantined = split_quarantine(prepared, list(mixpanel_events.LANDED_COLUMNS))
    assert quarantined.is_empty()
    return landed.drop("_source_file").sort("insert_id")


def _saved_lines(landing: Path, day: str) -> list[dict]:
    data = gzip.decompress((landing / "mixpanel" / day / FILE_NAME).read_bytes())
    return [orjson.loads(line) for line in data.splitlines()]


def test_the_pull_lands_the_same_rows_as_the_file_export(tmp_path: Path) -> None:
    fake = _fake()
    with fake.serve():
        saved = _reader(fake, tmp_path / "api").pull(DAYS)
    assert saved == {day: 25 for day in DAYS}
    for day in DAYS:
        exported = tmp_path / "files" / "mixpanel" / day
        exported.mkdir(parents=True)
        (exported / "export.jsonl").write_text(
            "".join(export_text(line) + "\n" for line in fake.events[day])
        )
        assert _landed(tmp_path / "api", day).equals(_landed(tmp_path / "files", day))


def test_rate_limits_server_errors_and_a_cut_off_body_lose_and_double_nothing(
    tmp_path: Path,
) -> None:
    fake = _fake()
    fake.faults = deque([429, 429, 500])
    fake.cut_off = {DAYS[2]}
    with fake.serve():
        _reader(fake, tmp_path).pull(DAYS)
    statuses = [status for _, status in fake.log]
    assert statuses.count(429) >= 2 and 500 in statuses
    # The day cut off mid-body was asked for again, and every day is whole, each event once.
    assert sum(1 for span, status in fake.log if span == f"{DAYS[2]}..{DAYS[2]}") >= 2
    for day in DAYS:
        assert _saved_lines(tmp_path, day) == fake.events[day]
    assert not list(tmp_path.rglob(".*.tmp")), "no temporary file is left behind"


def test_a_pull_that_stops_midway_resumes_at_the_first_day_it_did_not_save(
    tmp_path: Path,
) -> None:
    fake = _fake()
    with fake.serve():
        reader = _reader(fake, tmp_path, lookback_days=0, max_attempts=2)
        original = fake.answer

        def failing_on_third(path: str, query: str, auth: str | None):  # type: ignore[no-untyped-def]
            if f"from_date={DAYS[2]}" in query:
                return 503, {}, b'{"error": "unavailable"}', f"{DAYS[2]}..{DAYS[2]}"
            return original(path, query, auth)

        fake.answer = failing_on_third  # type: ignore[method-assign]
        with pytest.raises(dg.Failure, match="503"):
            reader.pull(reader.days_to_pull(TODAY))
        assert reader.pulled_days() == DAYS[:2]
        assert not (tmp_path / "mixpanel" / DAYS[2]).joinpath(FILE_NAME).exists()
        fake.answer = original  # type: ignore[method-assign]
        fake.log.clear()
        assert reader.days_to_pull(TODAY) == DAYS[2:]
        reader.pull(reader.days_to_pull(TODAY))
    # Only the days not yet saved were asked for (a 429 from the rate limit may come between).
    assert [span for span, status in fake.log if status == 200] == [f"{d}..{d}" for d in DAYS[2:]]
    assert {span for span, _ in fake.log} == {f"{d}..{d}" for d in DAYS[2:]}
    assert reader.pulled_days() == DAYS
    for day in DAYS:
        assert _saved_lines(tmp_path, day) == fake.events[day]


def test_the_lookback_reads_the_last_saved_days_again_and_replaces_them(tmp_path: Path) -> None:
    fake = _fake()
    with fake.serve():
        reader = _reader(fake, tmp_path, lookback_days=2)
        reader.pull(DAYS)
        late = export_line(DAYS[-1], 99, "dev-late")
        fake.add(DAYS[-1], [late])
        assert reader.days_to_pull(TODAY) == DAYS[-2:]
        reader.pull(reader.days_to_pull(TODAY))
    assert _saved_lines(tmp_path, DAYS[-1]) == fake.events[DAYS[-1]]
    assert len(list((tmp_path / "mixpanel" / DAYS[-1]).iterdir())) == 1


def test_a_refused_secret_fails_the_asset_with_one_sentence_naming_the_variable(
    tmp_path: Path,
) -> None:
    fake = _fake()
    with fake.serve():
        result = dg.materialize(
            [mixpanel_export],
            resources={"mixpanel": _reader(fake, tmp_path, secret="expired")},
            raise_on_error=False,
        )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "INBOXGRAPH_MIXPANEL_SECRET" in failure.message and "401" in failure.message
    assert [status for _, status in fake.log] == [401], "a refused secret is not retried"


def test_the_asset_reports_what_it_saved_and_does_nothing_without_a_secret(
    tmp_path: Path,
) -> None:
    fake = _fake()
    with fake.serve():
        result = dg.materialize(
            [mixpanel_export],
            resources={"mixpanel": _reader(fake, tmp_path, start_date=DAYS[-1])},
        )
    metadata = result.asset_materializations_for_node("landing__mixpanel_events")[0].metadata
    assert metadata["mode"].value == "api"
    assert metadata["events_saved"].value == sum(
        len(fake.events.get(d, [])) for d in metadata["events_per_day"].value
    )
    off = dg.materialize(
        [mixpanel_export], resources={"mixpanel": MixpanelExport(landing_url=str(tmp_path))}
    )
    metadata = off.asset_materializations_for_node("landing__mixpanel_events")[0].metadata
    assert (metadata["mode"].value, metadata["days_saved"].value) == ("files", 0)


def test_the_fake_enforces_the_contract(tmp_path: Path) -> None:
    import requests

    fake = _fake()
    with fake.serve():
        url = f"{fake.url}/api/2.0/export"
        auth = (fake.username, fake.secret)
        without_project = requests.get(
            url, params={"from_date": DAYS[0], "to_date": DAYS[0]}, auth=auth
        )
        assert without_project.status_code == 401
        reversed_range = requests.get(
            url,
            params={"from_date": DAYS[1], "to_date": DAYS[0], "project_id": fake.project_id},
            auth=auth,
        )
        assert reversed_range.status_code == 400
        statuses = [
            requests.get(
                url,
                params={"from_date": DAYS[0], "to_date": DAYS[0], "project_id": fake.project_id},
                auth=auth,
            ).status_code
            for _ in range(5)
        ]
        assert 429 in statuses
