import pandas as pd
import pytest

from propensity_assets.ltv.cohorts import cohort_summary


def test_cohorts_by_hand():
    # As of 2017-06-01: household 1 first shopped 2017-05-31 (1 day before), 2 on 2017-05-02
    # (30 days), 3 on 2017-04-30 (32 days), 4 on 2017-01-01 (151 days).
    household = pd.DataFrame({
        "as_of": ["2017-06-01"] * 4, "household_id": [1, 2, 3, 4], "hh_days_since_first": [1, 30, 32, 151],
    })
    scores = pd.DataFrame({
        "as_of": ["2017-06-01"] * 4, "product_group": ["g"] * 4, "household_id": [1, 2, 3, 4],
        "ltv": [10.0, 30.0, 100.0, 7.0],
    })
    out = cohort_summary(scores, household)
    assert out["cohort"].tolist() == ["2017-01", "2017-04", "2017-05"]
    assert out["households"].tolist() == [1, 1, 2]
    may = out.iloc[2]
    assert (may["ltv_mean"], may["ltv_median"], may["ltv_total"]) == (20.0, 20.0, 40.0)
    assert may["ltv_p90"] == pytest.approx(28.0)  # 10 + 0.9 × (30 − 10)


def test_scores_without_features_are_refused():
    household = pd.DataFrame({"as_of": ["2017-06-01"], "household_id": [1], "hh_days_since_first": [3]})
    scores = pd.DataFrame({"as_of": ["2017-06-01"] * 2, "product_group": ["g"] * 2, "household_id": [1, 9], "ltv": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"ltv_scores rows without household_features \(e.g. \[\{'as_of': '2017-06-01', 'household_id': 9\}\]\)"):
        cohort_summary(scores, household)
