"""The resources of the embedded default, every field read through dg.EnvVar."""

from __future__ import annotations

import dagster as dg

from inboxgraph.partitions import EVENT_SOURCES
from inboxgraph.resources.lake import LakeResource
from inboxgraph.resources.mixpanel import MixpanelExport
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
        **{
            f"{source}_source": EventFolderSource(
                folder=folder, source=source, landing_url=LANDING, home=HOME
            )
            for source, folder in EVENT_SOURCES.items()
        },
        "mixpanel": MixpanelExport(
            api_url=dg.EnvVar("INBOXGRAPH_MIXPANEL_API_URL"),
            project_id=dg.EnvVar("INBOXGRAPH_MIXPANEL_PROJECT_ID"),
            username=dg.EnvVar("INBOXGRAPH_MIXPANEL_USERNAME"),
            secret=dg.EnvVar("INBOXGRAPH_MIXPANEL_SECRET"),
            start_date=dg.EnvVar("INBOXGRAPH_MIXPANEL_START_DATE"),
            landing_url=LANDING,
            home=HOME,
        ),
        "crm": HubspotContactsSource(landing_url=LANDING, home=HOME),
        "shop_db": ShopDatabase(url=dg.EnvVar("INBOXGRAPH_SHOP_DB_URL"), home=HOME),
        "enrichment_files": EnrichmentSource(landing_url=LANDING, home=HOME),
    }
