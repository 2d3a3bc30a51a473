"""Google Analytics 4 events from the BigQuery export: parse, validate, deduplicate.

GA4 gives an exported event no id of its own. Its identity here (``event_id``) is the MD5 of
the stream, the device (``user_pseudo_id``), the user id, the moment (``event_timestamp``,
microseconds), the event's name and its parameters as exported: a row exported twice (a day's
export landed again, a file copied twice) hashes alike and collapses to one, while two real
events differ at least in their moment or parameters (GA4 adds ``ga_session_id``,
``engagement_time_msec`` and the like to each).
"""

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
)

LANDED_COLUMNS = (
    "event_id",
    "event_name",
    "event_date",
    "event_timestamp",
    "occurred_at",
    "user_id",
    "user_pseudo_id",
    "stream_id",
    "platform",
    "params",
    "event_params",
    "user_properties",
    "device",
    "geo",
    "traffic_source",
    "ecommerce",
    "items",
    "extra",
    "_source_file",
    "_line",
    "_fingerprint",
)

# The export's documented columns, and the parameters GA4 itself sets on web events (with
# those of the recommended e-commerce events). Any other parameter is new to the drift check.
KNOWN_FIELDS = {
    "event_date",
    "event_timestamp",
    "event_name",
    "event_params",
    "event_previous_timestamp",
    "event_value_in_usd",
    "event_bundle_sequence_id",
    "event_server_timestamp_offset",
    "user_id",
    "user_pseudo_id",
    "privacy_info",
    "user_properties",
    "user_first_touch_timestamp",
    "user_ltv",
    "device",
    "geo",
    "app_info",
    "traffic_source",
    "stream_id",
    "platform",
    "event_dimensions",
    "ecommerce",
    "items",
    "collected_traffic_source",
    "is_active_user",
    "batch_event_index",
    "batch_page_id",
    "batch_ordering_id",
    "session_traffic_source_last_click",
    "publisher",
    *(
        f"event_params.{key}"
        for key in (
            "page_location",
            "page_referrer",
            "page_title",
            "ga_session_id",
            "ga_session_number",
            "engagement_time_msec",
            "session_engaged",
            "entrances",
            "batch_ordering_id",
            "batch_page_id",
            "ignore_referrer",
            "method",
            "currency",
            "value",
            "transaction_id",
            "debug_mode",
            "source",
            "medium",
            "campaign",
            "term",
            "content",
            "percent_scrolled",
            "search_term",
        )
    ),
}
REQUIRED_FIELDS = {"event_name", "event_timestamp", "user_pseudo_id"}

# GA4's text for a value it did not receive: never an identifier.
NOT_SET = "(not set)"


def extract(lines: pl.DataFrame) -> pl.LazyFrame:
    """The fields of each raw line ``(_raw, _source_file, _line)``, beside it, in line order."""
    return extract_fields("extract_ga4_events", lines)


def _clean_id(column: str) -> pl.Expr:
    value = pl.col(column).str.strip_chars()
    return (
        pl.when((value.str.len_chars() > 0) & (value != NOT_SET))
        .then(value)
        .otherwise(None)
        .alias(column)
    )


def validate(lf: pl.LazyFrame, received: date) -> pl.LazyFrame:
    """Add ``reason``: why an event cannot land, or null for a good one."""
    occurred = (
        pl.from_epoch(pl.col("event_timestamp"), time_unit="us")
        .dt.replace_time_zone("UTC")
        .alias("occurred_at")
    )
    impossible = impossible_moment(pl.col("occurred_at"), received)
    timestamp_typed = pl.col("event_timestamp_type").is_in(("BIGINT", "UBIGINT")) | (
        (pl.col("event_timestamp_type") == "VARCHAR") & pl.col("event_timestamp").is_not_null()
    )
    rules = [
        ("invalid_json", ~pl.col("json_ok")),
        ("missing_event_name", is_blank(pl.col("event_name"))),
        ("missing_identity", pl.col("user_pseudo_id").is_null() & pl.col("user_id").is_null()),
        ("wrong_type", ~timestamp_typed | ~pl.col("shapes_ok")),
        ("bad_event_params", ~pl.col("params_ok")),
        ("impossible_timestamp", impossible),
    ]
    return lf.with_columns(
        _clean_id("user_id"), _clean_id("user_pseudo_id"), occurred
    ).with_columns(first_failure(rules), fingerprint(pl.col("_raw")))


def prepare(lines: pl.DataFrame, received: date) -> pl.LazyFrame:
    """Parsed, validated and deduplicated GA4 events of one received (export) date."""
    return (
        extract(lines)
        .pipe(validate, received=received)
        .pipe(flag_duplicates, key="event_id", reason="duplicate_event")
    )
