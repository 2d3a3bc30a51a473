"""The shop database on PostgreSQL: extracted incrementally exactly as with SQLite."""

from __future__ import annotations

import polars as pl
import pytest
import sqlalchemy as sa

from inboxgraph.generate.writer import GenerateReport
from inboxgraph.settings import Paths
from tests.assets.lake_helpers import latest_versions, materialize_batches, metadata, read_table
from tests.production.postgres import copy_shop, schema_url, scratch_schema


@pytest.fixture
def postgres_shop(
    landed: tuple[Paths, GenerateReport], monkeypatch: pytest.MonkeyPatch
) -> tuple[Paths, str]:
    paths, _ = landed
    with scratch_schema() as schema:
        url = schema_url(schema)
        copy_shop(paths.shop_db_url.removeprefix("sqlite:///"), url)
        monkeypatch.setenv("INBOXGRAPH_SHOP_DB_URL", url)
        yield paths, url


def test_second_extraction_from_postgres_reads_only_changed_rows(
    postgres_shop: tuple[Paths, str],
) -> None:
    paths, url = postgres_shop
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        orders_in_db = conn.execute(sa.text("select count(*) from orders")).scalar_one()

    first = materialize_batches("shop_orders", "shop_order_items", "shop_customers")
    orders = metadata(first, "shop_orders")
    assert orders["rows_in"] == orders_in_db
    assert orders["database"].startswith("postgresql")
    assert "#orders" in next(iter(read_table(paths, "shop_orders")["_source_file"].unique()))

    with engine.begin() as conn:
        changed = (
            conn.execute(
                sa.text(
                    "select order_id from orders where status = 'completed' "
                    "order by order_id limit 3"
                )
            )
            .scalars()
            .all()
        )
        conn.execute(
            sa.text(
                "update orders set status = 'refunded', updated_at = '2026-11-28 12:00:00' "
                "where order_id = any(:ids)"
            ),
            {"ids": list(changed)},
        )
        conn.execute(
            sa.text(
                "insert into orders values ('ORD-NEW-1', 10001, 'completed', 42.5, 'USD', "
                "'2026-11-28 13:00:00', '2026-11-28 13:00:00')"
            )
        )

    second = materialize_batches("shop_orders", "shop_order_items", "shop_customers")
    orders = metadata(second, "shop_orders")
    with engine.connect() as conn:
        expected_read = conn.execute(
            sa.text("select count(*) from orders where updated_at >= cast(:since as timestamp)"),
            {"since": orders["since"][:19]},
        ).scalar_one()
    assert orders["rows_in"] == expected_read
    assert orders["rows_in"] < orders_in_db / 5
    assert orders["rows_landed"] == 4

    lake_orders = read_table(paths, "shop_orders")
    current = latest_versions(lake_orders, "order_id")
    for order_id in changed:
        assert lake_orders.filter(pl.col("order_id") == order_id).height == 2
        assert current.filter(pl.col("order_id") == order_id)["status"].to_list() == ["refunded"]
    assert current.filter(pl.col("order_id") == "ORD-NEW-1")["total"].to_list() == [42.5]
    assert lake_orders.select("order_id", "updated_at").is_duplicated().sum() == 0

    third = materialize_batches("shop_orders")
    assert metadata(third, "shop_orders")["rows_landed"] == 0
    assert read_table(paths, "shop_orders").height == lake_orders.height
    engine.dispose()
