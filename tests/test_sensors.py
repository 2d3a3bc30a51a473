from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from inboxgraph.resources.sources import EventFolderSource
from inboxgraph.sensors import folder_fingerprints, landing_sensor, plan_ingest_runs


def test_plan_requests_only_new_or_changed_days() -> None:
    requests, cursor = plan_ingest_runs(None, {"2026-11-01": "a", "2026-11-02": "b"})
    assert [r.partition_key for r in requests] == ["2026-11-01", "2026-11-02"]
    again, same_cursor = plan_ingest_runs(cursor, {"2026-11-01": "a", "2026-11-02": "b"})
    assert again == [] and json.loads(same_cursor) == json.loads(cursor)
    changed, _ = plan_ingest_runs(cursor, {"2026-11-01": "a", "2026-11-02": "c", "2026-11-03": "d"})
    assert [r.partition_key for r in changed] == ["2026-11-02", "2026-11-03"]
    assert len({r.run_key for r in changed}) == 2


def test_sensor_fires_for_a_new_landing_folder(tmp_path: Path) -> None:
    day = tmp_path / "web_events" / "2026-11-20"
    day.mkdir(parents=True)
    (day / "events-00000.jsonl").write_text('{"type": "page"}\n')
    web = EventFolderSource(folder="web_events", landing_url=str(tmp_path))
    esp = EventFolderSource(folder="esp_events", landing_url=str(tmp_path))
    assert set(folder_fingerprints([web, esp])) == {"2026-11-20"}
    context = dg.build_sensor_context(
        resources={"web_events_source": web, "esp_events_source": esp}
    )
    result = landing_sensor(context)
    assert [r.partition_key for r in result.run_requests] == ["2026-11-20"]
    context = dg.build_sensor_context(
        cursor=result.cursor, resources={"web_events_source": web, "esp_events_source": esp}
    )
    assert landing_sensor(context).run_requests == []
