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
        threads = getattr(_local, "threads", None)
        connection = duckdb.connect(config={"threads": threads} if threads else {})
        _local.connection = connection
    return connection


def limit_threads(threads: int) -> None:
    """Cap DuckDB's threads for queries from the calling thread (before its first query).

    For callers that already run several queries side by side, such as the stream worker's
    partition writers.
    """
    _local.threads = threads


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
