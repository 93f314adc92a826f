"""The first step of the daily cycle (05:00): household features for the latest as_of.
When it succeeds, the lifecycle scores that as_of for every group (`lifecycle.automation`)."""

import dagster as dg

from propensity_assets.shared import tables
from propensity_assets.shared.freshness import DAILY_CYCLE_CRON
from propensity_assets.shared.partitions import latest_as_of, today

DAILY_FEATURES_JOB = "daily_features_job"

daily_features_job = dg.define_asset_job(
    DAILY_FEATURES_JOB,
    selection=[tables.HOUSEHOLD_FEATURES],
    description="Household features for one as_of (the first step of the daily cycle).",
)


@dg.schedule(
    job=daily_features_job,
    cron_schedule=DAILY_CYCLE_CRON,
    description="Daily: household features for the latest as_of; scoring and the profile follow.",
)
def daily_features_schedule(context: dg.ScheduleEvaluationContext):
    as_of = latest_as_of(today(context.scheduled_execution_time))
    return dg.RunRequest(run_key=f"features:{as_of}", partition_key=as_of)
