"""The profile room's definitions: the customer profile over whatever the modelling stages
declare, the lake's SQL catalogue after it, its job, and the sensor that evaluates its automation condition."""

import dagster as dg

from propensity_assets.profile.assets import profile_asset
from propensity_assets.profile.catalog import ASSET, sql_catalog_asset
from propensity_assets.profile.sources import sources_from

from propensity_assets.shared import tables

profile_job = dg.define_asset_job(
    "profile_job",
    selection=[tables.CUSTOMER_PROFILE, tables.LTV_COHORTS, ASSET],
    description="Rebuild the customer profile and the LTV cohorts for one as_of, then the lake's SQL catalogue "
    "(data/lake.duckdb).",
)

# Evaluates automation conditions (the profile follows any change of its date's scores).
automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_condition_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)


def definitions(stages: dg.Definitions) -> dg.Definitions:
    """The profile over the profile columns that `stages`' assets declare."""
    return dg.Definitions(
        assets=[profile_asset(sources_from(stages.assets)), sql_catalog_asset],
        jobs=[profile_job],
        sensors=[automation_sensor],
    )
