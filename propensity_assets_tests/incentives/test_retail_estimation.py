"""The effect on the treated and its household-clustered interval (pure logic)."""

import numpy as np

from propensity_assets.incentives import retail_estimation
from propensity_assets.incentives.retail_study import RetailConfig


def test_att_and_its_clustered_standard_error_by_hand():
    # term = T(Y − m0) − (1 − T)·e/(1 − e)·(Y − m0) = [2, 0, −1, 1] with e = 0.5: ATT = 2 / 2 = 1.
    y, t, e, m0, m1 = [3, 1, 2, 0], [1, 1, 0, 0], [0.5] * 4, [1] * 4, [2] * 4
    att, se, pseudo = retail_estimation.att_from_nuisances(y, t, e, m0, m1, np.array([1, 2, 3, 4]))
    assert att == 1.0
    # influence = (term − T·ATT) / P(T=1) = [2, −2, −2, 2]; one household per row: √16 / 4 = 1.
    assert se == 1.0
    # Households 1 and 3 own rows (1, 3) and (2, 4): cluster sums 0 and 0.
    assert retail_estimation.att_from_nuisances(y, t, e, m0, m1, np.array([1, 3, 1, 3]))[1] == 0.0
    # pseudo = m1 − m0 + T(Y − m1)/e − (1 − T)(Y − m0)/(1 − e)
    assert pseudo.tolist() == [1 + 2, 1 - 2, 1 - 2, 1 + 2]


def test_duplicating_every_household_across_two_campaigns_does_not_shrink_the_clustered_interval():
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.normal(size=(n, 2))
    t = (rng.random(n) < 1 / (1 + np.exp(-x[:, 0]))).astype(int)
    y = 2 * x[:, 0] + x[:, 1] + 1.0 * t + rng.normal(scale=2, size=n)
    households = np.arange(n)
    config = RetailConfig(n_estimators=50)
    once = retail_estimation.estimate_att(x, y, t, households, config)
    twice = retail_estimation.estimate_att(np.vstack([x, x]), np.concatenate([y, y]), np.concatenate([t, t]),
                                np.concatenate([households, households]), config)
    ratio = (twice.upper - twice.lower) / (once.upper - once.lower)
    assert 0.85 < ratio < 1.15, ratio
    # An i.i.d. interval on the duplicated rows would be about 1/√2 as wide.
    iid = retail_estimation.estimate_att(np.vstack([x, x]), np.concatenate([y, y]), np.concatenate([t, t]), np.arange(2 * n), config)
    assert (iid.upper - iid.lower) / (once.upper - once.lower) < 0.8
