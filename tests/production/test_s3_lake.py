"""Landing zone and lake on S3 (moto's server): the same marts as on local folders."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from inboxgraph.runner import run_pipeline
from inboxgraph.settings import Paths, ensure_environment
from tests.conftest import CONFIG_VARIABLES, generate
from tests.e2e.pipeline import AS_OF
from tests.local_kafka import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "inboxgraph-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "inboxgraph-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield endpoint
    server.stop()


def _marts(paths: Paths) -> dict[str, pl.DataFrame]:
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        profiles = con.sql(
            "select * exclude (refreshed_at) from marts.customer_profiles order by person_id"
        ).pl()
        members = con.sql(
            "select segment_id, person_id from marts.segment_memberships order by all"
        ).pl()
        identities = con.sql(
            "select identifier_type, identifier_value, person_id from marts.identity_map "
            "order by all"
        ).pl()
    return {"profiles": profiles, "members": members, "identities": identities}


def test_a_run_on_s3_builds_the_same_profiles_and_segments_as_local_folders(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    local = ensure_environment(str(tmp_path / "local"))
    generate(Path(local.landing_url), people=300, days=30)
    summary = run_pipeline(local, as_of=AS_OF, log=lambda _: None)
    assert summary.succeeded, summary
    expected = _marts(local)

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    for bucket in ("landing", "lake"):
        client.create_bucket(Bucket=bucket)
    landing = Path(local.landing_url)
    uploaded = 0
    for path in sorted(landing.rglob("*")):
        if path.is_file() and path.name != "shop.db":
            key = "prod/" + path.relative_to(landing).as_posix()
            client.upload_file(str(path), "landing", key)
            uploaded += 1
    assert uploaded > 30

    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "on-s3"
    monkeypatch.setenv("INBOXGRAPH_LANDING_URL", "s3://landing/prod")
    monkeypatch.setenv("INBOXGRAPH_LAKE_URL", "s3://lake/prod")
    monkeypatch.setenv("INBOXGRAPH_SHOP_DB_URL", local.shop_db_url)
    monkeypatch.setenv("INBOXGRAPH_S3_ENDPOINT_URL", s3_endpoint)
    on_s3 = ensure_environment(str(home))
    assert on_s3.lake_url == "s3://lake/prod"
    summary = run_pipeline(on_s3, as_of=AS_OF, log=lambda _: None)
    assert summary.succeeded, summary
    assert not (home / "lake").exists(), "the lake went to a local folder"

    actual = _marts(on_s3)
    assert expected["profiles"].height > 100
    for name, frame in expected.items():
        assert_frame_equal(actual[name], frame, check_row_order=True), name

    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket="lake")
        for item in page.get("Contents", [])
    ]
    assert any(k.startswith("prod/raw/web_events/received_date=") for k in keys)
    assert any(k.startswith("prod/quarantine/web_events/") for k in keys)
    assert not [k for k in keys if k.endswith(".tmp")], "a write aside was left behind"

    def layout(names: list[str]) -> list[str]:
        # Batch partitions are named by extraction time, which differs between the runs.
        return sorted(re.sub(r"extracted_at=[^/]+", "extracted_at=*", n) for n in names)

    local_lake = [
        p.relative_to(local.lake_url).as_posix() for p in Path(local.lake_url).rglob("*.parquet")
    ]
    assert layout([k.removeprefix("prod/") for k in keys]) == layout(local_lake)
