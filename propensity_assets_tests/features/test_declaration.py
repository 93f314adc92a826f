"""The feature declaration pinned: the columns of the feature tables, of the training frame
both stages read, and of what each model sees. A change to any of them shows here, in
review, as a changed list; a model would otherwise silently see other inputs."""

import numpy as np
import pandas as pd
import pytest

from propensity_assets.features.declaration import GROUP, HOUSEHOLD, LTV_SUBSETS, PROPENSITY, STORED
from propensity_assets.lifecycle import frames
from propensity_assets.ltv.features import design_matrix, lake_columns
from propensity_assets.shared import tables
from propensity_assets.shared.lake import Lake
from propensity_assets_tests.synthetic import group_features, household_features

# CONTRACTS §4, names exactly as there.
CONTRACT_HOUSEHOLD = [
    "hh_baskets_30d", "hh_spend_30d", "hh_units_30d", "hh_days_30d", "hh_baskets_90d", "hh_spend_90d",
    "hh_units_90d", "hh_days_90d", "hh_baskets_365d", "hh_spend_365d", "hh_units_365d", "hh_days_365d",
    "hh_days_since_last",
]

CONTRACT_GROUP = [
    "grp_baskets_30d", "grp_spend_30d", "grp_units_30d", "grp_days_30d", "grp_baskets_90d", "grp_spend_90d",
    "grp_units_90d", "grp_days_90d", "grp_baskets_365d", "grp_spend_365d", "grp_units_365d", "grp_days_365d",
    "grp_days_since_last", "grp_spend_share_30d", "grp_spend_share_90d", "grp_spend_share_365d",
]

# The training frame of a group (features, ratios, label), the same for propensity and LTV.
TRAINING_FRAME = [
    "household_id", "hh_baskets_7d", "hh_spend_7d", "hh_units_7d", "hh_days_7d", "hh_baskets_14d",
    "hh_spend_14d", "hh_units_14d", "hh_days_14d", "hh_baskets_30d", "hh_spend_30d", "hh_units_30d",
    "hh_days_30d", "hh_baskets_90d", "hh_spend_90d", "hh_units_90d", "hh_days_90d", "hh_baskets_365d",
    "hh_spend_365d", "hh_units_365d", "hh_days_365d", "hh_days_since_last", "hh_days_since_first", "as_of",
    "grp_baskets_7d", "grp_spend_7d", "grp_units_7d", "grp_days_7d", "grp_baskets_14d", "grp_spend_14d",
    "grp_units_14d", "grp_days_14d", "grp_baskets_30d", "grp_spend_30d", "grp_units_30d", "grp_days_30d",
    "grp_baskets_90d", "grp_spend_90d", "grp_units_90d", "grp_days_90d", "grp_baskets_365d", "grp_spend_365d",
    "grp_units_365d", "grp_days_365d", "grp_days_since_last", "grp_days_since_first", "grp_spend_share_7d",
    "grp_spend_share_14d", "grp_spend_share_30d", "grp_spend_share_90d", "grp_spend_share_365d",
    "grp_basket_share_30d", "grp_day_share_30d", "grp_basket_share_90d", "grp_day_share_90d",
    "grp_basket_share_365d", "grp_day_share_365d", "grp_overdue_ratio", "label",
]

