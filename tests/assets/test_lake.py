from __future__ import annotations

import sqlite3
from pathlib import Path

import dagster as dg
import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from inboxgraph.generate.writer import GenerateReport
from inboxgraph.resources.lake import LakeResource
from inboxgraph.resources.sources import EnrichmentSource
from inboxgraph.resources.wiring import source_resources
from inboxgraph.settings import Paths
from inboxgraph.transforms import enrichment
from tests.assets.lake_helpers import (
    batch_assets,
    batch_keys,
    lake,
    landed_days,
    landing_record_counts,
    latest_versions,
    materialize_batches,
    materialize_events,
    metadata,
    partition_metadata,
    per_file_counts,
    read_table,
    reasons,
)


def test_every_record_lands_or_is_quarantined_per_file(
    landed: tuple[Paths, GenerateReport],
) -> None:
    paths, _ = landed
    materialize_events(paths)
    materialize_batches()
    expected = landing_record_counts(paths)
    for source, files in expected.items():
        assert per_file_counts(paths, source) == files, source


def test_each_bad_record_is_quarantined_with_its_reason_and_no_good_one_is(
    landed: tuple[Paths, GenerateReport],
) -> None:
    paths, report = landed
    materialize_events(paths)
    materialize_batches()
    web = reasons(paths, "web_events")
    assert web.pop("duplicate_message_id", 0) == report.duplicates.get(
        "web_events_same_partition", 0
    )
    assert web == report.bad["web_events"]
    esp = reasons(paths, "esp_events")
    assert esp.pop("duplicate_event_id", 0) == report.duplicates.get("esp_events_same_partition", 0)
    assert esp == report.bad.get("esp_events", {})
    for source, duplicate in (
        ("ga4_events", "duplicate_event"),
        ("mixpanel_events", "duplicate_insert_id"),
    ):
        found = reasons(paths, source)
        assert found.pop(duplicate, 0) == report.duplicates.get(f"{source}_same_partition", 0)
        assert found == report.bad[source], source
    for source in (
        "hubspot_contacts",
        "salesforce_contacts",
        "salesforce_leads",
        "shop_customers",
        "shop_orders",
        "enrichment",
    ):
        assert reasons(paths, source) == report.bad.get(source, {}), source
    quarantined = read_table(paths, "web_events", "quarantine")
    assert quarantined["raw"].null_count() == 0
    assert quarantined.columns[:4] == ["raw", "reason", "_source_file", "_line"]


def test_materialization_metadata_reports_rows_and_paths(
    landed: tuple[Paths, GenerateReport],
) -> None:
    paths, _ = landed
    instance = dg.DagsterInstance.ephemeral()
    result = materialize_events(paths, instance=instance)
    web = metadata(result, "web_events")  # the range's summary, recorded on every partition
    days = landed_days(paths)
    # The log names the first and the last day, and a day at most every 10 s between them
    # (each log line is an event in the instance): the days' figures are on their partitions.
    logged = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.user_message.startswith("web_events 20")
    ]
    assert logged[0].startswith(f"web_events {days[0]}: ")
    assert logged[0].endswith(f"(day 1 of {len(days)})")
    assert logged[-1].endswith(f"(day {len(days)} of {len(days)})")
    assert len(logged) < len(days)
    assert web["partition_range"] == f"{days[0]}..{days[-1]}"
    assert web["partitions_written"] == len(days)
    assert web["range_rows_in"] == web["range_rows_landed"] + web["range_rows_quarantined"]
    assert web["range_quarantine_reasons"] == reasons(paths, "web_events")
    own = partition_metadata(result, "web_events")
    assert sorted(own) == days
    for day, figures in own.items():
        assert figures["rows_in"] == figures["rows_landed"] + figures["rows_quarantined"]
        assert (
            figures["dagster/row_count"]
            == figures["rows_landed"]
            == len(
                read_table(paths, "web_events").filter(
                    pl.col("received_date").cast(pl.String) == day
                )
            )
        ), day
        assert figures["path"].endswith(f"received_date={day}/data.parquet")
        assert [c.name for c in figures["dagster/column_schema"].columns][:2] == [
            "message_id",
            "type",
        ]
    assert sum(f["rows_landed"] for f in own.values()) == web["range_rows_landed"] > 0
    assert sum(f["rows_quarantined"] for f in own.values()) == web["range_rows_quarantined"] > 0


