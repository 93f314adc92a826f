"""Retail campaign studies (pure logic): the study builder on a hand-built campaign
dataset, the effect on the treated and its clustered interval, the placebo and the
verdicts on synthetic retail data with planted effects and planted targeting."""

import numpy as np
import pandas as pd
import pytest

from propensity_assets.incentives import retail
from propensity_assets.incentives.retail import CampaignTables, RetailConfig

D = pd.Timestamp


def tables(campaigns, descriptions, coupons, redemptions=()) -> CampaignTables:
    return CampaignTables(
        pd.DataFrame(campaigns, columns=["campaign_id", "household_id"]),
        pd.DataFrame(descriptions, columns=["campaign_id", "campaign_type", "start_date", "end_date"]),
        pd.DataFrame(coupons, columns=["coupon_upc", "product_id", "campaign_id"]),
        pd.DataFrame(list(redemptions), columns=["household_id", "coupon_upc", "campaign_id", "redemption_date"]),
    )


# Product 1 is the group's, product 2 is not. Window 7 days, eligibility 14 days.
HAND_TX = pd.DataFrame(
    [
        # household, product, sales_value, coupon_disc, day
        (9, 2, 1.0, 0.0, "2017-01-01"),  # the data's first day
        (1, 1, 10.0, 0.0, "2017-01-20"),  # eligible for c2; before its placebo window
        (1, 1, 4.0, 0.0, "2017-01-27"),  # c2's placebo window [01-25, 02-01)
        (1, 1, 6.0, -1.0, "2017-02-02"),  # c2's outcome window [02-01, 02-08), a coupon line
        (1, 2, 3.0, 0.0, "2017-02-03"),  # not the group's
        (2, 2, 5.0, 0.0, "2017-01-30"),  # eligible (any product counts), no group spend before
        (2, 1, 2.0, 0.0, "2017-02-05"),
        (3, 1, 7.0, 0.0, "2017-01-19"),  # eligible control
        (4, 1, 8.0, 0.0, "2017-01-26"),  # eligible, but c3 starts for it within 7 days of c2
        (4, 1, 1.0, -0.5, "2017-02-07"),
        (5, 1, 2.0, 0.0, "2017-01-05"),  # a recipient of c2 that did not shop in the 14 days before
        (9, 2, 1.0, 0.0, "2017-03-31"),  # the data's last day
    ],
    columns=["household_id", "product_id", "sales_value", "coupon_disc", "day"],
).assign(day=lambda f: pd.to_datetime(f["day"]))

HAND = tables(
    campaigns=[(1, 1), (1, 2), (2, 1), (2, 2), (2, 5), (3, 4), (4, 3), (5, 3)],
    descriptions=[  # types written as the Complete Journey writes them
        (1, "Type B", "2017-01-10", "2017-02-10"),  # 14 days before it is before the data: no history
        (2, "Type B", "2017-02-01", "2017-03-01"),
        (3, "Type A", "2017-02-05", "2017-03-05"),  # overlaps c2: each excludes the other's recipients
        (4, "Type B", "2017-03-28", "2017-04-28"),  # its 7-day window runs past 2017-03-31
        (5, "Type C", "2017-02-03", "2017-03-20"),  # product 2 only: not the group's, so it excludes nobody
    ],
    coupons=[(11, 1, 1), (21, 1, 2), (22, 2, 2), (31, 1, 3), (32, 2, 3), (41, 1, 4), (51, 2, 5)],
    redemptions=[(1, 21, 2, "2017-02-02"), (2, 22, 2, "2017-02-05")],  # hh 2 redeemed a non-group coupon
)
HAND_CONFIG = RetailConfig(window_days=7, eligibility_days=14)


def hand_features(asked: list):
    def features(dates: list[str]) -> pd.DataFrame:
        asked.append(dates)
        rows = [(d, h, h * (10 if d == "2017-02-01" else 1), 1.0, 100.0) for d in dates for h in (1, 2, 3, 4, 5, 9)]
        return pd.DataFrame(rows, columns=["as_of", "household_id", "grp_spend_90d", "grp_baskets_90d", "hh_spend_90d"])
    return features


