"""Fixtures for the incentives room: small catalogues and generated studies."""

import textwrap

import pytest

from propensity_assets.incentives.catalog import parse_catalog
from propensity_assets.incentives.generator import GeneratorConfig, generate_software_company

SOFTWARE = textwrap.dedent(
    """
    incentive_studies:
      sw:
        generate: software_company
        generator: {n: 2000, seed: 1}
        outcome: Revenue
        treatments:
          Tech Support: {cost: "100 * `PC Count`"}
          Discount: {cost: 7000}
          New Engagement Strategy: {cost: 0}
        covariates: [Global Flag, Major Flag, SMC Flag, Commercial Flag, IT Spend, Employee Count, PC Count, Size]
        mediators: {New Product Adoption: [Tech Support]}
        other: [Planning Summit]
        effects: {Tech Support: [total, direct], Discount: [total], New Engagement Strategy: [total]}
        knowledge:
          tiers:
            - [Global Flag, Major Flag, SMC Flag, Commercial Flag, IT Spend, Employee Count, PC Count, Size]
            - [Tech Support, Discount, New Engagement Strategy]
            - [New Product Adoption]
            - [Revenue]
            - [Planning Summit]
          required: [[Tech Support, Revenue], [Discount, Revenue], [IT Spend, Tech Support], [IT Spend, Discount], [Revenue, Planning Summit]]
          forbidden: [[Tech Support, Discount], [Discount, Tech Support]]
        expected_graph: [[IT Spend, Tech Support], [Tech Support, Revenue], [Revenue, Planning Summit]]
    """
)


@pytest.fixture(scope="session")
def software_study():
    return parse_catalog(SOFTWARE, "test.yaml")[0]


@pytest.fixture(scope="session")
def accounts_10k():
    """The default study: 10,000 accounts, seed 0 (the issue's quality sample)."""
    return generate_software_company(GeneratorConfig())
