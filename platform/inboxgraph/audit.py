"""The audit trail in the warehouse: every materialization, erasure and export, as rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import dagster as dg
import duckdb
import polars as pl

from inboxgraph.partitions import PARTITION_RANGE
from inboxgraph.rebuild import UNCHANGED
from inboxgraph.transforms.sql import load_sql

AUDIT_SCHEMA = {
    "audit_id": pl.String,
    "event_type": pl.String,
    "asset_key": pl.String,
    "partition": pl.String,
    "run_id": pl.String,
    "job_name": pl.String,
    "occurred_at": pl.Datetime("us"),
    "rows_in": pl.Int64,
    "rows_out": pl.Int64,
    "rows_quarantined": pl.Int64,
    "duration_s": pl.Float64,
    "code_version": pl.String,
    "storage_id": pl.Int64,
    "details": pl.String,
}
BATCH = 5_000


def _number(metadata: dict, *names: str) -> float | None:
    for name in names:
        value = metadata.get(name)
        if value is not None:
            raw = getattr(value, "value", value)
            if isinstance(raw, int | float):
                return raw
    return None


def materialization_rows(
    records: Iterable[dg.EventLogRecord], skip: Sequence[dg.AssetKey] = ()
) -> list[dict]:
    """Audit rows from materialization event records (the audit asset records itself)."""
    rows = []
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        materialization = event.event_specific_data.materialization
        if materialization.asset_key in skip:
            continue
        metadata = materialization.metadata
        if PARTITION_RANGE in metadata:
            continue  # a range run's summary: each partition has its own row
        rows_in = _number(metadata, "rows_in")
        rows_out = _number(metadata, "rows_landed", "dagster/row_count")
        details = None
        if UNCHANGED in metadata:
            # Confirmed without a rebuild: nothing was written.
            rows_out = None
            details = json.dumps({"unchanged": metadata[UNCHANGED].value})
        quarantined = _number(metadata, "rows_quarantined")
        duration = _number(metadata, "duration_s", "Execution Duration")
        rows.append(
            {
                "audit_id": f"materialization:{record.storage_id}",
                "event_type": "materialization",
                "asset_key": materialization.asset_key.to_user_string(),
                "partition": materialization.partition,
                "run_id": entry.run_id,
                "job_name": event.job_name,
                "occurred_at": datetime.fromtimestamp(entry.timestamp, UTC).replace(tzinfo=None),
                "rows_in": None if rows_in is None else int(rows_in),
                "rows_out": None if rows_out is None else int(rows_out),
                "rows_quarantined": None if quarantined is None else int(quarantined),
                "duration_s": duration,
                "code_version": (materialization.tags or {}).get("dagster/code_version"),
                "storage_id": record.storage_id,
                "details": details,
            }
        )
    return rows


def ensure_table(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(load_sql("audit_log"))


def append(connection: duckdb.DuckDBPyConnection, rows: list[dict]) -> int:
    """Insert rows whose audit_id is not there yet; returns how many were new."""
    if not rows:
        return 0
    ensure_table(connection)
    frame = pl.DataFrame(rows, schema=AUDIT_SCHEMA)
    connection.register("new_audit_rows", frame)
    before = connection.execute("select count(*) from marts.audit_log").fetchone()[0]
    connection.execute(
        "insert into marts.audit_log by name select * from new_audit_rows "
        "where audit_id not in (select audit_id from marts.audit_log)"
    )
    connection.unregister("new_audit_rows")
    return connection.execute("select count(*) from marts.audit_log").fetchone()[0] - before


def record_materializations(
    instance: dg.DagsterInstance,
    connection: duckdb.DuckDBPyConnection,
    skip: Sequence[dg.AssetKey] = (),
) -> int:
    """Copy every materialization stored since the last one recorded, asset by asset;
    returns rows added. Storage ids grow with each event stored, so the newest recorded is
    where every asset's next read starts."""
    ensure_table(connection)
    cursor = connection.execute(
        "select coalesce(max(storage_id), 0) from marts.audit_log "
        "where event_type = 'materialization'"
    ).fetchone()[0]
    added = 0
    for key in instance.get_asset_keys():
        page_cursor = None
        while True:
            page = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=cursor),
                limit=BATCH,
                cursor=page_cursor,
                ascending=True,
            )
            added += append(connection, materialization_rows(page.records, skip))
            if not page.has_more:
                break
            page_cursor = page.cursor
    return added


def event_row(event_type: str, run_id: str | None, details: dict, **fields: object) -> dict:
    """An audit row for something other than a materialization (an erasure, an export)."""
    occurred = datetime.now(UTC).replace(tzinfo=None)
    row = {name: None for name in AUDIT_SCHEMA}
    row.update(fields)
    row.update(
        {
            "audit_id": f"{event_type}:{occurred.isoformat()}:{run_id or ''}",
            "event_type": event_type,
            "run_id": run_id,
            "occurred_at": occurred,
            "details": json.dumps(details, sort_keys=True, default=str),
        }
    )
    return row