def test_the_study_builder_counts_every_row_and_exclusion():
    asked = []
    study = retail.build_study(HAND, HAND_TX, HAND_TX["product_id"] == 1, {1}, hand_features(asked), HAND_CONFIG)
    assert study.nothing_to_do is None
    # Each start, and 7 days before it for the placebo's features.
    assert asked == [["2017-01-25", "2017-01-29", "2017-02-01", "2017-02-05"]]
    data = study.data
    assert data[["unit_id", "campaign_id", "campaign_type", "treated", "outcome", "placebo_outcome", "coupon_spend",
                 "redeemed", "prior_campaigns"]].values.tolist() == [
        # c2: eligible 1, 2, 3, 4 (shopped 01-18 .. 01-31); 4 received c3; 5 did not shop; 3 got only c5.
        [1, 2, "B", 1, 6.0, 4.0, 6.0, 1, 1],
        [2, 2, "B", 1, 2.0, 0.0, 0.0, 0, 1],
        [3, 2, "B", 0, 0.0, 0.0, 0.0, 0, 0],
        # c3: eligible 1, 2, 4 (shopped 01-22 .. 02-04); 1 and 2 received c2.
        [4, 3, "A", 1, 1.0, 0.0, 1.0, 0, 0],
    ]
    assert data["grp_spend_90d"].tolist() == [10.0, 20.0, 30.0, 4.0]  # features at the start
    assert data["pre__grp_spend_90d"].tolist() == [1.0, 2.0, 3.0, 4.0]  # at start − 7, for the placebo
    assert study.exclusions.values.tolist() == [
        [1, "B", "campaign lacks pre-period history", 2],
        [2, "B", "recipient did not shop in the 14 days before the start", 1],
        [2, "B", "household received another campaign of the group starting within 7 days", 1],
        [3, "A", "household received another campaign of the group starting within 7 days", 2],
        [4, "B", "outcome window not fully observed", 1],
    ]
    assert study.campaigns.values.tolist() == [
        [1, "B", "2017-01-10", "starts before 2017-01-15: less than 14 days of pre-period history"],
        [2, "B", "2017-02-01", "in the study"],
        [5, "C", "2017-02-03", "its coupon pool holds no product of the group"],
        [3, "A", "2017-02-05", "in the study"],
        [4, "B", "2017-03-28", "its 7-day outcome window runs past the data's end (2017-03-31)"],
    ]


def test_a_group_without_campaigns_and_a_dataset_without_campaign_tables_have_nothing_to_do():
    none_of_ours = retail.build_study(HAND, HAND_TX, HAND_TX["product_id"] == 7, {7}, hand_features([]), HAND_CONFIG)
    assert none_of_ours.nothing_to_do == "no campaign's coupon pool holds a product of the group"
    assert none_of_ours.data.empty and none_of_ours.exclusions.empty
    no_tables = retail.build_study(tables([], [], []), HAND_TX, HAND_TX["product_id"] == 1, {1}, hand_features([]), HAND_CONFIG)
    assert no_tables.nothing_to_do == "the dataset has no campaigns (campaigns or campaign_descriptions is empty)"
    assert retail.estimate_cells(no_tables.data.reindex(columns=["campaign_type"]), HAND_CONFIG) == []


def test_att_and_its_clustered_standard_error_by_hand():
    # term = T(Y − m0) − (1 − T)·e/(1 − e)·(Y − m0) = [2, 0, −1, 1] with e = 0.5: ATT = 2 / 2 = 1.
    y, t, e, m0, m1 = [3, 1, 2, 0], [1, 1, 0, 0], [0.5] * 4, [1] * 4, [2] * 4
    att, se, pseudo = retail.att_from_nuisances(y, t, e, m0, m1, np.array([1, 2, 3, 4]))
    assert att == 1.0
    # influence = (term − T·ATT) / P(T=1) = [2, −2, −2, 2]; one household per row: √16 / 4 = 1.
    assert se == 1.0
    # Households 1 and 3 own rows (1, 3) and (2, 4): cluster sums 0 and 0.
    assert retail.att_from_nuisances(y, t, e, m0, m1, np.array([1, 3, 1, 3]))[1] == 0.0
    # pseudo = m1 − m0 + T(Y − m1)/e − (1 − T)(Y − m0)/(1 − e)
    assert pseudo.tolist() == [1 + 2, 1 - 2, 1 - 2, 1 + 2]


