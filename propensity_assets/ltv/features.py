"""LTV feature engineering: the lake columns a predictor reads, the features it derives
from them (`declaration.ltv_derived`), and the named feature subsets of the search
(`declaration.LTV_SUBSETS`).

Pure numpy and pandas: the registered predictor calls `design_matrix` when it scores, so
this module must load in a bare virtualenv.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from propensity_assets.features.declaration import GRP, HH, LTV_SUBSETS, WINDOWS, windowed

# "Never bought" recency: longer ago than any window, so trees and PCA see it as the far end.
NEVER_DAYS = 730.0


def lake_columns(frame: pd.DataFrame) -> list[str]:
    """The stored feature columns (`declaration.STORED`: CONTRACTS §4 and the project's own)
    a predictor reads, in declared order; a ValueError names any `frame` lacks.

    Columns that other code derives (e.g. the propensity ratios) are not among them: the
    predictor derives its own from the lake columns, so it needs nothing else at scoring.
    """
    return LTV_SUBSETS["lake"].require(frame.columns)


def derived_features(frame: pd.DataFrame, horizon_days: int, prefixes: tuple[str, ...] = (HH, GRP)) -> pd.DataFrame:
    """LTV features derived from the lake columns, as H-day quantities where they are rates.

    Window sums grow with a household's history: early in the data a 365-day window
    holds a few weeks, so raw sums understate a new household's value and a tree fitted
    on January snapshots misreads October ones. Run rates divide each window sum by the
    days the household was actually observed in it (min(W, hh_days_since_first)) and
    scale to the horizon H, so they mean the same at every as_of.
    """
    out = {}
    observed = frame["hh_days_since_first"].astype("float64").clip(lower=1.0)
    long_w = WINDOWS[-1]
    for p in prefixes:
        rates = {}
        for w in WINDOWS:
            span = np.minimum(float(w), observed)
            rates[w] = out[f"{p}_spend_rate_{w}d"] = frame[windowed(p, "spend", w)] * horizon_days / span
            out[f"{p}_days_rate_{w}d"] = frame[windowed(p, "days", w)] * horizon_days / span
        days = frame[windowed(p, "days", long_w)].astype("float64")
        baskets = frame[windowed(p, "baskets", long_w)].astype("float64")
        spend = frame[windowed(p, "spend", long_w)].astype("float64")
        out[f"{p}_spend_per_day"] = (spend / days.replace(0, np.nan)).fillna(0.0)
        out[f"{p}_spend_per_basket"] = (spend / baskets.replace(0, np.nan)).fillna(0.0)
        # Trends: recent rate against a longer one, as log ratios so 0 means steady.
        for short, long in zip(WINDOWS, WINDOWS[1:]):
            if short >= 30:
                out[f"{p}_trend_{short}_{long}d"] = np.log1p(rates[short]) - np.log1p(rates[long])
        since_last = frame[f"{p}_days_since_last"].astype("float64")
        never = since_last.isna()
        out[f"{p}_recency"] = since_last.fillna(NEVER_DAYS)
        # How overdue the next purchase is: days since the last one over the usual gap.
        gap = np.minimum(float(long_w), observed) / days.replace(0, np.nan)
        out[f"{p}_overdue"] = (since_last / gap).fillna(NEVER_DAYS)
        if p == GRP:
            out["grp_never_bought"] = never.astype("float64")
            out["grp_tenure"] = frame["grp_days_since_first"].astype("float64").fillna(0.0)
    return pd.DataFrame(out, index=frame.index)


def design_matrix(frame: pd.DataFrame, features: list[str], horizon_days: int) -> pd.DataFrame:
    """Lake columns (recency filled) plus derived features, all float64 with no NaN."""
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValueError(f"LTV features: the input frame lacks the lake columns {missing}; expected every one of {features}")
    lake = frame[features].astype("float64")
    prefixes = tuple(p for p in (HH, GRP) if f"{p}_days_since_first" in features)
    derived = derived_features(lake, horizon_days, prefixes)
    lake = lake.assign(**{c: lake[c].fillna(NEVER_DAYS if "since_last" in c else 0.0) for c in features})
    return pd.concat([lake, derived], axis=1)


def subset_columns(subset: str) -> list[str]:
    """The design columns a named feature subset feeds the model."""
    return list(_subset(subset).columns)


def subset_inputs(subset: str) -> list[str]:
    """The lake columns a model of a named feature subset reads."""
    return list(_subset(subset).inputs)


def _subset(subset: str):
    if subset not in LTV_SUBSETS:
        raise ValueError(f"unknown feature subset {subset!r}; expected one of {list(LTV_SUBSETS)}")
    return LTV_SUBSETS[subset]
