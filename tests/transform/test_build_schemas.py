"""A build goes into schemas of its own (dbt/macros/generate_schema_name.sql): the real `dbt build` with the
build's name as a var puts every model there and nowhere else, and a name that is not a build's is refused. The
warm runner parses the project once and points a copy of the manifest at each build's schemas."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from transform_harness import DbtWarehouse

from syno_transform.dbt_runner import project_fingerprint
from syno_transform.snapshots import new_build_id

pytestmark = pytest.mark.integration

SNAPSHOT_ID = "build-schemas-snapshot"
SHEETS = {
    "2024": pl.DataFrame(
        {
            "PI": ["INV-1", "INV-2"],
            "InvDate": [date(2024, 2, 10), date(2024, 5, 3)],
            "Customer": ["Bolt SARL", "Acme GmbH"],
            "Country": ["France", "Germany"],
            "Product": ["RS822+", "RS822+"],
            "Quantity": [1, 2],
            "Total": [1500.0, 3000.0],
            "Currency": ["USD", "USD"],
        }
    )
}
MARTS = [
    "c2_adoption_scorecard",
    "commercial_activation_snapshot",
    "sellout_quarterly",
    "svr_rm_customer_quarterly",
    "svr_rm_quarterly",
]


def test_every_model_of_a_build_lands_in_the_builds_own_schemas(dbt_warehouse: DbtWarehouse) -> None:
    dbt_warehouse.load_sheets(SNAPSHOT_ID, SHEETS)
    build_id = new_build_id(SNAPSHOT_ID)

    build = dbt_warehouse.dbt.build(SNAPSHOT_ID, {"top_customers": 20}, build_id)

    assert build.is_success, (build.failed_nodes, build.error)
    assert (build.marts_schema, build.marts) == (f"{build_id}_marts", MARTS)
    relations = dbt_warehouse.fetch(
        "select table_schema, count(*) as relations from information_schema.tables"
        " where table_schema not in ('pg_catalog', 'information_schema', 'raw', 'ref', 'ops', 'public')"
        " group by table_schema order by table_schema"
    )
    assert relations["table_schema"].to_list() == [
        f"{build_id}_{layer}" for layer in ("intermediate", "marts", "staging")
    ]
    tiers = dbt_warehouse.fetch(f"select quarter, tier, quantity from {build_id}_marts.svr_rm_quarterly order by 1")
    assert tiers.rows() == [(date(2024, 1, 1), "T1", 1), (date(2024, 4, 1), "T1", 2)]


def test_a_schema_prefix_that_is_not_a_build_name_is_refused(dbt_warehouse: DbtWarehouse) -> None:
    dbt_warehouse.load_sheets(SNAPSHOT_ID, SHEETS)

    build = dbt_warehouse.dbt.build(SNAPSHOT_ID, {"top_customers": 20}, "marts; drop schema ops")

    assert not build.is_success
    assert "build_schema_prefix must look like b_<12 hex>_<8 hex>" in (build.error or "")
    schemas = dbt_warehouse.fetch("select schema_name from information_schema.schemata where schema_name like '%mart%'")
    assert schemas["schema_name"].to_list() == ["marts"]  # the stable schema the migrations made; nothing built


def test_publication_turns_marts_built_in_place_into_views_and_follows_changed_columns(
    dbt_warehouse: DbtWarehouse,
) -> None:
    """A warehouse from before publication has marts.* as tables: the first publication replaces them with views
    over the build, in its transaction. A later build whose mart lost a column is published too (the view is
    made again, not replaced in place, which PostgreSQL refuses)."""
    dbt_warehouse.load_sheets(SNAPSHOT_ID, SHEETS)
    dbt_warehouse.build(SNAPSHOT_ID)  # the old way: straight into marts.*
    first, second = new_build_id(SNAPSHOT_ID), new_build_id(SNAPSHOT_ID)
    for build_id in (first, second):
        assert dbt_warehouse.dbt.build(SNAPSHOT_ID, {"top_customers": 20}, build_id).is_success
    dbt_warehouse.execute(f"alter table {second}_marts.svr_rm_quarterly drop column revenue_usd")

    dbt_warehouse.publish(first, MARTS)
    kinds = "select table_name, table_type from information_schema.tables where table_schema = 'marts' order by 1"
    assert dbt_warehouse.fetch(kinds).rows() == [(mart, "VIEW") for mart in MARTS]
    columns = "select column_name from information_schema.columns where table_schema = $1 and table_name = $2"
    assert dbt_warehouse.fetch(columns, "marts", "svr_rm_quarterly")["column_name"].to_list() == [
        "quarter",
        "tier",
        "quantity",
        "revenue_usd",
    ]

    dbt_warehouse.publish(second, MARTS)
    assert dbt_warehouse.fetch(columns, "marts", "svr_rm_quarterly")["column_name"].to_list() == [
        "quarter",
        "tier",
        "quantity",
    ]
    tiers = dbt_warehouse.fetch("select quarter, tier, quantity from marts.svr_rm_quarterly order by 1")
    assert tiers.rows() == [(date(2024, 1, 1), "T1", 1), (date(2024, 4, 1), "T1", 2)]


def test_builds_on_one_warm_runner_parse_once_and_each_lands_in_its_own_schemas(dbt_warehouse: DbtWarehouse) -> None:
    """Two builds on one runner: the project is parsed once, and each build's tables are in its own schemas with
    the same rows (the second build is not written over the first's tables by a stale manifest)."""
    dbt_warehouse.load_sheets(SNAPSHOT_ID, SHEETS)
    first, second = new_build_id(SNAPSHOT_ID), new_build_id(SNAPSHOT_ID)

    builds = [dbt_warehouse.dbt.build(SNAPSHOT_ID, {"top_customers": 20}, build_id) for build_id in (first, second)]

    assert [(build.is_success, build.marts_schema, build.marts) for build in builds] == [
        (True, f"{first}_marts", MARTS),
        (True, f"{second}_marts", MARTS),
    ]
    assert dbt_warehouse.dbt.parses == 1
    for build_id in (first, second):
        tiers = dbt_warehouse.fetch(f"select quarter, tier, quantity from {build_id}_marts.svr_rm_quarterly order by 1")
        assert tiers.rows() == [(date(2024, 1, 1), "T1", 1), (date(2024, 4, 1), "T1", 2)]


def test_the_kept_manifest_is_stale_once_a_project_file_changes(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "target").mkdir()
    model = tmp_path / "models" / "a.sql"
    model.write_text("select 1")
    before = project_fingerprint(tmp_path)
    (tmp_path / "target" / "manifest.json").write_text("{}")  # dbt's own output is not the project
    assert project_fingerprint(tmp_path) == before
    model.write_text("select 2 as changed")
    assert project_fingerprint(tmp_path) != before
