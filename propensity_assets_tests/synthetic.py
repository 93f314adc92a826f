"""Synthetic lake rows with exactly the columns the feature assets write, for lifecycle tests
that need no Spark. Values are random but shaped like the real features."""

import numpy as np
import pandas as pd

from propensity_assets.features.declaration import GROUP, HOUSEHOLD, WINDOWS


def household_features(as_of: str, hids: list[int], rng) -> pd.DataFrame:
    n = len(hids)
    frame = {"as_of": as_of, "household_id": np.asarray(hids, dtype="int64")}
    for w in WINDOWS:
        baskets = rng.poisson(w / 7 * 1.5, n) + (1 if w == 365 else 0)
        frame[f"hh_baskets_{w}d"] = baskets.astype("int64")
        frame[f"hh_spend_{w}d"] = baskets * rng.gamma(4.0, 8.0, n)
        frame[f"hh_units_{w}d"] = baskets * rng.integers(1, 12, n).astype(float)
        frame[f"hh_days_{w}d"] = np.minimum(baskets, w).astype("int32")
    frame["hh_days_since_last"] = rng.integers(1, 40, n).astype("int32")
    frame["hh_days_since_first"] = rng.integers(60, 365, n).astype("int32")
    df = pd.DataFrame(frame)
    assert list(df.columns[2:]) == HOUSEHOLD.columns
    return df


def group_features(as_of: str, group: str, hh: pd.DataFrame, rng) -> pd.DataFrame:
    n = len(hh)
    frame = {"as_of": as_of, "product_group": group, "household_id": hh["household_id"].to_numpy()}
    for w in WINDOWS:
        baskets = rng.poisson(1.5 if w == 30 else w / 30 * 1.2, n)
        frame[f"grp_baskets_{w}d"] = baskets.astype("int64")
        frame[f"grp_spend_{w}d"] = baskets * rng.gamma(2.0, 3.0, n)
        frame[f"grp_units_{w}d"] = baskets.astype(float)
        frame[f"grp_days_{w}d"] = baskets.astype("int32")
    since = rng.integers(1, 120, n).astype(float)
    since[rng.random(n) < 0.1] = np.nan  # never bought in the group
    frame["grp_days_since_last"] = since
    frame["grp_days_since_first"] = np.where(np.isnan(since), np.nan, since + 30)
    for w in WINDOWS:
        frame[f"grp_spend_share_{w}d"] = rng.random(n)
    df = pd.DataFrame(frame)
    assert list(df.columns[3:]) == GROUP.columns
    return df