# The propensity model"s inputs, in order.
PROPENSITY_COLUMNS = [
    "hh_baskets_7d", "hh_spend_7d", "hh_units_7d", "hh_days_7d", "hh_baskets_14d", "hh_spend_14d",
    "hh_units_14d", "hh_days_14d", "hh_baskets_30d", "hh_spend_30d", "hh_units_30d", "hh_days_30d",
    "hh_baskets_90d", "hh_spend_90d", "hh_units_90d", "hh_days_90d", "hh_baskets_365d", "hh_spend_365d",
    "hh_units_365d", "hh_days_365d", "hh_days_since_last", "hh_days_since_first", "grp_baskets_7d",
    "grp_spend_7d", "grp_units_7d", "grp_days_7d", "grp_baskets_14d", "grp_spend_14d", "grp_units_14d",
    "grp_days_14d", "grp_baskets_30d", "grp_spend_30d", "grp_units_30d", "grp_days_30d", "grp_baskets_90d",
    "grp_spend_90d", "grp_units_90d", "grp_days_90d", "grp_baskets_365d", "grp_spend_365d", "grp_units_365d",
    "grp_days_365d", "grp_days_since_last", "grp_days_since_first", "grp_spend_share_7d", "grp_spend_share_14d",
    "grp_spend_share_30d", "grp_spend_share_90d", "grp_spend_share_365d", "grp_basket_share_30d",
    "grp_day_share_30d", "grp_basket_share_90d", "grp_day_share_90d", "grp_basket_share_365d",
    "grp_day_share_365d", "grp_overdue_ratio",
]

# The LTV design matrix (the lake columns, then the derived ones): the "all" subset.
LTV_DESIGN = [
    "hh_baskets_7d", "hh_spend_7d", "hh_units_7d", "hh_days_7d", "hh_baskets_14d", "hh_spend_14d",
    "hh_units_14d", "hh_days_14d", "hh_baskets_30d", "hh_spend_30d", "hh_units_30d", "hh_days_30d",
    "hh_baskets_90d", "hh_spend_90d", "hh_units_90d", "hh_days_90d", "hh_baskets_365d", "hh_spend_365d",
    "hh_units_365d", "hh_days_365d", "hh_days_since_last", "hh_days_since_first", "grp_baskets_7d",
    "grp_spend_7d", "grp_units_7d", "grp_days_7d", "grp_baskets_14d", "grp_spend_14d", "grp_units_14d",
    "grp_days_14d", "grp_baskets_30d", "grp_spend_30d", "grp_units_30d", "grp_days_30d", "grp_baskets_90d",
    "grp_spend_90d", "grp_units_90d", "grp_days_90d", "grp_baskets_365d", "grp_spend_365d", "grp_units_365d",
    "grp_days_365d", "grp_days_since_last", "grp_days_since_first", "grp_spend_share_7d", "grp_spend_share_14d",
    "grp_spend_share_30d", "grp_spend_share_90d", "grp_spend_share_365d", "hh_spend_rate_7d", "hh_days_rate_7d",
    "hh_spend_rate_14d", "hh_days_rate_14d", "hh_spend_rate_30d", "hh_days_rate_30d", "hh_spend_rate_90d",
    "hh_days_rate_90d", "hh_spend_rate_365d", "hh_days_rate_365d", "hh_spend_per_day", "hh_spend_per_basket",
    "hh_trend_30_90d", "hh_trend_90_365d", "hh_recency", "hh_overdue", "grp_spend_rate_7d", "grp_days_rate_7d",
    "grp_spend_rate_14d", "grp_days_rate_14d", "grp_spend_rate_30d", "grp_days_rate_30d", "grp_spend_rate_90d",
    "grp_days_rate_90d", "grp_spend_rate_365d", "grp_days_rate_365d", "grp_spend_per_day",
    "grp_spend_per_basket", "grp_trend_30_90d", "grp_trend_90_365d", "grp_recency", "grp_overdue",
    "grp_never_bought", "grp_tenure",
]

