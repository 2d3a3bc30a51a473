"""Segment Spec web events: parse, validate, deduplicate by message id."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from inboxgraph.transforms.common import (
    EARLIEST_PLAUSIBLE,
    fingerprint,
    first_failure,
    flag_duplicates,
    is_blank,
    is_valid_email,
    normalize_email,
)
from inboxgraph.transforms.sql import query_frame

MESSAGE_TYPES = ("identify", "track", "page", "screen", "alias", "group")
# Top-level fields of the Segment Spec (common fields and every call's own).
KNOWN_FIELDS = {
    "type",
    "messageId",
    "anonymousId",
    "userId",
    "event",
    "name",
    "previousId",
    "groupId",
    "timestamp",
    "sentAt",
    "receivedAt",
    "originalTimestamp",
    "traits",
    "properties",
    "context",
    "integrations",
    "channel",
    "version",
    "category",
    "_metadata",
    "writeKey",
}
REQUIRED_FIELDS = {"type", "messageId", "timestamp"}
OBJECT_FIELDS = ("properties", "traits", "context")

LANDED_COLUMNS = (
    "message_id",
    "type",
    "anonymous_id",
    "user_id",
    "event",
    "name",
    "previous_id",
    "group_id",
    "email",
    "timestamp",
    "sent_at",
    "received_at",
    "traits",
    "properties",
    "context",
    "extra",
    "_source_file",
    "_line",
    "_fingerprint",
)


def extract(lines: pl.DataFrame) -> pl.LazyFrame:
    """Pull the Segment fields out of raw lines ``(_raw, _source_file, _line)``.

    Only the parsed fields come back from DuckDB (copying the raw text out again would cost
    as much as a third of the parse); they are set beside the input rows, whose order DuckDB
    keeps, and checked line by line.
    """
    fields = query_frame("extract_web_events", lines=lines.select("_raw", "_line"))
    if fields.height != lines.height or not fields["_checked_line"].equals(lines["_line"]):
        raise RuntimeError("JSON extraction changed the order of the lines")
    return pl.concat(
        [lines.select("_raw", "_source_file", "_line"), fields.drop("_checked_line")],
        how="horizontal",
    ).lazy()


def validate(lf: pl.LazyFrame, received: date) -> pl.LazyFrame:
    """Add ``reason``: why a message cannot land, or null for a good one."""
    latest = received + timedelta(days=1)
    identity_missing = is_blank(pl.col("anonymous_id")) & is_blank(pl.col("user_id"))
    wrong_type = (pl.col("message_id_type") != "VARCHAR") | (pl.col("timestamp_type") != "VARCHAR")
    for field in OBJECT_FIELDS:
        wrong_type = wrong_type | (
            pl.col(f"{field}_type").is_not_null() & (pl.col(f"{field}_type") != "OBJECT")
        )
    impossible = (
        pl.col("timestamp").is_null()
        | (pl.col("timestamp") < pl.lit(EARLIEST_PLAUSIBLE).str.to_datetime(time_zone="UTC"))
        | (pl.col("timestamp") >= pl.lit(latest.isoformat()).str.to_datetime(time_zone="UTC"))
    )
    email = normalize_email(pl.col("traits_email"))
    rules = [
        ("invalid_json", ~pl.col("json_ok")),
        ("missing_message_id", is_blank(pl.col("message_id"))),
        ("unknown_type", ~pl.col("type").is_in(MESSAGE_TYPES)),
        ("missing_identity", identity_missing),
        ("wrong_type", wrong_type),
        ("impossible_timestamp", impossible),
        ("invalid_email", email.is_not_null() & ~is_valid_email(email)),
        ("missing_event_name", (pl.col("type") == "track") & is_blank(pl.col("event"))),
        ("missing_previous_id", (pl.col("type") == "alias") & is_blank(pl.col("previous_id"))),
    ]
    in_utc = [
        pl.col(c).dt.convert_time_zone("UTC") for c in ("timestamp", "sent_at", "received_at")
    ]
    return lf.with_columns(in_utc).with_columns(
        first_failure(rules),
        email.alias("email"),
        fingerprint(pl.col("_raw")),
    )


def prepare(lines: pl.DataFrame, received: date) -> pl.LazyFrame:
    """Parsed, validated and deduplicated messages of one received date."""
    return (
        extract(lines)
        .pipe(validate, received=received)
        .pipe(flag_duplicates, key="message_id", reason="duplicate_message_id")
    )
