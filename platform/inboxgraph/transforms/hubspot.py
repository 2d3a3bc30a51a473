"""HubSpot CRM v3 contacts: validate and type the contact records."""

from __future__ import annotations

import polars as pl

from inboxgraph.transforms.common import (
    fingerprint,
    first_failure,
    implausible,
    is_blank,
    is_valid_email,
    normalize_email,
    parse_timestamp,
)

LANDED_COLUMNS = (
    "contact_id",
    "email",
    "first_name",
    "last_name",
    "city",
    "country",
    "email_optout",
    "lifecycle_stage",
    "created_at",
    "updated_at",
    "archived",
    "properties",
    "_source_file",
    "_line",
    "_fingerprint",
)


def prepare(contacts: pl.DataFrame) -> pl.LazyFrame:
    """Contacts as read from the API ``(_raw, id, properties..., createdAt, updatedAt)``."""
    email = normalize_email(pl.col("email"))
    optout = pl.col("hs_email_optout").str.to_lowercase()
    rules = [
        ("missing_id", is_blank(pl.col("id"))),
        ("invalid_email", email.is_not_null() & ~is_valid_email(email)),
        ("impossible_timestamp", implausible(parse_timestamp(pl.col("updatedAt")))),
        ("wrong_type", optout.is_not_null() & ~optout.is_in(("true", "false"))),
    ]
    return contacts.lazy().with_columns(
        first_failure(rules),
        fingerprint(pl.col("_raw")),
        pl.col("id").alias("contact_id"),
        email.alias("email"),
        pl.col("firstname").alias("first_name"),
        pl.col("lastname").alias("last_name"),
        (optout == "true").alias("email_optout"),
        pl.col("lifecyclestage").alias("lifecycle_stage"),
        parse_timestamp(pl.col("createdAt")).alias("created_at"),
        parse_timestamp(pl.col("updatedAt")).alias("updated_at"),
        (pl.col("archived").str.to_lowercase() == "true").alias("archived"),
    )
