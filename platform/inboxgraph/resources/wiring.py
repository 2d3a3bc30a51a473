"""The resources of the embedded default, every field read through dg.EnvVar."""

from __future__ import annotations

import dagster as dg

from inboxgraph.partitions import EVENT_SOURCES
from inboxgraph.resources.crm_api import HubspotPull, SalesforcePull
from inboxgraph.resources.esp_api import BrazeApi, KlaviyoApi, MailchimpApi
from inboxgraph.resources.lake import LakeResource
from inboxgraph.resources.mixpanel import MixpanelExport
from inboxgraph.resources.sources import (
    SALESFORCE_FOLDERS,
    EnrichmentSource,
    EventFolderSource,
    HubspotContactsSource,
    SalesforceRecordsSource,
    ShopDatabase,
)

HOME = dg.EnvVar("INBOXGRAPH_HOME")
# The ESPs audiences are synced to (inboxgraph.destinations), each on when its key is set.
ESP_RESOURCES = ("mailchimp_api", "klaviyo_api", "braze_api")
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
        "hubspot_api": HubspotPull(
            token=dg.EnvVar("INBOXGRAPH_HUBSPOT_TOKEN"),
            api_url=dg.EnvVar("INBOXGRAPH_HUBSPOT_API_URL"),
            landing_url=LANDING,
            home=HOME,
        ),
        "salesforce_api": SalesforcePull(
            instance_url=dg.EnvVar("INBOXGRAPH_SALESFORCE_INSTANCE_URL"),
            token=dg.EnvVar("INBOXGRAPH_SALESFORCE_TOKEN"),
            client_id=dg.EnvVar("INBOXGRAPH_SALESFORCE_CLIENT_ID"),
            client_secret=dg.EnvVar("INBOXGRAPH_SALESFORCE_CLIENT_SECRET"),
            landing_url=LANDING,
            home=HOME,
        ),
        **{
            f"{source}_source": SalesforceRecordsSource(
                source=source, landing_url=LANDING, home=HOME
            )
            for source in SALESFORCE_FOLDERS
        },
        "mailchimp_api": MailchimpApi(
            api_key=dg.EnvVar("INBOXGRAPH_MAILCHIMP_API_KEY"),
            list_id=dg.EnvVar("INBOXGRAPH_MAILCHIMP_LIST_ID"),
            api_url=dg.EnvVar("INBOXGRAPH_MAILCHIMP_API_URL"),
        ),
        "klaviyo_api": KlaviyoApi(
            api_key=dg.EnvVar("INBOXGRAPH_KLAVIYO_API_KEY"),
            list_id=dg.EnvVar("INBOXGRAPH_KLAVIYO_LIST_ID"),
            api_url=dg.EnvVar("INBOXGRAPH_KLAVIYO_API_URL"),
        ),
        "braze_api": BrazeApi(
            api_key=dg.EnvVar("INBOXGRAPH_BRAZE_API_KEY"),
            api_url=dg.EnvVar("INBOXGRAPH_BRAZE_API_URL"),
        ),
        "shop_db": ShopDatabase(url=dg.EnvVar("INBOXGRAPH_SHOP_DB_URL"), home=HOME),
        "enrichment_files": EnrichmentSource(landing_url=LANDING, home=HOME),
    }
