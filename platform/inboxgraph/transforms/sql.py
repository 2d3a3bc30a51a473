"""Run a packaged SQL file with DuckDB over in-memory polars frames."""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources

import duckdb
import polars as pl

# Opening a DuckDB connection costs about as much as validating a batch of 100 events, so
# each thread keeps one (connections are not shared between threads).
_local = threading.local()


@cache
def load_sql(name: str) -> str:
    return resources.files("inboxgraph").joinpath("sql", f"{name}.sql").read_text()


def _connection() -> duckdb.DuckDBPyConnection:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = duckdb.connect()
        _local.connection = connection
    return connection


def query_frame(name: str, **tables: pl.DataFrame) -> pl.DataFrame:
    """Evaluate ``sql/<name>.sql`` with each keyword frame registered under its name."""
    connection = _connection()
    try:
        for table, frame in tables.items():
            connection.register(table, frame)
        return connection.sql(load_sql(name)).pl()
    finally:
        for table in tables:
            connection.unregister(table)
