"""The incentives room's definitions; the code location merges them (`dg.Definitions.merge`)."""

import dagster as dg

from propensity_assets.incentives.assets import assets
from propensity_assets.incentives.resources import IncentiveStudiesResource
from propensity_assets.incentives.sensors import incentive_study_sync_sensor

incentives_job = dg.define_asset_job(
    "incentives_job",
    selection=dg.AssetSelection.groups("incentives"),
    description="One incentive study end to end: data, graph, effects, refutations, recommender.",
)

defs = dg.Definitions(
    assets=assets,
    jobs=[incentives_job],
    sensors=[incentive_study_sync_sensor],
    resources={"incentive_studies": IncentiveStudiesResource()},
)
