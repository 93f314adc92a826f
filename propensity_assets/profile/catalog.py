"""The lake's SQL catalogue, rewritten after each profile run (CONTRACTS §5: data/lake.duckdb)."""

import dagster as dg

from propensity_assets.shared import sql_catalog, tables
from propensity_assets.shared.metadata import md_table
from propensity_assets.shared.resources import LakeResource

ASSET = "sql_catalog"


@dg.asset(
    name=ASSET,
    group_name="profile",
    kinds={"duckdb"},
    deps=[tables.CUSTOMER_PROFILE],
    # After every profile run, whichever date it rebuilt.
    automation_condition=(
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ),
)
def sql_catalog_asset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """A DuckDB database beside the lake (`data/lake.duckdb`) with one view per lake table over
    its committed Parquet files (Hive partitions as columns), so `select count(*) from
    customer_profile` works in any DuckDB client. Rewritten atomically after each profile run;
    the views read the files at query time, so later partitions show without a rewrite.
    `propensity-assets sql-catalog --spark-sql` prints the Spark SQL equivalent."""
    path = sql_catalog.default_path(lake.lake)
    written = sql_catalog.write_duckdb(lake.lake, path)
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)),
        "views": len(written),
        "tables": md_table([{"view": t.name, "partitioned by": ", ".join(t.partition_keys) or "-", "files": t.files}
                            for t in written]),
    })
