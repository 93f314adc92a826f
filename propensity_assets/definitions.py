"""The Dagster code location: each room's definitions, merged, plus the profile that
assembles what the modelling stages declare, and the cross-cutting automation."""

import warnings

import dagster as dg

# Single-run backfill policies are what make a year of features one Spark job.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from propensity_assets import schedules  # noqa: E402
from propensity_assets.features.assets import group_features, household_features  # noqa: E402
from propensity_assets.groups.assets import product_group_members, product_group_sync_sensor  # noqa: E402
from propensity_assets.ingest.assets import raw_assets  # noqa: E402
from propensity_assets.profile.assets import profile_asset, sources_from  # noqa: E402
from propensity_assets.incentives import definitions as incentives  # noqa: E402
from propensity_assets.ltv import assets as ltv  # noqa: E402
from propensity_assets.propensity import assets as propensity  # noqa: E402
from propensity_assets.resources import default_resources  # noqa: E402

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingest"),
    description="Load and validate the raw tables, and resolve the product groups.",
)

# The modelling stages: each room exports `defs`; the profile assembles what they declare.
STAGE_ROOMS = [propensity, ltv]

# Evaluates automation conditions (the profile follows any change of its date's scores).
automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_condition_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)


def build_definitions() -> dg.Definitions:
    foundation = dg.Definitions(
        assets=[*raw_assets, product_group_members, household_features, group_features],
        jobs=[ingest_job],
        sensors=[product_group_sync_sensor],
    )
    stages = dg.Definitions.merge(*(room.defs for room in STAGE_ROOMS))
    return dg.Definitions.merge(
        foundation,
        stages,
        incentives.defs,
        dg.Definitions(
            assets=[profile_asset(sources_from(stages.assets))],
            jobs=schedules.jobs,
            schedules=schedules.schedules,
            sensors=[automation_sensor, *schedules.sensors],
            resources=default_resources(),
            # One process per run: Spark assets share one JVM instead of starting one per step.
            executor=dg.in_process_executor,
        ),
    )


defs = build_definitions()
