"""Validation building blocks shared by every source: first failing rule wins, then split."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from inboxgraph.transforms.sql import query_frame

EMAIL_PATTERN = r"^[a-z0-9._%+'\-]+@[a-z0-9\-]+(\.[a-z0-9\-]+)*\.[a-z]{2,}$"
EARLIEST_PLAUSIBLE = "2000-01-01"

QUARANTINE_SCHEMA = {
    "raw": pl.String,
    "reason": pl.String,
    "_source_file": pl.String,
    "_line": pl.Int64,
    "_fingerprint": pl.UInt64,
}


def extract_fields(query: str, lines: pl.DataFrame) -> pl.LazyFrame:
    """The fields ``sql/<query>.sql`` parses out of raw lines ``(_raw, _source_file, _line)``,
    beside them.

    Only the parsed fields come back from DuckDB (copying the raw text out again would cost
    as much as a third of the parse); they are set beside the input rows, whose order DuckDB
    keeps, and checked line by line (the query returns ``_checked_line``).
    """
    fields = query_frame(query, lines=lines.select("_raw", "_line"))
    if fields.height != lines.height or not fields["_checked_line"].equals(lines["_line"]):
        raise RuntimeError("JSON extraction changed the order of the lines")
    return pl.concat(
        [lines.select("_raw", "_source_file", "_line"), fields.drop("_checked_line")],
        how="horizontal",
    ).lazy()


def impossible_moment(ts: pl.Expr, received: date) -> pl.Expr:
    """Null, before any real record of a system built this century, or after the day it was
    received (a UTC timestamp column)."""
    latest = pl.lit((received + timedelta(days=1)).isoformat()).str.to_datetime(time_zone="UTC")
    earliest = pl.lit(EARLIEST_PLAUSIBLE).str.to_datetime(time_zone="UTC")
    return ts.is_null() | (ts < earliest) | (ts >= latest)


def normalize_email(expr: pl.Expr) -> pl.Expr:
    """Trimmed, lower-case address; empty strings become null."""
    cleaned = expr.str.strip_chars().str.to_lowercase()
    return pl.when(cleaned.str.len_chars() > 0).then(cleaned).otherwise(None)


def is_valid_email(normalized: pl.Expr) -> pl.Expr:
    return normalized.str.contains(EMAIL_PATTERN)


def is_blank(expr: pl.Expr) -> pl.Expr:
    return expr.is_null() | (expr.str.strip_chars().str.len_chars() == 0)


def first_failure(rules: Sequence[tuple[str, pl.Expr]]) -> pl.Expr:
    """The reason of the first rule whose condition holds, else null (the record is good)."""
    reason: pl.Expr | pl.When | pl.Then = pl
    for name, failed in rules:
        reason = reason.when(failed.fill_null(False)).then(pl.lit(name))
    return reason.otherwise(pl.lit(None, dtype=pl.String)).alias("reason")


def fingerprint(raw: pl.Expr) -> pl.Expr:
    """A stable 64-bit hash of the record's raw text, to recognize a record seen before."""
    return raw.hash(seed=0).alias("_fingerprint")


def flag_duplicates(lf: pl.LazyFrame, key: str, reason: str) -> pl.LazyFrame:
    """Mark every good record after the first with the same key (in file and line order)."""
    good = pl.col("reason").is_null() & pl.col(key).is_not_null()
    seen_before = good & ~pl.when(good).then(pl.col(key)).is_first_distinct()
    return lf.sort("_source_file", "_line").with_columns(
        pl.when(seen_before).then(pl.lit(reason)).otherwise(pl.col("reason")).alias("reason")
    )


def field_counts(prepared: pl.DataFrame) -> tuple[dict[str, int], int]:
    """How many parsed records carry each top-level field (from the ``_keys`` list)."""
    keys = prepared.filter(pl.col("json_ok")).get_column("_keys")
    counts = keys.explode().drop_nulls().value_counts()
    return dict(counts.iter_rows()), int(keys.len())


def split_quarantine(
    lf: pl.LazyFrame, landed_columns: Sequence[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Collect once and split into (landed rows, quarantined rows with their reason)."""
    df = lf.collect()
    landed = df.filter(pl.col("reason").is_null()).select(landed_columns)
    quarantined = df.filter(pl.col("reason").is_not_null()).select(
        pl.col("_raw").alias("raw"),
        "reason",
        "_source_file",
        pl.col("_line").cast(pl.Int64),
        "_fingerprint",
    )
    return landed, quarantined


def empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


_NAIVE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
)
_ZONED_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z")


def parse_timestamp(expr: pl.Expr) -> pl.Expr:
    """ISO-8601 or SQL text to a UTC timestamp; null when it is not a real moment."""
    text = expr.str.strip_chars()
    candidates = [
        text.str.to_datetime(fmt, strict=False, time_unit="us").dt.replace_time_zone("UTC")
        for fmt in _NAIVE_FORMATS
    ] + [
        text.str.to_datetime(fmt, strict=False, time_unit="us").dt.convert_time_zone("UTC")
        for fmt in _ZONED_FORMATS
    ]
    return pl.coalesce(candidates)


def implausible(ts: pl.Expr) -> pl.Expr:
    """Null, or earlier than any real record of a system built this century."""
    return ts.is_null() | (ts < pl.lit(EARLIEST_PLAUSIBLE).str.to_datetime(time_zone="UTC"))
