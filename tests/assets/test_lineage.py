"""The column lineage cache: a run of the same project reuses each model's lineage; a changed
project, or a model whose columns changed, works it out again."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from inboxgraph.lineage import (
    LINEAGE,
    SCHEMA,
    ColumnLineageCache,
    project_fingerprint,
    with_upstream_columns,
)

MANIFEST = {
    "metadata": {"project_name": "inboxgraph"},
    "nodes": {"model.inboxgraph.profiles": {"checksum": {"checksum": "abc"}}},
    "macros": {"macro.inboxgraph.window": {"package_name": "inboxgraph", "macro_sql": "x"}},
}
SCHEMA_V1 = dg.TableSchema(columns=[dg.TableColumn("person_id", "varchar")])
SCHEMA_V2 = dg.TableSchema(
    columns=[dg.TableColumn("person_id", "varchar"), dg.TableColumn("email", "varchar")]
)
LINEAGE_V1 = dg.TableColumnLineage(
    deps_by_column={
        "person_id": [dg.TableColumnDep(dg.AssetKey(["warehouse", "persons"]), "person_id")]
    }
)


def _event(schema: dg.TableSchema, lineage: dg.TableColumnLineage | None = None) -> dg.Output:
    metadata = {"unique_id": "model.inboxgraph.profiles", SCHEMA: schema}
    if lineage is not None:
        metadata[LINEAGE] = lineage
    return dg.Output(None, output_name="profiles", metadata=metadata)


def _lineage(event: dg.Output) -> dg.TableColumnLineage | None:
    value = event.metadata.get(LINEAGE)
    return value.value if value is not None else None


def test_a_run_of_the_same_project_reuses_the_lineage(tmp_path: Path) -> None:
    path = tmp_path / "lineage.json"
    fingerprint = project_fingerprint(MANIFEST)
    first = ColumnLineageCache(path, fingerprint)
    assert not first.reusable, "nothing is cached yet: lineage must be worked out"
    [stored] = first.attach(iter([_event(SCHEMA_V1, LINEAGE_V1)]))
    assert _lineage(stored) == LINEAGE_V1

    second = ColumnLineageCache(path, fingerprint)
    assert second.reusable
    check = dg.AssetCheckResult(passed=True, asset_key=dg.AssetKey("profiles"))
    events = list(second.attach(iter([_event(SCHEMA_V1), check])))
    assert _lineage(events[0]) == LINEAGE_V1, "the cached lineage is attached"
    assert events[1] is check, "other events pass through"


def test_a_changed_project_works_the_lineage_out_again(tmp_path: Path) -> None:
    path = tmp_path / "lineage.json"
    list(
        ColumnLineageCache(path, project_fingerprint(MANIFEST)).attach(
            iter([_event(SCHEMA_V1, LINEAGE_V1)])
        )
    )
    changed = {
        **MANIFEST,
        "macros": {"macro.inboxgraph.window": {"package_name": "inboxgraph", "macro_sql": "y"}},
    }
    assert project_fingerprint(changed) != project_fingerprint(MANIFEST)
    assert not ColumnLineageCache(path, project_fingerprint(changed)).reusable


def test_a_model_whose_columns_changed_gets_no_stale_lineage(tmp_path: Path) -> None:
    path = tmp_path / "lineage.json"
    fingerprint = project_fingerprint(MANIFEST)
    list(ColumnLineageCache(path, fingerprint).attach(iter([_event(SCHEMA_V1, LINEAGE_V1)])))

    cache = ColumnLineageCache(path, fingerprint)
    [event] = cache.attach(iter([_event(SCHEMA_V2)]))
    assert _lineage(event) is None, "the old lineage does not describe the new columns"
    assert not ColumnLineageCache(path, fingerprint).reusable, "the next run works it out"


def test_a_cache_filled_by_a_subset_is_not_reused_for_more(tmp_path: Path) -> None:
    path = tmp_path / "lineage.json"
    fingerprint = project_fingerprint(MANIFEST)
    list(ColumnLineageCache(path, fingerprint).attach(iter([_event(SCHEMA_V1, LINEAGE_V1)])))
    profiles, persons = "model.inboxgraph.profiles", "model.inboxgraph.persons"
    assert ColumnLineageCache(path, fingerprint, building=[profiles]).reusable
    wider = ColumnLineageCache(path, fingerprint, building=[profiles, persons])
    assert not wider.reusable, "persons' lineage is not cached: it must be worked out"
    # Working it out adds to what the cache holds.
    persons_event = dg.Output(
        None,
        output_name="persons",
        metadata={"unique_id": persons, SCHEMA: SCHEMA_V2, LINEAGE: LINEAGE_V1},
    )
    list(wider.attach(iter([persons_event])))
    assert ColumnLineageCache(path, fingerprint, building=[profiles, persons]).reusable


def test_a_model_without_lineage_is_held_so_the_cache_is_reused(tmp_path: Path) -> None:
    path = tmp_path / "lineage.json"
    fingerprint = project_fingerprint(MANIFEST)
    python_model = dg.Output(
        None,
        output_name="resolved",
        metadata={"unique_id": "model.inboxgraph.resolved", SCHEMA: SCHEMA_V1},
    )
    models = ["model.inboxgraph.profiles", "model.inboxgraph.resolved"]
    first = ColumnLineageCache(path, fingerprint, building=models)
    list(first.attach(iter([_event(SCHEMA_V1, LINEAGE_V1), python_model])))
    second = ColumnLineageCache(path, fingerprint, building=models)
    assert second.reusable, "the Python model has no lineage, and is held all the same"
    profiles, resolved = second.attach(iter([_event(SCHEMA_V1), python_model]))
    assert _lineage(profiles) == LINEAGE_V1
    assert _lineage(resolved) is None


def test_each_column_of_the_schema_names_its_upstream_columns() -> None:
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn("email", "varchar", description="Primary address."),
            dg.TableColumn("n", "bigint"),
            dg.TableColumn("as_of", "timestamp"),
        ]
    )
    lineage = dg.TableColumnLineage(
        deps_by_column={
            "email": [
                dg.TableColumnDep(dg.AssetKey(["lake", "hubspot_contacts"]), "email"),
                dg.TableColumnDep(dg.AssetKey(["lake", "shop_customers"]), "email"),
            ],
            "n": [dg.TableColumnDep(dg.AssetKey(["warehouse", "stg_web__events"]), "event_id")],
        }
    )
    metadata = with_upstream_columns({SCHEMA: dg.MetadataValue.table_schema(schema)}, lineage)
    described = {c.name: c.description for c in metadata[SCHEMA].columns}
    assert described == {
        "email": "Primary address. From lake/hubspot_contacts.email, lake/shop_customers.email.",
        "n": "From warehouse/stg_web__events.event_id.",
        "as_of": None,
    }
    assert metadata[LINEAGE] == lineage
    table = metadata["upstream_columns"].value
    assert "| n | warehouse/stg_web__events.event_id |" in table.splitlines()
