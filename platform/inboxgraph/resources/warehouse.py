"""The DuckDB warehouse file: one writer at a time, readers open it read-only."""

from __future__ import annotations

import dagster as dg
import duckdb

from inboxgraph.settings import resolve_paths

# The concurrency pool of every step that writes the warehouse: DuckDB allows one writer.
WAREHOUSE_POOL = "warehouse"


class WarehouseResource(dg.ConfigurableResource):
    """Connections to the warehouse (the dbt project's DuckDB file)."""

    path: str = ""
    home: str = ""

    @property
    def resolved_path(self) -> str:
        return resolve_paths(home=self.home or None, warehouse=self.path or None).warehouse

    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """A connection; writers must hold the `warehouse` concurrency pool."""
        return duckdb.connect(self.resolved_path, read_only=read_only)

    def attach_read_only(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Attach the warehouse read-only to another connection and make it the default catalog."""
        path = self.resolved_path.replace("'", "''")
        connection.execute(f"attach '{path}' as warehouse (read_only)")
        connection.execute("use warehouse")
