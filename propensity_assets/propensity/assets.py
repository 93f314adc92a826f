"""The propensity room: its labels and model → champion → scores → decay, from the shared
lifecycle and the stage's declaration (`propensity.stage`)."""

from propensity_assets.lifecycle.assets import stage_definitions
from propensity_assets.lifecycle.label_assets import labels_definitions
from propensity_assets.propensity.stage import PROPENSITY, PropensityTraining

propensity_labels, labels_job, labels_schedule = labels_definitions(PROPENSITY)
lifecycle = stage_definitions(PROPENSITY, PropensityTraining, decay_step_days=1)