START_DATES = (D("2017-04-03"), D("2017-05-01"), D("2017-05-29"), D("2017-06-26"))


def planted_retail_data(effect: float, n: int = 1500, seed: int = 3, starts=START_DATES):
    """(transactions, campaign tables) of households that buy the group (product 1) every
    k days (k in 2..10; the features reveal k), plus random small purchases. Recipients
    are targeted on k (frequent buyers, strong targeting). A treated household's group
    purchases in the window carry coupons, and it makes one extra coupon purchase worth
    `effect`. The type B campaigns start 28 days apart, so none overlaps another."""
    rng = np.random.default_rng(seed)
    first, last = D("2017-01-01"), D("2017-07-31")
    k = rng.integers(2, 11, n)
    phase = rng.integers(0, 10, n)
    targeted = {s: rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 0.5 * (8 - k)))) for s in starts}
    rows = []
    days = pd.date_range(first, last)
    for h in range(n):
        buy = days[(np.arange(len(days)) + phase[h]) % k[h] == 0]
        extra = days[rng.random(len(days)) < 0.05]
        for d in buy:
            rows.append((h + 1, 1, 5.0, d))
        for d in extra:
            rows.append((h + 1, 1, 3.0, d))
        for s in starts:
            if targeted[s][h] and effect:
                rows.append((h + 1, 1, effect, s + pd.Timedelta(days=3)))
    tx = pd.DataFrame(rows, columns=["household_id", "product_id", "sales_value", "day"])
    tx["coupon_disc"] = 0.0
    for s in starts:
        ids = np.flatnonzero(targeted[s]) + 1
        window = tx["household_id"].isin(ids) & (tx["day"] >= s) & (tx["day"] < s + pd.Timedelta(days=28))
        tx.loc[window, "coupon_disc"] = -0.5
    campaigns = [(i + 1, int(h) + 1) for i, s in enumerate(starts) for h in np.flatnonzero(targeted[s])]
    descriptions = [(i + 1, "B", s, s + pd.Timedelta(days=30)) for i, s in enumerate(starts)]
    coupons = [(100 + i, 1, i + 1) for i in range(len(starts))]
    redemptions = [(h, 100 + c - 1, c, starts[c - 1]) for c, h in campaigns]
    return tx, tables(campaigns, descriptions, coupons, redemptions)


def synthetic_retail(effect: float, n: int = 1500, seed: int = 3):
    """The planted data's study, with 90-day features computed here from the transactions."""
    tx, campaign_tables = planted_retail_data(effect, n, seed)

    def features(dates: list[str]) -> pd.DataFrame:
        out = []
        for d in dates:
            at = D(d)
            hist = tx[tx["day"] < at]
            w = hist[hist["day"] >= at - pd.Timedelta(days=90)].groupby("household_id")["sales_value"]
            f = pd.DataFrame({"grp_spend_90d": w.sum(), "grp_baskets_90d": w.size()}).reindex(sorted(hist["household_id"].unique())).fillna(0)
            f["hh_spend_90d"] = f["grp_spend_90d"]
            out.append(f.rename_axis("household_id").reset_index().assign(as_of=d))
        return pd.concat(out, ignore_index=True)

    return retail.build_study(campaign_tables, tx, pd.Series(True, index=tx.index), {1}, features, RetailConfig())


