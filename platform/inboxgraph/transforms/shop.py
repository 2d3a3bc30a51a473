"""The shop database: validate and type each table's rows (read as text)."""

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


def _not_a(dtype: type[pl.DataType], column: str) -> pl.Expr:
    """The column has text that does not cast to ``dtype``."""
    value = pl.col(column)
    return value.is_not_null() & value.cast(dtype, strict=False).is_null()


def _customers(lf: pl.LazyFrame) -> pl.LazyFrame:
    email = normalize_email(pl.col("email"))
    rules = [
        ("missing_id", is_blank(pl.col("customer_id"))),
        ("wrong_type", _not_a(pl.Int64, "customer_id")),
        ("missing_email", email.is_null()),
        ("invalid_email", ~is_valid_email(email)),
        ("impossible_timestamp", implausible(parse_timestamp(pl.col("updated_at")))),
    ]
    return lf.with_columns(
        first_failure(rules),
        pl.col("customer_id").cast(pl.Int64, strict=False),
        email.alias("email"),
        parse_timestamp(pl.col("created_at")).alias("created_at"),
        parse_timestamp(pl.col("updated_at")).alias("updated_at"),
    )


def _orders(lf: pl.LazyFrame) -> pl.LazyFrame:
    rules = [
        ("missing_id", is_blank(pl.col("order_id"))),
        ("wrong_type", _not_a(pl.Float64, "total") | _not_a(pl.Int64, "customer_id")),
        (
            "impossible_timestamp",
            implausible(parse_timestamp(pl.col("created_at")))
            | implausible(parse_timestamp(pl.col("updated_at"))),
        ),
    ]
    return lf.with_columns(
        first_failure(rules),
        pl.col("customer_id").cast(pl.Int64, strict=False),
        pl.col("total").cast(pl.Float64, strict=False),
        parse_timestamp(pl.col("created_at")).alias("created_at"),
        parse_timestamp(pl.col("updated_at")).alias("updated_at"),
    )


def _order_items(lf: pl.LazyFrame) -> pl.LazyFrame:
    quantity = pl.col("quantity").cast(pl.Int64, strict=False)
    rules = [
        ("missing_id", is_blank(pl.col("order_id")) | is_blank(pl.col("product_id"))),
        ("wrong_type", _not_a(pl.Int64, "quantity") | _not_a(pl.Float64, "unit_price")),
        ("invalid_quantity", quantity.is_null() | (quantity <= 0)),
    ]
    return lf.with_columns(
        first_failure(rules),
        quantity.alias("quantity"),
        pl.col("unit_price").cast(pl.Float64, strict=False),
        parse_timestamp(pl.col("order_updated_at")).alias("order_updated_at"),
    )


def _products(lf: pl.LazyFrame) -> pl.LazyFrame:
    rules = [
        ("missing_id", is_blank(pl.col("product_id"))),
        ("wrong_type", _not_a(pl.Float64, "price")),
    ]
    return lf.with_columns(first_failure(rules), pl.col("price").cast(pl.Float64, strict=False))


TABLES = {
    "customers": (
        _customers,
        ("customer_id", "email", "first_name", "last_name", "created_at", "updated_at"),
    ),
    "orders": (
        _orders,
        ("order_id", "customer_id", "status", "total", "currency", "created_at", "updated_at"),
    ),
    "order_items": (
        _order_items,
        ("order_id", "product_id", "quantity", "unit_price", "order_updated_at"),
    ),
    "products": (_products, ("product_id", "name", "category", "price")),
}

LINEAGE_COLUMNS = ("_source_file", "_line", "_fingerprint")


def prepare(table: str, rows: pl.DataFrame) -> pl.LazyFrame:
    validate, _ = TABLES[table]
    return rows.lazy().pipe(validate).with_columns(fingerprint(pl.col("_raw")))


def landed_columns(table: str) -> tuple[str, ...]:
    return TABLES[table][1] + LINEAGE_COLUMNS
