from __future__ import annotations

from pathlib import Path

import dagster as dg

from inboxgraph.partitions import received_date_partitions
from inboxgraph.resources.sources import EventFolderSource
from inboxgraph.sensors import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    landing_sensor,
    plan_ingest_runs,
    stale_days,
)

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


def _record(instance: dg.DagsterInstance, day: str, prints: dict[str, str]) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=["lake", "web_events"],
            partition=day,
            metadata={"landing_fingerprints": dg.MetadataValue.json(prints)},
        )
    )


def test_stale_days_are_those_whose_files_differ_from_what_the_lake_recorded(
    tmp_path: Path,
) -> None:
    web, esp = _landing(tmp_path)
    _land(tmp_path, "2026-11-20")
    _land(tmp_path, "2026-11-21")
    with dg.instance_for_test() as instance:
        assert set(stale_days(instance, [web, esp])) == {"2026-11-20", "2026-11-21"}
        _record(instance, "2026-11-20", web.fingerprints(["2026-11-20"]))
        assert set(stale_days(instance, [web, esp])) == {"2026-11-21"}
        _land(tmp_path, "2026-11-20", '{"type": "page"}\n{"type": "track"}\n')
        assert set(stale_days(instance, [web, esp])) == {"2026-11-20", "2026-11-21"}


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
        _record(instance, day, web.fingerprints([day]))
        skipped = landing_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(skipped, dg.SkipReason)
