"""Look for values in every file under some folders: raw bytes and decoded content."""

from __future__ import annotations

import gzip
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import polars as pl


def _texts(path: Path) -> Iterator[str]:
    data = path.read_bytes()
    yield data.decode("latin-1")
    if path.suffix == ".gz":
        yield gzip.decompress(data).decode("utf-8", "replace")
    elif path.suffix == ".parquet" and not path.name.startswith("."):
        frame = pl.read_parquet(path, hive_partitioning=False)
        yield frame.select(pl.all().cast(pl.String, strict=False)).write_csv()
    elif path.suffix == ".duckdb":
        with duckdb.connect(str(path), read_only=True) as con:
            tables = con.sql(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
            for schema, table in tables:
                rows = con.sql(f'select * from "{schema}"."{table}"').fetchall()
                yield "\n".join(map(str, rows))
    elif path.suffix == ".db":
        with sqlite3.connect(path) as con:
            yield "\n".join(con.iterdump())


def occurrences(roots: Iterable[Path], needles: Iterable[str]) -> list[tuple[str, str]]:
    """(file, value) for every value found anywhere under the roots, case-insensitively."""
    wanted = [n.lower() for n in needles if n]
    found = []
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            for text in _texts(path):
                lowered = text.lower()
                found += [(str(path), n) for n in wanted if n in lowered]
    return sorted(set(found))
