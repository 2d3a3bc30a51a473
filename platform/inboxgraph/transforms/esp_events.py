"""SendGrid Event Webhook events: parse, validate, deduplicate by event id."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from inboxgraph.transforms.common import (
    fingerprint,
    first_failure,
    flag_duplicates,
    is_blank,
    is_valid_email,
    normalize_email,
)
from inboxgraph.transforms.sql import query_frame

EVENT_TYPES = (
    "processed",
    "delivered",
    "open",
    "click",
    "bounce",
    "dropped",
    "deferred",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "group_resubscribe",
)

LANDED_COLUMNS = (
    "sg_event_id",
    "sg_message_id",
    "email",
    "event",
    "timestamp",
    "url",
    "bounce_reason",
    "bounce_type",
    "asm_group_id",
    "category",
    "extra",
    "_source_file",
    "_line",
    "_fingerprint",
)

# Fields SendGrid's Event Webhook documents for its events.
KNOWN_FIELDS = {
    "email",
    "timestamp",
    "event",
    "sg_event_id",
    "sg_message_id",
    "category",
    "url",
    "reason",
    "type",
    "status",
    "response",
    "attempt",
    "useragent",
    "ip",
    "tls",
    "smtp-id",
    "asm_group_id",
    "marketing_campaign_id",
    "marketing_campaign_name",
    "url_offset",
    "cert_err",
    "pool",
    "sg_template_id",
    "sg_template_name",
    "bounce_classification",
}
REQUIRED_FIELDS = {"email", "timestamp", "event", "sg_event_id"}

_EARLIEST_EPOCH = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())


def extract(lines: pl.DataFrame) -> pl.LazyFrame:
    return query_frame("extract_esp_events", lines=lines).lazy()


def validate(lf: pl.LazyFrame, received: date) -> pl.LazyFrame:
    latest = int(
        datetime.combine(received + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    )
    email = normalize_email(pl.col("email_raw"))
    rules = [
        ("invalid_json", ~pl.col("json_ok")),
        ("missing_event_id", is_blank(pl.col("sg_event_id"))),
        ("unknown_event", ~pl.col("event").is_in(EVENT_TYPES)),
        ("missing_email", email.is_null()),
        ("invalid_email", ~is_valid_email(email)),
        ("wrong_type", ~pl.col("timestamp_type").is_in(("BIGINT", "UBIGINT"))),
        (
            "impossible_timestamp",
            (pl.col("timestamp_epoch") < _EARLIEST_EPOCH) | (pl.col("timestamp_epoch") >= latest),
        ),
    ]
    return lf.with_columns(
        first_failure(rules),
        email.alias("email"),
        fingerprint(pl.col("_raw")),
        pl.from_epoch(pl.col("timestamp_epoch"), time_unit="s")
        .dt.replace_time_zone("UTC")
        .alias("timestamp"),
        pl.col("reason_text").alias("bounce_reason"),
    )


def prepare(lines: pl.DataFrame, received: date) -> pl.LazyFrame:
    return (
        extract(lines)
        .pipe(validate, received=received)
        .pipe(flag_duplicates, key="sg_event_id", reason="duplicate_event_id")
    )
