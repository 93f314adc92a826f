"""The lifecycle's own definitions: the jobs and automation that span every modelling stage
(each stage's assets come from its room, built by `lifecycle.assets`)."""

import dagster as dg

from propensity_assets.lifecycle.automation import (
    daily_scoring_job,
    decay_job,
    score_after_features,
    weekly_training_job,
    weekly_training_schedule,
)

defs = dg.Definitions(
    jobs=[daily_scoring_job, decay_job, weekly_training_job],
    schedules=[weekly_training_schedule],
    sensors=[score_after_features],
)
