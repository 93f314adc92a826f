"""The Dagster code location: every stage's assets, checks, sensors and jobs."""


import warnings

import dagster as dg

# Single-run backfill policies are what make a year of features one Spark job.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from propensity_assets.features.assets import group_features, household_features
from propensity_assets.groups.assets import product_group_members, product_group_sync_sensor
from propensity_assets.ingest.assets import raw_assets
from propensity_assets.resources import default_resources

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingest"),
    description="Load and validate the raw tables, and resolve the product groups.",
)

defs = dg.Definitions(
    assets=[*raw_assets, product_group_members, household_features, group_features],
    jobs=[ingest_job],
    sensors=[product_group_sync_sensor],
    resources=default_resources(),
    # One process per run: Spark assets share one JVM instead of starting one per step.
    executor=dg.in_process_executor,
)
