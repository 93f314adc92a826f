"""The ingest room's definitions: the raw tables, validated, and the job that loads them."""

import dagster as dg

from propensity_assets.ingest.assets import raw_assets
from propensity_assets.ingest.resources import SourceResource

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingest"),
    description="Load and validate the raw tables, and resolve the product groups.",
)

defs = dg.Definitions(assets=raw_assets, jobs=[ingest_job], resources={"source": SourceResource()})
