"""The lifecycle's jobs, schedules and the sensor that chains the daily cycle.

Daily cycle: when the household features of the latest as_of succeed (`daily_features_job`,
05:00), group features and every stage's scores for that as_of across all groups, in one
run; the profile follows by its automation condition. Each stage's labels for the newest
complete label window (as_of = today − its horizon) are computed daily too, so the weekly
retraining of every stage (Fridays 06:00) finds them. "Today" is the schedule's tick date,
or PROPENSITY_TODAY for data that ended in the past, like the embedded dataset.
"""

from datetime import timedelta

import dagster as dg

from propensity_assets.shared import tables
from propensity_assets.shared.partitions import as_of_partitions, group_range_tags, latest_cutoff, today

# The daily cycle's first job (the features room's); named here so this room imports none of it.
DAILY_FEATURES_JOB = "daily_features_job"

# The shared lifecycle tags its assets by step, so these jobs cover every modelling stage.
SCORE_ASSETS = dg.AssetSelection.tag("lifecycle/step", "score")
TRAIN_ASSETS = dg.AssetSelection.tag("lifecycle/step", "train") | dg.AssetSelection.tag("lifecycle/step", "vet")

daily_scoring_job = dg.define_asset_job(
    "daily_scoring_job",
    selection=dg.AssetSelection.assets(tables.GROUP_FEATURES) | SCORE_ASSETS,
    description="Group features and every stage's champion scores for one as_of × product groups.",
)

weekly_training_job = dg.define_asset_job(
    "weekly_training_job",
    selection=TRAIN_ASSETS,
    description="Retrain every stage's model for every group at the weekly cutoff, then vet and promote.",
)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    request_job=daily_scoring_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"When the daily household features ({DAILY_FEATURES_JOB}) succeed, score that as_of for all "
    "groups in one run.",
)
def score_after_features(context: dg.RunStatusSensorContext):
    if context.dagster_run.job_name != DAILY_FEATURES_JOB:
        return dg.SkipReason(f"{context.dagster_run.job_name} is not {DAILY_FEATURES_JOB}")
    as_of = context.dagster_run.tags.get("dagster/partition")
    if not as_of:
        return dg.SkipReason("the features run had no single as_of partition")
    tags = group_range_tags(context.instance, as_of)
    return dg.RunRequest(run_key=f"scores:{as_of}:{context.dagster_run.run_id}", tags=tags)


def labels_schedule(asset_name: str, horizon_days, minute: int = 30) -> tuple:
    """A job and a daily schedule for one stage's labels at the newest as_of whose label
    window has closed (today − horizon). `horizon_days` is read at each tick."""
    job = dg.define_asset_job(
        f"{asset_name}_job",
        selection=[asset_name],
        description=f"{asset_name} for as_of × product groups (the window must lie inside the data).",
    )

    @dg.schedule(
        name=f"daily_{asset_name}_schedule",
        job=job,
        cron_schedule=f"{minute} 5 * * *",
        description=f"Daily: {asset_name} for the newest as_of whose label window has closed (today − horizon).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        horizon = horizon_days()
        as_of = (today(context.scheduled_execution_time) - timedelta(days=horizon)).isoformat()
        keys = as_of_partitions.get_partition_keys()
        if as_of not in keys:
            # Unlike features and training, labels cannot fall back to the last partition (its
            # window would run past the data); a run for a missing partition can only fail.
            return dg.SkipReason(
                f"{asset_name} as_of {as_of} (today − {horizon}) is not an as_of partition ({keys[0]} .. {keys[-1]}); "
                "set PROPENSITY_TODAY for data that ended in the past, or PROPENSITY_AS_OF_END"
            )
        return dg.RunRequest(run_key=f"{asset_name}:{as_of}", tags=group_range_tags(context.instance, as_of))

    return job, _schedule


@dg.schedule(
    job=weekly_training_job,
    cron_schedule="0 6 * * 5",
    description="Weekly (Fridays): retrain, vet and promote every stage's model for every group at the latest cutoff.",
)
def weekly_training_schedule(context: dg.ScheduleEvaluationContext):
    cutoff = latest_cutoff(today(context.scheduled_execution_time))
    return dg.RunRequest(run_key=f"training:{cutoff}", tags=group_range_tags(context.instance, cutoff))

