"""The profile assembled from what each stage declares."""

import pandas as pd

from propensity_assets.profile.assets import build_profile


def _scores(rows):
    return pd.DataFrame(rows, columns=["as_of", "product_group", "household_id", "value", "model_version"])


def test_build_profile_wide_and_long():
    propensity = _scores([
        ("2017-06-02", "a", 1, 0.9, "4"), ("2017-06-02", "a", 2, 0.1, "4"), ("2017-06-02", "a", 3, 0.5, "4"),
        ("2017-06-02", "b", 1, 0.2, "1"), ("2017-06-02", "b", 2, 0.8, "1"), ("2017-06-02", "c", 1, 0.7, "2"),
        ("2017-06-09", "a", 1, 0.3, "4"), ("2017-06-09", "a", 2, 0.4, "4"),
    ])
    ltv = _scores([("2017-06-02", "b", 1, 120.0, "7"), ("2017-06-02", "b", 4, 30.0, "7")])
    wide, long = build_profile({"propensity": propensity, "ltv": ltv}, ["a", "b"])  # c is not an active group

    assert list(wide.columns) == [
        "as_of", "household_id", "propensity__a", "propensity_decile__a", "propensity__b", "propensity_decile__b",
        "ltv__b", "ltv_decile__b",
    ]
    w = wide.set_index(["as_of", "household_id"])
    assert len(w) == 6  # households 1-3 and 4 (LTV only) on 06-02, 1-2 on 06-09
    assert w.loc[("2017-06-02", 1), "propensity__a"] == 0.9
    assert w.loc[("2017-06-02", 2), "propensity__b"] == 0.8
    assert pd.isna(w.loc[("2017-06-02", 3), "propensity__b"])  # not scored for b
    assert pd.isna(w.loc[("2017-06-02", 4), "propensity__a"]) and w.loc[("2017-06-02", 4), "ltv__b"] == 30.0
    # Deciles per (as_of, group), 1 = top: a on 06-02 ranks 0.9, 0.5, 0.1 -> ceil(r/3*10) = 4, 7, 10.
    assert w.loc[("2017-06-02", 1), "propensity_decile__a"] == 4
    assert w.loc[("2017-06-02", 3), "propensity_decile__a"] == 7
    assert w.loc[("2017-06-02", 2), "propensity_decile__a"] == 10
    # On 06-09 the ranking restarts: 0.4 (hh 2) is the top of two -> 5, 0.3 -> 10.
    assert w.loc[("2017-06-09", 2), "propensity_decile__a"] == 5
    assert w.loc[("2017-06-09", 1), "propensity_decile__a"] == 10
    # LTV 120 ranks above 30: deciles 5 and 10.
    assert w.loc[("2017-06-02", 1), "ltv_decile__b"] == 5 and w.loc[("2017-06-02", 4), "ltv_decile__b"] == 10
    assert str(w["propensity_decile__a"].dtype) == "Int32"

    assert list(long.columns) == ["as_of", "household_id", "product_group", "stage", "value", "decile", "model_version"]
    assert len(long) == 9 and set(long["product_group"]) == {"a", "b"}
    row = long[(long["household_id"] == 2) & (long["product_group"] == "b")].iloc[0]
    assert row["value"] == 0.8 and row["decile"] == 5 and row["model_version"] == "1" and row["stage"] == "propensity"


def test_profile_without_any_scores_is_empty():
    wide, long = build_profile({}, ["a"])
    assert wide.empty and long.empty



def test_a_source_without_deciles_has_only_its_value_column():
    offers = _scores([("2017-06-02", "a", 1, 0.9, "1"), ("2017-06-02", "a", 2, 0.1, "1")])
    wide, _ = build_profile({"offer": offers}, ["a"], without_deciles=frozenset({"offer"}))
    assert list(wide.columns) == ["as_of", "household_id", "offer__a"]
