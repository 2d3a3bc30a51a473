"""The window Dagster names to the incremental event models (macro received_dates): every
received date whose lake partition was written since the oldest of their last builds."""

from __future__ import annotations

import dagster as dg

from inboxgraph.assets.warehouse import INCREMENTAL_EVENT_MODELS, received_dates

WEB, ESP = "web_received_dates", "esp_received_dates"


def _landed(instance: dg.DagsterInstance, source: str, *days: str) -> None:
    for day in days:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=dg.AssetKey(["lake", source]), partition=day)
        )


def _built(instance: dg.DagsterInstance, *models: str) -> None:
    for model in models:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=dg.AssetKey(["warehouse", model]))
        )


def test_the_window_is_every_day_landed_since_the_oldest_build() -> None:
    instance = dg.DagsterInstance.ephemeral()
    web_models = [key.path[-1] for key in INCREMENTAL_EVENT_MODELS[WEB][1]]
    assert len(web_models) == 3

    _landed(instance, "web_events", "2026-11-01", "2026-11-02")
    assert received_dates(instance, WEB) is None, "never built here: the models read every day"

    _built(instance, *web_models, "stg_esp__events")
    assert received_dates(instance, WEB) == []
    assert received_dates(instance, ESP) == []

    # A new day of Segment's and an older day of GA4's landed again: one web window.
    _landed(instance, "web_events", "2026-11-03")
    _landed(instance, "ga4_events", "2026-11-01")
    assert received_dates(instance, WEB) == ["2026-11-01", "2026-11-03"]
    assert received_dates(instance, ESP) == []

    # A run that built only the parse leaves both days to the models it did not build.
    _built(instance, "int_web__events_parsed")
    assert received_dates(instance, WEB) == ["2026-11-01", "2026-11-03"]
    _built(instance, *web_models)
    assert received_dates(instance, WEB) == []

    # The ESP window follows the ESP lake and the models that read it, the links among them.
    _landed(instance, "esp_events", "2026-11-03", "2026-11-03")
    assert received_dates(instance, ESP) == ["2026-11-03"]
    assert received_dates(instance, WEB) == []
    _built(instance, "stg_esp__events")
    assert received_dates(instance, ESP) == ["2026-11-03"], "the links have not read it yet"
    _built(instance, "int_identity__links_collected")
    assert received_dates(instance, ESP) == []
