"""The Dagster code location: every room's definitions, merged."""

import warnings

import dagster as dg

# Single-run backfill policies are what make a year of features one Spark job.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from propensity_assets.audiences import definitions as audiences  # noqa: E402
from propensity_assets.features import definitions as features  # noqa: E402
from propensity_assets.groups import definitions as groups  # noqa: E402
from propensity_assets.incentives import definitions as incentives  # noqa: E402
from propensity_assets.ingest import definitions as ingest  # noqa: E402
from propensity_assets.lifecycle import definitions as lifecycle  # noqa: E402
from propensity_assets.ltv import definitions as ltv  # noqa: E402
from propensity_assets.profile import definitions as profile  # noqa: E402
from propensity_assets.propensity import definitions as propensity  # noqa: E402
from propensity_assets.shared import definitions as shared  # noqa: E402


def _merge() -> dg.Definitions:
    # The stages whose scores the profile assembles (it reads the columns they declare).
    stages = dg.Definitions.merge(propensity.defs, ltv.defs, incentives.defs)
    return dg.Definitions.merge(
        shared.defs, ingest.defs, groups.defs, features.defs, lifecycle.defs, stages, profile.definitions(stages),
        audiences.defs,
    )


# The one Definitions object at module scope: Dagster's loader refuses a module with two.
defs = _merge()
