"""The incentive-study catalogue file as a resource (default data/incentive_studies.yaml)."""

import os

import dagster as dg

from propensity_assets import settings


def incentive_studies_file() -> str:
    return os.environ.get("PROPENSITY_INCENTIVE_STUDIES", str(settings.data_dir() / "incentive_studies.yaml"))


class IncentiveStudiesResource(dg.ConfigurableResource):
    """The incentive-study catalogue (CONTRACTS §9)."""

    path: str = incentive_studies_file()
