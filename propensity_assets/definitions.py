"""The Dagster code location: every stage's assets, checks, sensors, jobs and schedules."""

import warnings

import dagster as dg

# Single-run backfill policies are what make a year of features one Spark job.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from propensity_assets import schedules  # noqa: E402
from propensity_assets.features.assets import group_features, household_features  # noqa: E402
from propensity_assets.groups.assets import product_group_members, product_group_sync_sensor  # noqa: E402
from propensity_assets.ingest.assets import raw_assets  # noqa: E402
from propensity_assets.profile.assets import customer_profile  # noqa: E402
from propensity_assets.propensity.assets import (  # noqa: E402
    propensity_champion,
    propensity_labels,
    propensity_model,
    propensity_scores,
)
from propensity_assets.propensity.sensors import champion_rescore_sensor  # noqa: E402
from propensity_assets.resources import default_resources  # noqa: E402

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingest"),
    description="Load and validate the raw tables, and resolve the product groups.",
)

# Evaluates automation conditions (the profile follows any change of its date's scores).
automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_condition_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)

defs = dg.Definitions(
    assets=[
        *raw_assets,
        product_group_members,
        household_features,
        group_features,
        propensity_labels,
        propensity_model,
        propensity_champion,
        propensity_scores,
        customer_profile,
    ],
    jobs=[ingest_job, *schedules.jobs],
    schedules=schedules.schedules,
    sensors=[product_group_sync_sensor, champion_rescore_sensor, automation_sensor, *schedules.sensors],
    resources=default_resources(),
    # One process per run: Spark assets share one JVM instead of starting one per step.
    executor=dg.in_process_executor,
)
