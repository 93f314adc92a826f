"""What every room's assets share at run time: the lake, MLflow and Spark resources, and the
executor."""

import dagster as dg

from propensity_assets.shared.resources import shared_resources

defs = dg.Definitions(
    resources=shared_resources(),
    # One process per run: Spark assets share one JVM instead of starting one per step.
    executor=dg.in_process_executor,
)
