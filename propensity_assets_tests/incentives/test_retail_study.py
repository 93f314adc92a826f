"""The retail study builder (pure logic) on a hand-built campaign dataset."""

import pandas as pd

from propensity_assets.incentives import retail_study
from propensity_assets.incentives.retail_study import RetailConfig
from propensity_assets.incentives.retail_verdicts import estimate_cells
from propensity_assets_tests.incentives.retail_data import tables

D = pd.Timestamp


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
    study = retail_study.build_study(HAND, HAND_TX, HAND_TX["product_id"] == 1, {1}, hand_features(asked), HAND_CONFIG)
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
    none_of_ours = retail_study.build_study(HAND, HAND_TX, HAND_TX["product_id"] == 7, {7}, hand_features([]), HAND_CONFIG)
    assert none_of_ours.nothing_to_do == "no campaign's coupon pool holds a product of the group"
    assert none_of_ours.data.empty and none_of_ours.exclusions.empty
    no_tables = retail_study.build_study(tables([], [], []), HAND_TX, HAND_TX["product_id"] == 1, {1}, hand_features([]), HAND_CONFIG)
    assert no_tables.nothing_to_do == "the dataset has no campaigns (campaigns or campaign_descriptions is empty)"
    assert estimate_cells(no_tables.data.reindex(columns=["campaign_type"]), HAND_CONFIG) == []
