"""The features room's definitions: household and group features, and the daily job that
starts the scoring cycle."""

import dagster as dg

from propensity_assets.features.assets import group_features, household_features
from propensity_assets.features.automation import daily_features_job, daily_features_schedule

defs = dg.Definitions(
    assets=[household_features, group_features],
    jobs=[daily_features_job],
    schedules=[daily_features_schedule],
)
