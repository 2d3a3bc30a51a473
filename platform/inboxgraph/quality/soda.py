"""Verify Soda Core 4 data contracts over DuckDB and summarize the outcome per check.

Contracts name their dataset as ``inboxgraph/<schema>/<table>`` in the connection's default
catalog: the warehouse file attached read-only (``marts``), or an in-memory database with views
over the lake's raw tables (``lake``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from inboxgraph.dbt_project import DBT_PROJECT_DIR
from inboxgraph.objectstore import configure_duckdb
from inboxgraph.partitions import received_date_of
from inboxgraph.resources.lake import LakeResource

DATA_SOURCE_NAME = "inboxgraph"
MART_CONTRACTS = DBT_PROJECT_DIR / "models" / "marts"
LAKE_CONTRACTS = DBT_PROJECT_DIR / "contracts" / "lake"
CONTRACT_SUFFIX = ".contract.yml"


@dataclass
class ContractOutcome:
    """The verdict of one contract: every check with its outcome and diagnostics."""

    contract: str
    passed: bool
    checks: list[dict] = field(default_factory=list)
    errors: str = ""

    @property
    def failed_checks(self) -> list[str]:
        return [c["name"] for c in self.checks if c["outcome"] not in ("PASSED", "WARNED")]

    def as_markdown(self) -> str:
        lines = ["| check | column | outcome | diagnostics |", "|---|---|---|---|"]
        for c in self.checks:
            diagnostics = ", ".join(f"{k}={v}" for k, v in sorted(c["diagnostics"].items()))
            lines.append(f"| {c['name']} | {c['column'] or ''} | {c['outcome']} | {diagnostics} |")
        return "\n".join(lines)


def contracts(folder: Path) -> dict[str, Path]:
    """Contract files in a folder by the table they check."""
    return {
        path.name.removesuffix(CONTRACT_SUFFIX): path
        for path in sorted(folder.glob(f"*{CONTRACT_SUFFIX}"))
    }


def _check_name(check: object) -> str:
    name = getattr(check, "name", None) or getattr(check, "type", "check")
    column = getattr(check, "column_name", None)
    return f"{column}.{name}" if column else str(name)


def verify(contract: Path, connection: duckdb.DuckDBPyConnection) -> ContractOutcome:
    """Verify one contract over an open DuckDB connection."""
    os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
    from soda_core.contracts import verify_contract_locally
    from soda_duckdb.common.data_sources.duckdb_data_source import DuckDBDataSourceImpl

    source = DuckDBDataSourceImpl.from_existing_cursor(connection, name=DATA_SOURCE_NAME)
    session = verify_contract_locally(data_sources=[source], contract_file_path=str(contract))
    checks: list[dict] = []
    for result in session.contract_verification_results:
        for check_result in result.check_results:
            check = check_result.check
            checks.append(
                {
                    "name": _check_name(check),
                    "type": getattr(check, "type", ""),
                    "column": getattr(check, "column_name", None),
                    "outcome": check_result.outcome.name,
                    "diagnostics": {
                        k: (round(v, 4) if isinstance(v, float) else v)
                        for k, v in (check_result.diagnostic_metric_values or {}).items()
                    },
                }
            )
    errors = session.get_errors_str() if session.has_errors else ""
    passed = not errors and all(c["outcome"] in ("PASSED", "WARNED") for c in checks)
    return ContractOutcome(
        contract=str(contract), passed=passed and bool(checks), checks=checks, errors=errors
    )


def lake_connection(
    lake: LakeResource,
    sources: list[str],
    received: tuple[str, str] | None = None,
    partitioned: frozenset[str] = frozenset(),
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with a view ``lake.<source>`` over each raw table; for the
    ``partitioned`` sources only over the received dates ``received`` (first, last), when
    given. A source without files there gets no view (``lake_views`` names those that have
    one): a partitioned source with nothing landed on those dates has nothing new to check."""
    connection = duckdb.connect()
    configure_duckdb(connection, lake.location)
    connection.execute("create schema lake")
    for source in sources:
        files = lake.files("raw", source)
        if received is not None and source in partitioned:
            first, last = received
            files = [f for f in files if first <= (received_date_of(f) or "") <= last]
        if not files:
            continue
        listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        connection.execute(
            f"create view lake.{source} as select * from read_parquet([{listing}], "
            "hive_partitioning = true, union_by_name = true)"
        )
    return connection


def lake_views(connection: duckdb.DuckDBPyConnection) -> set[str]:
    """The lake tables ``lake_connection`` made a view of."""
    return {
        name
        for (name,) in connection.execute(
            "select table_name from information_schema.tables where table_schema = 'lake'"
        ).fetchall()
    }