def test_rematerializing_a_partition_leaves_the_lake_exactly_as_before(
    landed: tuple[Paths, GenerateReport],
) -> None:
    paths, _ = landed
    day = landed_days(paths)[5]
    materialize_events(paths, day, day)
    before = {
        zone: lake(paths).read_partition(zone, "web_events", {"received_date": day})
        for zone in ("raw", "quarantine")
    }
    files_before = sorted(Path(paths.lake_url).rglob("*"))
    materialize_events(paths, day, day)
    for zone, frame in before.items():
        after = lake(paths).read_partition(zone, "web_events", {"received_date": day})
        assert_frame_equal(after, frame)
    assert sorted(Path(paths.lake_url).rglob("*")) == files_before
    landed_rows = before["raw"]
    assert landed_rows["message_id"].is_duplicated().sum() == 0


def test_a_write_that_dies_before_commit_keeps_the_previous_partition(
    landed: tuple[Paths, GenerateReport], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths, _ = landed
    day = landed_days(paths)[3]
    materialize_events(paths, day, day)
    previous = lake(paths).read_partition("raw", "web_events", {"received_date": day})
    # More events land for that day, then the next write fails between write and commit.
    folder = Path(paths.landing_url) / "web_events" / day
    extra = {
        "type": "track",
        "event": "Product Viewed",
        "messageId": "late-arrival-1",
        "anonymousId": "a-late",
        "timestamp": f"{day}T08:00:00Z",
        "properties": {},
    }
    (folder / "zz-extra.jsonl").write_bytes(orjson.dumps(extra) + b"\n")

    def die(self: LakeResource, temporary: Path, target: Path) -> None:
        raise OSError("disk vanished between write and commit")

    # Its own patch context: undoing the test's whole monkeypatch would also put back the
    # environment the fixtures removed.
    with monkeypatch.context() as patch:
        patch.setattr(LakeResource, "_commit", die)
        failed = materialize_events(paths, day, day, raise_on_error=False)
    assert not failed.success
    still = lake(paths).read_partition("raw", "web_events", {"received_date": day})
    assert_frame_equal(still, previous)
    assert read_table(paths, "web_events").height >= previous.height
    assert not list(folder.parent.parent.parent.rglob("*.tmp")), "no temporary files left"

    materialize_events(paths, day, day)
    completed = lake(paths).read_partition("raw", "web_events", {"received_date": day})
    assert completed.height == previous.height + 1
    assert "late-arrival-1" in completed["message_id"].to_list()


def _shop(paths: Paths) -> sqlite3.Connection:
    return sqlite3.connect(paths.shop_db_url.removeprefix("sqlite:///"))


def test_incremental_extraction_reads_only_changed_rows(
    landed: tuple[Paths, GenerateReport],
) -> None:
    paths, _ = landed
    first = materialize_batches("shop_orders", "shop_order_items", "hubspot_contacts")
    orders_total = metadata(first, "shop_orders")["rows_in"]
    contacts_total = metadata(first, "hubspot_contacts")["rows_in"]

    with _shop(paths) as db:
        changed = [
            row[0]
            for row in db.execute(
                "select order_id from orders where status = 'completed' order by order_id limit 3"
            )
        ]
        db.executemany(
            "update orders set status = 'refunded', updated_at = '2026-11-28 12:00:00' "
            "where order_id = ?",
            [(order_id,) for order_id in changed],
        )
        db.execute(
            "insert into orders values ('ORD-NEW-1', 10001, 'completed', 42.5, 'USD', "
            "'2026-11-28 13:00:00', '2026-11-28 13:00:00')"
        )
    landing = Path(paths.landing_url)
    first_page = orjson.loads(
        sorted((landing / "hubspot" / "contacts").glob("*.json"))[0].read_bytes()
    )
    updated = [dict(c, updatedAt="2026-11-28T12:00:00.000Z") for c in first_page["results"][:2]]
    for contact in updated:
        contact["properties"] = dict(contact["properties"], city="Lisbon")
    (landing / "hubspot" / "contacts" / "page-999999.json").write_bytes(
        orjson.dumps({"results": updated})
    )

    second = materialize_batches("shop_orders", "shop_order_items", "hubspot_contacts")
    orders = metadata(second, "shop_orders")
    with _shop(paths) as db:
        since = orders["since"][:19]
        expected_read = db.execute(
            "select count(*) from orders where updated_at >= ?", (since,)
        ).fetchone()[0]
    assert orders["rows_in"] == expected_read
    assert orders["rows_in"] < orders_total / 5
    assert orders["rows_landed"] == 4
    contacts = metadata(second, "hubspot_contacts")
    assert contacts["rows_landed"] == 2
    assert contacts["rows_in"] < contacts_total / 5

    lake_orders = read_table(paths, "shop_orders")
    current = latest_versions(lake_orders, "order_id")
    for order_id in changed:
        versions = lake_orders.filter(pl.col("order_id") == order_id)
        assert versions.height == 2, "the old version is archived, the new one added once"
        assert current.filter(pl.col("order_id") == order_id)["status"].to_list() == ["refunded"]
    assert lake_orders.select("order_id", "updated_at").is_duplicated().sum() == 0

    third = materialize_batches("shop_orders")
    assert metadata(third, "shop_orders")["rows_landed"] == 0
    assert read_table(paths, "shop_orders").height == lake_orders.height


def test_an_unchanged_enrichment_file_is_not_landed_again(platform_home: Paths) -> None:
    folder = Path(platform_home.landing_url) / "enrichment"
    folder.mkdir(parents=True)
    vendor = folder / "vendor.csv"
    vendor.write_text("email,company\na@example.com,Acme\nb@example.com,Initech\n")
    instance = dg.DagsterInstance.ephemeral()

    def land() -> dict:
        return metadata(
            dg.materialize(
                batch_assets(),
                resources=source_resources(),
                selection=dg.AssetSelection.assets(*batch_keys("enrichment")),
                instance=instance,
            ),
            "enrichment",
        )

    first = land()
    assert (first["rows_landed"], first["files_unchanged"]) == (2, 0)
    landed_table = read_table(platform_home, "enrichment")

    again = land()
    assert (again["rows_in"], again["rows_landed"], again["files_unchanged"]) == (0, 0, 1)
    assert again["paths"] == first["paths"]
    assert_frame_equal(read_table(platform_home, "enrichment"), landed_table)

    vendor.write_text("email,company\na@example.com,Acme Corp\n")
    changed = land()
    assert (changed["rows_landed"], changed["files_unchanged"]) == (1, 0)
    assert read_table(platform_home, "enrichment")["email"].to_list() == ["a@example.com"]


def test_an_unchanged_crm_folder_is_not_read_again(platform_home: Paths) -> None:
    pages = Path(platform_home.landing_url) / "hubspot" / "contacts"
    pages.mkdir(parents=True)
    contact = {
        "id": "1",
        "properties": {"email": "ann@example.com", "firstname": "Ann"},
        "createdAt": "2026-11-01T00:00:00.000Z",
        "updatedAt": "2026-11-01T00:00:00.000Z",
        "archived": False,
    }
    (pages / "page-1.json").write_bytes(orjson.dumps({"results": [contact]}))
    instance = dg.DagsterInstance.ephemeral()
    key = dg.AssetKey(["lake", "hubspot_contacts"])

    def land() -> tuple[dict, str | None]:
        result = dg.materialize(
            batch_assets(),
            resources=source_resources(),
            selection=dg.AssetSelection.assets(key),
            instance=instance,
        )
        (record,) = instance.fetch_materializations(key, limit=1).records
        version = (record.asset_materialization.tags or {}).get("dagster/data_version")
        return metadata(result, "hubspot_contacts"), version

    first, first_version = land()
    assert (first["rows_in"], first["rows_landed"]) == (1, 1)

    again, again_version = land()
    assert (again["rows_in"], again["rows_landed"], again["files_unchanged"]) == (0, 0, 1)
    assert again_version == first_version, "the table did not change: the warehouse keeps it"

    later = dict(contact, id="2", updatedAt="2026-11-02T00:00:00.000Z")
    later["properties"] = {"email": "bo@example.com"}
    (pages / "page-2.json").write_bytes(orjson.dumps({"results": [later]}))
    changed, changed_version = land()
    assert changed["rows_landed"] == 1 and "files_unchanged" not in changed
    assert changed_version != first_version
    assert sorted(read_table(platform_home, "hubspot_contacts")["email"]) == [
        "ann@example.com",
        "bo@example.com",
    ]


def test_enrichment_without_an_email_column_is_a_clear_error(platform_home: Paths) -> None:
    folder = Path(platform_home.landing_url) / "enrichment"
    folder.mkdir(parents=True)
    (folder / "vendor.csv").write_text("mail,company\nx@y.com,Acme\n")
    rows = EnrichmentSource(landing_url=platform_home.landing_url).read(folder / "vendor.csv")
    with pytest.raises(ValueError, match="no 'email' column"):
        enrichment.prepare(rows, "vendor")
