"""HubSpot and Salesforce in one warehouse: one person across both CRMs and the shop, a Lead and
the Contact it converted to as one person, Salesforce's opt-out as an unsubscribe (and its
default false as no opt-in), deleted and archived records giving no link, and the CRM fields in
the profile's demographics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inboxgraph.settings import Paths
from tests.conftest import home_environment
from tests.warehouse.scenario import Landing, ago, land_and_build, person_of, query


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    with home_environment(tmp_path_factory.mktemp("crm")) as paths:
        land = Landing()
        # One person: HubSpot, Salesforce and the shop, the address typed three ways.
        land.contact("7001", " Ana.Silva@Example.com", False, ago(30))
        land.salesforce_record(
            "Contact",
            "003000000000001AAA",
            "ANA.SILVA@example.com  ",
            ago(20),
            MailingCity="Porto",
            MailingCountry="PT",
            LeadSource="Web",
        )
        land.customer(801, "ana.silva@example.com")
        # A Lead converted into a Contact with another address: one person.
        land.salesforce_record(
            "Lead",
            "00Q000000000002AAA",
            "bruno@old-company.example",
            ago(40),
            City="Braga",
            Country="PT",
            Status="Closed - Converted",
            IsConverted=True,
            ConvertedContactId="003000000000002AAA",
        )
        land.salesforce_record("Contact", "003000000000002AAA", "bruno@example.com", ago(10))
        # Opted out in Salesforce: unsubscribed even though HubSpot once had her opted in.
        land.contact("7003", "carla@example.com", False, ago(50))
        land.salesforce_record(
            "Contact", "003000000000003AAA", "carla@example.com", ago(5), HasOptedOutOfEmail=True
        )
        # Only in Salesforce, not opted out: no opt-in either, so not emailable.
        land.salesforce_record(
            "Lead",
            "00Q000000000004AAA",
            "dora@example.com",
            ago(5),
            Status="Working - Contacted",
            LeadSource="Trade Show",
            City="Faro",
            Country="PT",
        )
        # Deleted in Salesforce (queryAll's IsDeleted): no link from it.
        land.salesforce_record(
            "Contact", "003000000000005AAA", "erased@example.com", ago(3), IsDeleted=True
        )
        land.page(ago(2), "anon-visitor")  # a web visit, so that every layer has rows
        land.write(Path(paths.landing_url))
        land_and_build(paths)
        yield paths


def _status(paths: Paths, person: str) -> str:
    return query(
        paths,
        "select preferences.email_status from marts.customer_profiles where person_id = ?",
        person,
    )[0][0]


def test_one_person_across_hubspot_salesforce_and_the_shop(warehouse: Paths) -> None:
    people = {
        person_of(warehouse, "hubspot_id", "7001"),
        person_of(warehouse, "salesforce_id", "003000000000001AAA"),
        person_of(warehouse, "customer_id", "801"),
        person_of(warehouse, "email", "ana.silva@example.com"),
    }
    assert len(people) == 1 and None not in people
    person = people.pop()
    assert query(
        warehouse, "select count(*) from marts.customer_profiles where person_id = ?", person
    ) == [(1,)]
    assert _status(warehouse, person) == "subscribed"  # HubSpot's opt-out false is an opt-in
    demographics = query(
        warehouse,
        "select demographics.city, demographics.lead_source from marts.customer_profiles "
        "where person_id = ?",
        person,
    )[0]
    assert demographics == ("Porto", "Web")


def test_a_converted_lead_and_its_contact_are_one_person(warehouse: Paths) -> None:
    lead = person_of(warehouse, "salesforce_id", "00Q000000000002AAA")
    assert lead is not None
    assert lead == person_of(warehouse, "salesforce_id", "003000000000002AAA")
    assert lead == person_of(warehouse, "email", "bruno@old-company.example")
    rule = query(
        warehouse,
        "select rule from marts.identity_links where left_value = ? and right_value = ?",
        "00Q000000000002AAA",
        "003000000000002AAA",
    )
    assert rule == [("lead_converted",)]


def test_salesforce_opt_out_unsubscribes_and_its_default_is_no_opt_in(warehouse: Paths) -> None:
    carla = person_of(warehouse, "email", "carla@example.com")
    assert carla == person_of(warehouse, "salesforce_id", "003000000000003AAA")
    assert _status(warehouse, carla) == "unsubscribed"
    dora = person_of(warehouse, "salesforce_id", "00Q000000000004AAA")
    assert _status(warehouse, dora) == "unknown"
    row = query(
        warehouse,
        "select demographics.lifecycle_stage, demographics.lead_status, demographics.lead_source, "
        "demographics.city from marts.customer_profiles where person_id = ?",
        dora,
    )
    assert row == [("lead", "Working - Contacted", "Trade Show", "Faro")]
    members = query(
        warehouse,
        "select count(*) from marts.segment_memberships where person_id in (?, ?)",
        carla,
        dora,
    )
    assert members == [(0,)]


def test_a_deleted_salesforce_record_gives_no_link(warehouse: Paths) -> None:
    assert person_of(warehouse, "salesforce_id", "003000000000005AAA") is None
    assert person_of(warehouse, "email", "erased@example.com") is None
    landed = query(warehouse, "select count(*) from lake.salesforce_contacts where is_deleted")
    assert landed == [(1,)], "the deletion is kept in the lake, as queryAll returned it"
