"""Run a packaged SQL file with DuckDB over an in-memory polars frame."""

from __future__ import annotations

from functools import cache
from importlib import resources

import duckdb
import polars as pl


@cache
def load_sql(name: str) -> str:
    return resources.files("inboxgraph").joinpath("sql", f"{name}.sql").read_text()


def query_frame(name: str, **tables: pl.DataFrame) -> pl.DataFrame:
    """Evaluate ``sql/<name>.sql`` with each keyword frame registered under its name."""
    with duckdb.connect() as con:
        for table, frame in tables.items():
            con.register(table, frame)
        return con.sql(load_sql(name)).pl()
