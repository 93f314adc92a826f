"""The propensity room: its labels; model → champion → scores → decay from the shared lifecycle."""

import dagster as dg

from propensity_assets.lifecycle.assets import labels_definitions, stage_definitions
from propensity_assets.propensity import labels as label_logic
from propensity_assets.propensity.stage import PROPENSITY, PropensityTraining

propensity_labels, labels_job, labels_schedule = labels_definitions(
    PROPENSITY,
    label_logic.propensity_labels,
    label_logic.LabelWindowError,
    description=(
        "The propensity label (CONTRACTS §4): 1 if the household bought any product of the group on a day "
        "d ≤ day < d + 30, else 0, for every household in the population at d. A partition whose label "
        "window runs past the end of the data is refused."
    ),
    schedule_minute=30,
)
lifecycle = stage_definitions(PROPENSITY, PropensityTraining, decay_step_days=1)
