"""Feature lookups: the feature matrix of one group, and the ratios derived from its joined
rows. Expected numbers are worked out by hand in the comments."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from propensity_assets.features.declaration import PROPENSITY, RATIO_WINDOWS
from propensity_assets.features.lookup import feature_matrix


# -- feature_matrix -----------------------------------------------------------------------


def _hh_row(as_of, hid, baskets, days):
    row = {"as_of": as_of, "household_id": hid, "hh_days_since_last": 1}
    for w, b, d in zip(RATIO_WINDOWS, baskets, days):
        row.update({f"hh_baskets_{w}d": b, f"hh_days_{w}d": d, f"hh_spend_{w}d": 10.0 * b})
    return row


def _grp_row(as_of, hid, baskets, days, since):
    row = {"as_of": as_of, "household_id": hid, "grp_days_since_last": since}
    for w, b, d in zip(RATIO_WINDOWS, baskets, days):
        row.update({f"grp_baskets_{w}d": b, f"grp_days_{w}d": d})
    return row


def test_feature_matrix_ratios():
    hh = pd.DataFrame(
        [
            _hh_row(date(2017, 6, 2), 1, (4, 10, 40), (2, 8, 30)),
            _hh_row(date(2017, 6, 2), 2, (0, 0, 5), (0, 0, 5)),  # nothing in 30d/90d
            _hh_row(date(2017, 6, 2), 3, (1, 2, 3), (1, 2, 3)),  # never bought in the group
            _hh_row(date(2017, 6, 2), 9, (1, 1, 1), (1, 1, 1)),  # no group row -> dropped
        ]
    )
    grp = pd.DataFrame(
        [
            # as_of as a string here, a date in `hh`: both sides are normalised.
            _grp_row("2017-06-02", 1, (1, 5, 10), (1, 4, 73), 5.0),
            _grp_row("2017-06-02", 2, (0, 0, 2), (0, 0, 2), 100.0),
            _grp_row("2017-06-02", 3, (0, 0, 0), (0, 0, 0), np.nan),
        ]
    )
    f = feature_matrix(hh, grp).set_index("household_id")
    assert sorted(f.index) == [1, 2, 3]
    assert (f["as_of"] == "2017-06-02").all()
    # Household 1: 1/4 baskets, 5/10, 10/40; days 1/2, 4/8, 73/30.
    assert f.loc[1, "grp_basket_share_30d"] == pytest.approx(0.25)
    assert f.loc[1, "grp_basket_share_90d"] == pytest.approx(0.5)
    assert f.loc[1, "grp_basket_share_365d"] == pytest.approx(0.25)
    assert f.loc[1, "grp_day_share_30d"] == pytest.approx(0.5)
    assert f.loc[1, "grp_day_share_90d"] == pytest.approx(0.5)
    # Overdue: 5 days since the last purchase / usual gap 365 / 73 = 5 days -> 1.0.
    assert f.loc[1, "grp_overdue_ratio"] == pytest.approx(1.0)
    # Household 2: zero household baskets/days -> shares 0 (not NaN, not inf).
    assert f.loc[2, "grp_basket_share_30d"] == 0.0 and f.loc[2, "grp_day_share_90d"] == 0.0
    assert f.loc[2, "grp_basket_share_365d"] == pytest.approx(0.4)
    # 100 days / (365 / 2) -> 200 / 365.
    assert f.loc[2, "grp_overdue_ratio"] == pytest.approx(200 / 365)
    # Household 3: never bought in the group -> shares 0, overdue ratio unknown.
    assert f.loc[3, "grp_basket_share_365d"] == 0.0
    assert np.isnan(f.loc[3, "grp_overdue_ratio"])
    assert np.isnan(f.loc[3, "grp_days_since_last"])

    features = [c for c in PROPENSITY.columns if c in f.reset_index().columns]
    assert "household_id" not in features and "as_of" not in features
    assert all(c.startswith(("hh_", "grp_")) for c in features)
    assert {"grp_overdue_ratio", "grp_basket_share_30d", "grp_day_share_365d", "hh_baskets_30d"} <= set(features)
    assert all(f[c].dtype == "float64" for c in features)


def test_feature_matrix_refuses_duplicate_keys():
    hh = pd.DataFrame([_hh_row("2017-06-02", 1, (1, 1, 1), (1, 1, 1))] * 2)
    grp = pd.DataFrame([_grp_row("2017-06-02", 1, (1, 1, 1), (1, 1, 1), 1.0)])
    with pytest.raises(Exception):
        feature_matrix(hh, grp)
