"""Bad configuration fails with one sentence that names the variable, on every path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from inboxgraph.resources.sources import ShopDatabase
from inboxgraph.resources.wiring import source_resources
from inboxgraph.settings import ConfigurationError, Paths, check_environment
from tests.assets.lake_helpers import batch_assets

BAD = [
    ("INBOXGRAPH_SHOP_DB_URL", "mysql://shop@db/shop"),
    ("INBOXGRAPH_LAKE_URL", "gs://bucket/lake"),
    ("INBOXGRAPH_LANDING_URL", "ftp://host/landing"),
    ("INBOXGRAPH_WAREHOUSE", "s3://bucket/warehouse.duckdb"),
]


@pytest.mark.parametrize(("variable", "value"), BAD)
def test_the_command_line_names_the_variable_in_one_sentence(
    platform_home: Paths, variable: str, value: str
) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "inboxgraph.cli", "run"],
        env={**os.environ, variable: value},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 2
    (line,) = ran.stderr.strip().splitlines()
    assert line.startswith(f"inboxgraph: {variable}={value!r} is not supported"), line


def test_settings_accept_what_the_platform_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in (
        ("INBOXGRAPH_SHOP_DB_URL", "postgresql://u@h/db"),
        ("INBOXGRAPH_LAKE_URL", "s3://bucket/lake"),
        ("INBOXGRAPH_LANDING_URL", "/srv/landing"),
        ("INBOXGRAPH_WAREHOUSE", "/srv/warehouse.duckdb"),
    ):
        monkeypatch.setenv(variable, value)
    check_environment()
    monkeypatch.setenv("INBOXGRAPH_SHOP_DB_URL", "oracle://x")
    with pytest.raises(ConfigurationError, match="INBOXGRAPH_SHOP_DB_URL"):
        check_environment()


def test_a_run_with_a_bad_value_fails_at_start_naming_the_variable(platform_home: Paths) -> None:
    resources = {**source_resources(), "shop_db": ShopDatabase(url="mysql://shop@db/shop")}
    result = dg.materialize(batch_assets(), resources=resources, raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.is_failure]
    messages = " ".join(str(e.event_specific_data.error.cause or "") for e in failures)
    messages += " ".join(e.event_specific_data.error.message for e in failures)
    assert "INBOXGRAPH_SHOP_DB_URL='mysql://shop@db/shop' is not supported" in messages


def test_a_missing_landing_zone_fails_the_extracts_with_one_sentence(tmp_path: Path) -> None:
    from inboxgraph.resources.sources import EnrichmentSource, HubspotContactsSource

    missing = str(tmp_path / "no-such-landing")
    expected = (
        f"the landing zone {missing} (INBOXGRAPH_LANDING_URL) does not exist; point the "
        "setting at the folder where sources land, or run `inboxgraph generate`"
    )
    with pytest.raises(dg.Failure) as enrichment:
        EnrichmentSource(landing_url=missing).files()
    with pytest.raises(dg.Failure) as crm:
        HubspotContactsSource(landing_url=missing).read(None)
    assert enrichment.value.description == crm.value.description == expected
    # An existing landing zone without the source's folder is a source with nothing yet.
    (tmp_path / "empty-landing").mkdir()
    assert EnrichmentSource(landing_url=str(tmp_path / "empty-landing")).files() == []
