"""The platform uses Dagster's, dagster-dbt's and dbt's public APIs only: an upgrade of the
pinned stack must not break on internals."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRIVATE = re.compile(r"dagster\._|dagster_dbt\.core\.|_initialize_dbt_core_adapter|_ENV")
# Dagster documents its production run coordinator and launcher by these module paths.
DOCUMENTED = re.compile(r"^\s*module: dagster\._core\.(run_coordinator|launcher)\s*$")


def test_no_private_api_is_used() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in ("platform", "assets")
        for path in sorted((ROOT / folder).rglob("*"))
        if path.is_file() and path.suffix in {".py", ".yaml", ".yml", ".sql", ".toml"}
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if PRIVATE.search(line) and not DOCUMENTED.match(line)
    ]
    assert found == []