LTV_RATES = [
    "hh_baskets_7d", "hh_spend_7d", "hh_units_7d", "hh_days_7d", "hh_baskets_14d", "hh_spend_14d",
    "hh_units_14d", "hh_days_14d", "hh_baskets_30d", "hh_spend_30d", "hh_units_30d", "hh_days_30d",
    "grp_baskets_7d", "grp_spend_7d", "grp_units_7d", "grp_days_7d", "grp_baskets_14d", "grp_spend_14d",
    "grp_units_14d", "grp_days_14d", "grp_baskets_30d", "grp_spend_30d", "grp_units_30d", "grp_days_30d",
    "hh_spend_rate_7d", "hh_days_rate_7d", "hh_spend_rate_14d", "hh_days_rate_14d", "hh_spend_rate_30d",
    "hh_days_rate_30d", "hh_spend_rate_90d", "hh_days_rate_90d", "hh_spend_rate_365d", "hh_days_rate_365d",
    "hh_spend_per_day", "hh_spend_per_basket", "hh_trend_30_90d", "hh_trend_90_365d", "hh_recency",
    "hh_overdue", "grp_spend_rate_7d", "grp_days_rate_7d", "grp_spend_rate_14d", "grp_days_rate_14d",
    "grp_spend_rate_30d", "grp_days_rate_30d", "grp_spend_rate_90d", "grp_days_rate_90d", "grp_spend_rate_365d",
    "grp_days_rate_365d", "grp_spend_per_day", "grp_spend_per_basket", "grp_trend_30_90d", "grp_trend_90_365d",
    "grp_recency", "grp_overdue", "grp_never_bought", "grp_spend_share_7d", "grp_spend_share_14d",
    "grp_spend_share_30d", "grp_spend_share_90d", "grp_spend_share_365d",
]

LTV_HOUSEHOLD = [
    "hh_baskets_7d", "hh_spend_7d", "hh_units_7d", "hh_days_7d", "hh_baskets_14d", "hh_spend_14d",
    "hh_units_14d", "hh_days_14d", "hh_baskets_30d", "hh_spend_30d", "hh_units_30d", "hh_days_30d",
    "hh_baskets_90d", "hh_spend_90d", "hh_units_90d", "hh_days_90d", "hh_baskets_365d", "hh_spend_365d",
    "hh_units_365d", "hh_days_365d", "hh_days_since_last", "hh_days_since_first", "hh_spend_rate_7d",
    "hh_days_rate_7d", "hh_spend_rate_14d", "hh_days_rate_14d", "hh_spend_rate_30d", "hh_days_rate_30d",
    "hh_spend_rate_90d", "hh_days_rate_90d", "hh_spend_rate_365d", "hh_days_rate_365d", "hh_spend_per_day",
    "hh_spend_per_basket", "hh_trend_30_90d", "hh_trend_90_365d", "hh_recency", "hh_overdue",
]

LTV_GROUP = [
    "grp_baskets_7d", "grp_spend_7d", "grp_units_7d", "grp_days_7d", "grp_baskets_14d", "grp_spend_14d",
    "grp_units_14d", "grp_days_14d", "grp_baskets_30d", "grp_spend_30d", "grp_units_30d", "grp_days_30d",
    "grp_baskets_90d", "grp_spend_90d", "grp_units_90d", "grp_days_90d", "grp_baskets_365d", "grp_spend_365d",
    "grp_units_365d", "grp_days_365d", "grp_days_since_last", "grp_days_since_first", "grp_spend_share_7d",
    "grp_spend_share_14d", "grp_spend_share_30d", "grp_spend_share_90d", "grp_spend_share_365d",
    "grp_spend_rate_7d", "grp_days_rate_7d", "grp_spend_rate_14d", "grp_days_rate_14d", "grp_spend_rate_30d",
    "grp_days_rate_30d", "grp_spend_rate_90d", "grp_days_rate_90d", "grp_spend_rate_365d", "grp_days_rate_365d",
    "grp_spend_per_day", "grp_spend_per_basket", "grp_trend_30_90d", "grp_trend_90_365d", "grp_recency",
    "grp_overdue", "grp_never_bought", "grp_tenure",
]

