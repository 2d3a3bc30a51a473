"""HubSpot and Salesforce pulled into the landing zone through their APIs, against local fakes
of the APIs: every record once, then only the changes, through rate limits and faults, resumable
after a pull that dies midway, failing clearly on a refused token, and the same lake tables as
files of the same records."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import requests

from inboxgraph.assets.lake import (
    _land_batch,
    hubspot_pull,
    salesforce_pull,
)
from inboxgraph.resources.crm_api import (
    HUBSPOT_PROPERTIES,
    SALESFORCE_OBJECTS,
    HubspotPull,
    SalesforcePull,
)
from inboxgraph.resources.lake import LakeResource
from inboxgraph.resources.sources import HubspotContactsSource, SalesforceRecordsSource
from inboxgraph.transforms import hubspot, salesforce
from tests.sources.fake_hubspot import FakeHubspot
from tests.sources.fake_salesforce import FakeSalesforce

T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z, in epoch milliseconds
MINUTE = 60_000


# ---------------------------------------------------------------------- HubSpot
def _hubspot(n: int = 250) -> FakeHubspot:
    fake = FakeHubspot(ceiling=100)
    for i in range(n):
        fake.put(
            str(1000 + i),
            T0 + (i // 2) * MINUTE,  # two contacts share each modification time
            email=f"person{i}@example.com",
            firstname=f"First{i}",
            lastname="Doe",
            city="Lyon",
            country="FR",
            hs_email_optout="true" if i % 10 == 0 else "false",
            lifecyclestage="lead",
        )
    return fake


def _hubspot_pull(fake: FakeHubspot, landing: Path, **overrides: object) -> HubspotPull:
    settings = {
        "token": fake.token,
        "api_url": fake.url,
        "landing_url": str(landing),
        "page_size": 40,
        "search_ceiling": fake.ceiling,
        "backoff_seconds": 0.05,
        **overrides,
    }
    return HubspotPull(**settings)


def _land(landing: Path, lake: Path, source: str) -> dg.MaterializeResult:
    """Land the pages in ``landing`` into ``lake`` as the lake asset does."""
    resources = LakeResource(url=str(lake))
    if source == "hubspot_contacts":
        records = HubspotContactsSource(landing_url=str(landing)).read(None)
        prepared = hubspot.prepare(records)
        columns = hubspot.LANDED_COLUMNS
    else:
        reader = SalesforceRecordsSource(source=source, landing_url=str(landing))
        records = reader.read(None)
        prepared = salesforce.prepare(records, source)
        columns = salesforce.landed_columns(source)
    context = dg.build_asset_context()
    return _land_batch(
        context, resources, source, prepared, columns, records.height, 0.0, one_per_text=True
    )


def _lake(lake: Path, source: str) -> pl.DataFrame:
    frame = LakeResource(url=str(lake)).scan("raw", source)
    assert frame is not None
    return frame.collect()


def _ids(lake: Path, source: str, column: str) -> list[str]:
    return sorted(_lake(lake, source)[column].to_list())


def test_hubspot_first_pull_lands_every_contact_once_splitting_at_the_search_ceiling(
    tmp_path: Path,
) -> None:
    fake = _hubspot()
    with fake.serve():
        counts = _hubspot_pull(fake, tmp_path / "landing").pull()
    # 250 contacts cannot come from one search of at most 100 results: the window was split.
    assert counts["searches"] >= 3
    searches = [s for m, p, s in fake.log if p.endswith("/search")]
    assert 400 not in searches, "no search asked past the ceiling"
    _land(tmp_path / "landing", tmp_path / "lake", "hubspot_contacts")
    assert _ids(tmp_path / "lake", "hubspot_contacts", "contact_id") == sorted(fake.contacts)


def test_hubspot_second_pull_saves_only_the_changes(tmp_path: Path) -> None:
    fake = _hubspot(120)
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    with fake.serve():
        pull = _hubspot_pull(fake, landing)
        pull.pull()
        _land(landing, lake, "hubspot_contacts")
        later = T0 + 1000 * MINUTE
        for i in range(5):
            fake.put(str(1000 + i), later + i, lastname="Changed")
        fake.put("9999", later + 10, email="new@example.com", hs_email_optout="false")
        fake.archive("1050", later + 20)
        fake.log.clear()
        counts = pull.pull()
    # The six changed contacts, and the two that share the newest modification time already
    # saved (the search resumes inclusively, so no contact saved at that instant is missed).
    assert (counts["contacts"], counts["archived"]) == (6 + 2, 1)
    result = _land(landing, lake, "hubspot_contacts")
    assert result.metadata["rows_landed"] == 7
    landed = _lake(lake, "hubspot_contacts")
    assert landed.filter(pl.col("last_name") == "Changed").height == 5
    assert landed.filter(pl.col("contact_id") == "1050")["archived"].to_list() == [False, True]


def test_hubspot_rate_limits_server_errors_and_a_dropped_connection_lose_and_double_nothing(
    tmp_path: Path,
) -> None:
    fake = _hubspot(150)
    fake.faults = deque([429, 500, "drop", 429])
    with fake.serve():
        _hubspot_pull(fake, tmp_path / "landing").pull()
    statuses = [s for _, _, s in fake.log]
    assert statuses.count(429) >= 2 and 500 in statuses
    _land(tmp_path / "landing", tmp_path / "lake", "hubspot_contacts")
    assert _ids(tmp_path / "lake", "hubspot_contacts", "contact_id") == sorted(fake.contacts)
    assert not list(tmp_path.rglob(".*.tmp")), "no temporary file is left behind"


def test_hubspot_pull_killed_midway_resumes_from_its_saved_pages(tmp_path: Path) -> None:
    fake = _hubspot(200)
    landing = tmp_path / "landing"
    with fake.serve():
        pull = _hubspot_pull(fake, landing, max_attempts=2)
        original = fake.answer
        calls = {"search": 0}

        def dying_on_the_third_page(request):  # type: ignore[no-untyped-def]
            if request.path.endswith("/search"):
                calls["search"] += 1
                if calls["search"] >= 3:
                    raise ConnectionResetError("the pull's host went away")
            return original(request)

        fake.answer = dying_on_the_third_page  # type: ignore[method-assign]
        with pytest.raises(dg.Failure, match="HubSpot"):
            pull.pull()
        saved = sorted(p.name for p in (landing / "hubspot" / "contacts").glob("api-*.json"))
        assert len(saved) == 2, "the pages read before the failure are kept"
        fake.answer = original  # type: ignore[method-assign]
        fake.log.clear()
        fake.searches.clear()
        pull.pull()
    # The resumed search started at the newest modification time the saved pages hold.
    resumed = fake.searches[0]["filterGroups"][0]["filters"][0]
    assert (resumed["operator"], int(resumed["value"])) == ("GTE", int(saved[-1].split("-")[1]))
    _land(landing, tmp_path / "lake", "hubspot_contacts")
    assert _ids(tmp_path / "lake", "hubspot_contacts", "contact_id") == sorted(fake.contacts)


def test_hubspot_refused_token_fails_the_asset_naming_the_variable(tmp_path: Path) -> None:
    fake = _hubspot(10)
    with fake.serve():
        result = dg.materialize(
            [hubspot_pull],
            resources={"hubspot_api": _hubspot_pull(fake, tmp_path, token="pat-expired")},
            raise_on_error=False,
        )
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert "INBOXGRAPH_HUBSPOT_TOKEN" in error.message and "401" in error.message
    assert [s for _, _, s in fake.log] == [401], "a refused token is not retried"


def test_hubspot_contacts_through_the_api_and_through_files_land_equal_tables(
    tmp_path: Path,
) -> None:
    fake = _hubspot(90)
    with fake.serve():
        _hubspot_pull(fake, tmp_path / "api", search_ceiling=10_000, page_size=100).pull()
        properties = list(HUBSPOT_PROPERTIES)
        exported = requests.post(
            f"{fake.url}/crm/v3/objects/contacts/search",
            json={
                "limit": 100,
                "properties": properties,
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            },
            headers={"Authorization": f"Bearer {fake.token}"},
            timeout=10,
        ).json()
    folder = tmp_path / "files" / "hubspot" / "contacts"
    folder.mkdir(parents=True)
    (folder / "export-0001.json").write_text(json.dumps({"results": exported["results"]}))
    _land(tmp_path / "api", tmp_path / "lake-api", "hubspot_contacts")
    _land(tmp_path / "files", tmp_path / "lake-files", "hubspot_contacts")
    columns = [c for c in hubspot.LANDED_COLUMNS if c not in ("_source_file", "_line")]
    api = _lake(tmp_path / "lake-api", "hubspot_contacts").select(columns).sort("contact_id")
    files = _lake(tmp_path / "lake-files", "hubspot_contacts").select(columns).sort("contact_id")
    assert api.height == 90 and api.equals(files)


# ---------------------------------------------------------------------- Salesforce
def _salesforce() -> FakeSalesforce:
    fake = FakeSalesforce(batch_size=25)
    for i in range(60):
        fake.put(
            "Contact",
            f"003{i:012d}AAA",
            T0 + i * MINUTE,
            Email=f"Contact{i}@Example.com ",
            FirstName=f"C{i}",
            LastName="Smith",
            MailingCity="Porto",
            MailingCountry="PT",
            HasOptedOutOfEmail=i % 7 == 0,
            LeadSource="Web",
        )
    for i in range(40):
        fake.put(
            "Lead",
            f"00Q{i:012d}AAA",
            T0 + i * MINUTE,
            Email=f"lead{i}@example.com",
            FirstName=f"L{i}",
            LastName="Jones",
            City="Oslo",
            Country="NO",
            Status="Open - Not Contacted",
            LeadSource="Trade Show",
            IsConverted=False,
            ConvertedContactId=None,
        )
    fake.delete("Lead", f"00Q{39:012d}AAA", T0 + 50 * MINUTE)
    return fake


def _salesforce_pull(fake: FakeSalesforce, landing: Path, **overrides: object) -> SalesforcePull:
    settings = {
        "instance_url": fake.url,
        "token": fake.token,
        "landing_url": str(landing),
        "backoff_seconds": 0.05,
        **overrides,
    }
    return SalesforcePull(**settings)


def _land_salesforce(landing: Path, lake: Path) -> None:
    for source in ("salesforce_contacts", "salesforce_leads"):
        _land(landing, lake, source)


def test_salesforce_first_pull_follows_next_records_and_keeps_deleted_records(
    tmp_path: Path,
) -> None:
    fake = _salesforce()
    with fake.serve():
        counts = _salesforce_pull(fake, tmp_path / "landing").pull()
    assert counts["Contact"]["records"] == 60 and counts["Contact"]["pages"] == 3
    assert (counts["Lead"]["records"], counts["Lead"]["deleted"]) == (40, 1)
    assert any("/query/" in p for _, p, _ in fake.log), "nextRecordsUrl was followed"
    _land_salesforce(tmp_path / "landing", tmp_path / "lake")
    assert _ids(tmp_path / "lake", "salesforce_contacts", "record_id") == sorted(
        fake.records["Contact"]
    )
    leads = _lake(tmp_path / "lake", "salesforce_leads")
    assert leads.height == 40 and leads["is_deleted"].sum() == 1
    contacts = _lake(tmp_path / "lake", "salesforce_contacts")
    assert contacts.filter(pl.col("record_id") == f"003{0:012d}AAA")["email"].item() == (
        "contact0@example.com"
    )


def test_salesforce_second_pull_saves_only_the_changes_and_the_client_credentials_flow(
    tmp_path: Path,
) -> None:
    fake = _salesforce()
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    with fake.serve():
        pull = _salesforce_pull(
            fake, landing, token="", client_id=fake.client_id, client_secret=fake.client_secret
        )
        pull.pull()
        _land_salesforce(landing, lake)
        later = T0 + 500 * MINUTE
        fake.put("Contact", f"003{3:012d}AAA", later, HasOptedOutOfEmail=True)
        fake.delete("Contact", f"003{4:012d}AAA", later + 1)
        fake.put(
            "Lead",
            f"00Q{5:012d}AAA",
            later + 2,
            Status="Closed - Converted",
            IsConverted=True,
            ConvertedContactId=f"003{5:012d}AAA",
        )
        counts = pull.pull()
    assert any(p == "/services/oauth2/token" for _, p, _ in fake.log)
    # The changes, and the record at the newest SystemModstamp already saved (read again:
    # the query resumes inclusively).
    assert (counts["Contact"]["records"], counts["Lead"]["records"]) == (2 + 1, 1 + 1)
    _land_salesforce(landing, lake)
    contacts = _lake(lake, "salesforce_contacts")
    assert contacts.height == 62
    leads = _lake(lake, "salesforce_leads")
    converted = leads.filter(pl.col("is_converted"))
    assert converted["converted_contact_id"].to_list() == [f"003{5:012d}AAA"]


def test_salesforce_faults_and_a_pull_killed_midway_lose_and_double_nothing(
    tmp_path: Path,
) -> None:
    fake = _salesforce()
    landing = tmp_path / "landing"
    with fake.serve():
        pull = _salesforce_pull(fake, landing, max_attempts=2)
        original = fake.answer
        calls = {"pages": 0}

        def dying_on_the_second_contact_page(request):  # type: ignore[no-untyped-def]
            if "/query/" in request.path:
                calls["pages"] += 1
                if calls["pages"] <= 2:
                    raise ConnectionResetError("gone")
            return original(request)

        fake.answer = dying_on_the_second_contact_page  # type: ignore[method-assign]
        with pytest.raises(dg.Failure, match="Salesforce"):
            pull.pull()
        assert len(list((landing / "salesforce" / "contact").glob("api-*.json"))) == 1
        fake.answer = original  # type: ignore[method-assign]
        fake.faults = deque([429, 500, "drop"])
        _salesforce_pull(fake, landing).pull()
    statuses = [s for _, _, s in fake.log]
    assert 429 in statuses and 500 in statuses
    _land_salesforce(landing, tmp_path / "lake")
    assert _ids(tmp_path / "lake", "salesforce_contacts", "record_id") == sorted(
        fake.records["Contact"]
    )
    assert _ids(tmp_path / "lake", "salesforce_leads", "record_id") == sorted(fake.records["Lead"])


def test_salesforce_expired_token_fails_the_asset_naming_the_variable(tmp_path: Path) -> None:
    fake = _salesforce()
    with fake.serve():
        result = dg.materialize(
            [salesforce_pull],
            resources={"salesforce_api": _salesforce_pull(fake, tmp_path, token="expired")},
            raise_on_error=False,
        )
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert "INBOXGRAPH_SALESFORCE_TOKEN" in error.message and "INVALID_SESSION_ID" in error.message
    assert [s for _, _, s in fake.log] == [401]


def test_salesforce_records_through_the_api_and_through_files_land_equal_tables(
    tmp_path: Path,
) -> None:
    fake = _salesforce()
    with fake.serve():
        _salesforce_pull(fake, tmp_path / "api").pull()
    # The same records as an export of query responses (one page per object).
    for folder, (sobject, fields) in SALESFORCE_OBJECTS.items():
        records = sorted(
            fake.records[sobject].values(), key=lambda r: (r["SystemModstamp"], r["Id"])
        )
        shaped = [{"attributes": r["attributes"], **{f: r.get(f) for f in fields}} for r in records]
        target = tmp_path / "files" / "salesforce" / folder
        target.mkdir(parents=True)
        body = {"totalSize": len(shaped), "done": True, "records": shaped}
        (target / "export.json").write_text(json.dumps(body))
    _land_salesforce(tmp_path / "api", tmp_path / "lake-api")
    _land_salesforce(tmp_path / "files", tmp_path / "lake-files")
    for source in ("salesforce_contacts", "salesforce_leads"):
        columns = [
            c for c in salesforce.landed_columns(source) if c not in ("_source_file", "_line")
        ]
        api = _lake(tmp_path / "lake-api", source).select(columns).sort("record_id")
        files = _lake(tmp_path / "lake-files", source).select(columns).sort("record_id")
        assert api.height > 0 and api.equals(files)


def test_a_page_that_is_no_query_response_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    folder = tmp_path / "landing" / "salesforce" / "contact"
    folder.mkdir(parents=True)
    (folder / "broken.json").write_text('{"records": [')
    (folder / "other.json").write_text('{"error": "not a query response"}')
    good = {
        "attributes": {"type": "Contact"},
        "Id": "003A",
        "SystemModstamp": "2026-11-30T08:00:00.000+0000",
    }
    lead = {**good, "attributes": {"type": "Lead"}, "Id": "00QB"}
    (folder / "page.json").write_text(json.dumps({"done": True, "records": [good, lead]}))
    result = _land(tmp_path / "landing", tmp_path / "lake", "salesforce_contacts")
    assert result.metadata["rows_landed"] == 1
    assert result.metadata["quarantine_reasons"] == {
        "invalid_json": 1,
        "invalid_page": 1,
        "wrong_object": 1,
    }


def test_the_pulls_do_nothing_without_credentials(tmp_path: Path) -> None:
    result = dg.materialize(
        [hubspot_pull, salesforce_pull],
        resources={
            "hubspot_api": HubspotPull(landing_url=str(tmp_path)),
            "salesforce_api": SalesforcePull(landing_url=str(tmp_path)),
        },
    )
    for node in ("landing__hubspot_contacts", "landing__salesforce"):
        metadata = result.asset_materializations_for_node(node)[0].metadata
        assert metadata["mode"].value == "files"
    assert not any(tmp_path.iterdir())


def test_the_crm_schedule_pulls_only_in_live_mode_and_a_stale_pull_is_a_freshness_alert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from inboxgraph.definitions import PULL_FRESHNESS, crm_hourly, defs

    for name in ("INBOXGRAPH_HUBSPOT_TOKEN", "INBOXGRAPH_SALESFORCE_INSTANCE_URL"):
        monkeypatch.delenv(name, raising=False)
    with dg.instance_for_test() as instance:
        off = crm_hourly(dg.build_schedule_context(instance=instance))
        assert isinstance(off, dg.SkipReason) and "INBOXGRAPH_HUBSPOT_TOKEN" in off.skip_message
        monkeypatch.setenv("INBOXGRAPH_SALESFORCE_INSTANCE_URL", "https://x.my.salesforce.com")
        on = crm_hourly(dg.build_schedule_context(instance=instance))
        assert isinstance(on, dg.RunRequest)
    graph = defs.resolve_asset_graph()
    for key in (["landing", "hubspot_contacts"], ["landing", "salesforce"]):
        assert graph.get(dg.AssetKey(key)).freshness_policy == PULL_FRESHNESS
    refresh = defs.resolve_job_def("refresh_warehouse")
    pulls = {dg.AssetKey(["landing", "hubspot_contacts"]), dg.AssetKey(["landing", "salesforce"])}
    assert not pulls & set(refresh.asset_layer.executable_asset_keys), (
        "the refresh never waits on a vendor's API"
    )


def test_the_fakes_enforce_the_vendors_contracts() -> None:
    hub = _hubspot(30)
    with hub.serve():
        search = f"{hub.url}/crm/v3/objects/contacts/search"
        auth = {"Authorization": f"Bearer {hub.token}"}
        assert requests.post(search, json={"limit": 201}, headers=auth).status_code == 400
        past = requests.post(search, json={"limit": 50, "after": "60"}, headers=auth)
        assert past.status_code == 400 and "at most 100" in past.text
        assert (
            requests.post(search, json={}, headers={"Authorization": "Bearer x"}).status_code == 401
        )
        burst = [requests.post(search, json={}, headers=auth) for _ in range(8)]
        limited = [r for r in burst if r.status_code == 429]
        assert limited and limited[0].headers["X-HubSpot-RateLimit-Max"] == "4"
    sf = _salesforce()
    with sf.serve():
        base = f"{sf.url}/services/data/v62.0"
        auth = {"Authorization": f"Bearer {sf.token}"}
        soql = "SELECT Id, IsDeleted FROM Lead"
        live = requests.get(f"{base}/query", params={"q": soql}, headers=auth).json()
        every = requests.get(f"{base}/queryAll", params={"q": soql}, headers=auth).json()
        assert (live["totalSize"], every["totalSize"]) == (39, 40)
        unknown = requests.get(f"{base}/query", params={"q": "SELECT Nope FROM Lead"}, headers=auth)
        assert unknown.status_code == 400 and unknown.json()[0]["errorCode"] == "INVALID_FIELD"
        token = requests.post(
            f"{sf.url}/services/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
        )
        assert token.status_code == 400 and token.json()["error"] == "invalid_client"
