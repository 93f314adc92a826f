"""LTV feature engineering: derived features by hand, the design matrix, and the subsets
read from the feature declaration."""

import numpy as np
import pytest

from propensity_assets.features.declaration import GRP, HH, LTV_SUBSETS, ltv_derived
from propensity_assets.ltv.features import derived_features, design_matrix, lake_columns
from propensity_assets_tests.ltv.lake_rows import lake_frame


def test_derived_features_by_hand():
    row = lake_frame(1).iloc[[0]].copy()
    row["hh_days_since_first"] = 45.0
    row["hh_spend_30d"], row["hh_spend_90d"], row["hh_spend_365d"] = 60.0, 90.0, 90.0
    row["hh_days_365d"], row["hh_baskets_365d"] = 3, 2
    row["hh_days_since_last"] = 10.0
    out = derived_features(row, horizon_days=90).iloc[0]
    # Run rates over the days actually observed: 30 of 30 and 45 of 90 / 365, scaled to 90 days.
    assert out["hh_spend_rate_30d"] == pytest.approx(60 * 90 / 30)
    assert out["hh_spend_rate_90d"] == pytest.approx(90 * 90 / 45)
    assert out["hh_spend_rate_365d"] == pytest.approx(90 * 90 / 45)
    assert out["hh_spend_per_day"] == pytest.approx(30.0)
    assert out["hh_spend_per_basket"] == pytest.approx(45.0)
    assert out["hh_trend_30_90d"] == pytest.approx(np.log1p(180) - np.log1p(180))
    # Usual gap 45 / 3 = 15 days; 10 days since the last visit.
    assert out["hh_overdue"] == pytest.approx(10 / 15)


def test_design_matrix_has_no_nan_and_names_missing_columns():
    frame = lake_frame(50)
    lake = lake_columns(frame)
    assert "label" not in lake and "household_id" not in lake
    x = design_matrix(frame, lake, 90)
    assert not x.isna().any().any()
    assert (x.loc[frame["grp_days_since_last"].isna(), "grp_never_bought"] == 1).all()
    with pytest.raises(ValueError, match=r"lacks the lake columns \['grp_spend_90d'\]"):
        design_matrix(frame.drop(columns="grp_spend_90d"), lake, 90)


def test_derived_features_are_the_declared_ones():
    frame = lake_frame(20)
    assert list(derived_features(frame, 90).columns) == [f.name for p in (HH, GRP) for f in ltv_derived(p)]
    assert list(derived_features(frame, 90, (HH,)).columns) == [f.name for f in ltv_derived(HH)]


def test_an_unknown_subset_names_the_declared_ones():
    from propensity_assets.ltv.features import subset_columns

    with pytest.raises(ValueError, match=r"unknown feature subset 'hh_only'; expected one of \['all', 'rates'"):
        subset_columns("hh_only")
    assert list(LTV_SUBSETS) == ["all", "rates", "household", "group", "lake"]

