"""The audiences room's definitions: the audiences asset and the job the launchpad runs it by."""

import dagster as dg

from propensity_assets.audiences.assets import audiences
from propensity_assets.shared import tables

audiences_job = dg.define_asset_job(
    "audiences_job",
    selection=[tables.AUDIENCES],
    description="Choose one campaign's audience at one as_of (the rule is the launchpad's config).",
)

defs = dg.Definitions(assets=[audiences], jobs=[audiences_job])
