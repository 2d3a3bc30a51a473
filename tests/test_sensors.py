from __future__ import annotations

from pathlib import Path

import dagster as dg

from inboxgraph.generate.writer import GenerateReport
from inboxgraph.partitions import received_date_partitions
from inboxgraph.resources.sources import EventFolderSource
from inboxgraph.sensors import (
    DATA_VERSION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    landing_observations,
    landing_sensor,
    plan_ingest_runs,
    stale_days,
)
from inboxgraph.settings import Paths

KEYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]


def test_plan_requests_one_run_per_contiguous_range_of_stale_days() -> None:
    stale = {"2026-11-01": "a", "2026-11-02": "b", "2026-11-04": "c", "2025-12-31": "d"}
    requests, outside = plan_ingest_runs(stale, KEYS)
    ranges = [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests]
    assert ranges == [("2026-11-01", "2026-11-02"), ("2026-11-04", "2026-11-04")]
    assert outside == ["2025-12-31"]
    # The same files give the same run key (Dagster starts it once); changed files a new one.
    again, _ = plan_ingest_runs(stale, KEYS)
    assert [r.run_key for r in again] == [r.run_key for r in requests]
    changed, _ = plan_ingest_runs({**stale, "2026-11-02": "b2"}, KEYS)
    assert changed[0].run_key != requests[0].run_key
    assert changed[1].run_key == requests[1].run_key
    assert plan_ingest_runs({}, KEYS) == ([], [])


def _landing(tmp_path: Path) -> tuple[EventFolderSource, EventFolderSource]:
    web = EventFolderSource(folder="web_events", landing_url=str(tmp_path))
    esp = EventFolderSource(folder="esp_events", landing_url=str(tmp_path))
    return web, esp


def _land(tmp_path: Path, day: str, text: str = '{"type": "page"}\n') -> None:
    folder = tmp_path / "web_events" / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "events-00000.jsonl").write_text(text)


def _observe(instance: dg.DagsterInstance, day: str, version: str) -> None:
    """What a lake asset records of the web source's ``day`` before landing it."""
    instance.report_runless_asset_event(
        dg.AssetObservation(
            asset_key=["sources", "web_events"],
            partition=day,
            tags={DATA_VERSION_TAG: version},
        )
    )


def _observed_days(
    instance: dg.DagsterInstance, source: EventFolderSource, days: list[str] | None = None
) -> set[str]:
    """The days a lake asset would record a new version of."""
    return {o.partition for o in landing_observations(instance, source, days)}


def _land_lake(instance: dg.DagsterInstance, day: str) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=["lake", "web_events"], partition=day)
    )


def test_stale_days_are_those_whose_files_differ_from_the_observed_version(
    tmp_path: Path,
) -> None:
    web, esp = _landing(tmp_path)
    day, other = received_date_partitions.get_partition_keys()[-3:-1]
    _land(tmp_path, day)
    _land(tmp_path, other)
    with dg.instance_for_test() as instance:
        assert set(stale_days(instance, [web, esp])) == {day, other}
        assert _observed_days(instance, web) == {day, other}
        # Observed but its landing did not finish: still stale, though no longer changed.
        _observe(instance, day, web.fingerprints([day])[day])
        assert set(stale_days(instance, [web, esp])) == {day, other}
        assert _observed_days(instance, web) == {other}
        _land_lake(instance, day)
        assert set(stale_days(instance, [web, esp])) == {other}
        # Rewritten files: a new version to observe, and stale again.
        _land(tmp_path, day, '{"type": "page"}\n{"type": "track"}\n')
        assert set(stale_days(instance, [web, esp])) == {day, other}
        assert _observed_days(instance, web, [day]) == {day}


def test_the_events_job_observes_the_days_it_lands_and_lands_only_changed_days(
    landed: tuple[Paths, GenerateReport],
) -> None:
    """Each landed day's version is observed in the run that lands it, before its lake
    partition; afterwards nothing is stale, and a day with a late file is the only one
    landed again."""
    from inboxgraph.runner import _event_sources, prepare_instance, run_pipeline

    paths, _ = landed
    sources = _event_sources(paths)
    web = next(source for source in sources if source.name == "web_events")
    days = web.partitions()
    run_pipeline(paths, log=lambda _: None, warehouse=False)
    instance = prepare_instance(paths)
    observed = {
        record.asset_observation.partition: record
        for record in instance.fetch_observations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["sources", "web_events"])), limit=1000
        ).records
    }
    assert sorted(observed) == days
    assert {d: r.asset_observation.data_version for d, r in observed.items()} == web.fingerprints()
    for day in (days[0], days[-1]):
        (built,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(["lake", "web_events"]), asset_partitions=[day]
            ),
            limit=1,
        ).records
        assert built.storage_id > observed[day].storage_id
        assert built.run_id == observed[day].run_id
    assert stale_days(instance, sources) == {}

    late = Path(web.files(days[3])[0]).parent / "late-00000.jsonl"
    late.write_text('{"type": "page"}\n')
    assert set(stale_days(instance, sources)) == {days[3]}
    summary = run_pipeline(paths, log=lambda _: None, warehouse=False)
    assert summary.succeeded
    again = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(["sources", "web_events"])), limit=1000
    ).records
    assert len(again) == len(observed) + 1
    assert again[0].asset_observation.partition == days[3]
    assert stale_days(instance, sources) == {}
    instance.dispose()


def test_sensor_requests_a_run_for_new_files_and_none_once_they_are_landed(
    tmp_path: Path,
) -> None:
    web, esp = _landing(tmp_path)
    day = received_date_partitions.get_partition_keys()[-2]
    _land(tmp_path, day)
    resources = {
        "web_events_source": web,
        "esp_events_source": esp,
        "ga4_events_source": EventFolderSource(
            folder="ga4", source="ga4_events", landing_url=str(tmp_path)
        ),
        "mixpanel_events_source": EventFolderSource(
            folder="mixpanel", source="mixpanel_events", landing_url=str(tmp_path)
        ),
    }
    with dg.instance_for_test() as instance:
        result = landing_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in result.run_requests] == [
            (day, day)
        ]
        _observe(instance, day, web.fingerprints([day])[day])
        _land_lake(instance, day)
        skipped = landing_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(skipped, dg.SkipReason)
