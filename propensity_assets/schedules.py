"""Jobs, schedules and the sensors that chain them.

Daily cycle (05:00): household features for the latest as_of; when that succeeds,
group features and every stage's scores for that as_of across all groups, in one run;
the profile follows by its automation condition. Each stage's labels for the newest
complete label window (as_of = today − its horizon) are computed daily too, so the
weekly retraining of every stage (Fridays 06:00) finds them. "Today" is the schedule's tick date, or PROPENSITY_TODAY for data that
ended in the past, like the embedded dataset.
"""

from datetime import date, datetime, timedelta

import dagster as dg

from propensity_assets import settings
from propensity_assets.partitions import (
    as_of_partitions,
    cutoff_partitions,
    group_range_tags,
)

daily_features_job = dg.define_asset_job(
    "daily_features_job",
    selection=["household_features"],
    description="Household features for one as_of (the first step of the daily cycle).",
)

# The shared lifecycle tags its assets by step, so these jobs cover every modelling stage.
SCORE_ASSETS = dg.AssetSelection.tag("lifecycle/step", "score")
TRAIN_ASSETS = dg.AssetSelection.tag("lifecycle/step", "train") | dg.AssetSelection.tag("lifecycle/step", "vet")

daily_scoring_job = dg.define_asset_job(
    "daily_scoring_job",
    selection=dg.AssetSelection.assets("group_features") | SCORE_ASSETS,
    description="Group features and every stage's champion scores for one as_of × product groups.",
)

weekly_training_job = dg.define_asset_job(
    "weekly_training_job",
    selection=TRAIN_ASSETS,
    description="Retrain every stage's model for every group at the weekly cutoff, then vet and promote.",
)

profile_job = dg.define_asset_job(
    "profile_job",
    selection=["customer_profile"],
    description="Rebuild the customer profile for one as_of.",
)


def today(scheduled: datetime | None = None) -> date:
    configured = settings.today()
    if configured:
        return date.fromisoformat(configured)
    return (scheduled or datetime.now()).date()


def latest_as_of(now: date) -> str:
    """The newest as_of partition on or before `now`: features as of today use data before today."""
    keys = as_of_partitions.get_partition_keys()
    eligible = [k for k in keys if k <= now.isoformat()]
    if not eligible:
        raise ValueError(f"no as_of partition on or before {now}")
    return eligible[-1]


def latest_cutoff(now: date) -> str:
    keys = [k for k in cutoff_partitions.get_partition_keys() if k <= now.isoformat()]
    if not keys:
        raise ValueError(f"no weekly cutoff on or before {now}")
    return keys[-1]


@dg.schedule(
    job=daily_features_job,
    cron_schedule="0 5 * * *",
    description="Daily: household features for the latest as_of; scoring and the profile follow.",
)
def daily_features_schedule(context: dg.ScheduleEvaluationContext):
    as_of = latest_as_of(today(context.scheduled_execution_time))
    return dg.RunRequest(run_key=f"features:{as_of}", partition_key=as_of)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[daily_features_job],
    request_job=daily_scoring_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When the daily household features succeed, score that as_of for all groups in one run.",
)
def score_after_features(context: dg.RunStatusSensorContext):
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


jobs = [daily_features_job, daily_scoring_job, weekly_training_job, profile_job]
schedules = [daily_features_schedule, weekly_training_schedule]
sensors = [score_after_features]