LTV_HOUSEHOLD_INPUTS = [
    "hh_baskets_7d", "hh_spend_7d", "hh_units_7d", "hh_days_7d", "hh_baskets_14d", "hh_spend_14d",
    "hh_units_14d", "hh_days_14d", "hh_baskets_30d", "hh_spend_30d", "hh_units_30d", "hh_days_30d",
    "hh_baskets_90d", "hh_spend_90d", "hh_units_90d", "hh_days_90d", "hh_baskets_365d", "hh_spend_365d",
    "hh_units_365d", "hh_days_365d", "hh_days_since_last", "hh_days_since_first",
]

TRAIN = ["2017-05-10", "2017-05-17"]
VETTING = "2017-05-24"


def test_the_feature_tables_hold_the_contract_columns():
    assert HOUSEHOLD.table == tables.HOUSEHOLD_FEATURES and GROUP.table == tables.GROUP_FEATURES
    assert HOUSEHOLD.contract_columns == CONTRACT_HOUSEHOLD
    assert GROUP.contract_columns == CONTRACT_GROUP
    assert list(STORED) == HOUSEHOLD.columns + GROUP.columns


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    rng = np.random.default_rng(3)
    hh_parts, grp_parts, label_parts = [], [], []
    for d in [*TRAIN, VETTING]:
        hh = household_features(d, list(range(1, 21)), rng)
        grp = group_features(d, "grp_a", hh, rng)
        hh_parts.append(hh), grp_parts.append(grp)
        label_parts.append(grp[["as_of", "product_group", "household_id"]].assign(label=rng.integers(0, 2, len(grp))))
    lake = Lake(str(tmp_path_factory.mktemp("declaration") / "lake"))
    lake.write_pandas(tables.HOUSEHOLD_FEATURES, pd.concat(hh_parts, ignore_index=True), ["as_of"])
    lake.write_pandas(tables.GROUP_FEATURES, pd.concat(grp_parts, ignore_index=True), ["as_of", "product_group"])
    labels = pd.concat(label_parts, ignore_index=True)
    lake.write_pandas(tables.PROPENSITY_LABELS, labels, ["as_of", "product_group"])
    lake.write_pandas(tables.LTV_LABELS, labels.assign(label=labels["label"] * 12.5), ["as_of", "product_group"])
    return lake


@pytest.mark.parametrize("labels_table", [tables.PROPENSITY_LABELS, tables.LTV_LABELS])
def test_both_stages_train_on_the_pinned_frame(lake, labels_table):
    train, vetting, _ = frames.training_frames(lake, "grp_a", TRAIN, VETTING, labels_table, 10**6, 42)
    assert list(train.columns) == TRAINING_FRAME
    assert list(vetting.columns) == TRAINING_FRAME


def test_each_model_sees_the_pinned_columns(lake):
    train, _, _ = frames.training_frames(lake, "grp_a", TRAIN, VETTING, tables.LTV_LABELS, 10**6, 42)
    assert PROPENSITY.require(train.columns) == PROPENSITY_COLUMNS
    lake_inputs = lake_columns(train)
    assert lake_inputs == list(STORED)
    assert list(design_matrix(train, lake_inputs, 90).columns) == LTV_DESIGN
    assert list(LTV_SUBSETS["all"].columns) == LTV_DESIGN
    assert list(LTV_SUBSETS["lake"].columns) == lake_inputs
    assert list(LTV_SUBSETS["rates"].columns) == LTV_RATES
    assert list(LTV_SUBSETS["household"].columns) == LTV_HOUSEHOLD
    assert list(LTV_SUBSETS["group"].columns) == LTV_GROUP
    assert list(LTV_SUBSETS["household"].inputs) == LTV_HOUSEHOLD_INPUTS
    assert all(list(LTV_SUBSETS[s].inputs) == lake_inputs for s in ("all", "rates", "group", "lake"))
    # The household subset's model reads only household columns and derives only theirs.
    household = design_matrix(train, LTV_HOUSEHOLD_INPUTS, 90)
    assert set(LTV_HOUSEHOLD) <= set(household.columns)
