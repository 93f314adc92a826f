"""The incentive-study catalogue file as a resource (default data/incentive_studies.yaml)."""


import dagster as dg

from propensity_assets.shared import settings


class IncentiveStudiesResource(dg.ConfigurableResource):
    """The incentive-study catalogue (CONTRACTS §9)."""

    path: str = str(settings.incentive_studies_file())
