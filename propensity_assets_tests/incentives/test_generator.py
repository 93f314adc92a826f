"""The generator against the structural model of INCENTIVES.md §1."""

import numpy as np
import pytest

from propensity_assets.incentives.generator import GeneratorConfig, adoption_uplift, generate_software_company


@pytest.fixture(scope="module")
def big():
    return generate_software_company(GeneratorConfig(n=200_000, seed=7))


def test_marginals_follow_the_model(big):
    assert big["Global Flag"].mean() == pytest.approx(0.2, abs=0.005)
    assert big["SMC Flag"].mean() == pytest.approx(0.5, abs=0.005)
    assert big["Commercial Flag"].mean() == pytest.approx(0.7, abs=0.005)
    assert big["Size"].mean() == pytest.approx(110_000, rel=0.01)  # Exp(100k) + U(5k, 15k)
    assert big["PC Count"].mean() == pytest.approx(57, abs=0.6)  # Exp(50) + U(5, 10), truncated
    assert big["Tech Support"].dtype.kind in "iu" and set(big["Tech Support"].unique()) == {0, 1}


def test_effects_follow_the_model(big):
    tau_ts = 5_000 + 500 * big["Global Flag"] + 0.02 * big["Size"]
    assert np.allclose(big["Direct Treatment Effect: Tech Support"], tau_ts)
    assert np.allclose(big["Total Treatment Effect: Tech Support"] - tau_ts, 786.94, atol=0.01)
    assert np.allclose(big["Total Treatment Effect: Discount"], -1_000 * big["Global Flag"] + 0.05 * big["Size"])
    assert (big["Total Treatment Effect: New Engagement Strategy"] == 0).all()
    assert 2_000 * adoption_uplift(0.0) == pytest.approx(924.23, abs=0.01)
    # The mediator's uplift in the sample matches the truth column's
    by_ts = big.groupby("Tech Support")["New Product Adoption"].mean()
    assert 2_000 * (by_ts[1] - by_ts[0]) == pytest.approx(786.94, abs=15)
    # Revenue's residual after the true structural terms has sd 1,000
    resid = (big["Revenue"] - tau_ts * big["Tech Support"] - big["Total Treatment Effect: Discount"] * big["Discount"]
             - 2_000 * big["New Product Adoption"] - 2_000 * big["Major Flag"] - 5_000 * big["Commercial Flag"]
             - 0.25 * big["IT Spend"] - 5_000)
    assert resid.std() == pytest.approx(1_000, rel=0.02)


def test_seeded_and_near_deterministic_assignment():
    a = generate_software_company(GeneratorConfig(n=500, seed=3))
    b = generate_software_company(GeneratorConfig(n=500, seed=3))
    assert a.equals(b)
    hard = generate_software_company(GeneratorConfig(n=20_000, seed=3, assignment_strength=10))
    # Tech Support now almost follows IT Spend > 46,500
    agree = ((hard["IT Spend"] > 46_500).astype(int) == hard["Tech Support"]).mean()
    assert agree > 0.85  # 0.5 under the published model
