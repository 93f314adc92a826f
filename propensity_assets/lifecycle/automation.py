"""The lifecycle's jobs, schedules and the sensor that chains the daily cycle.

Daily cycle: when the household features of the latest as_of succeed (`daily_features_job`,
05:00), group features and every stage's scores for that as_of across all groups, in one
run; the profile follows by its automation condition. Each stage's labels for the newest
complete label window are computed daily too (`lifecycle.label_assets`), so the weekly
retraining of every stage (Fridays 06:00) finds them. "Today" is the schedule's tick date,
or PROPENSITY_TODAY for data that ended in the past, like the embedded dataset.
"""

import dagster as dg

from propensity_assets.shared import tables
from propensity_assets.shared.partitions import group_range_tags, latest_cutoff, today

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

decay_job = dg.define_asset_job(
    "decay_job",
    selection=dg.AssetSelection.tag("lifecycle/step", "monitor"),
    description="Every stage's decay curves for product groups (the retrain sensors read them).",
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


@dg.schedule(
    job=weekly_training_job,
    cron_schedule="0 6 * * 5",
    description="Weekly (Fridays): retrain, vet and promote every stage's model for every group at the latest cutoff.",
)
def weekly_training_schedule(context: dg.ScheduleEvaluationContext):
    cutoff = latest_cutoff(today(context.scheduled_execution_time))
    return dg.RunRequest(run_key=f"training:{cutoff}", tags=group_range_tags(context.instance, cutoff))

