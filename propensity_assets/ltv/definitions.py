"""The ltv room's definitions: its labels and the shared lifecycle's assets, jobs and sensors."""

import dagster as dg

from propensity_assets.ltv.assets import labels_job, labels_schedule, lifecycle, ltv_labels, ltv_cohorts


defs = dg.Definitions(
    assets=[ltv_labels, *lifecycle.assets, ltv_cohorts],
    jobs=[*lifecycle.jobs, labels_job],
    schedules=[labels_schedule],
    sensors=lifecycle.sensors,
)
