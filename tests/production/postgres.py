"""The local PostgreSQL server (127.0.0.1:5432, trust auth, database ``test``) for tests."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

SERVER = "postgresql://postgres@127.0.0.1:5432/test"

SHOP_DDL = """
create table customers (
    customer_id integer primary key, email text, first_name text, last_name text,
    created_at timestamp not null, updated_at timestamp not null);
create table products (
    product_id text primary key, name text not null, category text, price numeric(12, 2));
create table orders (
    order_id text primary key, customer_id integer, status text, total numeric(12, 2),
    currency text, created_at timestamp, updated_at timestamp not null);
create table order_items (
    order_id text not null, product_id text not null, quantity integer,
    unit_price numeric(12, 2));
create index orders_updated_at on orders(updated_at);
create index customers_updated_at on customers(updated_at);
"""


def require_server() -> sa.Engine:
    engine = sa.create_engine(SERVER)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"the local PostgreSQL server is not reachable at {SERVER}: {exc}")
    return engine


@contextmanager
def scratch_schema() -> Iterator[str]:
    """A schema of its own for one test, dropped afterwards; yields its name."""
    engine = require_server()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"drop schema {schema} cascade"))
        engine.dispose()


def schema_url(schema: str) -> str:
    return f"{SERVER}?options=-csearch_path%3D{schema}"


def copy_shop(sqlite_path: str, url: str) -> dict[str, int]:
    """Create the shop's tables with PostgreSQL types and copy every row; returns counts."""
    engine = sa.create_engine(url)
    counts = {}
    with sqlite3.connect(sqlite_path) as source, engine.begin() as conn:
        for statement in SHOP_DDL.split(";"):
            if statement.strip():
                conn.execute(sa.text(statement))
        for table in ("customers", "products", "orders", "order_items"):
            cursor = source.execute(f"select * from {table}")
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor]
            columns = ", ".join(names)
            values = ", ".join(f":{n}" for n in names)
            conn.execute(sa.text(f"insert into {table} ({columns}) values ({values})"), rows)
            counts[table] = len(rows)
    engine.dispose()
    return counts
