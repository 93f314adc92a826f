"""The profile room's definitions: the customer profile over whatever the modelling stages
declare, its job, and the sensor that evaluates its automation condition."""

import dagster as dg

from propensity_assets.profile.assets import profile_asset
from propensity_assets.profile.sources import sources_from

from propensity_assets.shared import tables

profile_job = dg.define_asset_job(
    "profile_job",
    selection=[tables.CUSTOMER_PROFILE, tables.LTV_COHORTS],
    description="Rebuild the customer profile, and the LTV cohorts beside it, for one as_of.",
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
        assets=[profile_asset(sources_from(stages.assets))],
        jobs=[profile_job],
        sensors=[automation_sensor],
    )
