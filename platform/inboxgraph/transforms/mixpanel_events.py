"""Mixpanel Raw Event Export lines: parse, validate, deduplicate by ``$insert_id``.

Identity follows Mixpanel's simplified ID merge: ``$device_id`` is the device (an anonymous
id) and ``$user_id`` the site's own user id. ``distinct_id`` is kept as exported; an event that
carries neither reserved id is identified by it (``$device:<id>`` is a device, any other value
the anonymous id it was sent with). An address the event carries (``$email`` or ``email``, as a
shop sends it with a super property) links to its ids.
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
    is_valid_email,
    normalize_email,
)

LANDED_COLUMNS = (
    "insert_id",
    "event",
    "occurred_at",
    "distinct_id",
    "device_id",
    "user_id",
    "email",
    "current_url",
    "processing_time_ms",
    "properties",
    "extra",
    "_source_file",
    "_line",
    "_fingerprint",
)

# The export's fields, Mixpanel's reserved and default web properties, and the properties the
# e-commerce events of a shop send. Any other property is new to the drift check.
KNOWN_FIELDS = {
    "event",
    "properties",
    *(
        f"properties.{name}"
        for name in (
            "time",
            "distinct_id",
            "$device_id",
            "$user_id",
            "$insert_id",
            "$current_url",
            "$email",
            "email",
            "mp_processing_time_ms",
            "mp_lib",
            "$lib_version",
            "$browser",
            "$browser_version",
            "$os",
            "$device",
            "$screen_height",
            "$screen_width",
            "$referrer",
            "$referring_domain",
            "$initial_referrer",
            "$initial_referring_domain",
            "$city",
            "$region",
            "mp_country_code",
            "$mp_api_endpoint",
            "$mp_api_timestamp_ms",
            "current_page_title",
            "current_domain",
            "current_url_path",
            "current_url_protocol",
            "product_id",
            "sku",
            "name",
            "category",
            "price",
            "quantity",
            "currency",
            "order_id",
            "revenue",
            "value",
            "total",
        )
    ),
}
REQUIRED_FIELDS = {"event", "properties", "properties.time", "properties.$insert_id"}

DEVICE_PREFIX = "$device:"


def extract(lines: pl.DataFrame) -> pl.LazyFrame:
    """The fields of each raw line ``(_raw, _source_file, _line)``, beside it, in line order."""
    return extract_fields("extract_mixpanel_events", lines)


def _blank_to_null(column: str) -> pl.Expr:
    value = pl.col(column).str.strip_chars()
    return pl.when(value.str.len_chars() > 0).then(value).otherwise(None).alias(column)


def validate(lf: pl.LazyFrame, received: date) -> pl.LazyFrame:
    """Add ``reason``: why an event cannot land, or null for a good one."""
    occurred = (
        pl.from_epoch(
            (pl.col("time_s") * 1_000_000).round().cast(pl.Int64, strict=False), time_unit="us"
        )
        .dt.replace_time_zone("UTC")
        .alias("occurred_at")
    )
    impossible = impossible_moment(pl.col("occurred_at"), received)
    # A distinct id alone names the device when Mixpanel prefixed it so, else it is the only id.
    from_distinct = pl.col("distinct_id").str.strip_prefix(DEVICE_PREFIX)
    device = (
        pl.when(pl.col("device_id").is_null() & pl.col("user_id").is_null())
        .then(from_distinct)
        .otherwise(pl.col("device_id"))
        .alias("device_id")
    )
    email = normalize_email(pl.col("email_raw"))
    rules = [
        ("invalid_json", ~pl.col("json_ok")),
        ("wrong_type", pl.col("properties_type") != "OBJECT"),
        ("missing_event_name", is_blank(pl.col("event"))),
        ("missing_insert_id", pl.col("insert_id").is_null()),
        ("missing_identity", pl.col("device_id").is_null() & pl.col("user_id").is_null()),
        ("wrong_type", ~pl.col("time_type").is_in(("BIGINT", "UBIGINT", "DOUBLE"))),
        ("impossible_timestamp", impossible),
        ("invalid_email", email.is_not_null() & ~is_valid_email(email)),
    ]
    return (
        lf.with_columns(
            [_blank_to_null(c) for c in ("distinct_id", "device_id", "user_id", "insert_id")]
        )
        .with_columns(device, occurred, email.alias("email"))
        .with_columns(first_failure(rules), fingerprint(pl.col("_raw")))
    )


def prepare(lines: pl.DataFrame, received: date) -> pl.LazyFrame:
    """Parsed, validated and deduplicated Mixpanel events of one received date."""
    return (
        extract(lines)
        .pipe(validate, received=received)
        .pipe(flag_duplicates, key="insert_id", reason="duplicate_insert_id")
    )
