"""Segment Spec web events: parse, validate, deduplicate by message id."""

from __future__ import annotations

from datetime import date

import polars as pl

from inboxgraph.transforms.common import (
    extract_fields,
    fingerprint,
    first_failure,
    flag_duplicates,
    impossible_moment,
    is_blank,
    is_valid_email,
    normalize_email,
)

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
    """The fields of each raw line ``(_raw, _source_file, _line)``, beside it, in line order."""
    return extract_fields("extract_web_events", lines)


def validate(lf: pl.LazyFrame, received: date) -> pl.LazyFrame:
    """Add ``reason``: why a message cannot land, or null for a good one."""
    identity_missing = is_blank(pl.col("anonymous_id")) & is_blank(pl.col("user_id"))
    wrong_type = (pl.col("message_id_type") != "VARCHAR") | (pl.col("timestamp_type") != "VARCHAR")
    for field in OBJECT_FIELDS:
        wrong_type = wrong_type | (
            pl.col(f"{field}_type").is_not_null() & (pl.col(f"{field}_type") != "OBJECT")
        )
    impossible = impossible_moment(pl.col("timestamp"), received)
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
