"""The incentives room's definitions; the code location merges them (`dg.Definitions.merge`)."""

import dagster as dg

from propensity_assets.incentives.recommender_assets import assets as recommender_assets
from propensity_assets.incentives.retail_assets import GROUP as RETAIL_GROUP
from propensity_assets.incentives.retail_assets import assets as retail_assets
from propensity_assets.incentives.resources import IncentiveStudiesResource
from propensity_assets.incentives.study_assets import assets as study_assets
from propensity_assets.incentives.sensors import incentive_study_sync_sensor

incentives_job = dg.define_asset_job(
    "incentives_job",
    selection=dg.AssetSelection.groups("incentives"),
    description="One incentive study end to end: data, graph, effects, refutations, recommender.",
)

retail_incentives_job = dg.define_asset_job(
    "retail_incentives_job",
    selection=dg.AssetSelection.groups(RETAIL_GROUP),
    description="The retail campaign studies of the product groups: study tables, verdicts, recommendations.",
)

defs = dg.Definitions(
    assets=[*study_assets, *recommender_assets, *retail_assets],
    jobs=[incentives_job, retail_incentives_job],
    sensors=[incentive_study_sync_sensor],
    resources={"incentive_studies": IncentiveStudiesResource()},
)
