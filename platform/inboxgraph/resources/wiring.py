"""The resources of the embedded default, every field read through dg.EnvVar."""

from __future__ import annotations

import dagster as dg

from inboxgraph.resources.lake import LakeResource
from inboxgraph.resources.sources import (
    EnrichmentSource,
    EventFolderSource,
    HubspotContactsSource,
    ShopDatabase,
)

HOME = dg.EnvVar("INBOXGRAPH_HOME")
LANDING = dg.EnvVar("INBOXGRAPH_LANDING_URL")


def source_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "lake": LakeResource(url=dg.EnvVar("INBOXGRAPH_LAKE_URL"), home=HOME),
        "web_events_source": EventFolderSource(folder="web_events", landing_url=LANDING, home=HOME),
        "esp_events_source": EventFolderSource(folder="esp_events", landing_url=LANDING, home=HOME),
        "crm": HubspotContactsSource(landing_url=LANDING, home=HOME),
        "shop_db": ShopDatabase(url=dg.EnvVar("INBOXGRAPH_SHOP_DB_URL"), home=HOME),
        "enrichment_files": EnrichmentSource(landing_url=LANDING, home=HOME),
    }