def test_a_planted_effect_under_planted_targeting_is_recovered_and_identified():
    study = synthetic_retail(effect=12.0)
    (cell,) = retail.estimate_cells(study.data, RetailConfig())
    row = cell.row
    assert study.exclusions.empty  # the four campaigns are 28 days apart: no overlaps
    assert row["campaigns"] == 4 and row["n_treated"] + row["n_control"] == len(study.data) == 4 * 1500
    # Targeting more than doubles the naive difference (28.7 for an effect of 12).
    assert row["naive"] > 2 * 12.0
    assert row["ate_lower"] <= 12.0 <= row["ate_upper"], row
    assert row["placebo_lower"] <= 0 <= row["placebo_upper"], row
    assert row["verdict"] == "identified", row["reason"]
    recs = retail.recommendations([cell], RetailConfig())
    assert len(recs) == study.data["unit_id"].nunique()
    assert set(recs["recommended"]) <= {"none", "campaign type B"}
    # A clear effect pays for its coupons for most households, even at its lower bound.
    assert (recs["recommended"] == "campaign type B").mean() > 0.5


def test_targeting_without_an_effect_is_not_read_as_an_effect():
    study = synthetic_retail(effect=0.0)
    (cell,) = retail.estimate_cells(study.data, RetailConfig())
    row = cell.row
    assert row["naive"] > 12  # what a naive report would call a lift (16.7)
    assert row["verdict"] == "not identified" or row["ate_lower"] <= 0 <= row["ate_upper"], row
    assert row["ate_lower"] <= 0 <= row["ate_upper"], row  # here: identified, and compatible with 0
    # Nothing pays for its coupons: the recommender targets nobody.
    assert set(retail.recommendations([cell], RetailConfig())["recommended"]) == {"none"}


def test_duplicating_every_household_across_two_campaigns_does_not_shrink_the_clustered_interval():
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.normal(size=(n, 2))
    t = (rng.random(n) < 1 / (1 + np.exp(-x[:, 0]))).astype(int)
    y = 2 * x[:, 0] + x[:, 1] + 1.0 * t + rng.normal(scale=2, size=n)
    households = np.arange(n)
    config = RetailConfig(n_estimators=50)
    once = retail.estimate_att(x, y, t, households, config)
    twice = retail.estimate_att(np.vstack([x, x]), np.concatenate([y, y]), np.concatenate([t, t]),
                                np.concatenate([households, households]), config)
    ratio = (twice.upper - twice.lower) / (once.upper - once.lower)
    assert 0.85 < ratio < 1.15, ratio
    # An i.i.d. interval on the duplicated rows would be about 1/√2 as wide.
    iid = retail.estimate_att(np.vstack([x, x]), np.concatenate([y, y]), np.concatenate([t, t]), np.arange(2 * n), config)
    assert (iid.upper - iid.lower) / (once.upper - once.lower) < 0.8


def test_a_verdict_needs_a_placebo_compatible_with_zero_and_an_effect_within_its_bound():
    def est(att, lo, hi):
        return retail.AttEstimate(att, lo, hi, 0.0, 0, 0, 0, np.array([]), np.array([]), np.array([]))

    assert retail.verdict(est(5, 1, 9), est(0.5, -1, 2), 10.0, "B") == (
        "identified", "placebo compatible with 0 and effect within the plausibility bound.")
    decided, reason = retail.verdict(est(5, 1, 9), est(3, 1, 5), 10.0, "B")
    assert decided == "not identified" and reason.startswith("pre-period placebo 3.00 [1.00, 5.00] excludes 0")
    decided, reason = retail.verdict(est(5, 1, 9), est(0, -1, 1), 4.0, "A")
    assert decided == "not identified"
    assert reason.startswith("effect 5.00 exceeds the plausibility bound 4.00")
    assert retail.treatment_name("A") == "campaign type A (mailer)" and retail.treatment_name("B") == "campaign type B"
    assert reason.endswith("It is a mailer effect on the group (type A pools cover every group), not a group-specific incentive.")
    assert retail.verdict(est(5, 1, 9), est(0, -1, 1), float("nan"), "B")[1].startswith(
        "no coupon_disc column in transactions")
