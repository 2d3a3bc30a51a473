"""Salesforce Contacts and Leads (records of SOQL query responses): validate and type them.

Each record is one JSON object of a response page's ``records``. ``Id`` is required, ``Email``
is normalized like every other address, ``SystemModstamp`` (the extraction watermark) must be a
real moment, ``HasOptedOutOfEmail`` and ``IsDeleted`` must be booleans, and a record whose
``attributes.type`` names another object is in the wrong folder. A deleted record (``IsDeleted``
true, as ``queryAll`` returns it) lands too: the warehouse drops the person's link from it.
"""

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

OBJECTS = {"salesforce_contacts": "Contact", "salesforce_leads": "Lead"}

COMMON_COLUMNS = (
    "record_id",
    "email",
    "first_name",
    "last_name",
    "city",
    "country",
    "has_opted_out_of_email",
    "lead_source",
)
LEAD_COLUMNS = ("status", "is_converted", "converted_contact_id")
TAIL_COLUMNS = (
    "created_at",
    "last_modified_at",
    "system_modstamp",
    "is_deleted",
    "fields",
    "_source_file",
    "_line",
    "_fingerprint",
)


def landed_columns(source: str) -> tuple[str, ...]:
    lead = LEAD_COLUMNS if source == "salesforce_leads" else ()
    return (*COMMON_COLUMNS, *lead, *TAIL_COLUMNS)


def _text(path: str) -> pl.Expr:
    """A field of the record as text (JSON true/false as "true"/"false"), null when absent."""
    return pl.col("_raw").str.json_path_match(f"$.{path}")


def _timestamp(path: str) -> pl.Expr:
    # Salesforce writes offsets without a colon (2026-11-30T08:00:00.000+0000).
    return parse_timestamp(_text(path).str.replace(r"([+-]\d{2})(\d{2})$", "$1:$2"))


def _boolean(path: str) -> pl.Expr:
    return _text(path).str.to_lowercase()


def prepare(records: pl.DataFrame, source: str) -> pl.LazyFrame:
    """Records as the reader returns them ``(_raw, _source_file, _line, _page_error)``: one row
    per record, or one per page that is no JSON (``invalid_json``) or no query response
    (``invalid_page``), with the page's text as ``_raw``."""
    expected = OBJECTS[source]
    email = normalize_email(_text("Email"))
    opted_out = _boolean("HasOptedOutOfEmail")
    deleted = _boolean("IsDeleted")
    object_type = _text("attributes.type")
    is_lead = source == "salesforce_leads"
    city, country = ("City", "Country") if is_lead else ("MailingCity", "MailingCountry")
    rules = [
        ("invalid_json", pl.col("_page_error") == "invalid_json"),
        ("invalid_page", pl.col("_page_error") == "invalid_page"),
        ("wrong_object", object_type.is_not_null() & (object_type != expected)),
        ("missing_id", is_blank(_text("Id"))),
        ("invalid_email", email.is_not_null() & ~is_valid_email(email)),
        ("impossible_timestamp", implausible(_timestamp("SystemModstamp"))),
        ("wrong_type", opted_out.is_not_null() & ~opted_out.is_in(("true", "false"))),
        ("wrong_type", deleted.is_not_null() & ~deleted.is_in(("true", "false"))),
    ]
    if is_lead:
        converted = _boolean("IsConverted")
        rules.append(("wrong_type", converted.is_not_null() & ~converted.is_in(("true", "false"))))
    columns = [
        first_failure(rules),
        fingerprint(pl.col("_raw")),
        _text("Id").alias("record_id"),
        email.alias("email"),
        _text("FirstName").alias("first_name"),
        _text("LastName").alias("last_name"),
        _text(city).alias("city"),
        _text(country).alias("country"),
        (opted_out == "true").alias("has_opted_out_of_email"),
        _text("LeadSource").alias("lead_source"),
        _timestamp("CreatedDate").alias("created_at"),
        _timestamp("LastModifiedDate").alias("last_modified_at"),
        _timestamp("SystemModstamp").alias("system_modstamp"),
        (deleted == "true").fill_null(False).alias("is_deleted"),
        pl.col("_raw").alias("fields"),
    ]
    if is_lead:
        columns += [
            _text("Status").alias("status"),
            (_boolean("IsConverted") == "true").fill_null(False).alias("is_converted"),
            _text("ConvertedContactId").alias("converted_contact_id"),
        ]
    return records.lazy().with_columns(columns)
