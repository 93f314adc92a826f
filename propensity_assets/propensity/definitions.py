"""The propensity room's definitions: its labels and the shared lifecycle's assets, jobs and sensors."""

import dagster as dg

from propensity_assets.propensity.assets import labels_job, labels_schedule, lifecycle, propensity_labels


defs = dg.Definitions(
    assets=[propensity_labels, *lifecycle.assets],
    jobs=[*lifecycle.jobs, labels_job],
    schedules=[labels_schedule],
    sensors=lifecycle.sensors,
)
