"""The verdicts of retail campaign types on synthetic retail data with planted effects and
planted targeting, and the recommendations over the identified types (pure logic)."""

import numpy as np

from propensity_assets.incentives import retail_estimation, retail_study, retail_verdicts
from propensity_assets.incentives.retail_policy import recommendations
from propensity_assets.incentives.retail_study import RetailConfig
from propensity_assets_tests.incentives.retail_data import synthetic_retail


def test_a_planted_effect_under_planted_targeting_is_recovered_and_identified():
    study = synthetic_retail(effect=12.0)
    (cell,) = retail_verdicts.estimate_cells(study.data, RetailConfig())
    row = cell.row
    assert study.exclusions.empty  # the four campaigns are 28 days apart: no overlaps
    assert row["campaigns"] == 4 and row["n_treated"] + row["n_control"] == len(study.data) == 4 * 1500
    # Targeting more than doubles the naive difference (28.7 for an effect of 12).
    assert row["naive"] > 2 * 12.0
    assert row["ate_lower"] <= 12.0 <= row["ate_upper"], row
    assert row["placebo_lower"] <= 0 <= row["placebo_upper"], row
    assert row["verdict"] == "identified", row["reason"]
    # The population the ATT covers: the rows inside overlap, stated in the reason when any were trimmed.
    share = 1 - row["trimmed"] / 6000
    assert row["population_share"] == share
    assert row["population"] == ("overlap" if row["trimmed"] else "all")
    assert row["reason"].startswith(f"identified on the {share * 100:.0f} % of rows inside overlap; " if row["trimmed"]
                                    else "placebo compatible with 0")
    assert row["specification"] == ("linear projection of the doubly robust effects on grp_spend_90d, "
                                    "grp_baskets_90d, hh_spend_90d")
    recs = recommendations([cell], RetailConfig())
    assert len(recs) == study.data["unit_id"].nunique()
    assert set(recs["recommended"]) <= {"none", "campaign type B"}
    # A clear effect pays for its coupons for most households, even at its lower bound.
    assert (recs["recommended"] == "campaign type B").mean() > 0.5


def test_targeting_without_an_effect_is_not_read_as_an_effect():
    study = synthetic_retail(effect=0.0)
    (cell,) = retail_verdicts.estimate_cells(study.data, RetailConfig())
    row = cell.row
    assert row["naive"] > 12  # what a naive report would call a lift (16.7)
    assert row["verdict"] == "not identified" or row["ate_lower"] <= 0 <= row["ate_upper"], row
    assert row["ate_lower"] <= 0 <= row["ate_upper"], row  # here: identified, and compatible with 0
    # Nothing pays for its coupons: the recommender targets nobody.
    assert set(recommendations([cell], RetailConfig())["recommended"]) == {"none"}


def test_a_verdict_needs_a_placebo_compatible_with_zero_and_an_effect_within_its_bound():
    def est(att, lo, hi):
        return retail_estimation.AttEstimate(att, lo, hi, 0.0, 0, 0, 0, np.array([]), np.array([]), np.array([]))

    assert retail_verdicts.verdict(est(5, 1, 9), est(0.5, -1, 2), 10.0, "B") == (
        "identified", "placebo compatible with 0 and effect within the plausibility bound.")
    decided, reason = retail_verdicts.verdict(est(5, 1, 9), est(3, 1, 5), 10.0, "B")
    assert decided == "not identified" and reason.startswith("pre-period placebo 3.00 [1.00, 5.00] excludes 0")
    decided, reason = retail_verdicts.verdict(est(5, 1, 9), est(0, -1, 1), 4.0, "A")
    assert decided == "not identified"
    assert reason.startswith("effect 5.00 exceeds the plausibility bound 4.00")
    assert retail_study.treatment_name("A") == "campaign type A (mailer)" and retail_study.treatment_name("B") == "campaign type B"
    assert reason.endswith("It is a mailer effect on the group (type A pools cover every group), not a group-specific incentive.")
    assert retail_verdicts.verdict(est(5, 1, 9), est(0, -1, 1), float("nan"), "B")[1].startswith(
        "no coupon_disc column in transactions")
