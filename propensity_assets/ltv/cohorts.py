"""Predicted LTV per acquisition cohort: the seed's cap on what to spend acquiring one.

A household's cohort is the month of its first transaction, read from the point-in-time
feature `hh_days_since_first` (first day = as_of − days since first), so no raw
transactions are needed and nothing after as_of is seen.
"""

import pandas as pd

COLUMNS = ["as_of", "product_group", "cohort", "households", "ltv_mean", "ltv_median", "ltv_total", "ltv_p90"]


def cohort_summary(scores: pd.DataFrame, household: pd.DataFrame) -> pd.DataFrame:
    """`scores`: as_of, product_group, household_id, ltv. `household`: as_of, household_id,
    hh_days_since_first. One row per (as_of, product_group, cohort YYYY-MM)."""
    first = household[["as_of", "household_id", "hh_days_since_first"]].assign(as_of=lambda f: f["as_of"].astype(str))
    frame = scores.assign(as_of=scores["as_of"].astype(str)).merge(first, on=["as_of", "household_id"], how="left", validate="many_to_one")
    if frame["hh_days_since_first"].isna().any():
        missing = frame.loc[frame["hh_days_since_first"].isna(), ["as_of", "household_id"]].head(3).to_dict("records")
        raise ValueError(f"ltv_scores rows without household_features (e.g. {missing}): materialize the features first")
    day = pd.to_datetime(frame["as_of"]) - pd.to_timedelta(frame["hh_days_since_first"].astype("int64"), unit="D")
    frame["cohort"] = day.dt.strftime("%Y-%m")
    out = (
        frame.groupby(["as_of", "product_group", "cohort"])["ltv"]
        .agg(households="size", ltv_mean="mean", ltv_median="median", ltv_total="sum", ltv_p90=lambda s: s.quantile(0.9))
        .reset_index()
    )
    out["households"] = out["households"].astype("int64")
    return out[COLUMNS].sort_values(["as_of", "product_group", "cohort"]).reset_index(drop=True)
