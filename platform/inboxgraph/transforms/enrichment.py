"""Third-party enrichment files: one row per address and provider, attributes as JSON."""

from __future__ import annotations

import polars as pl

from inboxgraph.transforms.common import (
    fingerprint,
    first_failure,
    is_valid_email,
    normalize_email,
)

LANDED_COLUMNS = ("email", "provider", "attributes", "_source_file", "_line", "_fingerprint")


def prepare(rows: pl.DataFrame, provider: str) -> pl.LazyFrame:
    """``rows`` holds the file's columns as text, plus ``_raw``, ``_source_file``, ``_line``."""
    if "email" not in rows.columns:
        raise ValueError(f"enrichment file from {provider!r} has no 'email' column")
    attributes = [c for c in rows.columns if c != "email" and not c.startswith("_")]
    email = normalize_email(pl.col("email"))
    rules = [
        ("missing_email", email.is_null()),
        ("invalid_email", ~is_valid_email(email)),
    ]
    return rows.lazy().with_columns(
        first_failure(rules),
        fingerprint(pl.col("_raw")),
        email.alias("email"),
        pl.lit(provider).alias("provider"),
        pl.struct(attributes).struct.json_encode().alias("attributes")
        if attributes
        else pl.lit("{}").alias("attributes"),
    )
